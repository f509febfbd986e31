// Package kstreams runs a topology described with the kstream DSL as a Kafka
// consumer-group application: any number of copies with the same
// ApplicationID share its tasks (a sub-topology on one partition number),
// each task run by its own goroutine.
//
//	b := kstream.NewBuilder()
//	kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), "in").
//		Filter(func(k, v string) bool { return v != "" }).
//		To("out")
//	topo, _ := b.Build()
//	app, err := kstreams.New(topo, kstreams.Config{ApplicationID: "app", Brokers: brokers})
//	err = app.Run(ctx)
//
// Delivery is at-least-once: an input offset is committed only after every
// record it caused has been acknowledged by the brokers, every
// CommitInterval, when partitions are revoked and on Close.
package kstreams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/assign"
	"github.com/kstreams-go/kstreams/internal/statemgr"
	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
)

// Topology is a described topology (from kstream.Builder.Build).
type Topology = topology.Topology

// App is one running instance of an application.
type App struct {
	cfg       Config
	topo      *Topology
	log       *slog.Logger
	processID string

	state   atomic.Int32
	stateMu sync.Mutex

	compiled *topology.Compiled
	stateDir *statemgr.Dir
	client   *kgo.Client
	admin    *kadm.Client
	coll     *collector

	// gate: task loops hold it shared while they touch their task; a
	// commit holds it exclusively, so the positions it reads are stable
	// and every produce they caused is issued before it flushes.
	gate sync.RWMutex

	balancer *assign.Balancer

	// txn is the transaction session under ExactlyOnceV2 (client is its
	// client); rebalanceWaiting says a rebalance waits for the poll loop
	// to let it through, which it does after ending a transaction.
	txn              *kgo.GroupTransactSession
	rebalanceWaiting atomic.Bool
	sentAtCommit     int64 // collector's sent count at the last transaction end
	txnEnding        atomic.Bool

	rebalanceStart time.Time // guarded by mu; zero when not rebalancing

	// purge: when repartition topics were last purged, and up to where.
	lastPurge time.Time
	purged    map[task.TopicPartition]int64

	mu        sync.Mutex
	runners   map[task.ID]*runner
	standbys  map[task.ID]*runner // standby tasks: stores tailing changelogs
	byTP      map[task.TopicPartition]*runner
	prevTasks []assign.Task
	assigned  int // tasks in the latest assignment, for the cache budget
	// cleanMu keeps the state cleanup from deleting a task directory while
	// a task is being started on it.
	cleanMu   sync.Mutex
	committed map[task.TopicPartition]int64

	// clientReady is closed once client and coll are set: franz-go may run
	// the group callbacks before NewClient returns.
	clientReady chan struct{}

	// room wakes a poll loop held by back-pressure after a task loop turn.
	room chan struct{}

	fatalOnce sync.Once
	fatal     chan error

	closeOnce sync.Once
	closing   chan struct{}
	done      chan struct{}
	aborting  atomic.Bool

	stats   Stats
	metrics *metrics

	handlerOnce sync.Once
	handler     http.Handler

	// global keeps the global stores (global.go); nil without any, and
	// until they are restored.
	global atomic.Pointer[globalThread]
}

// Stats are running totals, readable while the app runs.
type Stats struct {
	Processed      atomic.Int64 // records processed
	Skipped        atomic.Int64 // records skipped by LogAndContinue
	DeadLettered   atomic.Int64 // records sent to the dead-letter topic
	Commits        atomic.Int64
	Rebalances     atomic.Int64
	PausedSnapshot atomic.Int64 // partitions paused right now (back-pressure)
	Holds          atomic.Int64 // polls held back because a partition's backlog was full
	Pauses         atomic.Int64 // partitions paused because their task fell behind
	Aborts         atomic.Int64 // transactions aborted (ExactlyOnceV2)
	GlobalRestored atomic.Int64 // records read into global stores before the group was joined
	GlobalUpdated  atomic.Int64 // records applied to global stores since
}

