package kstream

import (
	"time"

	"github.com/kstreams-go/kstreams/internal/dsl"
	"github.com/kstreams-go/kstreams/serde"
)

// JoinWindows bound a stream–stream join (Kafka Streams' JoinWindows): a
// left record at t joins the right records of its key in [t-before,
// t+after], so a right record at t joins the left records in [t-after,
// t+before]. Grace is how long after its window's end a record out of
// order is still taken. Make them with JoinTimeDifferenceAndGrace or
// JoinTimeDifferenceWithNoGrace, and make them asymmetric with Before and
// After.
type JoinWindows = dsl.JoinWindows

// StreamJoined says how a stream–stream join names its nodes (Name) and
// stores (StoreName), which serdes its stores use, whether they are in
// memory and whether they are logged (Kafka Streams' StreamJoined).
type StreamJoined[K, V, VO any] = dsl.StreamJoined[K, V, VO]

// JoinTimeDifferenceAndGrace joins records at most diff apart, either way,
// and takes records out of order up to grace after their window's end
// (Kafka Streams' JoinWindows.ofTimeDifferenceAndGrace).
func JoinTimeDifferenceAndGrace(diff, grace time.Duration) JoinWindows {
	return dsl.NewJoinWindows(diff, diff, grace)
}

// JoinTimeDifferenceWithNoGrace joins records at most diff apart, either
// way, with no grace (Kafka Streams' JoinWindows.ofTimeDifferenceWithNoGrace).
func JoinTimeDifferenceWithNoGrace(diff time.Duration) JoinWindows {
	return dsl.NewJoinWindows(diff, diff, 0)
}

// StreamJoinedAs names a stream–stream join's stores
// "<storeName>-this-join-store", "<storeName>-other-join-store" and so on,
// hence their changelog topics (Kafka Streams' StreamJoined.as).
func StreamJoinedAs[K, V, VO any](storeName string) StreamJoined[K, V, VO] {
	return StreamJoined[K, V, VO]{StoreName: storeName}
}

// StreamJoinedWith sets the serdes of a stream–stream join's stores: k for
// keys, v for the left values, vo for the right values; nil keeps the
// stream's serde.
func StreamJoinedWith[K, V, VO any](k serde.Serde[K], v serde.Serde[V], vo serde.Serde[VO]) StreamJoined[K, V, VO] {
	return StreamJoined[K, V, VO]{KeySerde: k, ValueSerde: v, OtherValueSerde: vo}
}

// Join joins left and right by key within w: for every pair of records of
// one key whose timestamps fit the window, one record with that key, the
// value joiner(leftValue, rightValue) and the later timestamp of the two,
// forwarded when the second of the pair arrives. Records with a nil key or
// value and records later than grace are dropped. See "Stream–stream
// joins" in the package doc for the stores, repartitioning and
// co-partitioning.
func Join[K, V, VO, VR any](left *KStream[K, V], right *KStream[K, VO], joiner func(left V, right VO) VR, w JoinWindows, sj ...StreamJoined[K, V, VO]) *KStream[K, VR] {
	return dsl.JoinStreams(left, right, func(l *V, r *VO) VR { return joiner(*l, *r) }, w, false, false, last(sj))
}

// LeftJoin is Join that also forwards, for every left record no right
// record matched, joiner(leftValue, nil), with the left record's
// timestamp, once stream time shows no match can still arrive; a match
// that arrives in time takes its place.
func LeftJoin[K, V, VO, VR any](left *KStream[K, V], right *KStream[K, VO], joiner func(left V, right *VO) VR, w JoinWindows, sj ...StreamJoined[K, V, VO]) *KStream[K, VR] {
	return dsl.JoinStreams(left, right, func(l *V, r *VO) VR { return joiner(*l, r) }, w, true, false, last(sj))
}

// OuterJoin is LeftJoin that does the same for right records no left
// record matched: joiner(nil, rightValue).
func OuterJoin[K, V, VO, VR any](left *KStream[K, V], right *KStream[K, VO], joiner func(left *V, right *VO) VR, w JoinWindows, sj ...StreamJoined[K, V, VO]) *KStream[K, VR] {
	return dsl.JoinStreams(left, right, joiner, w, true, true, last(sj))
}
