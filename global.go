package kstreams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/rest"
	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/state"
)

// Global stores (kstream.GlobalTable) are kept whole by every instance, as
// Kafka Streams' GlobalStreamThread keeps them. Before an instance joins
// the consumer group, Run reads every partition of every global store's
// topic, from the offsets of the global checkpoint (or the start), up to
// the end offsets it listed when it began (the last stable offsets under
// ExactlyOnceV2, which reads read_committed): so no task ever processes a
// record against a global store that misses a row the topic held before
// the instance started. Then a goroutine of the instance's own, with a
// client of its own and no group, keeps reading the topics and applying
// each record as it comes, for as long as the app runs. Tasks read the
// stores at any time, without waiting for that goroutine: a row written
// to the topic reaches each instance's store a little after it is
// produced, and a stream record processed in between sees the old row,
// as in Kafka Streams.
//
// The stores live under <StateDir>/<ApplicationID>/global/: Pebble in
// pebble/ (in memory for Materialized.InMemory), and the checkpoint file
// .checkpoint holding, per topic partition, the offset up to which the
// store is complete. A restart reads on from there rather than from the
// start. The topic is the store's changelog (no "-changelog" topic is
// made), so the store needs no write-ahead log: Pebble writes reach disk
// when the checkpoint is written (every CommitInterval once 10,000
// records have been applied since the last one, as Kafka Streams, and
// when the app stops), and a crash re-reads the topic from the last
// checkpoint, whose records are applied again in order, which ends with
// the same rows.
//
// Each record goes through the global store's source and processor nodes,
// one task per partition (Kafka Streams' GlobalStateUpdateTask):
// deserialization errors go to the configured policy. Under
// DeadLetterQueue, a bad record of a global topic is sent to the dead
// letter topic by the global client, outside any transaction.

// globalCheckpointRecords is how many records applied since the last
// checkpoint make the next one due, as Kafka Streams'
// OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT.
const globalCheckpointRecords = 10_000

// globalIdlePoll is how long a restore waits for a fetch before it takes
// the partitions still below their end offsets as complete: what is left
// below the end is compacted away (transaction markers are read).
const globalIdlePoll = 2 * time.Second

// globalThread keeps the global stores of one instance.
type globalThread struct {
	a      *App
	log    *slog.Logger
	dir    string // <StateDir>/<ApplicationID>/global
	db     *state.PebbleDB
	stores map[string]state.KeyValueStore // by name; the updaters write them
	// readOnly is what tasks get: the stores, refusing writes.
	readOnly map[string]any
	parts    map[task.TopicPartition]*globalPartition
	client   *kgo.Client

	sinceCheckpoint int64
	lastCheckpoint  time.Time

	cancel context.CancelFunc
	done   chan struct{} // closed when run returns; nil before it starts

	// Interactive queries hold queryMu shared while they read a store;
	// closed is set, under it held exclusively, before the stores close.
	queryMu sync.RWMutex
	closed  bool
}

// globalPartition is one partition of a global store's topic.
type globalPartition struct {
	store      string
	task       *task.Task // runs the store's source and processor nodes
	next       int64      // the next offset to apply
	end        int64      // the end offset when the restore began
	persistent bool       // on Pebble, so in the checkpoint
}

func (g *globalThread) checkpointPath() string { return filepath.Join(g.dir, ".checkpoint") }

