// Package ktable is the typed DSL for tables: changelog streams in which
// each record is the latest value of its key (Kafka Streams' KTable). A
// table comes from reading a topic (Table) or from an aggregation
// (kstream.Count, Reduce, Aggregate); it is kept in a state store that the
// test driver and interactive queries can read (KTable.StoreName).
//
// Tables are typed like streams: operators that keep the types are methods
// (t.Filter, t.FilterNot, t.ToStream), type-changing ones are functions
// here (MapValues, GroupBy, Count, Reduce, Aggregate). The handle types
// live in internal/dsl and are aliased here and in kstream, so a
// *ktable.KTable is a *kstream.KTable.
//
// # Updates
//
// Between nodes a table forwards, per updated key, a change of the new
// value and the value it replaced (nil: none). A nil new value is a delete:
// a tombstone read by Table, a row a Filter drops (forwarded as a delete,
// as Kafka Streams does), or an aggregation whose reducer returned a nil
// pointer. ToStream turns deletes into records with a nil value.
//
// A materialized table writes through a cache by default: between two
// commits, repeated updates of a key reach downstream nodes once, with the
// latest value (Materialized.CachingDisabled forwards every update).
//
// # Re-grouping
//
// GroupBy re-keys a table through a repartition topic
// "<application.id>-<name>-repartition". When a row changes, its old value
// is subtracted from the aggregate of its old key and its new value added
// to that of its new key; if the key stays the same, both travel in one
// record. The repartition record's value is Kafka Streams' Change layout
// (its ChangedSerializer), so Java and Go applications read each other's
// topics. The last byte is a flag that says what precedes it:
//
//	old only:  old value | 0x00
//	new only:  new value | 0x01
//	both:      zigzag varint len(new value) | new value | old value | 0x02
//
// The values inside are written with the grouping's value serde. Flags 3,
// 4 and 5 (the same with an "is latest" byte before the flag, written by
// Kafka Streams for versioned tables) are read as well.
//
// # Joins
//
// Join, LeftJoin and OuterJoin join two tables by key into a table (Kafka
// Streams' KTable#join, leftJoin and outerJoin). The result has a row for a
// key when both tables have one (Join), when the left table has one
// (LeftJoin), or when either has (OuterJoin); the joiner gets nil for a
// missing side, never for a side the join requires. An update on either
// side looks up the other side's row in that side's store and forwards the
// change of the joined row: the new row and the row it replaces, as Kafka
// Streams' Change(new, old), so a grouping or aggregation of the result
// stays right; a joined row that stops existing is forwarded as a delete.
// A change from no row to no row is not forwarded (Kafka Streams forwards
// some, which downstream only become tombstones of keys never written). The
// inputs' write caches work as for any table: with caching on, a side's
// updates reach the join at commit, collapsed per key, and the join reads
// the other side's latest row, cached or not.
//
// Each side's join node reads the other side's store, so the two tables'
// source topics fall into one sub-topology and must be co-partitioned
// (checked when the application starts). A side that is not materialized
// (Filter, MapValues) gets a store for the join, as in kstream's
// stream–table joins. Without a Materialized option the result is not
// materialized (StoreName is ""); with one it is kept in a store named by
// it, else KTABLE-MERGE-STATE-STORE-<index>, cached and logged like any
// table store, and the changes it forwards carry the replaced row as that
// store held it. Nodes are named as in Kafka Streams: KTABLE-JOINTHIS-<index>
// below the left table and KTABLE-JOINOTHER-<index> below the right, both
// feeding KTABLE-MERGE-<index>. A joined row carries the timestamp of the
// update that caused it (Kafka Streams takes the later of both rows', which
// needs timestamped stores).
//
// # Foreign-key joins
//
// JoinOnForeignKey and LeftJoinOnForeignKey join each row of a left table
// with the row of a right table whose key a function takes from the left
// row's value (Kafka Streams' foreign-key join, KIP-213); the tables need
// not be co-partitioned. A left row subscribes to its foreign key through
// the topic "<application.id>-<name>-subscription-registration-topic",
// keyed by the foreign key and so read with the right table (same
// partition count); the right side keeps subscriptions in the store
// "<name>-subscription-store" and answers each, and every subscriber again
// when a right row changes, through
// "<application.id>-<name>-subscription-response-topic", keyed by the left
// key and sent to the subscribing row's partition. <name> is the
// TableJoined name, else generated (KTABLE-FK-JOIN-SUBSCRIPTION-
// REGISTRATION-<index> and -RESPONSE-<index>, as Kafka Streams names them).
// A left row that moves to another foreign key withdraws its old
// subscription; every subscription carries a 128-bit Murmur3 hash of the
// left value it was made for, and an answer whose hash is not that of the
// row's current value is dropped, so no result is ever joined under a
// foreign key the row has left. A foreign key equal to its type's zero
// value ("" or 0; use a pointer type where those are real keys) references
// nothing: the inner join has no row for it, the left join joins it with a
// nil right side. Subscriptions, answers and the subscription store's keys
// are byte-compatible with Kafka Streams' (SubscriptionWrapper version 1,
// SubscriptionResponseWrapper version 0, CombinedKey; the hash uses Kafka's
// seed), so a Java application reads our topics and changelog and the
// other way round. Unlike Kafka Streams: the result is always materialized
// (named by a Materialized option, else
// KTABLE-FK-JOIN-OUTPUT-STATE-STORE-<index>), since without a store the
// value a result replaces is unknown; an input that is not materialized
// gets a store; a result carries the timestamp of the update that caused
// it (Kafka takes the later of both rows'); the right table's topic must be
// partitioned by murmur2 of its serialized keys (there is no TableJoined
// partitioner); and the left value is hashed as serialized for its store's
// changelog topic rather than a "-vh" pseudo topic, which only matters to
// serdes that depend on the topic name.
//
// # Naming
//
// Generated names follow Kafka Streams: a source table's store is
// "<topic>-STATE-STORE-<index>" and its node KTABLE-SOURCE-<index>;
// aggregations of a grouped table use KTABLE-AGGREGATE-STATE-STORE-<index>
// and, when the Grouped has no name, a repartition topic named after the
// store. Name stores (Materialized.StoreName) and groupings (Grouped.Name)
// whose names must survive topology changes.
package ktable

