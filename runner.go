package kstreams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/statemgr"
	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
)

// runner is the goroutine that owns one task. The poll loop hands it
// fetched records through its inbox; it touches the task only while it
// holds the app's gate shared.
type runner struct {
	app *App
	id  task.ID
	st  *topology.Subtopology
	tps []task.TopicPartition
	log *slog.Logger

	// stores is nil for a stateless task.
	stores *statemgr.Manager
	// task is built by the runner goroutine once its stores are restored;
	// until then it is nil and commits skip the runner. It is set and read
	// under the app's gate.
	task *task.Task

	inboxMu sync.Mutex
	inbox   [][]*kgo.Record // fetched runs, handed over without copying
	spare   [][]*kgo.Record // the previous inbox, reused

	// queued counts records per input partition handed over but not yet
	// processed; paused marks partitions the poll loop paused for it.
	queued map[task.TopicPartition]*atomic.Int64
	// before and taken are turn's scratch maps, kept to spare allocations.
	before, taken map[task.TopicPartition]int
	paused        map[task.TopicPartition]*atomic.Bool

	// standby runners never get input: they keep the stores caught up
	// with the changelogs so a failover restores only the tail.
	standby bool
	lag     atomic.Int64 // standby: changelog records behind at the last catch-up

	// dirty is set once the task processed something the open transaction
	// holds (ExactlyOnceV2): closing it then must not checkpoint.
	dirty atomic.Bool
	// procLatency observes the task's per-record processing time.
	procLatency prometheus.Observer

	// started is set once the task is restored and built.
	started atomic.Bool
	// restorePaused: its partitions are paused until its stores are
	// restored (ExactlyOnceV2).
	restorePaused atomic.Bool

	// queryable is true while interactive queries may read the stores:
	// from the end of the restore until the stores are closed. Queries
	// hold queryMu shared while they read, so closing waits for them.
	queryMu   sync.RWMutex
	queryable bool

	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	stopped atomic.Bool
}

