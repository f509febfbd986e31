package testutil

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// DriverOption configures NewDriver.
type DriverOption func(*driverConfig)

type driverConfig struct {
	appID      string
	startTime  time.Time
	onDeser    task.DeserializationHandler
	cacheBytes int64
}

// WithApplicationID sets the application id the topology is compiled under,
// overriding the default "test-app". Internal topics are named
// "<id>-<name>", so tests that read a repartition topic use that name.
func WithApplicationID(id string) DriverOption {
	return func(c *driverConfig) { c.appID = id }
}

// WithStartTime sets the mock wall clock's starting time, overriding the
// default of 2026-01-01T00:00:00Z. The clock moves only through
// Driver.AdvanceWallClockTime.
func WithStartTime(t time.Time) DriverOption {
	return func(c *driverConfig) { c.startTime = t }
}

// WithDeserializationHandler sets what happens to an input record whose key
// or value fails to deserialize, overriding the default
// task.FailOnDeserializationError, which stops the driver and reports the
// error through Driver.Err.
func WithDeserializationHandler(h task.DeserializationHandler) DriverOption {
	return func(c *driverConfig) { c.onDeser = h }
}

// WithCacheMaxBytes sets the size of each caching store's write cache,
// overriding the default of 10 MiB. Since the driver commits (flushes every
// cache) after each piped record, the cache only collapses the updates one
// input record causes; a size of 0 turns caching off, so every update
// reaches downstream nodes at once.
func WithCacheMaxBytes(n int64) DriverOption {
	return func(c *driverConfig) { c.cacheBytes = n }
}

// maxStepsPerDrain bounds the records processed for one pipe or one clock
// advance, so a topology that loops through a topic fails with an error
// instead of hanging the test.
const maxStepsPerDrain = 1_000_000

// maxFlushRounds bounds the commit rounds after one input: a flush may
// forward records through repartition topics to tasks whose caches then
// need flushing in turn.
const maxFlushRounds = 1000

// Driver runs a topology in memory, synchronously, like Kafka Streams'
// TopologyTestDriver. Every topic has a single partition (0), and the
// driver runs one task per sub-topology. Piping a record processes it, and
// everything it causes through internal topics, before the pipe returns.
//
// State stores are made as the runtime makes them: Pebble in a temporary
// directory (or in memory), logging every write to the captured topic
// "<application.id>-<store>-changelog", behind a write cache when the
// store caches. After each piped record the driver commits as
// TopologyTestDriver does: it flushes every task's stores, so what caches
// forward reaches the output before the pipe returns. Read stores with
// KeyValueStore and StoreView.
//
// Global stores (kstream.GlobalTable) are whole in the driver as in every
// instance: records piped into a global store's topic, or written to it by
// a sink, update the store at once, and every later record of every task
// sees the update. KeyValueStore and StoreView read them too.
//
// The wall clock is a mock that moves only through AdvanceWallClockTime.
//
// A Driver is used from the test's goroutine only; it is not safe for
// concurrent use.
type Driver struct {
	t        testing.TB
	compiled *topology.Compiled
	tasks    []*task.Task          // by sub-topology id
	taskOf   map[string]*task.Task // resolved source topic -> task
	clock    time.Time
	offsets  map[string]int64 // next offset of each topic's single partition
	logs     map[string]*topicLog
	fed      []*task.Task // tasks given records by sinks since last looked at
	err      error
	closed   bool
	closeErr error

	cacheBytes int64
	stores     map[string]state.KeyValueStore // top layer of every key-value store, by name
	windowed   map[string]any                 // top layer of every window and session store
	dropped    map[string]int64               // records processors dropped, by reason
	storeOrder []string                       // names in the order the stores were made
	dbs        []*state.PebbleDB              // one per task with a persistent store
}

// topicLog is what sinks wrote to one topic; read marks how many records
// the test has popped.
type topicLog struct {
	recs []sentRecord
	read int
}

type sentRecord struct {
	key, value []byte
	headers    []topology.Header
	timestamp  int64
}

