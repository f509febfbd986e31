package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// The restore scenario: bring a store back from its changelog.
//
// The changelog has the shape of a compacted one: o.records distinct keys,
// values of about o.valueSize bytes, partitioned by murmur2 of the key as
// the app writes it. The store is a latest-value table (GroupByKey+Reduce
// over []byte, store "latest"), so the 100-byte values are what the store
// really holds; a count's 8-byte values would make the bench a test of
// per-record overhead only. Restore writes the changelog's bytes into
// Pebble without deserializing them, so the aggregation does not matter.
//
// kstreams starts on an empty state directory and restores through its
// real path (one fetch client per changelog partition, RestoreBatch into
// Pebble); its clock runs from the first store's OnRestoreStart to the
// last one's OnRestoreEnd. The baseline reads the same partitions with one
// franz-go client from the start to the end offsets, counting records and
// storing nothing; its clock runs from creating the client to the last
// partition's end. Both sides list the end offsets before their clocks
// start.
//
// With KSTREAMS_BENCH_DEBUG set, each side also prints the process's CPU
// time over its clock (both cores count), and
// KSTREAMS_BENCH_RESTORE_CPUPROFILE=FILE writes a CPU profile of the
// kstreams side's clock alone (not with -cpuprofile, which holds the
// profiler for the whole run).
const restoreApp = "bench-restore"

func restore(ctx context.Context, o options) (ours, baseline side, err error) {
	adm, closeAdm, err := admin(o)
	if err != nil {
		return nil, nil, err
	}
	defer closeAdm()
	in, changelog := "restore-in", restoreApp+"-latest-changelog"
	if err := createTopics(ctx, adm, o.partitions, in); err != nil {
		return nil, nil, err
	}
	compact := "compact"
	resp, err := adm.CreateTopics(ctx, o.partitions, -1, map[string]*string{"cleanup.policy": &compact}, changelog)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", changelog, err)
	}
	fo := o
	fo.keys = o.records // every key distinct, as after compaction
	if err := fill(ctx, fo, changelog); err != nil {
		return nil, nil, fmt.Errorf("fill: %w", err)
	}
	ends, err := endOffsets(ctx, adm, changelog)
	if err != nil {
		return nil, nil, err
	}
	ours = func(ctx context.Context) (time.Duration, error) { return restoreOurs(ctx, o, in, ends) }
	baseline = func(ctx context.Context) (time.Duration, error) { return restoreBaseline(ctx, o, changelog, ends) }
	return ours, baseline, nil
}

// restoreClock is the RestoreListener that times a restore: from the
// first OnRestoreStart to the OnRestoreEnd that completes want partitions.
type restoreClock struct {
	want int

	mu       sync.Mutex
	first    time.Time
	last     time.Time
	cpu      time.Duration // process CPU time at first, then over the clock
	profile  *os.File
	ended    int
	restored int64
	done     chan struct{}
}

// cpuTime is the CPU time the process has used, in user and system mode.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *restoreClock) OnRestoreStart(_ string, tp state.TopicPartition, from, to int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first.IsZero() {
		c.first = time.Now()
		c.cpu = cpuTime()
		if path := os.Getenv("KSTREAMS_BENCH_RESTORE_CPUPROFILE"); path != "" {
			c.startProfile(path)
		}
	}
	if debug {
		fmt.Fprintf(os.Stderr, "  restore %d start +%v %d..%d\n", tp.Partition, time.Since(c.first), from, to)
	}
}

func (c *restoreClock) OnBatchRestored(_ string, tp state.TopicPartition, last int64, n int64) {
	if debug {
		c.mu.Lock()
		fmt.Fprintf(os.Stderr, "  restore %d batch +%v last=%d n=%d\n", tp.Partition, time.Since(c.first), last, n)
		c.mu.Unlock()
	}
}

func (c *restoreClock) OnRestoreEnd(_ string, _ state.TopicPartition, total int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended++
	c.restored += total
	if debug {
		fmt.Fprintf(os.Stderr, "  restore end +%v total=%d\n", time.Since(c.first), total)
	}
	if c.ended == c.want {
		c.last = time.Now()
		c.cpu = cpuTime() - c.cpu
		if c.profile != nil {
			pprof.StopCPUProfile()
			c.profile.Close()
		}
		if debug {
			fmt.Fprintf(os.Stderr, "  restore took %v, %v of CPU\n", c.last.Sub(c.first).Round(time.Millisecond), c.cpu.Round(time.Millisecond))
		}
		close(c.done)
	}
}

func (c *restoreClock) startProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "restore CPU profile: %v\n", err)
		return
	}
	c.profile = f
}

func nonEmpty(ends map[int32]int64) (parts int, records int64) {
	for _, end := range ends {
		if end > 0 {
			parts++
			records += end
		}
	}
	return parts, records
}

func restoreOurs(ctx context.Context, o options, in string, ends map[int32]int64) (time.Duration, error) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, kstream.ConsumedWith(serde.Bytes(), serde.Bytes()), in)
	kstream.Reduce(kstream.GroupByKey(s), func(_, v []byte) []byte { return v },
		kstream.MaterializedAs[[]byte, []byte]("latest"))
	topo, err := b.Build()
	if err != nil {
		return 0, err
	}
	parts, records := nonEmpty(ends)
	clock := &restoreClock{want: parts, done: make(chan struct{})}
	ra, err := startApp(ctx, topo, kstreams.Config{
		ApplicationID:   restoreApp,
		Brokers:         o.brokers,
		RestoreListener: clock,
	})
	if err != nil {
		return 0, err
	}
	defer ra.stop()
	select {
	case <-clock.done:
	case <-ctx.Done():
		return 0, fmt.Errorf("restore: %w", ctx.Err())
	case err := <-ra.err:
		ra.err <- err
		return 0, fmt.Errorf("app stopped while restoring: %v", err)
	}
	if err := ra.stop(); err != nil {
		return 0, err
	}
	clock.mu.Lock()
	defer clock.mu.Unlock()
	if clock.restored != records {
		return 0, fmt.Errorf("restored %d records, the changelog holds %d", clock.restored, records)
	}
	return clock.last.Sub(clock.first), nil
}

// restoreBaseline is a raw franz-go read of the changelog partitions,
// from the start to the end offsets, counting records.
func restoreBaseline(ctx context.Context, o options, changelog string, ends map[int32]int64) (time.Duration, error) {
	_, records := nonEmpty(ends)
	start, cpu := time.Now(), cpuTime()
	n, err := readTo(ctx, o, changelog, ends, func(*kgo.Record) {})
	d := time.Since(start)
	if debug {
		fmt.Fprintf(os.Stderr, "  baseline read took %v, %v of CPU\n", d.Round(time.Millisecond), (cpuTime() - cpu).Round(time.Millisecond))
	}
	if err != nil {
		return 0, err
	}
	if n != records {
		return 0, fmt.Errorf("read %d records, the changelog holds %d", n, records)
	}
	return d, nil
}
