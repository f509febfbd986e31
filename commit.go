package kstreams

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kstreams-go/kstreams/internal/assign"
	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
)

// commit makes the processed input offsets of the given runners (all when
// nil) durable: with every task loop held at the gate, it reads the
// positions, waits until every record produced so far is acknowledged, and
// only then commits the offsets. A record is therefore never committed
// before its outputs are in Kafka.
func (a *App) commit(ctx context.Context, only []*runner) error {
	start := time.Now()
	a.gate.Lock()
	defer a.gate.Unlock()
	runners := only
	if runners == nil {
		runners = a.allRunners()
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	pending := map[task.TopicPartition]int64{}
	// Tasks still restoring have nothing processed and nothing to flush.
	if err := flushTasks(runners); err != nil {
		return fmt.Errorf("kstreams: commit: %w", err)
	}
	for _, r := range runners {
		if r.task == nil {
			continue
		}
		for tp, off := range r.task.Positions() {
			a.mu.Lock()
			last, seen := a.committed[tp]
			a.mu.Unlock()
			if seen && last == off {
				continue
			}
			if offsets[tp.Topic] == nil {
				offsets[tp.Topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
			pending[tp] = off
		}
	}
	if err := a.client.Flush(ctx); err != nil {
		return fmt.Errorf("kstreams: commit: waiting for produced records: %w", err)
	}
	if err := a.coll.err(); err != nil {
		return fmt.Errorf("kstreams: commit: a produced record failed, offsets not committed: %w", err)
	}
	// Every changelog record is acknowledged: make the stores durable and
	// checkpoint them before the input offsets move on.
	for _, r := range runners {
		if r.task != nil && r.stores != nil {
			if err := r.stores.Commit(); err != nil {
				return fmt.Errorf("kstreams: commit: %w", err)
			}
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	var commitErr error
	a.client.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && commitErr == nil {
					commitErr = fmt.Errorf("%s-%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if commitErr != nil {
		// A rebalance in progress makes the commit fail; the records will
		// be replayed by the next owner, which at-least-once allows.
		if errors.Is(commitErr, kerr.RebalanceInProgress) || errors.Is(commitErr, kerr.IllegalGeneration) ||
			errors.Is(commitErr, kerr.UnknownMemberID) || errors.Is(commitErr, context.Canceled) {
			a.log.Warn("commit skipped; records since the last commit will be replayed", "err", commitErr)
			return nil
		}
		return fmt.Errorf("kstreams: commit offsets: %w", commitErr)
	}
	a.mu.Lock()
	for tp, off := range pending {
		a.committed[tp] = off
	}
	a.mu.Unlock()
	a.stats.Commits.Add(1)
	a.metrics.commitLatency.Observe(time.Since(start).Seconds())
	a.log.Debug("committed", "partitions", len(pending), "took", time.Since(start))
	return nil
}

// flushTasks flushes the tasks' caches (writing them through to their
// stores, changelogs and downstream) in parallel. The caller holds the
// gate exclusively, so no task loop runs; the tasks share nothing but the
// producer, which is safe for concurrent use.
func flushTasks(runners []*runner) error {
	var wg sync.WaitGroup
	errs := make([]error, len(runners))
	for i, r := range runners {
		if r.task == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.task.Flush()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (a *App) allRunners() []*runner {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*runner, 0, len(a.runners))
	for _, r := range a.runners {
		out = append(out, r)
	}
	return out
}

// stopRunners stops task loops, waits for them, closes their tasks and
// forgets them. Closing happens under the gate, with the runners taken out
// of the app's maps at the same time, so a commit running concurrently
// (the interval's, or the one before leaving the group) either sees a task
// whole or not at all, never one whose stores are closing.
func (a *App) stopRunners(rs []*runner) {
	for _, r := range rs {
		if r.stopped.CompareAndSwap(false, true) {
			close(r.stop)
		}
	}
	for _, r := range rs {
		<-r.done
	}
	a.gate.Lock()
	a.mu.Lock()
	for _, r := range rs {
		if a.runners[r.id] == r {
			delete(a.runners, r.id)
		}
		for _, tp := range r.tps {
			if a.byTP[tp] == r {
				delete(a.byTP, tp)
				delete(a.committed, tp)
				a.metrics.consumerLag.DeleteLabelValues(tp.Topic, itoa(int64(tp.Partition)))
			}
		}
	}
	a.mu.Unlock()
	for _, r := range rs {
		r.endQueries()
		if r.task != nil {
			if err := r.task.Close(); err != nil {
				a.log.Warn("closing task", "task", r.id.String(), "err", err)
			}
		}
		if r.stores != nil {
			if a.eos() {
				a.closeStoresEOS(r)
			}
			if err := r.stores.Close(); err != nil {
				a.log.Warn("closing stores", "task", r.id.String(), "err", err)
			}
			if a.stateDir != nil {
				a.stateDir.Release(r.id.String())
			}
		}
	}
	a.gate.Unlock()
	// Pauses outlive assignments in franz-go: resume what these tasks
	// paused, or a partition coming back later would never be fetched.
	resume := map[string][]int32{}
	for _, r := range rs {
		if r.restorePaused.Swap(false) {
			for _, tp := range r.tps {
				resume[tp.Topic] = append(resume[tp.Topic], tp.Partition)
			}
		}
		for tp, p := range r.paused {
			if p.Swap(false) {
				resume[tp.Topic] = append(resume[tp.Topic], tp.Partition)
				a.stats.PausedSnapshot.Add(-1)
			}
		}
	}
	if len(resume) > 0 {
		a.client.ResumeFetchPartitions(resume)
	}
}

func (a *App) runnersFor(parts map[string][]int32) []*runner {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[*runner]bool{}
	var out []*runner
	for topic, ps := range parts {
		for _, p := range ps {
			if r, ok := a.byTP[task.TopicPartition{Topic: topic, Partition: p}]; ok && !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// onRevoked commits the revoked tasks' progress and closes them, so the
// next owner starts exactly where this one stopped.
func (a *App) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-a.clientReady
	a.rebalanceStarted()
	a.setState(Rebalancing)
	a.stats.Rebalances.Add(1)
	rs := a.runnersFor(revoked)
	// Under ExactlyOnceV2 the transaction was committed just before the
	// rebalance was let through; what a task did since is aborted with the
	// transaction, and closing it without a checkpoint rolls it back.
	if !a.aborting.Load() && !a.eos() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := a.commit(cctx, rs); err != nil {
			a.fail(err)
		}
		cancel()
	}
	a.stopRunners(rs)
	a.log.Info("partitions revoked", "tasks", taskNames(rs))
}

// onLost drops tasks whose partitions were taken away without a chance to
// commit (session timeout); their records will be replayed elsewhere.
func (a *App) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-a.clientReady
	a.rebalanceStarted()
	a.setState(Rebalancing)
	rs := a.runnersFor(lost)
	a.stopRunners(rs)
	a.log.Warn("partitions lost", "tasks", taskNames(rs))
}

// onAssigned creates a task loop per assigned task.
func (a *App) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	<-a.clientReady
	ids := map[task.ID]*topology.Subtopology{}
	for topic, ps := range assigned {
		st, ok := a.compiled.SubtopologyFor(topic)
		if !ok {
			continue
		}
		for _, p := range ps {
			ids[task.ID{Subtopology: st.ID, Partition: p}] = st
		}
	}
	var started []string
	a.mu.Lock()
	a.assigned = len(ids) + len(a.runners)
	a.mu.Unlock()
	a.cleanMu.Lock()
	defer a.cleanMu.Unlock()
	// Standbys first: one that became active here must close its stores
	// before the active task opens the same directory.
	wantStandby := map[task.ID]*topology.Subtopology{}
	if asg, ok := a.balancer.LatestAssignment(); ok {
		for _, t := range asg.Standby {
			id := task.ID{Subtopology: t.Subtopology, Partition: t.Partition}
			if st := a.subtopology(id.Subtopology); st != nil && len(st.StoreSpecs) > 0 {
				wantStandby[id] = st
			}
		}
	}
	var dropStandby []*runner
	a.mu.Lock()
	for id, r := range a.standbys {
		if _, keep := wantStandby[id]; !keep || ids[id] != nil {
			dropStandby = append(dropStandby, r)
		}
	}
	a.mu.Unlock()
	a.stopStandbys(dropStandby)
	var starting []task.ID
	for id := range ids {
		a.mu.Lock()
		_, exists := a.runners[id]
		a.mu.Unlock()
		if !exists {
			starting = append(starting, id)
		}
	}
	// Opening a task's stores (its Pebble: files created and synced) takes
	// tens of milliseconds: the tasks open theirs at once, so that the last
	// does not start restoring long after the first.
	runners := make([]*runner, len(starting))
	errs := make([]error, len(starting))
	var opening sync.WaitGroup
	for i, id := range starting {
		opening.Go(func() { runners[i], errs[i] = a.newRunner(id, ids[id]) })
	}
	opening.Wait()
	for i, id := range starting {
		if errs[i] == nil {
			a.runRunner(runners[i])
			started = append(started, id.String())
		}
	}
	for i, id := range starting {
		if errs[i] != nil {
			a.fail(fmt.Errorf("kstreams: start task %s: %w", id, errs[i]))
			return
		}
	}
	var standbys []string
	for id, st := range wantStandby {
		a.mu.Lock()
		_, exists := a.standbys[id]
		a.mu.Unlock()
		if exists || ids[id] != nil {
			continue
		}
		r, err := a.newRunner(id, st)
		if err != nil {
			a.fail(fmt.Errorf("kstreams: start standby task %s: %w", id, err))
			return
		}
		r.standby = true
		a.mu.Lock()
		a.standbys[id] = r
		a.mu.Unlock()
		go r.run()
		standbys = append(standbys, id.String())
	}
	a.mu.Lock()
	a.prevTasks = a.prevTasks[:0]
	for id := range a.runners {
		a.prevTasks = append(a.prevTasks, assign.Task{Subtopology: id.Subtopology, Partition: id.Partition})
	}
	a.mu.Unlock()
	sort.Strings(started)
	sort.Strings(standbys)
	a.log.Info("tasks assigned", "tasks", started, "standby_tasks", standbys)
	a.mu.Lock()
	if !a.rebalanceStart.IsZero() {
		a.metrics.rebalanceLatency.Observe(time.Since(a.rebalanceStart).Seconds())
		a.rebalanceStart = time.Time{}
	}
	a.mu.Unlock()
	a.setState(Running)
}

// startRunner opens a task's stores and starts its loop. Under
// ExactlyOnceV2 a stateful task's partitions stay paused until its stores
// are restored: records polled for it before then could not be processed
// before the transaction commits their offsets.
func (a *App) startRunner(id task.ID, st *topology.Subtopology) error {
	r, err := a.newRunner(id, st)
	if err != nil {
		return err
	}
	a.runRunner(r)
	return nil
}

// runRunner registers a runner whose stores are open and starts its loop.
func (a *App) runRunner(r *runner) {
	id := r.id
	if a.eos() && r.stores != nil {
		r.restorePaused.Store(true)
		pause := map[string][]int32{}
		for _, tp := range r.tps {
			pause[tp.Topic] = append(pause[tp.Topic], tp.Partition)
		}
		a.client.PauseFetchPartitions(pause)
	}
	a.mu.Lock()
	a.runners[id] = r
	for _, tp := range r.tps {
		a.byTP[tp] = r
	}
	a.mu.Unlock()
	go r.run()
}

// rebalanceStarted notes when a rebalance began, for its duration metric.
func (a *App) rebalanceStarted() {
	a.mu.Lock()
	if a.rebalanceStart.IsZero() {
		a.rebalanceStart = time.Now()
	}
	a.mu.Unlock()
}

func taskNames(rs []*runner) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.id.String()
	}
	sort.Strings(out)
	return out
}

func (a *App) subtopology(id int) *topology.Subtopology {
	for _, st := range a.compiled.Subtopologies {
		if st.ID == id {
			return st
		}
	}
	return nil
}

// stopStandbys stops standby task loops and closes their stores (their
// last catch-up left a checkpoint behind).
func (a *App) stopStandbys(rs []*runner) {
	for _, r := range rs {
		if r.stopped.CompareAndSwap(false, true) {
			close(r.stop)
		}
	}
	for _, r := range rs {
		<-r.done
		r.endQueries()
		if err := r.stores.Close(); err != nil {
			a.log.Warn("closing standby stores", "task", r.id.String(), "err", err)
		}
		a.stateDir.Release(r.id.String())
	}
	a.mu.Lock()
	for _, r := range rs {
		if a.standbys[r.id] == r {
			delete(a.standbys, r.id)
			a.metrics.standbyLag.DeleteLabelValues(r.id.String())
		}
	}
	a.mu.Unlock()
}

func (a *App) allStandbys() []*runner {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*runner, 0, len(a.standbys))
	for _, r := range a.standbys {
		out = append(out, r)
	}
	return out
}