// New validates cfg and prepares an application; Run starts it.
func New(topo *Topology, cfg Config) (*App, error) {
	if topo == nil {
		return nil, errors.New("kstreams: New: nil topology")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	compiled, err := topology.Compile(topo, cfg.ApplicationID)
	if err != nil {
		return nil, fmt.Errorf("kstreams: %w", err)
	}
	host, _ := os.Hostname()
	a := &App{
		cfg:         cfg,
		topo:        topo,
		log:         cfg.Logger.With("app", cfg.ApplicationID),
		processID:   fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano()),
		compiled:    compiled,
		runners:     map[task.ID]*runner{},
		standbys:    map[task.ID]*runner{},
		byTP:        map[task.TopicPartition]*runner{},
		committed:   map[task.TopicPartition]int64{},
		fatal:       make(chan error, 1),
		room:        make(chan struct{}, 1),
		clientReady: make(chan struct{}),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),
	}
	// The balancer exists before Run: interactive queries read its latest
	// assignment from any goroutine.
	subOf := map[string]int{}
	stateful := map[int]bool{}
	for _, st := range a.compiled.Subtopologies {
		for _, topic := range st.SourceTopics {
			subOf[topic] = st.ID
		}
		if len(st.Changelogs) > 0 {
			stateful[st.ID] = true
		}
	}
	a.balancer = &assign.Balancer{
		Subtopologies:         subOf,
		StatefulSubtopologies: stateful,
		NumStandbyReplicas:    a.cfg.NumStandbyReplicas,
		Subscription:          a.subscription,
	}
	if a.metrics, err = newMetrics(a); err != nil {
		return nil, &ConfigError{"Registerer", err.Error()}
	}
	// Series start at zero, so a scrape before any restore sees them.
	for _, st := range compiled.Subtopologies {
		for store := range st.Changelogs {
			a.metrics.restored.WithLabelValues(store).Add(0)
		}
	}
	return a, nil
}

// State returns the current lifecycle state.
func (a *App) State() State { return State(a.state.Load()) }

func (a *App) taskCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.runners)
}

// Stats returns the app's running totals.
func (a *App) Stats() *Stats { return &a.stats }

func (a *App) setState(s State) {
	a.stateMu.Lock()
	old := State(a.state.Load())
	if old == s || old == NotRunning || old == Error || (old == PendingShutdown && s != NotRunning && s != Error) {
		a.stateMu.Unlock()
		return
	}
	a.state.Store(int32(s))
	a.stateMu.Unlock()
	a.log.Info("state change", "from", old.String(), "to", s.String())
	if a.cfg.StateListener != nil {
		a.cfg.StateListener(old, s)
	}
}

func (a *App) fail(err error) {
	a.fatalOnce.Do(func() { a.fatal <- err })
}