// NewDriver compiles topo under the application id (default "test-app"),
// starts one task per sub-topology on partition 0 and closes them when the
// test ends. A topology that does not compile, or a processor whose Init
// fails, fails the test.
func NewDriver(t testing.TB, topo *topology.Topology, opts ...DriverOption) *Driver {
	t.Helper()
	cfg := driverConfig{
		appID:      "test-app",
		startTime:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		onDeser:    task.FailOnDeserializationError,
		cacheBytes: 10 << 20,
	}
	for _, o := range opts {
		o(&cfg)
	}
	compiled, err := topology.Compile(topo, cfg.appID)
	if err != nil {
		t.Fatalf("testutil: compile topology: %v", err)
	}
	d := &Driver{
		t:          t,
		compiled:   compiled,
		taskOf:     map[string]*task.Task{},
		clock:      cfg.startTime,
		offsets:    map[string]int64{},
		logs:       map[string]*topicLog{},
		cacheBytes: cfg.cacheBytes,
		stores:     map[string]state.KeyValueStore{},
		windowed:   map[string]any{},
		dropped:    map[string]int64{},
	}
	globals, err := d.openGlobalStores()
	if err != nil {
		_ = d.Close()
		t.Fatalf("testutil: global stores: %v", err)
	}
	for _, st := range compiled.Subtopologies {
		var tk *task.Task
		streamTime := func() int64 {
			if tk != nil && tk.StreamTime() >= 0 {
				return tk.StreamTime()
			}
			return d.clock.UnixMilli()
		}
		stores, err := d.openStores(st, streamTime)
		if err != nil {
			_ = d.Close()
			t.Fatalf("testutil: stores of sub-topology %d: %v", st.ID, err)
		}
		tk, err = task.New(task.Config{
			ID:                     task.ID{Subtopology: st.ID, Partition: 0},
			ApplicationID:          cfg.appID,
			Subtopology:            st,
			Collector:              collector{d},
			Clock:                  d.WallClock,
			OnDeserializationError: cfg.onDeser,
			Stores:                 withGlobals(stores, globals),
			OnDropped:              func(reason string) { d.dropped[reason]++ },
		})
		if err != nil {
			_ = d.Close()
			t.Fatalf("testutil: start task for sub-topology %d: %v", st.ID, err)
		}
		d.tasks = append(d.tasks, tk)
		for _, topic := range st.SourceTopics {
			d.taskOf[topic] = tk
		}
	}
	if err := d.startGlobalTasks(cfg); err != nil {
		_ = d.Close()
		t.Fatalf("testutil: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("testutil: close driver: %v", err)
		}
	})
	return d
}

// Close closes every task's processors, then the stores, and returns their
// errors joined. NewDriver arranges for it to run when the test ends;
// calling it again returns the first result.
func (d *Driver) Close() error {
	if d.closed {
		return d.closeErr
	}
	d.closed = true
	var errs []error
	for _, tk := range d.tasks {
		errs = append(errs, tk.Close())
	}
	for _, name := range d.storeOrder {
		var s interface{ Close() error } = d.stores[name]
		if w, ok := d.windowed[name]; ok {
			s = w.(interface{ Close() error })
		}
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("testutil: close store %s: %w", name, err))
		}
	}
	for _, db := range d.dbs {
		errs = append(errs, db.Close())
	}
	d.closeErr = errors.Join(errs...)
	return d.closeErr
}