func (a *App) newRunner(id task.ID, st *topology.Subtopology) (*runner, error) {
	r := &runner{
		app:    a,
		id:     id,
		st:     st,
		log:    a.log.With("task", id.String()),
		queued: map[task.TopicPartition]*atomic.Int64{},
		paused: map[task.TopicPartition]*atomic.Bool{},
		wake:   make(chan struct{}, 1),

		procLatency: a.metrics.processLatency.WithLabelValues(id.String()),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	for _, topic := range st.SourceTopics {
		tp := task.TopicPartition{Topic: topic, Partition: id.Partition}
		r.tps = append(r.tps, tp)
		r.queued[tp] = new(atomic.Int64)
		r.paused[tp] = new(atomic.Bool)
	}
	if len(st.StoreSpecs) > 0 {
		m, err := a.openStores(r)
		if err != nil {
			return nil, err
		}
		r.stores = m
	}
	return r, nil
}

// start restores the task's stores and builds the task. It runs on the
// runner goroutine, so a long restore holds up only this task.
func (r *runner) start() error {
	var stores map[string]any
	if r.stores != nil {
		if err := r.app.restore(r); err != nil {
			return err
		}
		stores = r.stores.Stores()
	}
	t, err := task.New(task.Config{
		ID:                     r.id,
		ApplicationID:          r.app.cfg.ApplicationID,
		Subtopology:            r.st,
		Collector:              r.app.coll,
		OnDeserializationError: r.app.deserializationHandler(r.log),
		Stores:                 r.app.withGlobalStores(stores),
		OnPunctuate:            func(d time.Duration) { r.app.metrics.punctuate.Observe(d.Seconds()) },
		OnDropped: func(reason string) {
			r.app.metrics.dropped.WithLabelValues(reason).Inc()
			r.log.Debug("dropped a record", "reason", reason)
		},
	})
	if err != nil {
		return err
	}
	r.app.gate.RLock()
	r.task = t
	r.app.gate.RUnlock()
	if r.stores != nil {
		r.queryMu.Lock()
		r.queryable = true
		r.queryMu.Unlock()
	}
	r.started.Store(true)
	if r.restorePaused.Swap(false) {
		// Its partitions were paused while it restored (see startRunner).
		resume := map[string][]int32{}
		for _, tp := range r.tps {
			resume[tp.Topic] = append(resume[tp.Topic], tp.Partition)
		}
		r.app.client.ResumeFetchPartitions(resume)
	}
	return nil
}

// endQueries makes the stores unreadable for interactive queries and
// waits for the queries reading them; stores close after it.
func (r *runner) endQueries() {
	r.queryMu.Lock()
	r.queryable = false
	r.queryMu.Unlock()
}

// push hands fetched records of one partition to the runner.
func (r *runner) push(tp task.TopicPartition, recs []*kgo.Record) {
	r.inboxMu.Lock()
	r.inbox = append(r.inbox, recs)
	r.inboxMu.Unlock()
	r.queued[tp].Add(int64(len(recs)))
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

const batchPerTurn = 500

func (r *runner) run() {
	defer close(r.done)
	if r.standby {
		r.runStandby()
		return
	}
	if err := r.start(); err != nil {
		select {
		case <-r.stop: // stopped while restoring: not a failure
		default:
			r.app.fail(fmt.Errorf("kstreams: start task %s: %w", r.id, err))
		}
		return
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		more, err := r.turn()
		if err != nil {
			r.app.fail(err)
			return
		}
		r.resumeDrained()
		select { // tell a poll loop held by back-pressure to look again
		case r.app.room <- struct{}{}:
		default:
		}
		if more {
			select {
			case <-r.stop:
				return
			default:
			}
			continue
		}
		wait := time.Hour
		r.app.gate.RLock()
		if next, ok := r.task.NextWallClockPunctuation(); ok {
			wait = time.Until(time.UnixMilli(next))
		}
		r.app.gate.RUnlock()
		if wait < 0 {
			wait = 0
		}
		timer.Reset(wait)
		select {
		case <-r.stop:
			return
		case <-r.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// turn moves the inbox into the task and processes up to one batch.
func (r *runner) turn() (more bool, err error) {
	r.app.gate.RLock()
	defer r.app.gate.RUnlock()
	if r.stopped.Load() {
		return false, nil
	}
	// queued is adjusted by what this turn took in and processed, never
	// overwritten: push may add to it concurrently, and a count it added
	// and an overwrite erased would let an exactly-once commit's drain
	// pass while records wait in the inbox (they would then be processed
	// while the transaction ends, outside it).
	if r.before == nil {
		r.before, r.taken = map[task.TopicPartition]int{}, map[task.TopicPartition]int{}
	}
	before, taken := r.before, r.taken
	clear(taken)
	for tp := range r.queued {
		before[tp] = r.task.Buffered(tp)
	}
	r.inboxMu.Lock()
	in := r.inbox
	r.inbox = r.spare[:0]
	r.inboxMu.Unlock()
	for i, recs := range in {
		if len(recs) > 0 { // a fetch's records are all of one partition
			taken[task.TopicPartition{Topic: recs[0].Topic, Partition: recs[0].Partition}] += len(recs)
		}
		if err := r.task.Add(recs...); err != nil {
			return false, err
		}
		in[i] = nil
	}
	r.spare = in
	processed := 0
	began := time.Now()
	for ; processed < batchPerTurn; processed++ {
		ok, err := r.task.Process()
		if err != nil {
			r.app.stats.Processed.Add(int64(processed))
			return false, err
		}
		if !ok {
			break
		}
	}
	r.app.stats.Processed.Add(int64(processed))
	if processed > 0 {
		r.dirty.Store(true)
		r.procLatency.Observe(time.Since(began).Seconds() / float64(processed))
	}
	for tp, q := range r.queued {
		q.Add(int64(r.task.Buffered(tp) - before[tp] - taken[tp]))
	}
	if !r.app.txnEnding.Load() {
		if err := r.task.PunctuateWallClock(); err != nil {
			return false, err
		}
	}
	return r.task.BufferedTotal() > 0, nil
}

// resumeDrained resumes partitions this runner's backlog paused, once they
// are down to half the bound.
func (r *runner) resumeDrained() {
	low := int64(r.app.cfg.MaxBufferedRecords / 2)
	var resume map[string][]int32
	for tp, p := range r.paused {
		if p.Load() && r.queued[tp].Load() <= low {
			if p.CompareAndSwap(true, false) {
				if resume == nil {
					resume = map[string][]int32{}
				}
				resume[tp.Topic] = append(resume[tp.Topic], tp.Partition)
				r.app.stats.PausedSnapshot.Add(-1)
			}
		}
	}
	if resume != nil {
		r.app.client.ResumeFetchPartitions(resume)
	}
}

// deserializationHandler turns the configured policy into the task's handler.
func (a *App) deserializationHandler(log *slog.Logger) task.DeserializationHandler {
	return a.deserializationHandlerSending(log, func(topic string, key, value []byte, headers []topology.Header, ts int64) error {
		return a.coll.Send(topic, -1, key, value, headers, ts)
	})
}

// deserializationHandlerSending is deserializationHandler sending dead
// letters through send.
func (a *App) deserializationHandlerSending(log *slog.Logger, send func(topic string, key, value []byte, headers []topology.Header, ts int64) error) task.DeserializationHandler {
	switch a.cfg.OnDeserializationError {
	case LogAndContinue:
		return func(e *task.DeserializationError) error {
			a.stats.Skipped.Add(1)
			a.metrics.dropped.WithLabelValues("deserialization").Inc()
			log.Warn("skipping record that failed to deserialize", "topic", e.Record.Topic,
				"partition", e.Record.Partition, "offset", e.Record.Offset, "err", e.Err)
			return nil
		}
	case DeadLetterQueue:
		return func(e *task.DeserializationError) error {
			rec := e.Record
			headers := make([]topology.Header, 0, len(rec.Headers)+6)
			for _, h := range rec.Headers {
				headers = append(headers, topology.Header{Key: h.Key, Value: h.Value})
			}
			// Header names follow Kafka Streams' dead-letter queue (KIP-1034).
			headers = append(headers,
				topology.Header{Key: "__streams.errors.topic", Value: []byte(rec.Topic)},
				topology.Header{Key: "__streams.errors.partition", Value: []byte(itoa(int64(rec.Partition)))},
				topology.Header{Key: "__streams.errors.offset", Value: []byte(itoa(rec.Offset))},
				topology.Header{Key: "__streams.errors.exception", Value: []byte("DeserializationException")},
				topology.Header{Key: "__streams.errors.message", Value: []byte(e.Error())},
			)
			if err := send(a.cfg.DeadLetterTopic, rec.Key, rec.Value, headers, rec.Timestamp.UnixMilli()); err != nil {
				return fmt.Errorf("dead-letter %s-%d@%d to %s: %w", rec.Topic, rec.Partition, rec.Offset, a.cfg.DeadLetterTopic, err)
			}
			a.stats.DeadLettered.Add(1)
			log.Warn("sent record that failed to deserialize to the dead-letter topic", "topic", rec.Topic,
				"partition", rec.Partition, "offset", rec.Offset, "dead_letter_topic", a.cfg.DeadLetterTopic, "err", e.Err)
			return nil
		}
	}
	return task.FailOnDeserializationError
}

// pollLoop fetches and hands records to their tasks until ctx ends.
func (a *App) pollLoop(ctx context.Context) error {
	for {
		if err := a.waitForRoom(ctx); err != nil {
			return nil
		}
		fetches := a.client.PollRecords(ctx, 10_000)
		if ctx.Err() != nil {
			a.client.AllowRebalance()
			return nil
		}
		if fetches.IsClientClosed() {
			return nil
		}
		a.dispatch(fetches)
		a.client.AllowRebalance()
	}
}

// dispatch hands fetched records to their tasks' runners.
func (a *App) dispatch(fetches kgo.Fetches) {
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		// franz-go retries retriable errors itself; what reaches us is
		// logged, and a lost broker keeps being retried by the client.
		a.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
	})
	if n := fetches.NumRecords(); n > 0 {
		a.metrics.polls.Inc()
		a.metrics.polled.Add(float64(n))
	}
	a.mu.Lock()
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 {
			return
		}
		last := fp.Records[len(fp.Records)-1].Offset
		a.metrics.consumerLag.WithLabelValues(fp.Topic, strconv.Itoa(int(fp.Partition))).Set(float64(max(0, fp.HighWatermark-last-1)))
		tp := task.TopicPartition{Topic: fp.Topic, Partition: fp.Partition}
		if r, ok := a.byTP[tp]; ok {
			r.push(tp, fp.Records)
		} // else revoked meanwhile: the new owner reads from the committed offset
	})
	a.mu.Unlock()
}

// waitForRoom is the back-pressure step before each poll. While some
// partition's backlog is at MaxBufferedRecords, not polling is the cheapest
// brake: franz-go then stops fetching on its own, and nothing fetched is
// thrown away. But a full partition must not starve the others, so once
// the wait passes maxPollHold (one task is slow) the full partitions are
// paused instead and polling goes on for the rest. Pausing discards the
// partition's fetch in flight, which is why it is the second choice: in the
// stateless benchmark, pausing at once cost half the throughput.
const maxPollHold = 100 * time.Millisecond

func (a *App) waitForRoom(ctx context.Context) error {
	bound := int64(a.cfg.MaxBufferedRecords)
	started := time.Now()
	var hold *time.Timer
	for i := 0; ; i++ {
		if i == 1 {
			a.stats.Holds.Add(1)
		}
		var full []*runner
		var fullTPs []task.TopicPartition
		a.mu.Lock()
		for tp, r := range a.byTP {
			if r.paused[tp].Load() {
				continue
			}
			if r.queued[tp].Load() >= bound {
				full = append(full, r)
				fullTPs = append(fullTPs, tp)
			}
		}
		a.mu.Unlock()
		if len(full) == 0 {
			return nil
		}
		if time.Since(started) >= maxPollHold {
			pause := map[string][]int32{}
			for i, tp := range fullTPs {
				if full[i].paused[tp].CompareAndSwap(false, true) {
					pause[tp.Topic] = append(pause[tp.Topic], tp.Partition)
					a.stats.PausedSnapshot.Add(1)
				}
			}
			a.client.PauseFetchPartitions(pause)
			a.stats.Pauses.Add(int64(len(fullTPs)))
			return nil
		}
		if hold == nil {
			hold = time.NewTimer(maxPollHold)
			defer hold.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.room:
		case <-hold.C:
		}
	}
}

// runStandby catches the stores up with their changelogs every second
// until stopped, checkpointing after each pass.
func (r *runner) runStandby() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	every := min(time.Second, r.app.cfg.CommitInterval)
	lastLog := time.Time{}
	for {
		lag, err := r.stores.CatchUp(ctx, r.app.changelogEnds, r.app.fetchChangelog)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.log.Warn("standby catch-up failed; retrying", "err", err)
		} else {
			r.lag.Store(lag)
			r.app.metrics.standbyLag.WithLabelValues(r.id.String()).Set(float64(lag))
			if time.Since(lastLog) >= 10*time.Second {
				lastLog = time.Now()
				r.log.Info("standby task", "lag", lag)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