// Run starts the application and blocks until ctx is done, Close is called,
// or a fatal error occurs, which it returns. Offsets of processed records
// are committed before it returns, unless the error prevents it.
func (a *App) Run(ctx context.Context) (err error) {
	if State(a.state.Load()) != Created {
		return errors.New("kstreams: Run called twice")
	}
	defer close(a.done)
	defer func() {
		if err != nil {
			a.log.Error("stopped by an error", "err", err)
			a.setState(Error)
		} else {
			a.setState(NotRunning)
		}
	}()
	a.setState(Rebalancing)
	a.log.Info("starting", a.cfg.logAttrs(a.processID)...)

	a.stateDir, err = statemgr.LockDir(a.cfg.StateDir, a.cfg.ApplicationID)
	if err != nil {
		return fmt.Errorf("kstreams: config StateDir: %w", err)
	}
	defer a.stateDir.Unlock()

	if a.cfg.ServeQueries {
		stopServing, err := a.serveQueries()
		if err != nil {
			return err
		}
		defer stopServing()
	}

	adminClient, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.cfg.Brokers...)}, a.cfg.ClientOptions...)...)
	if err != nil {
		return fmt.Errorf("kstreams: admin client: %w", err)
	}
	defer adminClient.Close()
	a.admin = kadm.NewClient(adminClient)
	if err := a.prepareTopics(ctx); err != nil {
		return err
	}
	// Every task may read the global stores, so they are whole before
	// the group hands out any.
	if stopped, err := a.startGlobal(ctx); err != nil || stopped {
		return err
	}
	defer a.stopGlobal()

	opts := []kgo.Opt{
		kgo.SeedBrokers(a.cfg.Brokers...),
		kgo.ConsumerGroup(a.cfg.ApplicationID),
		kgo.ConsumeTopics(a.compiled.SourceTopics()...),
		kgo.Balancers(a.balancer),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(a.isolation()),
		kgo.OnPartitionsAssigned(a.onAssigned),
		kgo.OnPartitionsRevoked(a.onRevoked),
		kgo.OnPartitionsLost(a.onLost),
		kgo.RecordPartitioner(partitioner{}),
		kgo.ProducerLinger(5 * time.Millisecond),
		// Shorter than the Java consumer's 500ms fetch.max.wait.ms: a partition
		// resumed after back-pressure waits for the fetch in flight to return.
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		kgo.ClientID(a.cfg.ApplicationID + "-" + a.processID),
	}
	if a.eos() {
		opts = append(opts,
			kgo.TransactionalID(a.cfg.ApplicationID+"-"+a.processID),
			// As Kafka Streams under exactly-once (transaction.timeout.ms
			// 10s): a crashed instance's open transaction, which no restart
			// fences (each process has its own transactional id), holds
			// read_committed readers back only this long.
			kgo.TransactionTimeout(10*time.Second),
			kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { a.rebalanceWaiting.Store(true) }),
		)
	}
	opts = append(opts, a.cfg.ClientOptions...)
	// The collector exists before the client: the client joins the group
	// on its own goroutines, and onAssigned may start a task, which keeps
	// a.coll, before NewClient returns. A task sends nothing until the poll
	// loop below hands it records (or a punctuation falls due), so the
	// collector's client is set by then.
	a.coll = &collector{
		onFail:     func(err error) { a.fail(fmt.Errorf("kstreams: produce: %w", err)) },
		partitions: map[string]int32{},
		lookup:     a.partitionsOf,
	}
	a.coll.promiseFn = a.coll.promise
	a.coll.observeE2E = func(topic string, d time.Duration) {
		a.metrics.e2eLatency.WithLabelValues(topic).Observe(d.Seconds())
	}
	if a.eos() {
		a.txn, err = kgo.NewGroupTransactSession(opts...)
		if err == nil {
			a.client = a.txn.Client()
		}
	} else {
		a.client, err = kgo.NewClient(opts...)
	}
	if err != nil {
		return fmt.Errorf("kstreams: client: %w", err)
	}
	a.coll.client = a.client
	close(a.clientReady)

	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go a.cleanupLoop(pollCtx)
	pollDone := make(chan error, 1)
	if a.eos() {
		if err := a.txn.Begin(); err != nil {
			a.client.Close()
			return fmt.Errorf("kstreams: begin transaction: %w", err)
		}
		go func() { pollDone <- a.pollLoopEOS(pollCtx) }()
	} else {
		go func() { pollDone <- a.pollLoop(pollCtx) }()
	}

	ticker := time.NewTicker(a.cfg.CommitInterval)
	defer ticker.Stop()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-a.closing:
			break loop
		case runErr = <-a.fatal:
			break loop
		case err := <-pollDone:
			runErr = err
			pollDone = nil
			break loop
		case <-ticker.C:
			if a.eos() {
				continue // the poll loop commits
			}
			// Not Run's context: cancelling it is how callers stop the
			// app, and a commit in flight should still finish.
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := a.commit(cctx, nil)
			cancel()
			if err != nil {
				runErr = err
				break loop
			}
			a.purgeRepartitions(ctx)
		}
	}
	a.setState(PendingShutdown)
	stopPoll()
	if pollDone != nil {
		<-pollDone
	}
	if runErr == nil {
		select { // a fatal error may race with the shutdown
		case runErr = <-a.fatal:
		default:
		}
	}
	if a.aborting.Load() {
		a.stopRunners(a.allRunners())
		a.stopStandbys(a.allStandbys())
		a.client.Close()
		return runErr
	}
	// Commit what is processed, then leave the group: Close revokes the
	// partitions, and onRevoked commits and closes the tasks.
	if runErr == nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if a.eos() {
			runErr = a.eosCommit(closeCtx)
		} else {
			runErr = a.commit(closeCtx, nil)
		}
		cancel()
	}
	if runErr != nil {
		a.aborting.Store(true) // do not commit in the revoke callback after a failure
		if a.eos() {
			// Abort now rather than leave read_committed readers waiting
			// for the transaction timeout.
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := a.txn.End(actx, kgo.TryAbort); err != nil {
				a.log.Warn("aborting the open transaction", "err", err)
			}
			cancel()
		}
		// Still deliver what was produced before the failure; the offsets
		// stay uncommitted, so a restart replays from the last commit.
		a.stopRunners(a.allRunners())
		flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.client.Flush(flushCtx); err != nil {
			a.log.Warn("flushing produced records after a failure", "err", err)
		}
		cancel()
	}
	a.client.Close()
	a.stopRunners(a.allRunners())
	a.stopStandbys(a.allStandbys())
	return runErr
}