// openStores makes the stores of one sub-topology's task, layered as the
// runtime layers them: Pebble (one instance per task) or in-memory, then
// logging to the changelog topic, then the write cache.
func (d *Driver) openStores(st *topology.Subtopology, streamTime func() int64) (map[string]any, error) {
	if len(st.StoreSpecs) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(st.StoreSpecs))
	var db *state.PebbleDB
	for _, spec := range st.StoreSpecs {
		if spec.Kind != topology.KeyValueStore {
			w, err := d.openSegmented(spec, st, streamTime)
			if err != nil {
				return nil, err
			}
			d.windowed[spec.Name] = w
			d.storeOrder = append(d.storeOrder, spec.Name)
			out[spec.Name] = w
			continue
		}
		var s state.KeyValueStore
		if spec.InMemory {
			s = state.NewInMemory(spec.Name)
		} else {
			if db == nil {
				dir := filepath.Join(d.t.TempDir(), task.ID{Subtopology: st.ID}.String())
				var err error
				if db, err = state.OpenPebble(dir, state.PebbleOptions{DisableWAL: true}); err != nil {
					return nil, err
				}
				d.dbs = append(d.dbs, db)
			}
			s = db.Store(spec.Name)
		}
		if topic, ok := st.Changelogs[spec.Name]; ok {
			s = state.NewLogged(s, d.changeLogger(topic, streamTime))
		}
		if spec.Caching {
			s = state.NewCached(s, d.cacheBytes)
		}
		d.stores[spec.Name] = s
		d.storeOrder = append(d.storeOrder, spec.Name)
		out[spec.Name] = s
	}
	return out, nil
}

// openSegmented makes a window or session store, in memory (the driver
// has no restarts to survive), logged when the topology logs it.
func (d *Driver) openSegmented(spec topology.StoreSpec, st *topology.Subtopology, streamTime func() int64) (any, error) {
	opts := state.SegmentedOptions{Retention: spec.Retention, SegmentInterval: spec.SegmentInterval, RetainDuplicates: spec.RetainDuplicates}
	topic, logged := st.Changelogs[spec.Name]
	if spec.Kind == topology.WindowStore {
		w := state.NewInMemoryWindowStore(spec.Name, opts)
		if logged {
			w = state.NewLoggedWindow(w, d.changeLogger(topic, streamTime))
		}
		return w, nil
	}
	s := state.NewInMemorySessionStore(spec.Name, opts)
	if logged {
		s = state.NewLoggedSession(s, d.changeLogger(topic, streamTime))
	}
	return s, nil
}

// WindowStore returns the named window store as the processors see it,
// or nil when the topology has no such window store.
func WindowStore(d *Driver, name string) state.WindowStore {
	w, _ := d.windowed[name].(state.WindowStore)
	return w
}

// SessionStore returns the named session store as the processors see it,
// or nil when the topology has no such session store.
func SessionStore(d *Driver, name string) state.SessionStore {
	s, _ := d.windowed[name].(state.SessionStore)
	return s
}

// Dropped returns how many records processors dropped for reason (such as
// "late": too late for every window) so far.
func (d *Driver) Dropped(reason string) int64 { return d.dropped[reason] }

// changeLogger captures a store's writes on its changelog topic, stamped
// with the task's stream time (the driver's clock before any record).
func (d *Driver) changeLogger(topic string, streamTime func() int64) state.ChangeLogger {
	return func(key, value []byte) error {
		key = append([]byte(nil), key...)
		if value != nil {
			value = append([]byte{}, value...)
		}
		return collector{d}.Send(topic, 0, key, value, nil, streamTime())
	}
}

// KeyValueStore returns the named store as the processors see it (the top
// layer: the cache when the store caches), or nil when the topology has no
// such store. Reads see every write processed so far.
func KeyValueStore(d *Driver, name string) state.KeyValueStore {
	s, ok := d.stores[name]
	if !ok {
		return nil
	}
	return s
}

// StoreView returns a typed view of the named store, reading keys and
// values with k and v. A store the topology does not have fails the test,
// naming the stores it has.
func StoreView[K, V any](d *Driver, name string, k serde.Serde[K], v serde.Serde[V]) *state.KeyValueView[K, V] {
	d.t.Helper()
	s, ok := d.stores[name]
	if !ok {
		names := append([]string(nil), d.storeOrder...)
		sort.Strings(names)
		d.t.Fatalf("testutil: no store %q (stores: %q)", name, names)
	}
	return state.Typed(s, k, v)
}

// commit flushes every task's stores, as TopologyTestDriver commits after
// each record, and processes what the flushes forwarded through internal
// topics, until a round of flushes forwards nothing more.
func (d *Driver) commit() {
	for round := 0; d.err == nil; round++ {
		if round == maxFlushRounds {
			d.fail(fmt.Errorf("testutil: still flushing after %d commit rounds for one input; does the topology loop through a topic?", maxFlushRounds))
			return
		}
		for _, tk := range d.tasks {
			if err := tk.Flush(); err != nil {
				d.fail(err)
				return
			}
		}
		if len(d.fed) == 0 {
			return
		}
		d.drain(nil)
	}
}