// startGlobal restores the global stores up to the current end of their
// topics and starts keeping them up to date. It returns once the stores
// are restored, or with stopped set when ctx ended or Close was called
// first.
func (a *App) startGlobal(ctx context.Context) (stopped bool, err error) {
	if len(a.compiled.GlobalStores) == 0 {
		return false, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-a.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	g := &globalThread{
		a:        a,
		log:      a.log.With("thread", "global"),
		dir:      filepath.Join(a.stateDir.Root(), "global"),
		stores:   map[string]state.KeyValueStore{},
		readOnly: map[string]any{},
		parts:    map[task.TopicPartition]*globalPartition{},
	}
	if err := g.open(ctx); err != nil {
		g.close()
		if ctx.Err() != nil {
			return true, nil
		}
		return false, err
	}
	if err := g.restore(ctx); err != nil {
		g.close()
		if ctx.Err() != nil {
			return true, nil
		}
		return false, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	g.cancel, g.done = stop, make(chan struct{})
	go g.run(runCtx)
	a.global.Store(g)
	return false, nil
}

// stopGlobal stops keeping the global stores, checkpoints and closes
// them. Run calls it after the tasks, which read them, are closed.
func (a *App) stopGlobal() {
	g := a.global.Load()
	if g == nil {
		return
	}
	g.cancel()
	<-g.done
	if err := g.checkpoint(); err != nil {
		g.log.Warn("checkpointing the global stores", "err", err)
	}
	// Queries reading the stores finish first; later ones are told the
	// app is not running.
	g.queryMu.Lock()
	g.closed = true
	g.queryMu.Unlock()
	g.close()
}

// withGlobalStores adds the global stores, read-only, to a task's stores;
// its processors see those they are connected to.
func (a *App) withGlobalStores(stores map[string]any) map[string]any {
	g := a.global.Load()
	if g == nil {
		return stores
	}
	out := maps.Clone(g.readOnly)
	maps.Copy(out, stores)
	return out
}

// open opens the stores, works out where each partition is read from, and
// makes the update tasks and the client.
func (g *globalThread) open(ctx context.Context) error {
	a := g.a
	topics := a.compiled.GlobalTopics()
	counts, err := a.topicPartitions(ctx, topics...)
	if err != nil {
		return err
	}
	for _, topic := range topics {
		if _, ok := counts[topic]; !ok {
			return fmt.Errorf("kstreams: global table topic %q does not exist; create it first", topic)
		}
	}
	starts, ends, err := g.offsetBounds(ctx, topics)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return fmt.Errorf("kstreams: global state directory: %w", err)
	}
	cp, err := state.ReadCheckpoint(g.checkpointPath())
	if err != nil {
		g.log.Warn("unreadable global checkpoint; restoring the global stores in full", "err", err)
		cp = map[state.TopicPartition]int64{}
	}
	if err := g.openPebble(&cp); err != nil {
		return err
	}

	from := map[string]map[int32]kgo.Offset{}
	for _, gs := range a.compiled.GlobalStores {
		name, topic, n := gs.Store.Name, gs.Topic, counts[gs.Topic]
		var store state.KeyValueStore
		if gs.Store.InMemory {
			store = state.NewInMemory(name)
		} else {
			store = g.db.Store(name)
		}
		g.stores[name] = store
		g.readOnly[name] = state.ReadOnly(store)
		// A checkpoint is trusted only whole and within the log: a
		// partition without one, or one the log no longer holds (the
		// topic was recreated, or retention went past it), means the
		// store may hold rows the topic does not, so it starts empty.
		trusted := !gs.Store.InMemory
		for p := range n {
			tp := state.TopicPartition{Topic: topic, Partition: p}
			off, ok := cp[tp]
			if !ok || off < starts[tp] || off > ends[tp] {
				trusted = false
			}
		}
		if !trusted && !gs.Store.InMemory {
			if err := g.db.DropStore(name); err != nil {
				return fmt.Errorf("kstreams: clear global store %s: %w", name, err)
			}
		}
		from[topic] = map[int32]kgo.Offset{}
		for p := range n {
			tp := state.TopicPartition{Topic: topic, Partition: p}
			next := starts[tp]
			if trusted {
				next = cp[tp]
			}
			t, err := task.New(task.Config{
				ID:                     task.ID{Subtopology: -1, Partition: p},
				ApplicationID:          a.cfg.ApplicationID,
				Subtopology:            gs.UpdateSubtopology(),
				OnDeserializationError: a.deserializationHandlerSending(g.log, g.sendDeadLetter),
				Stores:                 map[string]any{name: store},
				OnDropped:              func(reason string) { a.metrics.dropped.WithLabelValues(reason).Inc() },
			})
			if err != nil {
				return fmt.Errorf("kstreams: global store %s: %w", name, err)
			}
			g.parts[task.TopicPartition{Topic: topic, Partition: p}] = &globalPartition{
				store: name, task: t, next: next, end: ends[tp], persistent: !gs.Store.InMemory,
			}
			from[topic][p] = kgo.NewOffset().At(next)
		}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(a.cfg.Brokers...),
		kgo.ConsumePartitions(from),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(a.isolation()),
		// Transaction markers count as read, so a restore knows it is
		// past one at the end of a partition.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.RecordPartitioner(partitioner{}), // dead letters, as the tasks send them
		kgo.ClientID(a.cfg.ApplicationID + "-" + a.processID + "-global"),
	}
	g.client, err = kgo.NewClient(append(opts, a.cfg.ClientOptions...)...)
	if err != nil {
		return fmt.Errorf("kstreams: global client: %w", err)
	}
	return nil
}

// offsetBounds lists the start and end offsets of every partition of
// topics; under ExactlyOnceV2 the ends are the last stable offsets, past
// which records may yet be aborted.
func (g *globalThread) offsetBounds(ctx context.Context, topics []string) (starts, ends map[state.TopicPartition]int64, err error) {
	listEnds := g.a.admin.ListEndOffsets
	if g.a.eos() {
		listEnds = g.a.admin.ListCommittedOffsets
	}
	toMap := func(what string, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[state.TopicPartition]int64, error) {
		listed, err := list(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("kstreams: list %s offsets of global topics %v: %w", what, topics, err)
		}
		out := map[state.TopicPartition]int64{}
		var errs []error
		listed.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				errs = append(errs, fmt.Errorf("%s-%d: %w", o.Topic, o.Partition, o.Err))
				return
			}
			out[state.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
		})
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("kstreams: list %s offsets of global topics: %w", what, err)
		}
		return out, nil
	}
	if starts, err = toMap("start", g.a.admin.ListStartOffsets); err != nil {
		return nil, nil, err
	}
	if ends, err = toMap("end", listEnds); err != nil {
		return nil, nil, err
	}
	return starts, ends, nil
}