// Close stops a running app (committing what it processed) and waits for
// Run to return. It is safe to call more than once and from any goroutine.
func (a *App) Close() {
	a.closeOnce.Do(func() { close(a.closing) })
	if State(a.state.Load()) == Created {
		return
	}
	<-a.done
}

// abort stops the app as a crash would: no commit, no clean hand-over.
func (a *App) abort() {
	a.aborting.Store(true)
	a.Close()
}

func (a *App) subscription() assign.Subscription {
	sums := a.offsetSums()
	a.mu.Lock()
	defer a.mu.Unlock()
	sub := assign.Subscription{
		ProcessID:      a.processID,
		Endpoint:       a.cfg.ApplicationServer,
		PrevTasks:      append([]assign.Task(nil), a.prevTasks...),
		TaskOffsetSums: sums,
	}
	for id := range a.standbys {
		sub.StandbyTasks = append(sub.StandbyTasks, assign.Task{Subtopology: id.Subtopology, Partition: id.Partition})
	}
	return sub
}

// offsetSums reports, for every task with local state, how far its stores
// are known complete (sum of checkpointed changelog offsets), so the leader
// can give a task to the instance with the least to restore.
func (a *App) offsetSums() map[assign.Task]int64 {
	if a.stateDir == nil {
		return nil
	}
	out := map[assign.Task]int64{}
	for name, sum := range a.stateDir.OffsetSums() {
		id, err := task.ParseID(name)
		if err == nil {
			out[assign.Task{Subtopology: id.Subtopology, Partition: id.Partition}] = sum
		}
	}
	return out
}

// prepareTopics checks that source topics exist and are co-partitioned,
// then creates the internal topics with their partition counts.
func (a *App) prepareTopics(ctx context.Context) error {
	var external []string
	for _, topic := range a.compiled.SourceTopics() {
		if !a.compiled.IsInternal(topic) {
			external = append(external, topic)
		}
	}
	existing, err := a.topicPartitions(ctx, external...)
	if err != nil {
		return err
	}
	lookup := func(topic string) (int32, bool) { n, ok := existing[topic]; return n, ok }
	for _, topic := range external {
		if _, ok := existing[topic]; !ok {
			return fmt.Errorf("kstreams: source topic %q does not exist; create it first", topic)
		}
	}
	if err := a.compiled.ResolvePartitions(lookup); err != nil {
		return fmt.Errorf("kstreams: %w", err)
	}
	if _, err := a.compiled.CheckCopartitioning(lookup); err != nil {
		return fmt.Errorf("kstreams: %w", err)
	}
	for _, it := range a.compiled.InternalTopics {
		cfg := map[string]*string{}
		for k, v := range it.Config {
			cfg[k] = &v
		}
		if it.Store != "" && a.cfg.MinInSyncReplicas > 0 {
			v := strconv.Itoa(a.cfg.MinInSyncReplicas)
			cfg["min.insync.replicas"] = &v
		}
		resp, err := a.admin.CreateTopic(ctx, it.Partitions, a.cfg.ReplicationFactor, cfg, it.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kstreams: create internal topic %s (%d partitions): %w", it.Name, it.Partitions, err)
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			have, err := a.topicPartitions(ctx, it.Name)
			if err != nil {
				return err
			}
			if have[it.Name] != it.Partitions {
				return fmt.Errorf("kstreams: internal topic %s exists with %d partitions, the topology needs %d; delete it or reset the application", it.Name, have[it.Name], it.Partitions)
			}
		} else {
			a.log.Info("created internal topic", "topic", it.Name, "partitions", it.Partitions)
		}
	}
	return nil
}

// topicPartitions returns the partition count of each topic that exists,
// retrying while brokers are unreachable.
func (a *App) topicPartitions(ctx context.Context, topics ...string) (map[string]int32, error) {
	out := map[string]int32{}
	if len(topics) == 0 {
		return out, nil
	}
	var lastErr error
	for attempt := 0; attempt < 30; attempt++ {
		details, err := a.admin.ListTopics(ctx, topics...)
		if err == nil {
			for _, d := range details {
				if d.Err == nil {
					out[d.Topic] = int32(len(d.Partitions))
				}
			}
			return out, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		a.log.Warn("metadata request failed; retrying", "topics", topics, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil, fmt.Errorf("kstreams: metadata for %v: %w", topics, lastErr)
}

func (a *App) partitionsOf(topic string) (int32, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := a.topicPartitions(ctx, topic)
	if err != nil {
		return 0, false
	}
	n, ok := m[topic]
	return n, ok
}

func timeFromMillis(ms int64) time.Time { return time.UnixMilli(ms) }

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
