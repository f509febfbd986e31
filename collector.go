package kstreams

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/partition"
	"github.com/kstreams-go/kstreams/internal/topology"
)

// collector sends what sink nodes write through the app's one producer. A
// produce error is fatal: franz-go already retried everything retriable,
// so the error is kept and stops the application before the next commit.
type collector struct {
	client *kgo.Client
	failed atomic.Pointer[error]
	onFail func(error)
	// promiseFn is c.promise made once: a method value built per Produce
	// call would allocate per record.
	promiseFn func(*kgo.Record, error)

	// sent counts records produced, so an exactly-once commit can tell
	// an empty transaction from one with records in it.
	sent atomic.Int64
	// observeE2E, when set, hears one record in 16's end-to-end latency
	// (from its timestamp to being sent) per sink topic.
	observeE2E func(topic string, d time.Duration)

	mu         sync.Mutex
	partitions map[string]int32
	lookup     func(topic string) (int32, bool)
}

func (c *collector) promise(_ *kgo.Record, err error) {
	if err != nil {
		c.fail(err)
	}
}

// fail is apart from promise because taking err's address there would move
// every record's err to the heap, failed or not.
func (c *collector) fail(err error) {
	if c.failed.CompareAndSwap(nil, &err) {
		c.onFail(err)
	}
}

func (c *collector) err() error {
	if p := c.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *collector) Send(topic string, part int32, key, value []byte, headers []topology.Header, ts int64) error {
	if err := c.err(); err != nil {
		return err
	}
	r := &kgo.Record{Topic: topic, Partition: part, Key: key, Value: value}
	r.Timestamp = timeFromMillis(ts)
	if len(headers) > 0 {
		r.Headers = make([]kgo.RecordHeader, len(headers))
		for i, h := range headers {
			r.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	if n := c.sent.Add(1); n%16 == 0 && c.observeE2E != nil {
		c.observeE2E(topic, time.Since(r.Timestamp))
	}
	c.client.Produce(context.Background(), r, c.promiseFn)
	return nil
}

func (c *collector) Partitions(topic string) (int32, bool) {
	c.mu.Lock()
	n, ok := c.partitions[topic]
	c.mu.Unlock()
	if ok {
		return n, true
	}
	n, ok = c.lookup(topic)
	if ok {
		c.mu.Lock()
		c.partitions[topic] = n
		c.mu.Unlock()
	}
	return n, ok
}

// partitioner honours a partition chosen by a sink's partitioner (a record
// with Partition >= 0) and otherwise uses Kafka's default: murmur2 of the
// key, or round robin for records without a key.
type partitioner struct{}

func (partitioner) ForTopic(string) kgo.TopicPartitioner { return &topicPartitioner{} }

type topicPartitioner struct{ next int }

func (*topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 && int(r.Partition) < n {
		return int(r.Partition)
	}
	if r.Key == nil {
		p.next++
		return p.next % n
	}
	return int(partition.ForKey(r.Key, int32(n)))
}

// sendChangelog produces a changelog record to its task's partition and
// reports the offset the broker gave it.
func (c *collector) sendChangelog(topic string, part int32, key, value []byte, ts int64, ack func(offset int64, err error)) {
	if err := c.err(); err != nil {
		ack(-1, err)
		return
	}
	r := &kgo.Record{Topic: topic, Partition: part, Key: key, Value: value, Timestamp: timeFromMillis(ts)}
	c.sent.Add(1)
	c.client.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		c.promise(r, err)
		ack(r.Offset, err)
	})
}