// WallClock returns the mock wall clock, which processors see as
// Context.WallClock.
func (d *Driver) WallClock() time.Time { return d.clock }

// AdvanceWallClockTime moves the mock wall clock by dur and fires the
// wall-clock punctuators that are due, task by task. A punctuator that
// missed several intervals fires once, as in Kafka Streams. What the
// punctuators write to internal topics is processed, and the stores are
// flushed as after a piped record, before it returns.
func (d *Driver) AdvanceWallClockTime(dur time.Duration) {
	d.t.Helper()
	if dur < 0 {
		d.t.Fatalf("testutil: AdvanceWallClockTime(%v): the clock cannot go back", dur)
	}
	d.checkOpen()
	d.clock = d.clock.Add(dur)
	for _, tk := range d.tasks {
		if d.err != nil {
			return
		}
		if err := tk.PunctuateWallClock(); err != nil {
			d.fail(err)
			return
		}
		d.drain(nil)
	}
	d.commit()
}

// Err returns the first error a task returned: a processor's or
// punctuator's failure, or a deserialization error the handler did not
// skip. Once it is set the driver ignores further input, as a Kafka
// Streams thread stops on an unhandled error.
func (d *Driver) Err() error { return d.err }

// Produced returns how many records sinks have written to topic (the
// resolved name), read or not.
func (d *Driver) Produced(topic string) int {
	if l, ok := d.logs[topic]; ok {
		return len(l.recs)
	}
	return 0
}

func (d *Driver) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *Driver) checkOpen() {
	d.t.Helper()
	if d.closed {
		d.t.Fatalf("testutil: driver used after Close")
	}
}

// nextOffset hands out the next offset of topic's single partition. Piped
// records and records sinks write share it, as they share one log.
func (d *Driver) nextOffset(topic string) int64 {
	o := d.offsets[topic]
	d.offsets[topic] = o + 1
	return o
}

// pipe feeds one input record to the task that reads its topic and runs
// the topology until every task's queue is empty.
func (d *Driver) pipe(topic string, key, value []byte, headers []topology.Header, ts time.Time) {
	d.t.Helper()
	d.checkOpen()
	tk, ok := d.taskOf[topic]
	if !ok {
		d.t.Fatalf("testutil: pipe to topic %q: no source reads it (source topics: %q)", topic, d.compiled.SourceTopics())
	}
	if d.err != nil {
		return
	}
	if ts.IsZero() {
		ts = d.clock
	}
	r := &kgo.Record{
		Topic:     topic,
		Partition: 0,
		Offset:    d.nextOffset(topic),
		Key:       key,
		Value:     value,
		Timestamp: ts,
	}
	for _, h := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	if err := tk.Add(r); err != nil {
		d.fail(err)
		return
	}
	d.drain(tk)
	d.commit()
}

// drain processes queued records depth first: after each record, the tasks
// its sinks fed through internal topics run until empty before the task
// that produced it takes its next record. Which record a task takes next
// is the task's choice (lowest timestamp across its partitions), so the
// whole run is deterministic.
func (d *Driver) drain(start *task.Task) {
	var stack []*task.Task
	push := func(fed []*task.Task) {
		for i := len(fed) - 1; i >= 0; i-- {
			stack = append(stack, fed[i])
		}
	}
	push(d.takeFed())
	if start != nil {
		stack = append(stack, start)
	}
	steps := 0
	for d.err == nil {
		if len(stack) == 0 {
			// Nothing should be left, but a queue filled outside the
			// stack's view must not go unprocessed.
			for _, tk := range d.tasks {
				if tk.BufferedTotal() > 0 {
					stack = append(stack, tk)
					break
				}
			}
			if len(stack) == 0 {
				return
			}
		}
		top := stack[len(stack)-1]
		ok, err := top.Process()
		if err != nil {
			d.fail(err)
			return
		}
		if !ok {
			stack = stack[:len(stack)-1]
			continue
		}
		if steps++; steps > maxStepsPerDrain {
			d.fail(fmt.Errorf("testutil: more than %d records processed for one input; does the topology loop through a topic?", maxStepsPerDrain))
			return
		}
		push(d.takeFed())
	}
}

