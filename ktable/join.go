package ktable

import (
	"github.com/kstreams-go/kstreams/internal/dsl"
	"github.com/kstreams-go/kstreams/kstream"
)

// Join joins a and b by key: the result has a row for every key both have,
// joiner(a's row, b's row), updated whenever either side changes and
// deleted when either side's row is. Without m the result is not
// materialized (its StoreName is ""); with m it is kept in a store, named
// by m or KTABLE-MERGE-STATE-STORE-<index>. See "Joins" in the package doc.
func Join[K, V, VO, VR any](a *KTable[K, V], b *KTable[K, VO], joiner func(left V, right VO) VR, m ...kstream.Materialized[K, VR]) *KTable[K, VR] {
	return dsl.JoinTables(a, b, func(l *V, r *VO) VR { return joiner(*l, *r) }, false, false, materialized(m))
}

// LeftJoin is Join that keeps every row of a: where b has no row, joiner
// gets a nil right side; a row of b without one in a is left out.
func LeftJoin[K, V, VO, VR any](a *KTable[K, V], b *KTable[K, VO], joiner func(left V, right *VO) VR, m ...kstream.Materialized[K, VR]) *KTable[K, VR] {
	return dsl.JoinTables(a, b, func(l *V, r *VO) VR { return joiner(*l, r) }, true, false, materialized(m))
}

// OuterJoin is Join that keeps every row of either side: joiner gets nil
// for the side that has no row (never for both).
func OuterJoin[K, V, VO, VR any](a *KTable[K, V], b *KTable[K, VO], joiner func(left *V, right *VO) VR, m ...kstream.Materialized[K, VR]) *KTable[K, VR] {
	return dsl.JoinTables(a, b, joiner, true, true, materialized(m))
}

func materialized[K, V any](m []kstream.Materialized[K, V]) *kstream.Materialized[K, V] {
	if len(m) == 0 {
		return nil
	}
	return &m[len(m)-1]
}
