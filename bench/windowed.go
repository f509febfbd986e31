package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

// The windowed scenario: what windowing costs. Both sides are kstreams and
// read the same pre-produced input (the count scenario's keys and values),
// each with its own application id, state directory and output topic:
//
//   - ours: GroupByKey → WindowedBy(TumblingWindows(1 minute, grace
//     windowGrace)) → WindowedCount into the window store "windowed-counts"
//     (changelog and the default 10 MiB cache on), every update the window
//     cache forwards written to an output topic with serde.TimeWindowed
//     keys;
//   - baseline: the count scenario's kstreams side (countTopology,
//     GroupByKey → Count into the Pebble store "counts"), whose cache
//     forwards the same way.
//
// Both caches collapse a key's (a key and window's) updates until the
// final commit flushes them, so ours writes about five times the
// baseline's output and changelog records then: one per key and window.
//
// The input's record timestamps are spread evenly over windowSpread,
// ending a minute before the fill, so the records fall into about five
// one-minute windows and none is older than the window store's retention
// or late for its window. Both clocks run as the count scenario's kstreams
// clock does: from assignment until Stats().Processed reaches the input
// count and Close (the final commit) has returned. Each output is read
// back and its latest counts checked: per key for the baseline, per key
// and window for ours, adding up to the input count.
const (
	windowSize   = time.Minute
	windowGrace  = 10 * time.Minute
	windowSpread = 4 * time.Minute
)

func windowed(ctx context.Context, o options) (ours, baseline side, err error) {
	adm, closeAdm, err := admin(o)
	if err != nil {
		return nil, nil, err
	}
	defer closeAdm()
	in, outOurs, outBase := "windowed-in", "windowed-ours", "windowed-base"
	if err := createTopics(ctx, adm, o.partitions, in, outOurs, outBase); err != nil {
		return nil, nil, err
	}
	if err := fillSpread(ctx, o, in, time.Now().Add(-windowSpread-time.Minute), windowSpread); err != nil {
		return nil, nil, fmt.Errorf("fill: %w", err)
	}
	records := int64(o.records)
	keys := min(o.keys, o.records)
	ours = func(ctx context.Context) (time.Duration, error) {
		topo, err := windowedTopology(in, outOurs)
		if err != nil {
			return 0, err
		}
		d, err := runToClose(ctx, o, topo, outOurs, records)
		if err != nil {
			return 0, err
		}
		return d, verifyWindowedCounts(ctx, o, outOurs, records, keys)
	}
	baseline = func(ctx context.Context) (time.Duration, error) {
		d, err := countOurs(ctx, o, in, outBase, records)
		if err != nil {
			return 0, err
		}
		return d, verifyCounts(ctx, o, outBase, records, keys)
	}
	return ours, baseline, nil
}

// windowedTopology counts each key's records per one-minute tumbling
// window into the window store "windowed-counts" and writes every update
// it forwards to out.
func windowedTopology(in, out string) (*kstreams.Topology, error) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, kstream.ConsumedWith(serde.Bytes(), serde.Bytes()), in)
	w := kstream.WindowedBy(kstream.GroupByKey(s), kstream.TumblingWindows(windowSize, windowGrace))
	kstream.WindowedCount(w, kstream.MaterializedAs[[]byte, int64]("windowed-counts")).
		ToStream().
		To(out, kstream.ProducedWith(serde.TimeWindowed(serde.Bytes(), windowSize), serde.Int64()))
	return b.Build()
}

// runToClose runs topo with the default config until it has processed
// records input records and Close has returned, and returns how long that
// took from assignment.
func runToClose(ctx context.Context, o options, topo *kstreams.Topology, out string, records int64) (time.Duration, error) {
	ra, err := startApp(ctx, topo, kstreams.Config{ApplicationID: "bench-" + out, Brokers: o.brokers})
	if err != nil {
		return 0, err
	}
	defer ra.stop()
	if err := ra.waitProcessed(ctx, records); err != nil {
		return 0, err
	}
	if err := ra.stop(); err != nil {
		return 0, err
	}
	return ra.stopped.Sub(ra.start), nil
}

// fillSpread is fill with record timestamps spread evenly over
// [from, from+spread), in the order the records are produced.
func fillSpread(ctx context.Context, o options, topic string, from time.Time, spread time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(200_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	pad := strings.Repeat("x", max(0, o.valueSize-12))
	step := spread / time.Duration(max(1, o.records))
	var firstErr error
	for i := 0; i < o.records; i++ {
		r := &kgo.Record{
			Topic:     topic,
			Key:       fmt.Appendf(nil, "key-%d", i%o.keys),
			Value:     fmt.Appendf(nil, "%d|%s", i, pad),
			Timestamp: from.Add(time.Duration(i) * step),
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return firstErr
}

// verifyWindowedCounts reads a windowed count output topic (keys in the
// serde.TimeWindowed layout: key bytes, then the 8-byte window start) and
// checks that the latest count of every key and window adds up to the
// records counted, over the expected keys.
func verifyWindowedCounts(ctx context.Context, o options, topic string, records int64, keys int) error {
	type kw struct {
		key   string
		start int64
	}
	latest := map[kw]int64{}
	var bad error
	n, err := readAll(ctx, o, topic, func(r *kgo.Record) {
		if len(r.Value) != 8 || len(r.Key) < 8 {
			if bad == nil {
				bad = fmt.Errorf("%s-%d@%d: key of %d bytes, value of %d bytes", r.Topic, r.Partition, r.Offset, len(r.Key), len(r.Value))
			}
			return
		}
		k := kw{string(r.Key[:len(r.Key)-8]), int64(binary.BigEndian.Uint64(r.Key[len(r.Key)-8:]))}
		if k.start%windowSize.Milliseconds() != 0 && bad == nil {
			bad = fmt.Errorf("%s-%d@%d: window start %d not aligned to %v", r.Topic, r.Partition, r.Offset, k.start, windowSize)
		}
		latest[k] = int64(binary.BigEndian.Uint64(r.Value))
	})
	if err != nil {
		return fmt.Errorf("verify %s: %w", topic, err)
	}
	if bad != nil {
		return fmt.Errorf("verify %s: %w", topic, bad)
	}
	var sum int64
	distinct := map[string]bool{}
	windows := map[int64]bool{}
	for k, c := range latest {
		sum += c
		distinct[k.key] = true
		windows[k.start] = true
	}
	if debug {
		fmt.Fprintf(os.Stderr, "  %s: %d output records, %d windows, %d key-windows\n", topic, n, len(windows), len(latest))
	}
	if sum != records || len(distinct) != keys {
		return fmt.Errorf("verify %s: latest counts add up to %d over %d keys, want %d over %d", topic, sum, len(distinct), records, keys)
	}
	return nil
}