// openPebble opens the Pebble instance of the global stores, when any is
// on disk. A directory Pebble cannot read is wiped (and the checkpoint
// forgotten): the stores are restored from their topics.
func (g *globalThread) openPebble(cp *map[state.TopicPartition]int64) error {
	need := false
	for _, gs := range g.a.compiled.GlobalStores {
		need = need || !gs.Store.InMemory
	}
	if !need {
		return nil
	}
	dir := filepath.Join(g.dir, "pebble")
	opts := g.a.cfg.Pebble
	opts.DisableWAL = true // the checkpoint says what is on disk; see above
	db, err := state.OpenPebble(dir, opts)
	if err != nil {
		g.log.Warn("cannot open the global stores' Pebble; wiping it to restore from the topics", "dir", dir, "err", err)
		if werr := state.WipePebble(dir); werr != nil {
			return fmt.Errorf("kstreams: wipe global store %s: %w (open failed with: %v)", dir, werr, err)
		}
		*cp = map[state.TopicPartition]int64{}
		if db, err = state.OpenPebble(dir, opts); err != nil {
			return fmt.Errorf("kstreams: open global store %s after wiping it: %w", dir, err)
		}
	}
	g.db = db
	return nil
}

// restore applies the global topics up to the end offsets listed at open.
func (g *globalThread) restore(ctx context.Context) error {
	began := time.Now()
	listener := countingRestoreListener{g.a.metrics, g.a.cfg.RestoreListener}
	pending := map[task.TopicPartition]*globalPartition{}
	restored := map[task.TopicPartition]int64{}
	var toRestore int64
	for tp, gp := range g.parts {
		listener.OnRestoreStart(gp.store, state.TopicPartition(tp), gp.next, gp.end)
		if gp.next < gp.end {
			pending[tp] = gp
			toRestore += gp.end - gp.next
		} else {
			listener.OnRestoreEnd(gp.store, state.TopicPartition(tp), 0)
		}
	}
	g.log.Info("restoring global stores", "stores", slices.Sorted(maps.Keys(g.stores)),
		"partitions", len(g.parts), "offsets_behind", toRestore)
	var total int64
	for len(pending) > 0 {
		pollCtx, cancel := context.WithTimeout(ctx, globalIdlePoll)
		fetches := g.client.PollRecords(pollCtx, restoreBatch)
		idle := pollCtx.Err() != nil
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		applied, err := g.apply(fetches)
		if err != nil {
			return err
		}
		for tp, n := range applied {
			total += n
			restored[tp] += n
			if gp := pending[tp]; gp != nil {
				listener.OnBatchRestored(gp.store, state.TopicPartition(tp), gp.next-1, n)
			}
		}
		for tp, gp := range pending {
			if gp.next >= gp.end {
				delete(pending, tp)
				listener.OnRestoreEnd(gp.store, state.TopicPartition(tp), restored[tp])
			}
		}
		if idle && len(applied) == 0 {
			for tp, gp := range pending {
				g.log.Info("global topic partition ends below its end offset (compacted away)",
					"topic", tp.Topic, "partition", tp.Partition, "at", gp.next, "end", gp.end)
				gp.next = gp.end
				listener.OnRestoreEnd(gp.store, state.TopicPartition(tp), restored[tp])
			}
			clear(pending)
		}
	}
	g.a.stats.GlobalRestored.Add(total)
	g.log.Info("restored global stores", "records", total, "took", time.Since(began).Round(time.Millisecond))
	return g.checkpoint()
}

