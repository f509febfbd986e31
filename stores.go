package kstreams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/statemgr"
	"github.com/kstreams-go/kstreams/state"
)

// openStores opens the stores of a task about to start.
func (a *App) openStores(r *runner) (*statemgr.Manager, error) {
	id, st := r.id, r.st
	m, err := statemgr.Open(statemgr.Config{
		Task:       id.String(),
		Dir:        a.stateDir.TaskDir(id.String()),
		Partition:  id.Partition,
		Specs:      st.StoreSpecs,
		Changelogs: st.Changelogs,
		CacheBytes: a.cacheBytesPerTask(),
		Pebble:     a.cfg.Pebble,
		Send:       a.coll.sendChangelog,
		// Changelog records carry the task's stream time. Only the task's
		// goroutine, or a commit holding the gate, writes to stores.
		Timestamp: func() int64 {
			if r.task != nil {
				if ts := r.task.StreamTime(); ts >= 0 {
					return ts
				}
			}
			return time.Now().UnixMilli()
		},
		Log: a.log,
		Observe: func(store, op string, d time.Duration) {
			a.metrics.storeLatency.WithLabelValues(store, op).Observe(d.Seconds())
		},
	})
	if err != nil {
		return nil, fmt.Errorf("kstreams: open stores of task %s: %w", id, err)
	}
	return m, nil
}

// cacheBytesPerTask splits the instance's cache budget over its tasks.
func (a *App) cacheBytesPerTask() int64 {
	if a.cfg.StateStoreCacheMaxBytes <= 0 {
		return 0
	}
	a.mu.Lock()
	n := int64(a.assigned)
	a.mu.Unlock()
	return a.cfg.StateStoreCacheMaxBytes / max(1, n)
}

// restore brings a task's stores up to their changelogs' ends; it stops
// early when the runner is stopped.
func (a *App) restore(r *runner) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return r.stores.Restore(ctx, a.changelogEnds, a.fetchChangelog, countingRestoreListener{a.metrics, a.cfg.RestoreListener})
}

func (a *App) changelogEnds(tps []state.TopicPartition) (map[state.TopicPartition]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := map[string]bool{}
	for _, tp := range tps {
		topics[tp.Topic] = true
	}
	var names []string
	for t := range topics {
		names = append(names, t)
	}
	// Under ExactlyOnceV2 a restore stops at the last stable offset: what
	// lies beyond may still be aborted.
	list := a.admin.ListEndOffsets
	if a.eos() {
		list = a.admin.ListCommittedOffsets
	}
	ends, err := list(ctx, names...)
	if err != nil {
		return nil, err
	}
	out := map[state.TopicPartition]int64{}
	for _, tp := range tps {
		o, ok := ends.Lookup(tp.Topic, tp.Partition)
		if !ok {
			return nil, fmt.Errorf("no end offset for %s-%d", tp.Topic, tp.Partition)
		}
		if o.Err != nil {
			return nil, fmt.Errorf("end offset of %s-%d: %w", tp.Topic, tp.Partition, o.Err)
		}
		out[tp] = o.Offset
	}
	return out, nil
}

const restoreBatch = 10_000

// fetchChangelog reads one changelog partition from offset from up to (not
// including) to, handing batches to apply. A compacted changelog may have
// gaps, and it may end with transaction markers, so progress is judged by
// the fetch position, not by counting records.
func (a *App) fetchChangelog(ctx context.Context, tp state.TopicPartition, from, to int64,
	apply func(batch []state.KeyValue, lastOffset int64) error) error {
	opts := []kgo.Opt{
		kgo.SeedBrokers(a.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tp.Topic: {tp.Partition: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.FetchIsolationLevel(a.isolation()),
	}
	opts = append(opts, a.cfg.ClientOptions...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	// Fetching and writing overlap: one goroutine polls while this one
	// writes the previous batch into the store.
	type fetched struct {
		batch []state.KeyValue
		last  int64
	}
	batches := make(chan fetched, 2)
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	fetchErr := make(chan error, 1)
	go func() {
		defer close(batches)
		next := from
		for next < to {
			// A poll that finds nothing for a while means the rest below
			// the end offset is transaction markers or compacted away.
			pollCtx, cancel := context.WithTimeout(fetchCtx, 2*time.Second)
			fetches := cl.PollRecords(pollCtx, restoreBatch)
			timedOut := pollCtx.Err() != nil
			cancel()
			if err := fetchCtx.Err(); err != nil {
				fetchErr <- err
				return
			}
			fetches.EachError(func(_ string, _ int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					a.log.Warn("changelog fetch error; retrying", "topic", tp.Topic, "partition", tp.Partition, "err", err)
				}
			})
			f := fetched{batch: make([]state.KeyValue, 0, fetches.NumRecords()), last: next - 1}
			fetches.EachRecord(func(rec *kgo.Record) {
				if rec.Offset >= to {
					return
				}
				f.batch = append(f.batch, state.KeyValue{Key: rec.Key, Value: rec.Value})
				f.last = rec.Offset
			})
			if len(f.batch) > 0 {
				select {
				case batches <- f:
				case <-fetchCtx.Done():
					fetchErr <- fetchCtx.Err()
					return
				}
			}
			if f.last >= next {
				next = f.last + 1
			} else if timedOut {
				break
			}
		}
		fetchErr <- nil
	}()
	for f := range batches {
		if err := apply(f.batch, f.last); err != nil {
			stopFetch()
			for range batches { // let the fetcher finish
			}
			return err
		}
	}
	return <-fetchErr
}

// cleanupLoop removes task directories this instance no longer owns once
// StateCleanupDelay has passed.
func (a *App) cleanupLoop(ctx context.Context) {
	every := a.cfg.StateCleanupDelay / 2
	if every > time.Minute {
		every = time.Minute
	}
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Hold off task starts while deleting, so a task coming back cannot
		// open its directory as it is being removed.
		a.cleanMu.Lock()
		owned := map[string]bool{}
		a.mu.Lock()
		for id := range a.runners {
			owned[id.String()] = true
		}
		for id := range a.standbys {
			owned[id.String()] = true
		}
		a.mu.Unlock()
		removed, err := a.stateDir.CleanUnowned(owned, a.cfg.StateCleanupDelay)
		a.cleanMu.Unlock()
		if err != nil {
			a.log.Warn("state cleanup", "err", err)
		}
		for _, name := range removed {
			a.log.Info("removed state of a task no longer owned", "task", name)
		}
	}
}
