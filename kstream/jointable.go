package kstream

import (
	"github.com/kstreams-go/kstreams/internal/dsl"
	"github.com/kstreams-go/kstreams/serde"
)

// Joined says how a stream–table join reads its stream side: the join's
// name (which also names the repartition topic when the stream must be
// repartitioned first) and serdes (Kafka Streams' Joined).
type Joined[K, V, VT any] = dsl.Joined[K, V, VT]

// JoinedAs names a stream–table join: its node is name and, when the
// stream's key changed, its repartition topic
// "<application.id>-<name>-repartition".
func JoinedAs[K, V, VT any](name string) Joined[K, V, VT] {
	return Joined[K, V, VT]{Name: name}
}

// JoinedWith sets the serdes of a stream–table join: k and v write the
// stream's repartition topic (when there is one), vt the table's store when
// the table has none yet. A nil serde keeps the default.
func JoinedWith[K, V, VT any](k serde.Serde[K], v serde.Serde[V], vt serde.Serde[VT]) Joined[K, V, VT] {
	return Joined[K, V, VT]{KeySerde: k, ValueSerde: v, OtherValueSerde: vt}
}

// JoinTable joins each record of s with the row of t under the same key:
// the output record has s's key and timestamp and the value joiner(value,
// row). Records whose key has no row in t, and records with a nil key or
// value, produce nothing. Updates of t produce nothing either: they only
// change what later records of s find. See "Stream–table joins" in the
// package doc for repartitioning and co-partitioning.
func JoinTable[K, V, VT, VR any](s *KStream[K, V], t *KTable[K, VT], joiner func(value V, row VT) VR, j ...Joined[K, V, VT]) *KStream[K, VR] {
	return dsl.JoinStreamTable(s, t, func(v V, row *VT) VR { return joiner(v, *row) }, false, last(j))
}

// LeftJoinTable is JoinTable that also forwards the records whose key has
// no row in t: joiner gets a nil row for them. Records with a nil key or
// value still produce nothing.
func LeftJoinTable[K, V, VT, VR any](s *KStream[K, V], t *KTable[K, VT], joiner func(value V, row *VT) VR, j ...Joined[K, V, VT]) *KStream[K, VR] {
	return dsl.JoinStreamTable(s, t, joiner, true, last(j))
}
