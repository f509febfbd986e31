package dsl

import (
	"time"

	"github.com/kstreams-go/kstreams/serde"
)

// Named gives an operator a name of its own instead of a generated one.
type Named string

func nameOf(n []Named) string {
	if len(n) == 0 {
		return ""
	}
	return string(n[len(n)-1])
}

// Consumed says how a source topic is read.
type Consumed[K, V any] struct {
	Name       string
	KeySerde   serde.Serde[K] // nil: DefaultSerde
	ValueSerde serde.Serde[V] // nil: DefaultSerde
	// TimestampExtractor picks the record's event time (default: the Kafka
	// record's timestamp).
	TimestampExtractor func(key K, value V, recordTimestamp time.Time) time.Time
}

// WithName returns a copy with the source node's name set.
func (c Consumed[K, V]) WithName(name string) Consumed[K, V] { c.Name = name; return c }

// WithTimestampExtractor returns a copy with the extractor set.
func (c Consumed[K, V]) WithTimestampExtractor(fn func(key K, value V, recordTimestamp time.Time) time.Time) Consumed[K, V] {
	c.TimestampExtractor = fn
	return c
}

// Produced says how a sink writes.
type Produced[K, V any] struct {
	Name       string
	KeySerde   serde.Serde[K] // nil: the stream's serde, else DefaultSerde
	ValueSerde serde.Serde[V]
	// Partitioner picks the partition; ok=false (or nil) falls back to
	// murmur2 of the serialized key, as Kafka's default partitioner.
	Partitioner func(topic string, key K, value V, numPartitions int32) (partition int32, ok bool)
}

// WithName returns a copy with the sink node's name set.
func (p Produced[K, V]) WithName(name string) Produced[K, V] { p.Name = name; return p }

// WithPartitioner returns a copy with the partitioner set.
func (p Produced[K, V]) WithPartitioner(fn func(topic string, key K, value V, numPartitions int32) (int32, bool)) Produced[K, V] {
	p.Partitioner = fn
	return p
}

// Repartitioned says how an explicit repartition topic is made.
type Repartitioned[K, V any] struct {
	// Name of the topic, without the application id and "-repartition"
	// suffix; generated when empty.
	Name string
	// NumPartitions of the topic; 0: as many as the upstream source topics.
	NumPartitions int32
	KeySerde      serde.Serde[K]
	ValueSerde    serde.Serde[V]
	Partitioner   func(topic string, key K, value V, numPartitions int32) (partition int32, ok bool)
}
