package kstreams

// Exactly-once processing (ExactlyOnceV2), in the manner of Kafka Streams'
// exactly_once_v2: one transactional producer per instance (a franz-go
// GroupTransactSession), so every output, repartition and changelog record
// of a commit interval and the input offsets commit or abort together, and
// the group generation in the offset commit fences an instance that lost
// its tasks.
//
// How it differs from at-least-once here:
//
//   - The poll loop owns the commit. franz-go commits, inside the
//     transaction, the offsets of what has been polled; so at each commit
//     the loop stops polling and waits until every task has processed what
//     it was handed. Tasks whose stores are restoring have their partitions
//     paused, so nothing is polled for them until they can process it.
//   - Rebalances wait for commits: the poll loop lets a rebalance through
//     (AllowRebalance) only right after a transaction ended, so revoked
//     tasks normally have nothing uncommitted.
//   - Uncommitted state is rolled back by wiping: the stores of a task
//     hold writes of the open transaction (Pebble is written as records
//     are processed), so when a transaction aborts, or a task with
//     uncommitted work is revoked, its stores are closed without a
//     checkpoint and the next open restores them from the changelog,
//     read_committed, which holds exactly what was committed. Keeping
//     uncommitted writes out of Pebble would make aborts cheaper; aborts
//     are rare, and wiping keeps one write path for both guarantees.
//   - Checkpoints are written only when a task closes cleanly (after a
//     committed transaction, on revocation or shutdown); a crash leaves
//     none, and the stores are rebuilt from the committed changelog.
//   - Every reader (the main consumer, restores, standbys) reads
//     read_committed, up to the last stable offset.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/task"
)

func (a *App) eos() bool { return a.cfg.ProcessingGuarantee == ExactlyOnceV2 }

// pollLoopEOS is pollLoop under ExactlyOnceV2: it also ends and begins the
// transactions, every CommitInterval and whenever a rebalance is waiting.
func (a *App) pollLoopEOS(ctx context.Context) error {
	// Leaving the group waits for the rebalance this loop may be holding.
	defer a.client.AllowRebalance()
	next := time.Now().Add(a.cfg.CommitInterval)
	for {
		if !time.Now().Before(next) || a.rebalanceWaiting.Load() {
			if err := a.eosCommit(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			next = time.Now().Add(a.cfg.CommitInterval)
		}
		if err := a.waitForRoom(ctx); err != nil {
			return nil
		}
		pctx, cancel := context.WithDeadline(ctx, next)
		fetches := a.client.PollRecords(pctx, 10_000)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return nil
		}
		a.dispatch(fetches)
	}
}

// eosCommit drains the tasks, then commits the transaction with the
// polled (now processed) offsets and begins the next one. An aborted
// transaction rolls every task back.
func (a *App) eosCommit(ctx context.Context) error {
	start := time.Now()
	if err := a.drain(ctx); err != nil {
		return err
	}
	a.gate.Lock()
	runners := a.allRunners()
	if err := flushTasks(runners); err != nil {
		a.gate.Unlock()
		return fmt.Errorf("kstreams: commit: %w", err)
	}
	// Nothing processed and nothing produced: keep the empty transaction
	// open. Ending it would cost a round trip for nothing (and franz-go
	// waits 500ms after a commit that carried no offsets).
	idle := a.coll.sent.Load() == a.sentAtCommit
	for _, r := range runners {
		idle = idle && !r.dirty.Load()
	}
	if idle {
		a.gate.Unlock()
		a.rebalanceWaiting.Store(false)
		a.client.AllowRebalance()
		return nil
	}
	// The gate is released before ending the transaction: a revoke or
	// lost callback may be running (franz-go holds the session's lock
	// through it, and End waits for that lock), and the callback waits for
	// task loops that need the gate. The loops have nothing to process
	// (drained, and the poll loop is here); txnEnding keeps wall-clock
	// punctuators from producing into a transaction that is ending.
	a.txnEnding.Store(true)
	a.gate.Unlock()
	endCtx, cancel := context.WithTimeout(ctx, time.Minute)
	committed, err := a.txn.End(endCtx, kgo.TryCommit)
	cancel()
	if err == nil && !committed {
		err = errTxnAborted
	}
	if err == nil {
		if perr := a.coll.err(); perr != nil {
			// A produce failed yet the transaction committed: cannot
			// happen with a transactional producer, whose failed
			// produce makes the commit abort; guard anyway.
			a.txnEnding.Store(false)
			return fmt.Errorf("kstreams: commit: a produced record failed: %w", perr)
		}
		for _, r := range runners {
			r.dirty.Store(false)
		}
		a.stats.Commits.Add(1)
	}
	a.sentAtCommit = a.coll.sent.Load()
	berr := a.txn.Begin()
	a.txnEnding.Store(false)
	if berr != nil {
		return fmt.Errorf("kstreams: begin transaction: %w", berr)
	}
	a.rebalanceWaiting.Store(false)
	a.client.AllowRebalance()
	switch {
	case err == nil:
		a.metrics.commitLatency.Observe(time.Since(start).Seconds())
		a.log.Debug("transaction committed", "took", time.Since(start))
		a.purgeRepartitions(ctx)
		return nil
	case errors.Is(err, errTxnAborted) || errors.Is(err, context.DeadlineExceeded):
		a.stats.Aborts.Add(1)
		a.log.Warn("transaction aborted; rolling the tasks back to the committed state", "err", err)
		a.rollBack()
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	a.stats.Aborts.Add(1)
	a.log.Warn("transaction failed; rolling the tasks back to the committed state", "err", err)
	a.rollBack()
	return nil
}

var errTxnAborted = errors.New("transaction aborted")

// drain waits until every active task has processed every record handed
// to it, so the offsets the transaction commits are exactly what the
// outputs in it come from.
func (a *App) drain(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		pending := int64(0)
		for _, r := range a.allRunners() {
			for _, q := range r.queued {
				pending += q.Load()
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kstreams: commit: %d records still unprocessed after 5 minutes", pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.room:
		case <-time.After(time.Millisecond):
		}
	}
}

// rollBack closes every task without a checkpoint and opens it again:
// the stores restore from the committed changelog, and the consumer has
// been reset to the committed offsets by the transaction session.
func (a *App) rollBack() {
	rs := a.allRunners()
	type spec struct {
		id task.ID
		r  *runner
	}
	var reopen []spec
	for _, r := range rs {
		r.dirty.Store(true) // uncommitted work: no checkpoint on close
		reopen = append(reopen, spec{r.id, r})
	}
	a.stopRunners(rs)
	a.cleanMu.Lock()
	defer a.cleanMu.Unlock()
	for _, s := range reopen {
		if err := a.startRunner(s.id, s.r.st); err != nil {
			a.fail(fmt.Errorf("kstreams: restart task %s after an abort: %w", s.id, err))
			return
		}
	}
}

// closeStoresEOS closes a stopped runner's stores under ExactlyOnceV2:
// with a checkpoint when it has nothing uncommitted, else without, so the
// next open restores it from the committed changelog.
func (a *App) closeStoresEOS(r *runner) {
	if !r.dirty.Load() && r.task != nil {
		if err := r.stores.Commit(); err != nil {
			a.log.Warn("checkpointing stores on close", "task", r.id.String(), "err", err)
		}
	} else {
		a.log.Info("closing a task with uncommitted work; its stores will restore from the changelog", "task", r.id.String())
	}
}

// isolation is the isolation level every reader of the application uses.
func (a *App) isolation() kgo.IsolationLevel {
	if a.eos() {
		return kgo.ReadCommitted()
	}
	return kgo.ReadUncommitted()
}
