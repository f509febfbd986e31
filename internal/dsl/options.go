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

// Grouped says how a grouping repartitions its records.
type Grouped[K, V any] struct {
	// Name names the repartition topic "<application.id>-<Name>-repartition"
	// and its nodes (for GroupBy, also the key-selecting node). When empty
	// the topic is named after the aggregation's store, as Kafka Streams does.
	Name string
	// KeySerde and ValueSerde write the repartition topic and are the
	// store's defaults; nil: the stream's serdes, else DefaultSerde.
	KeySerde   serde.Serde[K]
	ValueSerde serde.Serde[V]
}

// Materialized says how an aggregation or table keeps its state store.
// The zero value is a cached, logged Pebble store with a generated name.
type Materialized[K, V any] struct {
	// StoreName names the store, its changelog topic
	// "<application.id>-<StoreName>-changelog" and, for a grouping without
	// a Grouped name, the repartition topic. Empty: a generated name such as
	// KSTREAM-AGGREGATE-STATE-STORE-0000000003, which changes when the
	// topology changes, so name every store whose data must survive an
	// upgrade.
	StoreName string
	// KeySerde and ValueSerde write the store; nil: the grouping's or
	// source's serdes, else DefaultSerde (Int64 for counts).
	KeySerde   serde.Serde[K]
	ValueSerde serde.Serde[V]
	// InMemory keeps the store in memory instead of Pebble on disk; it is
	// restored from its changelog after a restart.
	InMemory bool
	// LoggingDisabled stops backing the store by a changelog topic: its
	// data is then lost with the instance.
	LoggingDisabled bool
	// LogConfig holds extra changelog topic configs (the changelog is
	// always compacted).
	LogConfig map[string]string
	// CachingDisabled sends every update downstream at once instead of
	// collapsing the updates of a key between commits.
	CachingDisabled bool
	// KeyParser reads a key written as text, as in an interactive-query
	// URL. Nil: strings as they are, integers in decimal, other types as
	// JSON.
	KeyParser func(text string) (K, error)
	// Retention keeps a windowed aggregation's windows this long after
	// their start (sessions after their end); default and minimum: the
	// window size plus grace.
	Retention time.Duration
}

func lastOf[T any](opts []T) T {
	var zero T
	if len(opts) == 0 {
		return zero
	}
	return opts[len(opts)-1]
}