func (d *Driver) takeFed() []*task.Task {
	fed := d.fed
	d.fed = nil
	return fed
}

// collector is the tasks' Collector: it keeps what sinks write, and feeds
// records for topics a sub-topology reads to that sub-topology's task.
type collector struct{ d *Driver }

func (c collector) Send(topic string, partition int32, key, value []byte, headers []topology.Header, timestamp int64) error {
	d := c.d
	if partition > 0 {
		return fmt.Errorf("testutil: send to %s-%d: the test driver has one partition per topic", topic, partition)
	}
	// Later processors may reuse the caller's header slice.
	headers = append([]topology.Header(nil), headers...)
	l := d.logs[topic]
	if l == nil {
		l = &topicLog{}
		d.logs[topic] = l
	}
	l.recs = append(l.recs, sentRecord{key: key, value: value, headers: headers, timestamp: timestamp})
	offset := d.nextOffset(topic)

	tk, ok := d.taskOf[topic]
	if !ok {
		return nil
	}
	r := &kgo.Record{
		Topic:     topic,
		Partition: 0,
		Offset:    offset,
		Key:       key,
		Value:     value,
		Timestamp: time.UnixMilli(timestamp),
	}
	for _, h := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	if err := tk.Add(r); err != nil {
		return err
	}
	if n := len(d.fed); n == 0 || d.fed[n-1] != tk {
		d.fed = append(d.fed, tk)
	}
	return nil
}

func (collector) Partitions(string) (int32, bool) { return 1, true }

// TestRecord is one record piped in or read out.
type TestRecord[K, V any] struct {
	Key   K
	Value V
	// Timestamp of the record; piping a zero Timestamp uses the driver's
	// wall clock.
	Timestamp time.Time
	Headers   []topology.Header
	// Topic the record was read from; ignored when piping.
	Topic string
	// Tombstone is set on a read record whose value bytes were nil; Value
	// is then the zero value. Ignored when piping: use PipeTombstone.
	Tombstone bool
}

// KeyValue is a key and its value.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// TestInputTopic pipes typed records into one topic of a Driver.
type TestInputTopic[K, V any] struct {
	d     *Driver
	topic string
	k     serde.Serializer[K]
	v     serde.Serializer[V]
}

// InputTopic returns a handle that serializes with k and v and pipes into
// topic (the resolved name: internal topics carry the application id
// prefix). Piping to a topic no source reads fails the test.
func InputTopic[K, V any](d *Driver, topic string, k serde.Serializer[K], v serde.Serializer[V]) *TestInputTopic[K, V] {
	return &TestInputTopic[K, V]{d: d, topic: topic, k: k, v: v}
}

// Pipe pipes key and value stamped with the driver's wall clock.
func (in *TestInputTopic[K, V]) Pipe(key K, value V) {
	in.d.t.Helper()
	in.PipeAt(key, value, in.d.clock)
}

// PipeAt pipes key and value stamped with ts.
func (in *TestInputTopic[K, V]) PipeAt(key K, value V, ts time.Time) {
	in.d.t.Helper()
	in.PipeRecord(TestRecord[K, V]{Key: key, Value: value, Timestamp: ts})
}

// PipeRecord pipes r with its headers and timestamp (zero: the driver's
// wall clock). r.Topic and r.Tombstone are ignored.
func (in *TestInputTopic[K, V]) PipeRecord(r TestRecord[K, V]) {
	in.d.t.Helper()
	key := in.serializeKey(r.Key)
	value, err := in.v.Serialize(in.topic, r.Value)
	if err != nil {
		in.d.t.Fatalf("testutil: serialize value for topic %s: %v", in.topic, err)
	}
	in.d.pipe(in.topic, key, value, r.Headers, r.Timestamp)
}