// run applies what the global topics receive until ctx is done. An error
// stops the app, as an error of Kafka Streams' global thread does.
func (g *globalThread) run(ctx context.Context) {
	defer close(g.done)
	for {
		fetches := g.client.PollRecords(ctx, restoreBatch)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		applied, err := g.apply(fetches)
		var n int64
		for _, c := range applied {
			n += c
		}
		g.a.stats.GlobalUpdated.Add(n)
		g.sinceCheckpoint += n
		if err == nil && g.sinceCheckpoint >= globalCheckpointRecords && time.Since(g.lastCheckpoint) >= g.a.cfg.CommitInterval {
			err = g.checkpoint()
		}
		if err != nil {
			g.a.fail(fmt.Errorf("kstreams: global stores: %w", err))
			return
		}
	}
}

// apply runs fetched records through their partitions' update tasks and
// returns how many each partition applied. Control records (transaction
// markers) are not applied, but move the partition on.
func (g *globalThread) apply(fetches kgo.Fetches) (map[task.TopicPartition]int64, error) {
	fetches.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			g.log.Warn("global topic fetch error; retrying", "topic", topic, "partition", p, "err", err)
		}
	})
	applied := map[task.TopicPartition]int64{}
	var firstErr error
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		tp := task.TopicPartition{Topic: fp.Topic, Partition: fp.Partition}
		gp := g.parts[tp]
		if firstErr != nil || gp == nil || len(fp.Records) == 0 {
			return
		}
		recs := make([]*kgo.Record, 0, len(fp.Records))
		for _, r := range fp.Records {
			if !r.Attrs.IsControl() {
				recs = append(recs, r)
			}
		}
		if err := gp.task.Add(recs...); err != nil {
			firstErr = err
			return
		}
		var n int64
		for {
			ok, err := gp.task.Process()
			if err != nil {
				firstErr = fmt.Errorf("global store %s: %w", gp.store, err)
				return
			}
			if !ok {
				break
			}
			n++
		}
		if last := fp.Records[len(fp.Records)-1].Offset; last >= gp.next {
			gp.next = last + 1
		}
		applied[tp] = n
	})
	return applied, firstErr
}

// checkpoint makes the Pebble stores durable, then records the offsets
// they are complete up to.
func (g *globalThread) checkpoint() error {
	if g.db == nil {
		return nil
	}
	if err := g.db.Commit(); err != nil {
		return err
	}
	offsets := map[state.TopicPartition]int64{}
	for tp, gp := range g.parts {
		if gp.persistent {
			offsets[state.TopicPartition(tp)] = gp.next
		}
	}
	if err := state.WriteCheckpoint(g.checkpointPath(), offsets); err != nil {
		return err
	}
	g.sinceCheckpoint, g.lastCheckpoint = 0, time.Now()
	return nil
}

