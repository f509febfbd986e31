package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

// The count scenario: count the records of each key and write every new
// count (key, 8-byte big-endian count) to an output topic.
//
// kstreams runs GroupByKey+Count into the Pebble store "counts" with its
// changelog and the default 10 MiB write cache, so repeated updates of a
// key collapse until a commit: the output has far fewer records than the
// input. Its clock therefore stops when the app has processed every input
// record and Close has returned; Close commits, which flushes the cache
// into Pebble, the changelog and the output topic, waits for every
// produced record to be acknowledged and commits the offsets.
//
// The baseline counts in a Go map and produces every update; its clock
// stops when it has consumed every input record and Flush has returned,
// i.e. every produced record is acknowledged.
func count(ctx context.Context, o options) (ours, baseline side, err error) {
	adm, closeAdm, err := admin(o)
	if err != nil {
		return nil, nil, err
	}
	defer closeAdm()
	in, outOurs, outBase := "count-in", "count-ours", "count-base"
	if err := createTopics(ctx, adm, o.partitions, in, outOurs, outBase); err != nil {
		return nil, nil, err
	}
	if err := fill(ctx, o, in); err != nil {
		return nil, nil, fmt.Errorf("fill: %w", err)
	}
	records := int64(o.records)
	keys := min(o.keys, o.records)
	ours = func(ctx context.Context) (time.Duration, error) {
		d, err := countOurs(ctx, o, in, outOurs, records)
		if err != nil {
			return 0, err
		}
		if debug {
			changelog := "bench-" + outOurs + "-counts-changelog"
			if n, err := readAll(ctx, o, changelog, func(*kgo.Record) {}); err == nil {
				fmt.Fprintf(os.Stderr, "  %s: %d records\n", changelog, n)
			}
		}
		return d, verifyCounts(ctx, o, outOurs, records, keys)
	}
	baseline = func(ctx context.Context) (time.Duration, error) {
		d, err := countBaseline(ctx, o, in, outBase, records)
		if err != nil {
			return 0, err
		}
		return d, verifyCounts(ctx, o, outBase, records, keys)
	}
	return ours, baseline, nil
}

// countTopology is GroupByKey+Count into the Pebble store "counts"
// (changelog and cache on, the defaults), its updates written to out.
func countTopology(in, out string) (*kstreams.Topology, error) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, kstream.ConsumedWith(serde.Bytes(), serde.Bytes()), in)
	kstream.Count(kstream.GroupByKey(s), kstream.MaterializedAs[[]byte, int64]("counts")).
		ToStream().
		To(out, kstream.ProducedWith(serde.Bytes(), serde.Int64()))
	return b.Build()
}

// runningApp is an app started by startApp.
type runningApp struct {
	app     *kstreams.App
	start   time.Time  // when the app reached Running (partitions assigned)
	stopped time.Time  // when the first stop saw Run return
	err     chan error // Run's result
	dir     string     // the app's state directory, removed by stop
}