// PipeTombstone pipes key with a nil value (a delete), stamped with the
// driver's wall clock.
func (in *TestInputTopic[K, V]) PipeTombstone(key K) {
	in.d.t.Helper()
	in.d.pipe(in.topic, in.serializeKey(key), nil, nil, in.d.clock)
}

// PipeRaw pipes bytes as they are, for tests of malformed input. A zero ts
// uses the driver's wall clock.
func (in *TestInputTopic[K, V]) PipeRaw(key, value []byte, ts time.Time) {
	in.d.t.Helper()
	in.d.pipe(in.topic, key, value, nil, ts)
}

func (in *TestInputTopic[K, V]) serializeKey(key K) []byte {
	in.d.t.Helper()
	b, err := in.k.Serialize(in.topic, key)
	if err != nil {
		in.d.t.Fatalf("testutil: serialize key for topic %s: %v", in.topic, err)
	}
	return b
}

// TestOutputTopic reads typed records that sinks wrote to one topic. Reads
// pop records from the driver's queue for the topic, which every handle on
// the same topic shares.
type TestOutputTopic[K, V any] struct {
	d     *Driver
	topic string
	k     serde.Deserializer[K]
	v     serde.Deserializer[V]
}

// OutputTopic returns a handle that reads topic (the resolved name) and
// deserializes with k and v. Internal topics can be read too.
func OutputTopic[K, V any](d *Driver, topic string, k serde.Deserializer[K], v serde.Deserializer[V]) *TestOutputTopic[K, V] {
	return &TestOutputTopic[K, V]{d: d, topic: topic, k: k, v: v}
}

func (o *TestOutputTopic[K, V]) log() *topicLog {
	if l := o.d.logs[o.topic]; l != nil {
		return l
	}
	return &topicLog{}
}

// Size returns how many records wait unread.
func (o *TestOutputTopic[K, V]) Size() int {
	l := o.log()
	return len(l.recs) - l.read
}

// IsEmpty reports whether every record written so far has been read.
func (o *TestOutputTopic[K, V]) IsEmpty() bool { return o.Size() == 0 }

// ReadRecord pops the oldest unread record; ok is false when there is
// none. A key or value that fails to deserialize fails the test.
func (o *TestOutputTopic[K, V]) ReadRecord() (r TestRecord[K, V], ok bool) {
	o.d.t.Helper()
	l := o.log()
	if l.read == len(l.recs) {
		return r, false
	}
	s := l.recs[l.read]
	l.read++
	off := l.read - 1
	r.Topic = o.topic
	r.Timestamp = time.UnixMilli(s.timestamp)
	r.Headers = s.headers
	var err error
	if r.Key, err = o.k.Deserialize(o.topic, s.key); err != nil {
		o.d.t.Fatalf("testutil: deserialize key of output record %d of topic %s: %v", off, o.topic, err)
	}
	if s.value == nil {
		r.Tombstone = true
		return r, true
	}
	if r.Value, err = o.v.Deserialize(o.topic, s.value); err != nil {
		o.d.t.Fatalf("testutil: deserialize value of output record %d of topic %s: %v", off, o.topic, err)
	}
	return r, true
}

// ReadRecords pops every unread record.
func (o *TestOutputTopic[K, V]) ReadRecords() []TestRecord[K, V] {
	o.d.t.Helper()
	out := make([]TestRecord[K, V], 0, o.Size())
	for {
		r, ok := o.ReadRecord()
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

// ReadKeyValues pops every unread record as key and value.
func (o *TestOutputTopic[K, V]) ReadKeyValues() []KeyValue[K, V] {
	o.d.t.Helper()
	recs := o.ReadRecords()
	out := make([]KeyValue[K, V], len(recs))
	for i, r := range recs {
		out[i] = KeyValue[K, V]{Key: r.Key, Value: r.Value}
	}
	return out
}

// ReadValues pops every unread record's value.
func (o *TestOutputTopic[K, V]) ReadValues() []V {
	o.d.t.Helper()
	recs := o.ReadRecords()
	out := make([]V, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out
}
