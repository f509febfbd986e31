package kstream

import (
	"github.com/kstreams-go/kstreams/internal/dsl"
	"github.com/kstreams-go/kstreams/serde"
)

// KTable is a typed changelog stream materialized as a table (Kafka
// Streams' KTable); the same type as ktable.KTable. Aggregations return
// one; its operators are in package ktable.
type KTable[K, V any] = dsl.Table[K, V]

// KGroupedStream is a stream grouped by key, waiting for Count, Reduce or
// Aggregate (Kafka Streams' KGroupedStream).
type KGroupedStream[K, V any] = dsl.GroupedStream[K, V]

// Grouped says how a grouping repartitions: the repartition topic's name
// and serdes.
type Grouped[K, V any] = dsl.Grouped[K, V]

// Materialized says how an aggregation or a table keeps its store: name,
// serdes, Pebble or memory, changelog and cache.
type Materialized[K, V any] = dsl.Materialized[K, V]

// GroupedAs names a grouping's repartition topic "<name>-repartition".
func GroupedAs[K, V any](name string) Grouped[K, V] { return Grouped[K, V]{Name: name} }

// GroupedWith sets a grouping's serdes.
func GroupedWith[K, V any](k serde.Serde[K], v serde.Serde[V]) Grouped[K, V] {
	return Grouped[K, V]{KeySerde: k, ValueSerde: v}
}

// MaterializedAs names a store (and its changelog topic
// "<application.id>-<name>-changelog").
func MaterializedAs[K, V any](name string) Materialized[K, V] {
	return Materialized[K, V]{StoreName: name}
}

// MaterializedWith sets a store's serdes.
func MaterializedWith[K, V any](k serde.Serde[K], v serde.Serde[V]) Materialized[K, V] {
	return Materialized[K, V]{KeySerde: k, ValueSerde: v}
}

// GroupByKey groups the stream by its key for an aggregation. When the key
// was changed since the stream's source (Map, SelectKey, FlatMap, Process),
// the aggregation first writes the records through a repartition topic, so
// that every record of a key reaches the same task.
func GroupByKey[K, V any](s *KStream[K, V], g ...Grouped[K, V]) *KGroupedStream[K, V] {
	return dsl.GroupByKey(s, last(g))
}

// GroupBy groups the stream by the key fn selects; the aggregation always
// repartitions. With a Grouped name, the key-selecting node takes that
// name too.
func GroupBy[K, V, KR any](s *KStream[K, V], fn func(key K, value V) KR, g ...Grouped[KR, V]) *KGroupedStream[KR, V] {
	return dsl.GroupBy(s, fn, last(g))
}

// Count counts the records of each key into a table of int64, stored as
// Kafka's 8-byte big-endian long. Records with a nil key or value are
// dropped. As in Kafka Streams, passing a Materialized without a store
// name uses up one more generated index than passing none, which shifts
// later generated names.
func Count[K, V any](g *KGroupedStream[K, V], m ...Materialized[K, int64]) *KTable[K, int64] {
	return dsl.Count(g, m...)
}

// Reduce combines the values of each key: the first value of a key is its
// aggregate, each later value v makes it reducer(agg, v). Records with a
// nil key or value are dropped.
func Reduce[K, V any](g *KGroupedStream[K, V], reducer func(agg, value V) V, m ...Materialized[K, V]) *KTable[K, V] {
	return dsl.Reduce(g, reducer, m...)
}

// Aggregate folds the values of each key into an aggregate of type VA that
// starts as init(). Records with a nil key or value are dropped; an
// aggregator returning a nil pointer deletes the key.
func Aggregate[K, V, VA any](g *KGroupedStream[K, V], init func() VA, agg func(key K, value V, agg VA) VA, m ...Materialized[K, VA]) *KTable[K, VA] {
	return dsl.Aggregate(g, init, agg, m...)
}

func last[T any](opts []T) T {
	var zero T
	if len(opts) == 0 {
		return zero
	}
	return opts[len(opts)-1]
}
