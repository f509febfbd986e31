package dsl

import (
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// Windowed aggregations (Kafka Streams' TimeWindowedKStream and
// SessionWindowedKStream) keep their aggregates in window or session
// stores and produce a table keyed by serde.Windowed[K]. The store is
// cached unless Materialized.CachingDisabled (or the task has no cache
// budget): the updates of a window or session between two commits then
// collapse into one, forwarded when the cache writes it through, as Kafka
// Streams' CachingWindowStore and CachingSessionStore do; without the cache
// every update is forwarded as it happens. Suppress(UntilWindowCloses)
// turns either into one final result per window.
//
// Stream time for grace is the aggregation's own observed time, the
// highest record timestamp it has seen, as in Kafka Streams. A record
// whose windows are all closed (end + grace <= observed time) is dropped,
// counted as "late" through topology.RecordDropped.

// TimeWindowedStream is a grouped stream cut into time or sliding windows.
type TimeWindowedStream[K, V any] struct {
	g       *GroupedStream[K, V]
	windows TimeWindows
	sliding *SlidingWindows
}

// SessionWindowedStream is a grouped stream cut into sessions.
type SessionWindowedStream[K, V any] struct {
	g       *GroupedStream[K, V]
	windows SessionWindows
}

// WindowedBy cuts a grouped stream into time windows.
func WindowedBy[K, V any](g *GroupedStream[K, V], w TimeWindows) *TimeWindowedStream[K, V] {
	g.s.b.Fail(w.check())
	return &TimeWindowedStream[K, V]{g: g, windows: w}
}

// WindowedBySliding cuts a grouped stream into sliding windows.
func WindowedBySliding[K, V any](g *GroupedStream[K, V], w SlidingWindows) *TimeWindowedStream[K, V] {
	g.s.b.Fail(w.check())
	return &TimeWindowedStream[K, V]{g: g, sliding: &w}
}

// WindowedBySession cuts a grouped stream into sessions.
func WindowedBySession[K, V any](g *GroupedStream[K, V], w SessionWindows) *SessionWindowedStream[K, V] {
	g.s.b.Fail(w.check())
	return &SessionWindowedStream[K, V]{g: g, windows: w}
}

// size is the window size in ms (sliding: the time difference; a sliding
// window [s, s+d] is reported with End s+d).
func (w *TimeWindowedStream[K, V]) size() int64 {
	if w.sliding != nil {
		return w.sliding.TimeDifference.Milliseconds()
	}
	return w.windows.Size.Milliseconds()
}

func (w *TimeWindowedStream[K, V]) grace() int64 {
	if w.sliding != nil {
		return w.sliding.Grace.Milliseconds()
	}
	return w.windows.Grace.Milliseconds()
}

// WindowedCount counts each key's records per window.
func WindowedCount[K, V any](w *TimeWindowedStream[K, V], ms ...Materialized[K, int64]) *Table[serde.Windowed[K], int64] {
	m := lastOf(ms)
	return windowAggregate(w, "AGGREGATE", m, firstSerde(m.ValueSerde, serde.Int64()), func() int64 { return 0 },
		func(_ K, _ V, agg int64) int64 { return agg + 1 })
}

// WindowedReduce combines each key's values per window.
func WindowedReduce[K, V any](w *TimeWindowedStream[K, V], reducer func(agg, value V) V, ms ...Materialized[K, V]) *Table[serde.Windowed[K], V] {
	m := lastOf(ms)
	return windowAggregateStep(w, "REDUCE", m, firstSerde(m.ValueSerde, w.g.valueSerde),
		func(_ K, v V, old V, hasOld bool) V {
			if !hasOld {
				return v
			}
			return reducer(old, v)
		})
}

// WindowedAggregate folds each key's values per window into an aggregate
// that starts as init().
func WindowedAggregate[K, V, VA any](w *TimeWindowedStream[K, V], init func() VA, agg func(key K, value V, agg VA) VA, ms ...Materialized[K, VA]) *Table[serde.Windowed[K], VA] {
	m := lastOf(ms)
	return windowAggregate(w, "AGGREGATE", m, firstSerde(m.ValueSerde), init, agg)
}

func windowAggregate[K, V, VA any](w *TimeWindowedStream[K, V], op string, m Materialized[K, VA], vs serde.Serde[VA],
	init func() VA, agg func(K, V, VA) VA) *Table[serde.Windowed[K], VA] {
	return windowAggregateStep(w, op, m, vs, func(k K, v V, old VA, hasOld bool) VA {
		if !hasOld {
			old = init()
		}
		return agg(k, v, old)
	})
}

func windowAggregateStep[K, V, VA any](w *TimeWindowedStream[K, V], op string, m Materialized[K, VA], vs serde.Serde[VA],
	step func(key K, value V, old VA, hasOld bool) VA) *Table[serde.Windowed[K], VA] {
	b := w.g.s.b
	prefix := "KSTREAM-AGGREGATE-"
	if op == "REDUCE" {
		prefix = "KSTREAM-REDUCE-"
	}
	store := storeName(b, m, prefix)
	funcName := b.NewName(op)
	ks := firstSerde(m.KeySerde, w.g.keySerde)
	size, grace := w.size(), w.grace()
	retention := max(m.Retention.Milliseconds(), size+grace)
	var sup topology.Supplier
	if w.sliding != nil {
		// The sliding aggregation recomputes windows from the records
		// they hold, kept in a second store for d + grace.
		records := store + "-records"
		d := *w.sliding
		sup = func() topology.Processor {
			return &slidingAggregate[K, V, VA]{windowEmitter: windowEmitter[K, VA]{name: store, ks: ks, vs: vs, size: size},
				records: records, vsIn: firstSerde(w.g.valueSerde), diff: d.TimeDifference.Milliseconds(), grace: grace, step: step, observed: -1}
		}
		w.g.build(funcName, store, sup)
		addWindowStore(b, store, m, funcName, ks, vs, topology.WindowStore, retention, size, false)
		addWindowStore(b, records, Materialized[K, V]{InMemory: m.InMemory, LoggingDisabled: m.LoggingDisabled},
			funcName, ks, firstSerde(w.g.valueSerde), topology.WindowStore, 2*size+grace+1, 0, true)
	} else {
		tw := w.windows
		sup = func() topology.Processor {
			return &timeWindowAggregate[K, V, VA]{windowEmitter: windowEmitter[K, VA]{name: store, ks: ks, vs: vs, size: size},
				windows: tw, step: step, observed: -1}
		}
		w.g.build(funcName, store, sup)
		addWindowStore(b, store, m, funcName, ks, vs, topology.WindowStore, retention, size, false)
	}
	t := NewTable(b, funcName, serde.TimeWindowed(ks, time.Duration(size)*time.Millisecond), vs, store)
	t.grace = grace
	t.windowed = true
	return t
}

// addWindowStore declares a window or session store written with ks and vs.
// A store of aggregates (not one of duplicates) caches unless m says not
// to.
func addWindowStore[K, V any](b *Builder, name string, m Materialized[K, V], processor string, ks serde.Serde[K], vs serde.Serde[V],
	kind topology.StoreKind, retention, size int64, dups bool) {
	b.Fail(b.topo.AddStore(topology.StoreSpec{
		Name:             name,
		InMemory:         m.InMemory,
		Logging:          !m.LoggingDisabled,
		LogConfig:        m.LogConfig,
		Caching:          !dups && !m.CachingDisabled,
		Codec:            storeCodec(ks, vs, m.KeyParser),
		Kind:             kind,
		Retention:        retention,
		WindowSize:       size,
		RetainDuplicates: dups,
		Internal:         dups, // the sliding aggregation's record buffer
	}, processor))
}

// windowStoreOf fetches a window store from the context.
func windowStoreOf(ctx topology.Context, name string) (state.WindowStore, error) {
	s, ok := ctx.Store(name).(state.WindowStore)
	if !ok {
		return nil, fmt.Errorf("store %s: got %T, want a state.WindowStore", name, ctx.Store(name))
	}
	return s, nil
}

// firstStart is the start of the oldest window holding ts; the others
// follow every advance() up to ts. starts lists them all.
func (w TimeWindows) firstStart(ts int64) int64 {
	size, adv := w.Size.Milliseconds(), w.advance()
	return max(0, ts-size+adv) / adv * adv
}

// windowEmitter writes a windowed aggregation's windows and forwards
// their updates: at once, or, when the store is a state.WindowCache, when
// the cache writes the window through (its flush listener), as tableStore
// does for key-value stores. size is the window size (the time difference
// of sliding windows), so a window's End is Start + size.
type windowEmitter[K, VA any] struct {
	name  string
	topic string // the changelog topic name, which store serdes are given
	ks    serde.Serde[K]
	vs    serde.Serde[VA]
	size  int64
	ctx   topology.Context
	store state.WindowStore
	cache state.WindowCache
	boxes Slab[Change]
}

func (e *windowEmitter[K, VA]) init(ctx topology.Context) error {
	e.ctx = ctx
	e.topic = topology.InternalTopicName(ctx.ApplicationID(), topology.ChangelogTopic(e.name))
	var err error
	if e.store, err = windowStoreOf(ctx, e.name); err != nil {
		return err
	}
	if c, ok := e.store.(state.WindowCache); ok {
		e.cache = c
		c.SetFlushListener(e.flushed)
	}
	return nil
}

func (e *windowEmitter[K, VA]) close() {
	if e.cache != nil {
		e.cache.SetFlushListener(nil)
	}
}

// put stores agg (serialized as vb) in key's window at start and, unless
// the store caches, forwards Change{agg, old} with r's timestamp and
// headers; old is nil or the boxed previous aggregate.
func (e *windowEmitter[K, VA]) put(r topology.Record, key K, kb []byte, start int64, agg VA, vb []byte, old any) error {
	if e.cache != nil {
		if err := e.cache.PutAt(kb, vb, start, r.Timestamp); err != nil {
			return fmt.Errorf("store %s: put: %w", e.name, err)
		}
		return nil
	}
	if err := e.store.Put(kb, vb, start); err != nil {
		return fmt.Errorf("store %s: put: %w", e.name, err)
	}
	e.ctx.Forward(topology.Record{Key: serde.Windowed[K]{Key: key, Start: start, End: start + e.size},
		Value: e.boxes.New(Change{New: agg, Old: old}), Timestamp: r.Timestamp, Headers: r.Headers})
	return nil
}

// flushed is the cache's flush listener: it forwards the window the cache
// wrote through, with the timestamp of the record that last updated it.
func (e *windowEmitter[K, VA]) flushed(wk, newB, oldB []byte, ts int64) error {
	kb, start, _, err := state.ParseWindowKey(wk)
	if err != nil {
		return fmt.Errorf("store %s: %w", e.name, err)
	}
	k, err := e.ks.Deserialize(e.topic, kb)
	if err != nil {
		return fmt.Errorf("store %s: deserialize key: %w", e.name, err)
	}
	var ch Change
	if newB != nil {
		v, err := e.vs.Deserialize(e.topic, newB)
		if err != nil {
			return fmt.Errorf("store %s: deserialize value: %w", e.name, err)
		}
		ch.New = v
	}
	if oldB != nil {
		v, err := e.vs.Deserialize(e.topic, oldB)
		if err != nil {
			return fmt.Errorf("store %s: deserialize old value: %w", e.name, err)
		}
		ch.Old = v
	}
	e.ctx.Forward(topology.Record{Key: serde.Windowed[K]{Key: k, Start: start, End: start + e.size},
		Value: e.boxes.New(ch), Timestamp: ts})
	return nil
}

// timeWindowAggregate is Kafka Streams' KStreamWindowAggregate.
type timeWindowAggregate[K, V, VA any] struct {
	windowEmitter[K, VA]
	windows  TimeWindows
	step     func(key K, value V, old VA, hasOld bool) VA
	observed int64
}

func (p *timeWindowAggregate[K, V, VA]) Init(ctx topology.Context) error { return p.init(ctx) }

func (p *timeWindowAggregate[K, V, VA]) Close() error { p.close(); return nil }

func (p *timeWindowAggregate[K, V, VA]) Process(r topology.Record) error {
	if r.Key == nil || r.Value == nil {
		return nil
	}
	key, value := As[K](r.Key), As[V](r.Value)
	kb, err := p.ks.Serialize(p.topic, key)
	if err != nil {
		return fmt.Errorf("store %s: serialize key: %w", p.name, err)
	}
	p.observed = max(p.observed, r.Timestamp)
	closeTime := p.observed - p.windows.Grace.Milliseconds()
	updated := false
	// The windows holding the record, oldest first, as TimeWindows.starts
	// lists them, without a slice per record.
	ts, adv := r.Timestamp, p.windows.advance()
	for start := p.windows.firstStart(ts); start <= ts; start += adv {
		if start+p.size <= closeTime {
			continue
		}
		updated = true
		oldB, err := p.store.Fetch(kb, start)
		if err != nil {
			return fmt.Errorf("store %s: fetch: %w", p.name, err)
		}
		var old VA
		var oldBox any
		if oldB != nil {
			if old, err = p.vs.Deserialize(p.topic, oldB); err != nil {
				return fmt.Errorf("store %s: deserialize value: %w", p.name, err)
			}
			oldBox = old
		}
		agg := p.step(key, value, old, oldB != nil)
		vb, err := p.vs.Serialize(p.topic, agg)
		if err != nil {
			return fmt.Errorf("store %s: serialize value: %w", p.name, err)
		}
		if vb == nil {
			vb = []byte{}
		}
		if err := p.put(r, key, kb, start, agg, vb, oldBox); err != nil {
			return err
		}
	}
	if !updated {
		topology.RecordDropped(p.ctx, "late")
	}
	return nil
}
