package kstream

import "github.com/kstreams-go/kstreams/internal/dsl"

// GlobalKTable is a table every instance of the application holds whole,
// read from every partition of its topic (Kafka Streams' GlobalKTable).
// Streams join it with JoinGlobal and LeftJoinGlobal; its StoreName is
// the store the test driver and interactive queries read.
type GlobalKTable[K, V any] = dsl.GlobalTable[K, V]

// GlobalTable reads topic into a global table. Each record sets the row of
// its key, a tombstone deletes it, a record without a key is dropped. The
// store is named by m (default "<topic>-STATE-STORE-<index>") and written
// with m's serdes, else c's. The source node is "<c.Name>-source" and the
// node writing the store c.Name (else KSTREAM-SOURCE-<index> and
// KTABLE-SOURCE-<index>). m's logging and caching settings are ignored:
// the topic is the store's changelog.
func GlobalTable[K, V any](b *Builder, c Consumed[K, V], topic string, m ...Materialized[K, V]) *GlobalKTable[K, V] {
	var mat Materialized[K, V]
	if len(m) > 0 {
		mat = m[len(m)-1]
	}
	return dsl.SourceGlobalTable(b, c, topic, mat)
}

// JoinGlobal joins each record of s with the row of g under
// keyMapper(key, value), and forwards joiner(value, row) under the
// record's key when the row exists. No repartition is needed, whatever the
// key: every task sees every row. A record with a nil value, or whose
// mapped key is a nil pointer or interface, is dropped. A record with a
// nil key is joined like any other (keyMapper gets the zero key). The
// processor is named KSTREAM-LEFTJOIN-<index>, as Kafka Streams names
// inner and left global joins alike.
func JoinGlobal[K, V, KG, VG, VR any](s *KStream[K, V], g *GlobalKTable[KG, VG], keyMapper func(key K, value V) KG, joiner func(value V, row VG) VR, name ...Named) *KStream[K, VR] {
	return dsl.JoinGlobal(s, g, keyMapper, joiner, name...)
}

// LeftJoinGlobal is JoinGlobal that also forwards the records without a
// row, as joiner(value, nil): those whose row does not exist and those
// whose mapped key is nil. Only records with a nil value are dropped.
func LeftJoinGlobal[K, V, KG, VG, VR any](s *KStream[K, V], g *GlobalKTable[KG, VG], keyMapper func(key K, value V) KG, joiner func(value V, row *VG) VR, name ...Named) *KStream[K, VR] {
	return dsl.LeftJoinGlobal(s, g, keyMapper, joiner, name...)
}
