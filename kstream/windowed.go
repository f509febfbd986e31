package kstream

import (
	"time"

	"github.com/kstreams-go/kstreams/internal/dsl"
	"github.com/kstreams-go/kstreams/serde"
)

// Windowed is the key of a windowed aggregation's table: the record key
// and its window, Start and End in epoch milliseconds (a time window is
// [Start, End), a sliding or session window [Start, End]).
type Windowed[K any] = serde.Windowed[K]

// TimeWindows are fixed-size windows aligned to the epoch (Kafka Streams'
// TimeWindows).
type TimeWindows = dsl.TimeWindows

// SlidingWindows are windows of a maximum time difference between records
// (Kafka Streams' SlidingWindows, KIP-450).
type SlidingWindows = dsl.SlidingWindows

// SessionWindows are sessions of activity separated by an inactivity gap.
type SessionWindows = dsl.SessionWindows

// TimeWindowedKStream is a grouped stream cut into time or sliding windows.
type TimeWindowedKStream[K, V any] = dsl.TimeWindowedStream[K, V]

// SessionWindowedKStream is a grouped stream cut into sessions.
type SessionWindowedKStream[K, V any] = dsl.SessionWindowedStream[K, V]

// Suppressed says how KTable.Suppress holds updates back.
type Suppressed = dsl.Suppressed

// BufferConfig bounds a suppression buffer.
type BufferConfig = dsl.BufferConfig

// What a full suppression buffer does.
const (
	EmitEarlyWhenFull = dsl.EmitEarlyWhenFull
	ShutDownWhenFull  = dsl.ShutDownWhenFull
)

// TumblingWindows are back-to-back windows of size: [0, size), [size,
// 2·size), ... A record later than its window's end plus grace (in stream
// time) is dropped.
func TumblingWindows(size, grace time.Duration) TimeWindows {
	return TimeWindows{Size: size, Advance: size, Grace: grace}
}

// HoppingWindows are windows of size starting every advance, so a record
// falls into size/advance windows.
func HoppingWindows(size, advance, grace time.Duration) TimeWindows {
	return TimeWindows{Size: size, Advance: advance, Grace: grace}
}

// SlidingWindowsOf are sliding windows of maxDifference: two records share
// a window when their timestamps are at most maxDifference apart.
func SlidingWindowsOf(maxDifference, grace time.Duration) SlidingWindows {
	return SlidingWindows{TimeDifference: maxDifference, Grace: grace}
}

// SessionWindowsOf are sessions that end after an inactivity gap.
func SessionWindowsOf(gap, grace time.Duration) SessionWindows {
	return SessionWindows{Gap: gap, Grace: grace}
}

// WindowedBy cuts a grouped stream into time windows.
func WindowedBy[K, V any](g *KGroupedStream[K, V], w TimeWindows) *TimeWindowedKStream[K, V] {
	return dsl.WindowedBy(g, w)
}

// WindowedBySliding cuts a grouped stream into sliding windows.
func WindowedBySliding[K, V any](g *KGroupedStream[K, V], w SlidingWindows) *TimeWindowedKStream[K, V] {
	return dsl.WindowedBySliding(g, w)
}

// WindowedBySession cuts a grouped stream into sessions.
func WindowedBySession[K, V any](g *KGroupedStream[K, V], w SessionWindows) *SessionWindowedKStream[K, V] {
	return dsl.WindowedBySession(g, w)
}

// WindowedCount counts each key's records per window. The table's store
// is a window store behind a write cache, as a key-value aggregation's:
// a window's updates between two commits are forwarded once, with the
// latest count (Materialized.CachingDisabled forwards every update; use
// Suppress for one final result per window). On a topic its keys take
// serde.TimeWindowed.
func WindowedCount[K, V any](w *TimeWindowedKStream[K, V], m ...Materialized[K, int64]) *KTable[Windowed[K], int64] {
	return dsl.WindowedCount(w, m...)
}

// WindowedReduce combines each key's values per window.
func WindowedReduce[K, V any](w *TimeWindowedKStream[K, V], reducer func(agg, value V) V, m ...Materialized[K, V]) *KTable[Windowed[K], V] {
	return dsl.WindowedReduce(w, reducer, m...)
}

// WindowedAggregate folds each key's values per window into an aggregate
// that starts as init().
func WindowedAggregate[K, V, VA any](w *TimeWindowedKStream[K, V], init func() VA, agg func(key K, value V, agg VA) VA, m ...Materialized[K, VA]) *KTable[Windowed[K], VA] {
	return dsl.WindowedAggregate(w, init, agg, m...)
}

// SessionCount counts each key's records per session. On a topic its keys
// take serde.SessionWindowed.
func SessionCount[K, V any](w *SessionWindowedKStream[K, V], m ...Materialized[K, int64]) *KTable[Windowed[K], int64] {
	return dsl.SessionCount(w, m...)
}

// SessionReduce combines each key's values per session.
func SessionReduce[K, V any](w *SessionWindowedKStream[K, V], reducer func(agg, value V) V, m ...Materialized[K, V]) *KTable[Windowed[K], V] {
	return dsl.SessionReduce(w, reducer, m...)
}

// SessionAggregate folds each key's values per session; merger combines
// the aggregates of sessions a record bridges.
func SessionAggregate[K, V, VA any](w *SessionWindowedKStream[K, V], init func() VA, agg func(key K, value V, agg VA) VA,
	merger func(key K, a, b VA) VA, m ...Materialized[K, VA]) *KTable[Windowed[K], VA] {
	return dsl.SessionAggregate(w, init, agg, merger, m...)
}

// UntilWindowCloses emits each window once, with its final value, after
// it closes (end plus grace in stream time): Kafka Streams' emit-final.
func UntilWindowCloses(b ...BufferConfig) Suppressed { return dsl.UntilWindowCloses(b...) }

// UntilTimeLimit emits each key's latest value once limit has passed in
// stream time since its first held-back update; b bounds the buffer and
// says what happens when it is full.
func UntilTimeLimit(limit time.Duration, b BufferConfig) Suppressed {
	return dsl.UntilTimeLimit(limit, b)
}
