package dsl

import (
	"fmt"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// SessionCount counts each key's records per session.
func SessionCount[K, V any](w *SessionWindowedStream[K, V], ms ...Materialized[K, int64]) *Table[serde.Windowed[K], int64] {
	m := lastOf(ms)
	return sessionAggregate(w, "AGGREGATE", m, firstSerde(m.ValueSerde, serde.Int64()), func() int64 { return 0 },
		func(_ K, _ V, agg int64) int64 { return agg + 1 },
		func(_ K, a, b int64) int64 { return a + b })
}

// SessionReduce combines each key's values per session; merging sessions
// combines their aggregates with reducer too.
func SessionReduce[K, V any](w *SessionWindowedStream[K, V], reducer func(agg, value V) V, ms ...Materialized[K, V]) *Table[serde.Windowed[K], V] {
	m := lastOf(ms)
	return sessionAggregateStep(w, "REDUCE", m, firstSerde(m.ValueSerde, w.g.valueSerde),
		func(_ K, v V, old V, hasOld bool) V {
			if !hasOld {
				return v
			}
			return reducer(old, v)
		},
		func(_ K, a V, hasA bool, b V) V {
			if !hasA {
				return b
			}
			return reducer(a, b)
		})
}

// SessionAggregate folds each key's values per session into an aggregate
// that starts as init(); merger combines the aggregates of sessions a
// record bridges.
func SessionAggregate[K, V, VA any](w *SessionWindowedStream[K, V], init func() VA, agg func(key K, value V, agg VA) VA,
	merger func(key K, a, b VA) VA, ms ...Materialized[K, VA]) *Table[serde.Windowed[K], VA] {
	m := lastOf(ms)
	return sessionAggregate(w, "AGGREGATE", m, firstSerde(m.ValueSerde), init, agg, merger)
}

func sessionAggregate[K, V, VA any](w *SessionWindowedStream[K, V], op string, m Materialized[K, VA], vs serde.Serde[VA],
	init func() VA, agg func(K, V, VA) VA, merger func(K, VA, VA) VA) *Table[serde.Windowed[K], VA] {
	return sessionAggregateStep(w, op, m, vs,
		func(k K, v V, old VA, hasOld bool) VA {
			if !hasOld {
				old = init()
			}
			return agg(k, v, old)
		},
		func(k K, a VA, hasA bool, b VA) VA {
			if !hasA {
				a = init()
			}
			return merger(k, a, b)
		})
}

func sessionAggregateStep[K, V, VA any](w *SessionWindowedStream[K, V], op string, m Materialized[K, VA], vs serde.Serde[VA],
	step func(key K, value V, old VA, hasOld bool) VA, merge func(key K, a VA, hasA bool, b VA) VA) *Table[serde.Windowed[K], VA] {
	b := w.g.s.b
	prefix := "KSTREAM-AGGREGATE-"
	if op == "REDUCE" {
		prefix = "KSTREAM-REDUCE-"
	}
	store := storeName(b, m, prefix)
	funcName := b.NewName(op)
	ks := firstSerde(m.KeySerde, w.g.keySerde)
	gap, grace := w.windows.Gap.Milliseconds(), w.windows.Grace.Milliseconds()
	// A session ending gap before a record that is just in time still
	// merges with it, so keep sessions that long past their close.
	retention := max(m.Retention.Milliseconds(), 2*gap+grace)
	w.g.build(funcName, store, func() topology.Processor {
		return &sessionWindowAggregate[K, V, VA]{name: store, ks: ks, vs: vs, gap: gap, grace: grace, step: step, merge: merge, observed: -1}
	})
	addWindowStore(b, store, m, funcName, ks, vs, topology.SessionStore, retention, 0, false)
	t := NewTable(b, funcName, serde.SessionWindowed(ks), vs, store)
	// Emit-final waits until a session is closed: gap + grace after its
	// end, when no record on time can extend it.
	t.grace = grace + gap
	t.windowed = true
	return t
}

// sessionWindowAggregate is Kafka Streams' KStreamSessionWindowAggregate.
// When its store caches (state.SessionCache), the removal of merged
// sessions and the new session's aggregate stay in the cache, and its flush
// listener forwards them when written through, as for time windows
// (windowEmitter): a session that grew several times between two commits
// comes out once, and one merged away before it was written through not at
// all.
type sessionWindowAggregate[K, V, VA any] struct {
	name       string
	topic      string
	ks         serde.Serde[K]
	vs         serde.Serde[VA]
	gap, grace int64
	step       func(key K, value V, old VA, hasOld bool) VA
	merge      func(key K, a VA, hasA bool, b VA) VA
	ctx        topology.Context
	store      state.SessionStore
	cache      state.SessionCache // the store, when it caches
	observed   int64
	boxes      Slab[Change]
}

func (p *sessionWindowAggregate[K, V, VA]) Init(ctx topology.Context) error {
	p.ctx = ctx
	p.topic = topology.InternalTopicName(ctx.ApplicationID(), topology.ChangelogTopic(p.name))
	s, ok := ctx.Store(p.name).(state.SessionStore)
	if !ok {
		return fmt.Errorf("store %s: got %T, want a state.SessionStore", p.name, ctx.Store(p.name))
	}
	p.store = s
	if c, ok := s.(state.SessionCache); ok {
		p.cache = c
		c.SetFlushListener(p.flushed)
	}
	return nil
}

func (p *sessionWindowAggregate[K, V, VA]) Close() error {
	if p.cache != nil {
		p.cache.SetFlushListener(nil)
	}
	return nil
}

// flushed is the cache's flush listener: it forwards the session the cache
// wrote through (a nil new value: a session merged into another), with the
// timestamp of the record that last wrote it.
func (p *sessionWindowAggregate[K, V, VA]) flushed(sk, newB, oldB []byte, ts int64) error {
	kb, start, end, err := state.ParseSessionKey(sk)
	if err != nil {
		return fmt.Errorf("store %s: %w", p.name, err)
	}
	k, err := p.ks.Deserialize(p.topic, kb)
	if err != nil {
		return fmt.Errorf("store %s: deserialize key: %w", p.name, err)
	}
	var ch Change
	if newB != nil {
		v, err := p.vs.Deserialize(p.topic, newB)
		if err != nil {
			return fmt.Errorf("store %s: deserialize value: %w", p.name, err)
		}
		ch.New = v
	}
	if oldB != nil {
		v, err := p.vs.Deserialize(p.topic, oldB)
		if err != nil {
			return fmt.Errorf("store %s: deserialize old value: %w", p.name, err)
		}
		ch.Old = v
	}
	p.ctx.Forward(topology.Record{Key: serde.Windowed[K]{Key: k, Start: start, End: end}, Value: p.boxes.New(ch), Timestamp: ts})
	return nil
}

type session struct {
	start, end int64
	value      []byte
}

func (p *sessionWindowAggregate[K, V, VA]) Process(r topology.Record) error {
	if r.Key == nil || r.Value == nil {
		return nil
	}
	key, value := As[K](r.Key), As[V](r.Value)
	kb, err := p.ks.Serialize(p.topic, key)
	if err != nil {
		return fmt.Errorf("store %s: serialize key: %w", p.name, err)
	}
	ts := r.Timestamp
	p.observed = max(p.observed, ts)
	// A session is closed once gap + grace have passed since its end: no
	// record on time can extend it any more, and emit-final has emitted
	// it. Closed sessions are never merged into; a record whose session
	// (with the open ones it bridges) would be closed already is late.
	closeTime := p.observed - p.grace
	closed := func(end int64) bool { return end+p.gap <= closeTime }

	it, err := p.store.FindSessions(kb, ts-p.gap, ts+p.gap)
	if err != nil {
		return fmt.Errorf("store %s: find sessions: %w", p.name, err)
	}
	var merged []session
	for it.Next() {
		if closed(it.End()) {
			continue
		}
		merged = append(merged, session{start: it.Start(), end: it.End(), value: append([]byte(nil), it.Value()...)})
	}
	if err := it.Err(); err != nil {
		it.Close()
		return fmt.Errorf("store %s: find sessions: %w", p.name, err)
	}
	if err := it.Close(); err != nil {
		return err
	}
	start, end := ts, ts
	for _, s := range merged {
		start, end = min(start, s.start), max(end, s.end)
	}
	if closed(end) {
		topology.RecordDropped(p.ctx, "late")
		return nil
	}
	var agg VA
	hasAgg := false
	for _, s := range merged {
		v, err := p.vs.Deserialize(p.topic, s.value)
		if err != nil {
			return fmt.Errorf("store %s: deserialize value: %w", p.name, err)
		}
		agg = p.merge(key, agg, hasAgg, v)
		hasAgg = true
		if s.start == start && s.end == end {
			continue // rewritten below
		}
		if p.cache != nil {
			if err := p.cache.PutAt(kb, s.start, s.end, nil, ts); err != nil {
				return fmt.Errorf("store %s: remove merged session: %w", p.name, err)
			}
			continue
		}
		if err := p.store.Remove(kb, s.start, s.end); err != nil {
			return fmt.Errorf("store %s: remove merged session: %w", p.name, err)
		}
		p.ctx.Forward(topology.Record{Key: serde.Windowed[K]{Key: key, Start: s.start, End: s.end},
			Value: p.boxes.New(Change{New: nil, Old: v}), Timestamp: ts, Headers: r.Headers})
	}
	var oldBox any
	for _, s := range merged {
		if s.start == start && s.end == end {
			v, _ := p.vs.Deserialize(p.topic, s.value)
			oldBox = v
		}
	}
	agg = p.step(key, value, agg, hasAgg)
	vb, err := p.vs.Serialize(p.topic, agg)
	if err != nil {
		return fmt.Errorf("store %s: serialize value: %w", p.name, err)
	}
	if vb == nil {
		vb = []byte{}
	}
	if p.cache != nil {
		if err := p.cache.PutAt(kb, start, end, vb, ts); err != nil {
			return fmt.Errorf("store %s: put: %w", p.name, err)
		}
		return nil
	}
	if err := p.store.Put(kb, start, end, vb); err != nil {
		return fmt.Errorf("store %s: put: %w", p.name, err)
	}
	p.ctx.Forward(topology.Record{Key: serde.Windowed[K]{Key: key, Start: start, End: end},
		Value: p.boxes.New(Change{New: agg, Old: oldBox}), Timestamp: ts, Headers: r.Headers})
	return nil
}
