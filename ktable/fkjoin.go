package ktable

import (
	"github.com/kstreams-go/kstreams/internal/dsl"
)

// TableJoined configures a foreign-key join (Kafka Streams' TableJoined):
// its Name names the join's internal topics, store and nodes, KeySerde
// and ForeignKeySerde write the keys that travel between the two tables.
// See "Foreign-key joins" in the package doc.
type TableJoined[K, KO any] = dsl.TableJoined[K, KO]

// FKJoinOption is an option of JoinOnForeignKey and LeftJoinOnForeignKey:
// a TableJoined[K, KO] or a kstream.Materialized[K, VR] of the result.
// Building fails, naming the option, when one does not fit the join's
// types.
type FKJoinOption = dsl.FKJoinOption

// JoinOnForeignKey joins each row of left with the row of right whose key
// fk returns for the left row's value: the result, keyed like left, holds
// joiner(left row, right row) for every left row whose right row exists.
// It is updated when either row changes, when a left row moves to another
// foreign key, and deleted when either row is, or when fk returns the
// zero KO (the row references nothing). The tables need not be
// co-partitioned. The result is materialized in a store named by a
// kstream.Materialized option, else KTABLE-FK-JOIN-OUTPUT-STATE-STORE-<index>.
func JoinOnForeignKey[K, V, KO, VO, VR any](left *KTable[K, V], right *KTable[KO, VO], fk func(value V) KO,
	joiner func(left V, right VO) VR, opts ...FKJoinOption) *KTable[K, VR] {
	return dsl.JoinOnForeignKey(left, right, fk, func(l V, r *VO) VR { return joiner(l, *r) }, false, opts)
}

// LeftJoinOnForeignKey is JoinOnForeignKey that keeps every row of left:
// joiner gets a nil right side where right has no row for the foreign key,
// or the row references nothing.
func LeftJoinOnForeignKey[K, V, KO, VO, VR any](left *KTable[K, V], right *KTable[KO, VO], fk func(value V) KO,
	joiner func(left V, right *VO) VR, opts ...FKJoinOption) *KTable[K, VR] {
	return dsl.JoinOnForeignKey(left, right, fk, joiner, true, opts)
}
