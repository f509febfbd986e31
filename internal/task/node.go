package task

import (
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/internal/topology"
)

// nodeInstance is one node of one task; it is also the topology.Context
// its processor sees, so Forward knows which children to call.
type nodeInstance struct {
	task     *Task
	node     *topology.Node
	proc     topology.Processor
	children []*nodeInstance
	inited   bool
}

func (n *nodeInstance) process(r topology.Record) error {
	if err := n.proc.Process(r); err != nil {
		if _, wrapped := err.(*NodeError); wrapped {
			return err
		}
		return &NodeError{Task: n.task.cfg.ID, Node: n.node.Name, Meta: n.task.meta, HasMeta: n.task.hasMeta, Err: err}
	}
	return nil
}

// NodeError is a processor's failure, with where it happened.
type NodeError struct {
	Task    ID
	Node    string
	Meta    topology.Metadata
	HasMeta bool
	Err     error
}

func (e *NodeError) Error() string {
	if e.HasMeta {
		return fmt.Sprintf("task %s: node %s: record at topic %s partition %d offset %d: %v",
			e.Task, e.Node, e.Meta.Topic, e.Meta.Partition, e.Meta.Offset, e.Err)
	}
	return fmt.Sprintf("task %s: node %s: %v", e.Task, e.Node, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// Forward has no error result (as in Kafka Streams). A child's error is
// kept on the task, later forwards become no-ops, and the task returns the
// error once the current record or punctuation is done.
func (n *nodeInstance) Forward(r topology.Record) {
	for _, c := range n.children {
		if n.task.fwdErr != nil {
			return
		}
		if err := c.process(r); err != nil {
			n.task.fwdErr = err
		}
	}
}

func (n *nodeInstance) ForwardTo(child string, r topology.Record) {
	for _, c := range n.children {
		if c.node.Name == child {
			if n.task.fwdErr != nil {
				return
			}
			if err := c.process(r); err != nil {
				n.task.fwdErr = err
			}
			return
		}
	}
	panic(fmt.Sprintf("kstreams: node %s has no child named %q (children: %v)", n.node.Name, child, n.node.Children))
}

func (n *nodeInstance) Metadata() (topology.Metadata, bool) { return n.task.meta, n.task.hasMeta }
func (n *nodeInstance) TaskID() string                      { return n.task.cfg.ID.String() }
func (n *nodeInstance) ApplicationID() string               { return n.task.cfg.ApplicationID }
func (n *nodeInstance) StreamTime() int64                   { return n.task.streamTime }

// RecordDropped implements topology.DropRecorder.
func (n *nodeInstance) RecordDropped(reason string) {
	if n.task.cfg.OnDropped != nil {
		n.task.cfg.OnDropped(reason)
	}
}
func (n *nodeInstance) WallClock() time.Time { return n.task.cfg.Clock() }

func (n *nodeInstance) Store(name string) any {
	for _, s := range n.node.Stores {
		if s == name {
			return n.task.cfg.Stores[name]
		}
	}
	return nil
}

func (n *nodeInstance) Schedule(interval time.Duration, pt topology.PunctuationType, fn func(int64)) topology.Cancellable {
	if interval < time.Millisecond {
		panic(fmt.Sprintf("kstreams: node %s: punctuation interval %v is below 1ms", n.node.Name, interval))
	}
	s := &schedule{node: n, interval: interval.Milliseconds(), fn: fn}
	if pt == topology.WallClockTime {
		s.next = n.task.cfg.Clock().UnixMilli() + s.interval
		n.task.wallPunct = append(n.task.wallPunct, s)
	} else {
		s.next = 0 // fires at the first record, then aligned to the interval
		n.task.streamPunct = append(n.task.streamPunct, s)
	}
	return s
}

// sourceProcessor forwards deserialized records to the source's children.
type sourceProcessor struct{ ctx topology.Context }

func (s *sourceProcessor) Init(ctx topology.Context) error { s.ctx = ctx; return nil }
func (s *sourceProcessor) Close() error                    { return nil }
func (s *sourceProcessor) Process(r topology.Record) error { s.ctx.Forward(r); return nil }

// sinkProcessor serializes and hands records to the task's collector.
type sinkProcessor struct {
	spec *topology.SinkSpec
	task *Task
}

func (s *sinkProcessor) Init(topology.Context) error { return nil }
func (s *sinkProcessor) Close() error                { return nil }

func (s *sinkProcessor) Process(r topology.Record) error {
	topic := s.spec.Topic
	if s.spec.TopicExtractor != nil {
		topic = s.spec.TopicExtractor(r.Key, r.Value, s.task.meta)
		if topic == "" {
			return fmt.Errorf("topic extractor returned an empty topic name")
		}
	}
	key, err := s.spec.KeySerializer(topic, r.Key)
	if err != nil {
		return fmt.Errorf("serialize key for topic %s: %w", topic, err)
	}
	value, err := s.spec.ValueSerializer(topic, r.Value)
	if err != nil {
		return fmt.Errorf("serialize value for topic %s: %w", topic, err)
	}
	partition := int32(-1)
	if s.spec.Partitioner != nil {
		n, ok := s.task.cfg.Collector.Partitions(topic)
		if !ok {
			return fmt.Errorf("partitioner for topic %s: partition count unknown", topic)
		}
		if p, ok := s.spec.Partitioner(topic, r.Key, r.Value, n); ok {
			if p < 0 || p >= n {
				return fmt.Errorf("partitioner for topic %s returned partition %d of %d", topic, p, n)
			}
			partition = p
		}
	}
	return s.task.cfg.Collector.Send(topic, partition, key, value, r.Headers, r.Timestamp)
}
