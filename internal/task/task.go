// Package task runs one sub-topology on one partition number: it owns the
// node instances, the per-partition record queues, stream time and the
// punctuators. A Task is driven by exactly one goroutine (the runtime's task
// loop, or the test driver); it is not safe for concurrent use.
//
// The task knows nothing of consumer groups or producers: input arrives as
// *kgo.Record values through Add, output leaves through a Collector.
package task

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/topology"
)

// ID names a task: a sub-topology and a partition number.
type ID struct {
	Subtopology int
	Partition   int32
}

func (id ID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// ParseID parses "<subtopology>_<partition>".
func ParseID(s string) (ID, error) {
	var id ID
	if _, err := fmt.Sscanf(s, "%d_%d", &id.Subtopology, &id.Partition); err != nil {
		return ID{}, fmt.Errorf("task id %q: %w", s, err)
	}
	return id, nil
}

// Collector receives what sink nodes write.
type Collector interface {
	// Send hands one serialized record to the producer. partition < 0
	// means the default partitioner (murmur2 of the key, as Kafka's).
	Send(topic string, partition int32, key, value []byte, headers []topology.Header, timestamp int64) error
	// Partitions returns the partition count of topic, for custom
	// partitioners; ok is false when it is not known.
	Partitions(topic string) (n int32, ok bool)
}

// DeserializationError is handed to the DeserializationHandler.
type DeserializationError struct {
	Task   ID
	Record *kgo.Record
	IsKey  bool
	Err    error
}

func (e *DeserializationError) Error() string {
	what := "value"
	if e.IsKey {
		what = "key"
	}
	return fmt.Sprintf("task %s: deserialize %s of record at topic %s partition %d offset %d: %v",
		e.Task, what, e.Record.Topic, e.Record.Partition, e.Record.Offset, e.Err)
}

func (e *DeserializationError) Unwrap() error { return e.Err }

// DeserializationHandler decides what happens to a record that fails to
// deserialize: return nil to skip it, or an error to fail the task.
type DeserializationHandler func(e *DeserializationError) error

// FailOnDeserializationError is the default handler.
func FailOnDeserializationError(e *DeserializationError) error { return e }

// Config builds a task.
type Config struct {
	ID            ID
	ApplicationID string
	Subtopology   *topology.Subtopology
	Collector     Collector
	// Clock is the wall clock (default time.Now).
	Clock func() time.Time
	// OnDeserializationError defaults to FailOnDeserializationError.
	OnDeserializationError DeserializationHandler
	// Stores by name; a processor sees only the stores it declared.
	Stores map[string]any
	// OnDropped hears of each record a processor drops on purpose (a late
	// record, say), with the reason. Optional.
	OnDropped func(reason string)
	// OnPunctuate hears of each punctuator run and how long it took.
	// Optional.
	OnPunctuate func(time.Duration)
}

type partitionQueue struct {
	topic     string
	partition int32
	source    *nodeInstance
	recs      []*kgo.Record
	head      int
	next      int64 // offset after the last record handed out; -1 before any

	// The head record, deserialized ahead of processing so records are
	// ordered by their extracted timestamp, as Kafka Streams' RecordQueue.
	headReady bool
	headKey   any
	headValue any
	headTs    int64
	headErr   *DeserializationError
}

func (q *partitionQueue) len() int { return len(q.recs) - q.head }

func (q *partitionQueue) pop() *kgo.Record {
	r := q.recs[q.head]
	q.recs[q.head] = nil
	q.head++
	q.headReady, q.headKey, q.headValue, q.headErr = false, nil, nil, nil
	if q.head == len(q.recs) {
		q.recs = q.recs[:0]
		q.head = 0
	} else if q.head > 1024 && q.head*2 > len(q.recs) {
		n := copy(q.recs, q.recs[q.head:])
		clear(q.recs[n:])
		q.recs = q.recs[:n]
		q.head = 0
	}
	return r
}

// TopicPartition names one input partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Task is one running sub-topology × partition.
type Task struct {
	cfg        Config
	nodes      map[string]*nodeInstance
	queues     []*partitionQueue
	queueByTP  map[TopicPartition]*partitionQueue
	streamTime int64

	// current record's metadata, valid while hasMeta
	meta    topology.Metadata
	hasMeta bool

	streamPunct []*schedule
	wallPunct   []*schedule
	fwdErr      error // first error of a child during the current Forward chain
	closed      bool
	storeOrder  []string // the order Flush flushes stores in, worked out once
}

// New instantiates the sub-topology's nodes for one partition and calls
// Init on every processor, parents first.
func New(cfg Config) (*Task, error) {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.OnDeserializationError == nil {
		cfg.OnDeserializationError = FailOnDeserializationError
	}
	t := &Task{
		cfg:        cfg,
		nodes:      map[string]*nodeInstance{},
		queueByTP:  map[TopicPartition]*partitionQueue{},
		streamTime: -1,
	}
	for _, n := range cfg.Subtopology.Nodes {
		ni := &nodeInstance{task: t, node: n}
		switch n.Kind {
		case topology.KindSource:
			ni.proc = &sourceProcessor{}
		case topology.KindProcessor:
			ni.proc = n.Supplier()
		case topology.KindSink:
			ni.proc = &sinkProcessor{spec: n.Sink, task: t}
		}
		t.nodes[n.Name] = ni
	}
	for _, ni := range t.nodes {
		for _, c := range ni.node.Children {
			ni.children = append(ni.children, t.nodes[c])
		}
	}
	for _, topic := range cfg.Subtopology.SourceTopics {
		q := &partitionQueue{topic: topic, partition: cfg.ID.Partition, source: t.nodes[cfg.Subtopology.Sources[topic].Name], next: -1}
		t.queues = append(t.queues, q)
		t.queueByTP[TopicPartition{topic, cfg.ID.Partition}] = q
	}
	for _, n := range cfg.Subtopology.Nodes { // insertion order: parents first
		ni := t.nodes[n.Name]
		if err := ni.proc.Init(ni); err != nil {
			t.closeNodes()
			return nil, fmt.Errorf("task %s: init %s: %w", cfg.ID, n.Name, err)
		}
		ni.inited = true
	}
	return t, nil
}

// ID returns the task id.
func (t *Task) ID() ID { return t.cfg.ID }

// Partitions returns the input partitions of this task.
func (t *Task) Partitions() []TopicPartition {
	out := make([]TopicPartition, len(t.queues))
	for i, q := range t.queues {
		out[i] = TopicPartition{q.topic, q.partition}
	}
	return out
}

// Add queues fetched records of one of the task's partitions. Records at
// offsets already handed out (a re-delivered fetch) are dropped.
func (t *Task) Add(recs ...*kgo.Record) error {
	var q *partitionQueue
	for _, r := range recs {
		// Fetched records come in runs of one partition: look up once a run.
		if q == nil || q.partition != r.Partition || q.topic != r.Topic {
			var ok bool
			q, ok = t.queueByTP[TopicPartition{r.Topic, r.Partition}]
			if !ok {
				return fmt.Errorf("task %s: record from %s-%d, which is not an input of this task", t.cfg.ID, r.Topic, r.Partition)
			}
		}
		if q.next >= 0 && r.Offset < q.next {
			continue
		}
		if n := len(q.recs); n > 0 && q.recs[n-1].Offset >= r.Offset && q.len() > 0 {
			continue
		}
		q.recs = append(q.recs, r)
	}
	return nil
}

// Buffered returns how many records wait in the queue of one partition.
func (t *Task) Buffered(tp TopicPartition) int {
	if q, ok := t.queueByTP[tp]; ok {
		return q.len()
	}
	return 0
}

// BufferedTotal returns how many records wait across all partitions.
func (t *Task) BufferedTotal() int {
	n := 0
	for _, q := range t.queues {
		n += q.len()
	}
	return n
}

// StreamTime is the highest timestamp processed so far, or -1.
func (t *Task) StreamTime() int64 { return t.streamTime }

// Positions returns, per partition with progress, the offset to commit:
// one past the last record processed.
func (t *Task) Positions() map[TopicPartition]int64 {
	out := make(map[TopicPartition]int64, len(t.queues))
	for _, q := range t.queues {
		if q.next >= 0 {
			out[TopicPartition{q.topic, q.partition}] = q.next
		}
	}
	return out
}

// Process runs the next record, picked across the task's partitions lowest
// timestamp first, through the topology. It returns false when every queue
// is empty.
func (t *Task) Process() (bool, error) {
	var best *partitionQueue
	for _, q := range t.queues {
		if q.len() == 0 {
			continue
		}
		if !q.headReady {
			t.prepareHead(q)
		}
		if best == nil || q.headTs < best.headTs {
			best = q
		}
	}
	if best == nil {
		return false, nil
	}
	key, value, ts, derr := best.headKey, best.headValue, best.headTs, best.headErr
	r := best.pop()
	if err := t.processRecord(best, r, key, value, ts, derr); err != nil {
		return true, err
	}
	// Only a record fully processed (or skipped by the handler) counts as
	// consumed, so a failed one is never committed.
	best.next = r.Offset + 1
	return true, nil
}

// prepareHead deserializes a queue's head and extracts its timestamp. A
// record that fails to deserialize sorts first, so its handler runs at once.
func (t *Task) prepareHead(q *partitionQueue) {
	r := q.recs[q.head]
	src := q.source.node.Source
	q.headReady = true
	var key, value any
	var err error
	switch {
	case r.Key == nil:
	case src.RawKey:
		key = &r.Key // no copy, no allocation: see dsl.As
	default:
		if key, err = src.KeyDeserializer(r.Topic, r.Key); err != nil {
			q.headErr, q.headTs = &DeserializationError{Task: t.cfg.ID, Record: r, IsKey: true, Err: err}, -1<<63
			return
		}
	}
	switch {
	case r.Value == nil: // a tombstone
	case src.RawValue:
		value = &r.Value
	default:
		if value, err = src.ValueDeserializer(r.Topic, r.Value); err != nil {
			q.headErr, q.headTs = &DeserializationError{Task: t.cfg.ID, Record: r, Err: err}, -1<<63
			return
		}
	}
	ts := r.Timestamp.UnixMilli()
	if src.TimestampExtractor != nil {
		ts = src.TimestampExtractor(topology.Metadata{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, key, value, ts)
	}
	q.headKey, q.headValue, q.headTs = key, value, ts
}

func (t *Task) processRecord(q *partitionQueue, r *kgo.Record, key, value any, ts int64, derr *DeserializationError) error {
	t.meta = topology.Metadata{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	t.hasMeta = true
	defer func() { t.hasMeta = false }()
	if derr != nil {
		return t.cfg.OnDeserializationError(derr)
	}
	if ts > t.streamTime {
		t.streamTime = ts
	}
	rec := topology.Record{Key: key, Value: value, Timestamp: ts}
	if len(r.Headers) > 0 {
		rec.Headers = make([]topology.Header, len(r.Headers))
		for i, h := range r.Headers {
			rec.Headers[i] = topology.Header{Key: h.Key, Value: h.Value}
		}
	}
	err := q.source.process(rec)
	if err == nil {
		err = t.fwdErr
	}
	t.fwdErr = nil
	if err != nil {
		return err
	}
	t.hasMeta = false
	return t.punctuateStream()
}

// Close closes every processor, children first, and returns the first error.
func (t *Task) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	return t.closeNodes()
}

func (t *Task) closeNodes() error {
	var errs []error
	nodes := t.cfg.Subtopology.Nodes
	for i := len(nodes) - 1; i >= 0; i-- {
		ni := t.nodes[nodes[i].Name]
		if ni.inited {
			if err := ni.proc.Close(); err != nil {
				errs = append(errs, fmt.Errorf("task %s: close %s: %w", t.cfg.ID, ni.node.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
