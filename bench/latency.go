package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

// The latency scenario: end-to-end latency at a fixed input rate, for the
// stateless pipeline (Map → Filter → To, the stateless scenario's) and
// the count pipeline (GroupByKey → Count → To, the count scenario's
// countTopology). Each pipeline gets a fresh embedded cluster (or its own
// topics on -brokers) and runs once:
//
//  1. the app is started on empty topics and waits until it is Running;
//  2. a reader of the output topic (no consumer group, every partition
//     from the start) is started;
//  3. a producer goroutine produces -latency-rate records per second (no
//     linger, paced every millisecond against the wall clock, so it
//     catches up after a late tick) for latencyDuration, with the same
//     keys as the other scenarios;
//  4. the reader takes each output record's receive time when its fetch
//     returns, and latency = receive time − produce time, where the
//     produce time is the wall clock just before kgo.Client.Produce.
//
// Where the produce time travels: on the stateless pipeline it is in the
// value ("<seq>|<unix ns>|<pad>", which Map and Filter carry through). A
// count's output value is the count, so there the time cannot ride in the
// value; input record i has key i mod keys, so the output (key k, count c)
// is the count that input k + (c−1)·keys brought about, and the reader
// looks its produce time up in the producer's table by that index.
//
// The count app runs with StateStoreCacheMaxBytes: kstreams.NoCache. With
// the cache, updates are held until a commit (every 30 s by default) and
// the latency measured would be the commit interval, not the pipeline's;
// a short CommitInterval would bound it but add a commit (cache flush,
// produce flush, offset commit) every few milliseconds and still put up to
// one interval of waiting on every record. NoCache forwards every update
// at once, which is the configuration one would choose for low latency;
// the commit interval stays the default.
//
// Records produced during the first latencyWarmup are left out of the
// percentiles (fetch sessions and producer connections are still being
// set up then). The scenario prints
//
//	scenario=latency-stateless rate=… rec/s records=… p50=…ms p99=…ms max=…ms
//	scenario=latency-count rate=… rec/s records=… p50=…ms p99=…ms max=…ms
//
// where rate is the rate the producer achieved and records the number of
// outputs measured.
func latencyScenario(o options, brokers string) error {
	for _, p := range []string{"stateless", "count"} {
		res, err := latencyRun(o, brokers, p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		fmt.Printf("scenario=latency-%s rate=%.0f rec/s records=%d p50=%.2fms p99=%.2fms max=%.2fms\n",
			p, res.rate, res.n, ms(res.p50), ms(res.p99), ms(res.max))
	}
	return nil
}

// latencyDuration is how long the producer runs: 10 s at the default
// -records, scaled down with -records (10 s per 100,000) to at least 1 s,
// so that the CI smoke run (-records 2000) spends about 2 s producing.
func latencyDuration(o options) time.Duration {
	d := time.Duration(float64(10*time.Second) * min(1, float64(o.records)/100_000))
	return max(time.Second, d)
}

func latencyWarmup(d time.Duration) time.Duration { return min(time.Second, d/5) }

type latencyResult struct {
	rate          float64
	n             int
	p50, p99, max time.Duration
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func latencyRun(o options, brokers, pipeline string) (latencyResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(int(o.partitions)))
		if err != nil {
			return latencyResult{}, fmt.Errorf("embedded broker: %w", err)
		}
		defer c.Close()
		o.brokers = c.ListenAddrs()
	} else {
		o.brokers = strings.Split(brokers, ",")
	}
	in, out := "latency-"+pipeline+"-in", "latency-"+pipeline+"-out"
	adm, closeAdm, err := admin(o)
	if err != nil {
		return latencyResult{}, err
	}
	defer closeAdm()
	if err := createTopics(ctx, adm, o.partitions, in, out); err != nil {
		return latencyResult{}, err
	}

	dur := latencyDuration(o)
	rate := max(1, o.latencyRate)
	n := int(float64(rate) * dur.Seconds())
	warm := latencyWarmup(dur)
	// sent[i] is the produce wall clock of input i, in Unix nanoseconds.
	sent := make([]atomic.Int64, n)

	var topo *kstreams.Topology
	cfg := kstreams.Config{ApplicationID: "bench-" + out, Brokers: o.brokers}
	var want int
	var sentAt func(r *kgo.Record) (int64, error)
	switch pipeline {
	case "stateless":
		b := kstream.NewBuilder()
		s := kstream.Stream(b, kstream.ConsumedWith(serde.Bytes(), serde.Bytes()), in)
		kstream.Map(s, func(k, v []byte) ([]byte, []byte) { return k, mapValue(v) }).
			Filter(func(_, v []byte) bool { return keep(v) }).
			To(out, kstream.ProducedWith(serde.Bytes(), serde.Bytes()))
		topo, err = b.Build()
		want = int(expectedKept(n))
		sentAt = func(r *kgo.Record) (int64, error) {
			// "ok:<seq>|<unix ns>|<pad>"
			f := bytes.SplitN(r.Value, []byte("|"), 3)
			if len(f) < 3 || !bytes.HasPrefix(f[0], []byte("ok:")) {
				return 0, fmt.Errorf("%s-%d@%d: unexpected value %.40q", r.Topic, r.Partition, r.Offset, r.Value)
			}
			_, err1 := strconv.Atoi(string(f[0][3:]))
			t, err2 := strconv.ParseInt(string(f[1]), 10, 64)
			if err1 != nil || err2 != nil {
				return 0, fmt.Errorf("%s-%d@%d: unexpected value %.40q", r.Topic, r.Partition, r.Offset, r.Value)
			}
			return t, nil
		}
	case "count":
		topo, err = countTopology(in, out)
		cfg.StateStoreCacheMaxBytes = kstreams.NoCache
		want = n
		sentAt = func(r *kgo.Record) (int64, error) {
			k, err := strconv.Atoi(strings.TrimPrefix(string(r.Key), "key-"))
			if err != nil || len(r.Value) != 8 {
				return 0, fmt.Errorf("%s-%d@%d: unexpected key %q or value of %d bytes", r.Topic, r.Partition, r.Offset, r.Key, len(r.Value))
			}
			c := int(binary.BigEndian.Uint64(r.Value))
			seq := k + (c-1)*o.keys
			if c < 1 || seq >= n {
				return 0, fmt.Errorf("%s-%d@%d: count %d of %q was never produced", r.Topic, r.Partition, r.Offset, c, r.Key)
			}
			return sent[seq].Load(), nil
		}
	default:
		return latencyResult{}, fmt.Errorf("unknown pipeline %q", pipeline)
	}
	if err != nil {
		return latencyResult{}, err
	}

	ra, err := startApp(ctx, topo, cfg)
	if err != nil {
		return latencyResult{}, err
	}
	defer ra.stop()

	parts := map[int32]kgo.Offset{}
	for p := int32(0); p < o.partitions; p++ {
		parts[p] = kgo.NewOffset().AtStart()
	}
	reader, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{out: parts}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return latencyResult{}, err
	}
	defer reader.Close()

	// The producer.
	prodErr := make(chan error, 1)
	var producing atomic.Int64 // the producing duration, once done
	var startNanos atomic.Int64
	go func() {
		prodErr <- func() error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...), kgo.ProducerLinger(0),
				kgo.DefaultProduceTopic(in))
			if err != nil {
				return err
			}
			defer cl.Close()
			var firstErr atomic.Pointer[error]
			promise := func(_ *kgo.Record, err error) {
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
			pad := strings.Repeat("x", max(0, o.valueSize-32))
			start := time.Now()
			startNanos.Store(start.UnixNano())
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for i := 0; i < n; {
				due := min(n, int(time.Since(start).Seconds()*float64(rate))+1)
				for ; i < due; i++ {
					now := time.Now().UnixNano()
					sent[i].Store(now)
					cl.Produce(ctx, &kgo.Record{
						Key:   fmt.Appendf(nil, "key-%d", i%o.keys),
						Value: fmt.Appendf(nil, "%d|%d|%s", i, now, pad),
					}, promise)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-tick.C:
				}
			}
			producing.Store(int64(time.Since(start)))
			if err := cl.Flush(ctx); err != nil {
				return err
			}
			if err := firstErr.Load(); err != nil {
				return *err
			}
			return nil
		}()
	}()

	var lat []time.Duration
	got := 0
	// The reader stops at want outputs, or 30 s after the producer is done.
	var deadline time.Time
	for got < want {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := reader.PollFetches(pctx)
		recv := time.Now().UnixNano()
		pcancel()
		if err := ctx.Err(); err != nil {
			return latencyResult{}, fmt.Errorf("read %d of %d outputs: %w", got, want, err)
		}
		var bad error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && bad == nil {
				bad = err
			}
		})
		if bad != nil {
			return latencyResult{}, fmt.Errorf("read %s: %w", out, bad)
		}
		warmEnd := startNanos.Load() + int64(warm)
		fetches.EachRecord(func(r *kgo.Record) {
			got++
			t, err := sentAt(r)
			if err != nil {
				if bad == nil {
					bad = err
				}
				return
			}
			if t >= warmEnd {
				lat = append(lat, time.Duration(recv-t))
			}
		})
		if bad != nil {
			return latencyResult{}, bad
		}
		select {
		case err := <-prodErr:
			if err != nil {
				return latencyResult{}, fmt.Errorf("producer: %w", err)
			}
			deadline = time.Now().Add(30 * time.Second)
		default:
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return latencyResult{}, fmt.Errorf("read %d of %d outputs 30s after the last input was acknowledged", got, want)
		}
	}
	if deadline.IsZero() {
		if err := <-prodErr; err != nil {
			return latencyResult{}, fmt.Errorf("producer: %w", err)
		}
	}
	if got != want {
		return latencyResult{}, fmt.Errorf("read %d outputs, want %d", got, want)
	}
	if err := ra.stop(); err != nil {
		return latencyResult{}, err
	}
	if len(lat) == 0 {
		return latencyResult{}, fmt.Errorf("no outputs after the %v warm-up", warm)
	}
	slices.Sort(lat)
	res := latencyResult{
		rate: float64(n) / time.Duration(producing.Load()).Seconds(),
		n:    len(lat),
		p50:  lat[len(lat)/2],
		p99:  lat[min(len(lat)-1, len(lat)*99/100)],
		max:  lat[len(lat)-1],
	}
	if debug {
		fmt.Fprintf(os.Stderr, "  latency-%s: %d inputs over %v, %d outputs, %d after warm-up\n", pipeline, n, dur, got, len(lat))
	}
	return res, nil
}