// startApp runs an app on a fresh state directory and waits until it is
// Running (its consumer group assigned it partitions).
func startApp(ctx context.Context, topo *kstreams.Topology, cfg kstreams.Config) (*runningApp, error) {
	dir, err := os.MkdirTemp("", "kstreams-bench-")
	if err != nil {
		return nil, err
	}
	running := make(chan time.Time, 1)
	cfg.StateDir = dir
	cfg.Logger = quiet()
	cfg.StateListener = func(_, s kstreams.State) {
		if s == kstreams.Running {
			select {
			case running <- time.Now():
			default:
			}
		}
	}
	app, err := kstreams.New(topo, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ra := &runningApp{app: app, err: make(chan error, 1), dir: dir}
	go func() { ra.err <- app.Run(ctx) }()
	select {
	case ra.start = <-running:
		return ra, nil
	case err := <-ra.err:
		os.RemoveAll(dir)
		if err == nil {
			err = errors.New("app stopped before it was running")
		}
		return nil, err
	}
}

// stop closes the app, notes when Run returned, removes its state and
// returns Run's error.
func (ra *runningApp) stop() error {
	ra.app.Close()
	err := <-ra.err
	if ra.stopped.IsZero() {
		ra.stopped = time.Now()
	}
	ra.err <- err // stop may be called again (deferred)
	return errors.Join(err, os.RemoveAll(ra.dir))
}

// waitProcessed polls the app's Processed count until it reaches want.
func (ra *runningApp) waitProcessed(ctx context.Context, want int64) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for ra.app.Stats().Processed.Load() < want {
		select {
		case <-ctx.Done():
			return fmt.Errorf("processed %d of %d records: %w", ra.app.Stats().Processed.Load(), want, ctx.Err())
		case err := <-ra.err:
			ra.err <- err
			return fmt.Errorf("app stopped after %d of %d records: %v", ra.app.Stats().Processed.Load(), want, err)
		case <-t.C:
		}
	}
	return nil
}

func countOurs(ctx context.Context, o options, in, out string, records int64) (time.Duration, error) {
	topo, err := countTopology(in, out)
	if err != nil {
		return 0, err
	}
	ra, err := startApp(ctx, topo, kstreams.Config{ApplicationID: "bench-" + out, Brokers: o.brokers})
	if err != nil {
		return 0, err
	}
	defer ra.stop()
	if err := ra.waitProcessed(ctx, records); err != nil {
		return 0, err
	}
	// Close commits: cache flush, changelog and output acknowledged,
	// Pebble flushed, offsets committed. All of it is part of the work;
	// removing the state directory afterwards is not.
	if err := ra.stop(); err != nil {
		return 0, err
	}
	return ra.stopped.Sub(ra.start), nil
}

// countBaseline is what a team would write with franz-go alone: a group
// consumer counting in a map and producing each new count asynchronously.
func countBaseline(ctx context.Context, o options, in, out string, records int64) (time.Duration, error) {
	assigned := make(chan time.Time, 1)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(o.brokers...),
		kgo.ConsumerGroup("bench-base-"+out),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- time.Now():
			default:
			}
		}),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var produceErr atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			produceErr.CompareAndSwap(nil, &err)
		}
	}
	counts := map[string]int64{}
	var consumed int64
	for consumed < records {
		fetches := cl.PollRecords(ctx, 10_000)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("consumed %d of %d records: %w", consumed, records, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			consumed++
			n := counts[string(r.Key)] + 1
			counts[string(r.Key)] = n
			v := binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(n))
			cl.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: v, Timestamp: r.Timestamp}, promise)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	d := time.Since(<-assigned)
	if err := produceErr.Load(); err != nil {
		return 0, *err
	}
	return d, nil
}

// verifyCounts reads a count output topic and checks that the latest count
// of every key adds up to the records counted, over the expected keys.
func verifyCounts(ctx context.Context, o options, topic string, records int64, keys int) error {
	latest := map[string]int64{}
	var bad error
	n, err := readAll(ctx, o, topic, func(r *kgo.Record) {
		if len(r.Value) != 8 {
			if bad == nil {
				bad = fmt.Errorf("%s-%d@%d: value of %d bytes, not an 8-byte count", r.Topic, r.Partition, r.Offset, len(r.Value))
			}
			return
		}
		latest[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
	})
	if err != nil {
		return fmt.Errorf("verify %s: %w", topic, err)
	}
	if debug {
		fmt.Fprintf(os.Stderr, "  %s: %d output records\n", topic, n)
	}
	if bad != nil {
		return fmt.Errorf("verify %s: %w", topic, bad)
	}
	var sum int64
	for _, n := range latest {
		sum += n
	}
	if sum != records || len(latest) != keys {
		return fmt.Errorf("verify %s: latest counts add up to %d over %d keys, want %d over %d", topic, sum, len(latest), records, keys)
	}
	return nil
}
