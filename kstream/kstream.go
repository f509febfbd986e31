// Package kstream is the typed DSL for record streams: build a topology of
// sources, stateless operators, branches, repartitions, aggregations and
// sinks, then hand it to kstreams.New to run or to testutil.NewDriver to
// test.
//
// Two Go constraints shape the API, and are solved once here:
//
//   - Methods cannot have type parameters of their own. Operators that keep
//     the key and value types are methods (s.Filter, s.Peek, s.To,
//     s.Split, s.Repartition, s.Merge); operators that change a type are
//     package functions taking the stream first: kstream.Map(s, fn),
//     kstream.MapValues(s, fn), kstream.SelectKey(s, fn), kstream.FlatMap,
//     kstream.FlatMapValues, kstream.Process, kstream.ProcessValues, and
//     the groupings and aggregations (kstream.GroupBy(s, fn),
//     kstream.Count(g), kstream.Reduce, kstream.Aggregate).
//   - kstream and ktable return each other's types (a stream is grouped
//     into a table, a table turns back into a stream). The typed handles
//     live in one internal package (internal/dsl) and both public
//     packages re-export them with type aliases, so there is no import
//     cycle and a *kstream.KStream (or *kstream.KTable, which is
//     *ktable.KTable) is the very same type everywhere.
//
// Between nodes, records travel as Go values; serdes are used only at
// sources and sinks. A sink without an explicit serde uses the serde the
// stream was read with, else the built-in serde for string, []byte, int32,
// int64 and float64, else JSON.
//
// Generated node names are KSTREAM-<OP>-<10-digit index>, as in Kafka
// Streams; they change when operators are added before them, so name
// (kstream.Named) anything whose name must survive topology changes.
//
// # Grouping and aggregation
//
// GroupByKey and GroupBy group a stream for an aggregation: Count, Reduce
// or Aggregate, each of which returns a table (KTable, operated on by
// package ktable) kept in a state store:
//
//	words := kstream.FlatMapValues(lines, strings.Fields)
//	counts := kstream.Count(kstream.GroupBy(words, func(_, w string) string { return w }),
//		kstream.MaterializedAs[string, int64]("counts"))
//	counts.ToStream().To("word-counts")
//
// Every record of a key must reach the same task, so a grouping
// repartitions when the key may have changed: GroupBy always, GroupByKey
// when an operator since the source changed the key (Map, SelectKey,
// FlatMap, Process). The aggregation writes the records to
// "<application.id>-<name>-repartition" and aggregates them in a new
// sub-topology. As in Kafka Streams, <name> is the Grouped name if given,
// else the store's name, so a generated store name gives a topic such as
// KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition (whose nodes get
// generated names), and MaterializedAs("counts") gives counts-repartition
// (nodes counts-repartition-filter, -sink and -source). A named grouping
// shares one repartition topic between its aggregations.
//
// Materialized configures the store: its name (else generated:
// KSTREAM-AGGREGATE-STATE-STORE-<index>, KSTREAM-REDUCE-STATE-STORE-<index>),
// serdes, Pebble or memory, the changelog topic
// "<application.id>-<store>-changelog" (on unless LoggingDisabled) and the
// write cache (on unless CachingDisabled). Store values are the serialized
// aggregate, as Kafka Streams writes them (a count is an 8-byte big-endian
// long), so the changelog reads the same from Java. With the cache, updates
// of a key between two commits reach downstream once, with the latest
// value; without it, every update does. Records with a nil key or value
// are dropped. A table's update keeps the timestamp of the record that
// caused it (Kafka Streams takes the maximum of that and the previous
// update's, which needs timestamped stores).
//
// # Stream–stream joins
//
// Join, LeftJoin and OuterJoin join two streams by key within JoinWindows
// (Kafka Streams' KStream#join(KStream, ValueJoiner, JoinWindows)):
//
//	w := kstream.JoinTimeDifferenceAndGrace(5*time.Minute, time.Minute)
//	paid := kstream.LeftJoin(orders, payments, func(o Order, p *Payment) Paid {
//		return settle(o, p) // p is nil for an order no payment matched
//	}, w)
//
// A left record at t joins each right record of its key at [t-before,
// t+after], both ends inclusive: before = after = the time difference,
// unless Before or After make the window asymmetric. Each pair is
// forwarded once, when its second record arrives, with the key and the
// later of the two timestamps. Both sides wait in window stores that keep
// duplicates, never cached, for before+after+grace (plus 1 ms). Time is
// the join's own stream time, the highest timestamp either side has seen;
// a record whose window ended more than grace before it (left:
// t+after+grace, right: t+before+grace below stream time) is late: dropped
// and counted in kstreams_dropped_records_total{reason="late"}. Kafka
// Streams instead still joins such a record with what its stores hold.
//
// LeftJoin also forwards joiner(left, nil), at the left record's
// timestamp, for a left record no right record matched; OuterJoin does the
// same for right records, joiner(nil, right). Such a record waits in a
// shared store until stream time passes t+before+after+grace, when no
// record that could still match it would be taken, so a null result is
// final: a match that arrives in time replaces it, and no record gets
// both. Kafka Streams forwards null results from t+after+grace on (at once
// for a record whose window has passed), so an out-of-order record of the
// other side can still join one after its null result. Records with a nil
// key or value are dropped and counted (reason "null-key-or-value"),
// keyless records of a left or outer join too (see stream–table joins for
// why). A stream joined with itself joins every record with each one in
// its window, itself included, as in Kafka Streams.
//
// Stores take Kafka Streams' names, hence changelog topics
// "<application.id>-<store>-changelog": with StreamJoinedAs("pay"),
// pay-this-join-store, pay-other-join-store, and
// pay-left-shared-join-store for a left join ("outer-" in the names of an
// outer join's stores, and of the other side's store of a left join);
// without, generated names such as KSTREAM-JOINTHIS-0000000004-store and
// KSTREAM-OUTERSHARED-0000000004-store. StreamJoined also sets the node
// names (Name), the stores' serdes, memory or Pebble, and logging. The
// changelogs use Kafka's layouts (window keys with a sequence number; the
// shared store's timestamp|side|key keys and value lists), so they read
// the same from Java. Each side's join node reads the other side's store,
// so the two input streams end in one sub-topology whose source topics
// must be co-partitioned, which the application checks at start, naming
// each topic with its partition count. A side whose key changed (Map,
// SelectKey, FlatMap, Process) is written through a repartition topic
// first: "<application.id>-<Name>-left-repartition" (or -right-), else
// named after the side's node, as in
// KSTREAM-KEY-SELECT-0000000001-repartition; it is created with the other
// side's partition count.
//
// # Stream–table joins
//
// JoinTable and LeftJoinTable join each record of a stream with the row a
// table holds under the record's key (Kafka Streams' KStream#join(KTable)):
//
//	enriched := kstream.LeftJoinTable(clicks, users, func(c Click, u *User) Enriched {
//		return enrich(c, u) // u is nil for a click whose user has no row
//	})
//
// Only the stream side produces output: a record looks up the table's
// current row (through the table's write cache, so it sees every update
// already processed), and an update of the table only changes what later
// records find. The lookup is not time-aware: a record joins the row the
// table holds when the record is processed, whatever the two timestamps,
// as in Kafka Streams for tables that are not versioned (we have no
// versioned stores). The inner join forwards the records that find a row,
// the left join every record; the output keeps the record's key and
// timestamp. Records with a nil key or value are dropped and counted in
// kstreams_dropped_records_total{reason="null-key-or-value"}. Kafka Streams
// 3.7 and later pass a keyless record of a left join on with no row; we
// drop it as earlier versions do, because a Go key type has no null to
// hand on: later operators would see its zero value as a real key.
//
// The join node reads the table's store, so the stream's and the table's
// source topics fall into one sub-topology and must be co-partitioned:
// equal partition counts, and keys partitioned alike (murmur2 of the
// serialized key). The application checks the counts at start and fails
// naming each topic with its count. When the stream's key changed since its
// source (Map, SelectKey, FlatMap, Process), the join first writes the
// stream through the repartition topic "<application.id>-<name>-repartition",
// where <name> is the Joined name, else the stream's node name (as in
// KSTREAM-KEY-SELECT-0000000003-repartition); the topic is created with the
// table topic's partition count, as Kafka Streams does. Joined also gives
// that topic's serdes. A table that is not materialized (Filter, MapValues)
// gets a store of its own for the join, named as Kafka Streams names a
// materialized operator's store (KTABLE-FILTER-STATE-STORE-<index>), and the
// table handle then names it; Kafka Streams instead computes such rows on
// demand from the nearest materialized table, an operator chain we do not
// keep. Joins of windowed tables are not supported.
//
// # Global tables
//
// GlobalTable reads a topic into a global table (Kafka Streams'
// GlobalKTable): every instance of the application holds all of it,
// reading every partition of the topic itself, outside the consumer group.
// JoinGlobal and LeftJoinGlobal join a stream with it through a key
// mapper, so the stream needs neither the table's key nor its partitioning:
//
//	orgs := kstream.GlobalTable(b, kstream.ConsumedWith(serde.String(), serde.JSON[Org]()), "orgs")
//	named := kstream.LeftJoinGlobal(flows, orgs,
//		func(_ string, f Flow) string { return prefix16(f.SrcIP) },
//		func(f Flow, o *Org) Named { return name(f, o) }) // o is nil without a row
//
// The table's store and the two nodes that fill it belong to no
// sub-topology and make no task; the join stays in the stream's
// sub-topology, which does not grow to include the table's topic. Describe
// prints the store after the sub-topologies, numbered after them ("for
// global store (will not generate tasks)"); Kafka Streams numbers it among
// them in the order of declaration, so its task ids can skip a number and
// ours do not. The topic is the store's changelog: there is no
// "-changelog" topic. At run time an instance reads every global topic up
// to its end before it joins the group, so no record is joined against a
// table missing rows the topic held at start; afterwards, updates reach
// each instance's copy a little after they are written, and a record
// processed in between sees the old row, as in Kafka Streams (see package
// kstreams). A tombstone deletes a row and a record without a key is
// dropped (reason "null-key").
//
// As Kafka Streams since KIP-962: a stream record with a nil value is
// dropped (reason "null-key-or-value"); a record with a nil key is joined
// like any other (keyMapper gets the zero key, the output keeps the nil
// key), since the mapper may take its table key from the value; a mapper
// returning a nil pointer or interface means no row, so the inner join
// drops the record (counted as above) and the left join passes nil to the
// joiner. The join node is named KSTREAM-LEFTJOIN-<index> for both joins,
// as in Kafka Streams. Processors of the Processor API may read a global
// store too (connect them with Stores); writes to it fail with
// state.ErrReadOnly.
//
// Processor API stores: AddStateStore declares a store for processors
// added by Process or ProcessValues; a processor gets it from its context
// as a state.KeyValueStore and may read it through state.Typed.
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