// sendDeadLetter produces a record that failed to deserialize to the dead
// letter topic and waits for it.
func (g *globalThread) sendDeadLetter(topic string, key, value []byte, headers []topology.Header, timestamp int64) error {
	rec := &kgo.Record{Topic: topic, Key: key, Value: value, Timestamp: time.UnixMilli(timestamp)}
	for _, h := range headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return g.client.ProduceSync(ctx, rec).FirstErr()
}

// close closes the update tasks, the client and the stores.
func (g *globalThread) close() {
	for _, gp := range g.parts {
		if err := gp.task.Close(); err != nil {
			g.log.Warn("closing a global store's nodes", "err", err)
		}
	}
	if g.client != nil {
		g.client.Close()
	}
	for name, s := range g.stores {
		if err := s.Close(); err != nil {
			g.log.Warn("closing a global store", "store", name, "err", err)
		}
	}
	if g.db != nil {
		if err := g.db.Close(); err != nil {
			g.log.Warn("closing the global stores' Pebble", "err", err)
		}
	}
}

// Interactive queries of a global store are answered by the instance
// asked, from its own copy: every instance holds every key, so nothing is
// forwarded, and QueryMetadataForKey says the key is local (partition -1),
// as Kafka Streams says of global stores.

// withGlobalStore runs fn on the global store called name while the store
// cannot be closed under it.
func (a *App) withGlobalStore(name string, fn func(state.ReadOnlyKeyValueStore) error) error {
	if err := a.queryableState(name); err != nil {
		return err
	}
	g := a.global.Load()
	if g == nil {
		return &NotQueryableError{Store: name, Reason: ReasonRestoring}
	}
	g.queryMu.RLock()
	defer g.queryMu.RUnlock()
	if g.closed {
		return &NotQueryableError{Store: name, Reason: ReasonNotRunning}
	}
	return fn(g.stores[name])
}

// globalKeyMetadata is QueryMetadataForKeyBytes for a global store.
func (a *App) globalKeyMetadata(store string) (KeyQueryMetadata, error) {
	if err := a.queryableState(store); err != nil {
		return KeyQueryMetadata{}, err
	}
	return KeyQueryMetadata{Active: a.cfg.ApplicationServer, ActiveProcessID: a.processID, Local: true, Partition: -1}, nil
}

// getGlobal is getLocal for a global store.
func (a *App) getGlobal(store string, key []byte) (value []byte, found bool, err error) {
	err = a.withGlobalStore(store, func(kv state.ReadOnlyKeyValueStore) error {
		v, err := kv.Get(key)
		if err != nil {
			return fmt.Errorf("kstreams: global store %q: get: %w", store, err)
		}
		value = v
		return nil
	})
	return value, value != nil, err
}

// rangeGlobal is rangeLocal for a global store.
func (a *App) rangeGlobal(store string, from, to []byte, limit int) (out []state.KeyValue, err error) {
	err = a.withGlobalStore(store, func(kv state.ReadOnlyKeyValueStore) error {
		if out, err = scan(kv, from, to, limit); err != nil {
			return fmt.Errorf("kstreams: global store %q: range: %w", store, err)
		}
		return nil
	})
	return out, err
}

// globalStoreInfos lists the global stores for GET /v1/stores.
func (a *App) globalStoreInfos() []rest.StoreInfo {
	var out []rest.StoreInfo
	for _, g := range a.compiled.GlobalStores {
		info := rest.StoreInfo{Name: g.Store.Name, Kind: g.Store.Kind.String(), KeyType: "bytes", ValueType: "bytes"}
		if c := g.Store.Codec; c != nil {
			info.KeyType, info.ValueType = c.KeyType, c.ValueType
		}
		out = append(out, info)
	}
	return out
}
