// Package kstream is the typed DSL for record streams: build a topology of
// sources, stateless operators, branches, repartitions and sinks, then hand
// it to kstreams.New to run or to testutil.NewDriver to test.
//
// Two Go constraints shape the API, and are solved once here:
//
//   - Methods cannot have type parameters of their own. Operators that keep
//     the key and value types are methods (s.Filter, s.Peek, s.To,
//     s.Split, s.Repartition, s.Merge); operators that change a type are
//     package functions taking the stream first: kstream.Map(s, fn),
//     kstream.MapValues(s, fn), kstream.SelectKey(s, fn), kstream.FlatMap,
//     kstream.FlatMapValues, kstream.Process, kstream.ProcessValues.
//   - kstream and ktable return each other's types (a stream is grouped
//     into a table, a table turns back into a stream). The typed handles
//     live in one internal package (internal/dsl) and both public
//     packages re-export them with type aliases, so there is no import
//     cycle and a *kstream.KStream is the very same type everywhere.
//
// Between nodes, records travel as Go values; serdes are used only at
// sources and sinks. A sink without an explicit serde uses the serde the
// stream was read with, else the built-in serde for string, []byte, int32,
// int64 and float64, else JSON.
//
// Generated node names are KSTREAM-<OP>-<10-digit index>, as in Kafka
// Streams; they change when operators are added before them, so name
// (kstream.Named) anything whose name must survive topology changes.
package kstream

import (
	"github.com/kstreams-go/kstreams/internal/dsl"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
)

// Builder describes a topology.
type Builder = dsl.Builder

// Topology is a described topology, ready for kstreams.New.
type Topology = topology.Topology

// KStream is a typed record stream (Kafka Streams' KStream).
type KStream[K, V any] = dsl.Stream[K, V]

// BranchedStream collects the branches of Split.
type BranchedStream[K, V any] = dsl.BranchedStream[K, V]

// Named names an operator (instead of a generated KSTREAM-<OP>-<index>).
type Named = dsl.Named

// Consumed says how a source topic is read (serdes, name, timestamps).
type Consumed[K, V any] = dsl.Consumed[K, V]

// Produced says how a sink writes (serdes, name, partitioner).
type Produced[K, V any] = dsl.Produced[K, V]

// Repartitioned says how Repartition makes its topic.
type Repartitioned[K, V any] = dsl.Repartitioned[K, V]

// RecordMetadata is where a record came from: topic, partition, offset.
type RecordMetadata = topology.Metadata

// Header is one Kafka record header.
type Header = topology.Header

// KeyValue is a key and a value, as FlatMap returns them.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// NewBuilder returns an empty topology builder.
func NewBuilder() *Builder { return dsl.NewBuilder() }

// ConsumedWith reads keys and values with the given serdes.
func ConsumedWith[K, V any](k serde.Serde[K], v serde.Serde[V]) Consumed[K, V] {
	return Consumed[K, V]{KeySerde: k, ValueSerde: v}
}

// ProducedWith writes keys and values with the given serdes.
func ProducedWith[K, V any](k serde.Serde[K], v serde.Serde[V]) Produced[K, V] {
	return Produced[K, V]{KeySerde: k, ValueSerde: v}
}

// Stream reads one or more topics as a stream. Records are taken across a
// task's partitions lowest timestamp first.
func Stream[K, V any](b *Builder, c Consumed[K, V], topics ...string) *KStream[K, V] {
	return dsl.Source(b, c, topics...)
}