import (
	"github.com/kstreams-go/kstreams/internal/dsl"
	"github.com/kstreams-go/kstreams/kstream"
)

// KeyValue is a table row.
type KeyValue[K, V any] = kstream.KeyValue[K, V]

// KTable is a typed table; the same type as kstream.KTable.
type KTable[K, V any] = dsl.Table[K, V]

// KGroupedTable is a table re-keyed by GroupBy, waiting for Count, Reduce
// or Aggregate (Kafka Streams' KGroupedTable).
type KGroupedTable[K, V any] = dsl.GroupedTable[K, V]

// Table reads topic as a table: each record sets the value of its key, a
// tombstone (nil value) deletes it, a record without a key is dropped. The
// table is kept in a store named by m (default "<topic>-STATE-STORE-<index>")
// with the Consumed serdes unless m gives others. The source node is
// c.Name (else generated) and the table node "<c.Name>-table-source"
// (else KTABLE-SOURCE-<index>).
func Table[K, V any](b *kstream.Builder, c kstream.Consumed[K, V], topic string, m ...kstream.Materialized[K, V]) *KTable[K, V] {
	var mat kstream.Materialized[K, V]
	if len(m) > 0 {
		mat = m[len(m)-1]
	}
	return dsl.SourceTable(b, c, topic, mat)
}

// MapValues maps the value of every row. The result is not materialized
// (its StoreName is ""); a nil pointer result deletes the row.
func MapValues[K, V, VR any](t *KTable[K, V], fn func(value V) VR, name ...kstream.Named) *KTable[K, VR] {
	return dsl.MapTableValues(t, func(_ K, v V) VR { return fn(v) }, name...)
}

// MapValuesWithKey is MapValues seeing the key.
func MapValuesWithKey[K, V, VR any](t *KTable[K, V], fn func(key K, value V) VR, name ...kstream.Named) *KTable[K, VR] {
	return dsl.MapTableValues(t, fn, name...)
}

// GroupBy re-keys the table for an aggregation: fn gives the key and value
// each row is aggregated under. Rows move between keys as they change (see
// the package doc). A Grouped name names the selecting node and the
// repartition topic.
func GroupBy[K, V, KR, VR any](t *KTable[K, V], fn func(key K, value V) (KR, VR), g ...kstream.Grouped[KR, VR]) *KGroupedTable[KR, VR] {
	var grp kstream.Grouped[KR, VR]
	if len(g) > 0 {
		grp = g[len(g)-1]
	}
	return dsl.GroupTable(t, fn, grp)
}

// Count counts the rows grouped under each key. A key whose rows all left
// keeps the count 0 (it is not deleted), as in Kafka Streams.
func Count[K, V any](g *KGroupedTable[K, V], m ...kstream.Materialized[K, int64]) *KTable[K, int64] {
	return dsl.CountTable(g, m...)
}

// Reduce combines the rows grouped under each key: adder(agg, v) adds a
// row, subtractor(agg, v) takes out a row's old value. The first row of a
// key is its aggregate; a nil pointer result deletes the key.
func Reduce[K, V any](g *KGroupedTable[K, V], adder, subtractor func(agg, value V) V, m ...kstream.Materialized[K, V]) *KTable[K, V] {
	return dsl.ReduceTable(g, adder, subtractor, m...)
}

// Aggregate folds the rows grouped under each key into an aggregate that
// starts as init(): adder adds a row, subtractor takes out a row's old
// value.
func Aggregate[K, V, VA any](g *KGroupedTable[K, V], init func() VA, adder, subtractor func(key K, value V, agg VA) VA, m ...kstream.Materialized[K, VA]) *KTable[K, VA] {
	return dsl.AggregateTable(g, init, adder, subtractor, m...)
}
