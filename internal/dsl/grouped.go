package dsl

import (
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
)

// GroupedStream is a stream grouped by key, waiting for an aggregation
// (Kafka Streams' KGroupedStream). The repartition a grouping needs is
// made by the aggregation, because its topic is named after the store.
type GroupedStream[K, V any] struct {
	s           *Stream[K, V]
	keySerde    serde.Serde[K] // nil: DefaultSerde
	valueSerde  serde.Serde[V]
	repartition bool
	name        string // Grouped.Name; "" when not given
	// shared is the repartitioned stream when name is set: every
	// aggregation of the grouping reads the one topic "<name>-repartition".
	shared *Stream[K, V]
}

// GroupByKey groups a stream by its current key. When the key was changed
// since the stream's source (Stream.KeyChanged), the aggregation first
// writes the records through a repartition topic so each key lands on one
// task.
func GroupByKey[K, V any](s *Stream[K, V], g Grouped[K, V]) *GroupedStream[K, V] {
	return newGrouped(s, g, s.keyChanged)
}

// GroupBy groups a stream by the key fn selects; it always repartitions.
// The key-selecting node is named after the Grouped name, if given.
func GroupBy[K, V, KR any](s *Stream[K, V], fn func(key K, value V) KR, g Grouped[KR, V]) *GroupedStream[KR, V] {
	n := s.b.NameOr(g.Name, "KEY-SELECT")
	s.b.Fail(s.b.topo.AddProcessor(n, Supply(func(ctx topology.Context, boxes *Slab[KR], r topology.Record) error {
		r.Key = boxes.New(fn(As[K](r.Key), As[V](r.Value)))
		ctx.Forward(r)
		return nil
	}), s.node))
	return newGrouped(NewStream[KR, V](s.b, n, nil, s.valueSerde, true), g, true)
}

func newGrouped[K, V any](s *Stream[K, V], g Grouped[K, V], repartition bool) *GroupedStream[K, V] {
	gs := &GroupedStream[K, V]{s: s, keySerde: g.KeySerde, valueSerde: g.ValueSerde, repartition: repartition, name: g.Name}
	if gs.keySerde == nil {
		gs.keySerde = s.keySerde
	}
	if gs.valueSerde == nil {
		gs.valueSerde = s.valueSerde
	}
	return gs
}

// Builder returns the builder the grouping belongs to.
func (g *GroupedStream[K, V]) Builder() *Builder { return g.s.b }

// storeName is Kafka Streams' MaterializedInternal: the given name, or a
// generated <prefix>STATE-STORE-<index>.
func storeName[K, V any](b *Builder, m Materialized[K, V], prefix string) string {
	if m.StoreName != "" {
		return m.StoreName
	}
	return b.NewStoreName(prefix)
}

// build adds the aggregation processor funcName reading the grouped
// records (through the repartition topic when one is needed) and its
// store, as Kafka Streams' GroupedStreamAggregateBuilder.
func (g *GroupedStream[K, V]) build(funcName, store string, sup topology.Supplier) string {
	b := g.s.b
	parent := g.s.node
	if g.repartition {
		base := g.name
		if base == "" {
			base = store
		}
		if g.shared != nil {
			b.repartitionNames(base) // the indexes are used up all the same
			parent = g.shared.node
		} else {
			rs := g.s.repartitionAs(base, g.keySerde, g.valueSerde, 0, nil)
			if g.name != "" {
				g.shared = rs
			}
			parent = rs.node
		}
	}
	b.Fail(b.topo.AddProcessor(funcName, sup, parent))
	return funcName
}

func firstSerde[T any](ss ...serde.Serde[T]) serde.Serde[T] {
	for _, s := range ss {
		if s != nil {
			return s
		}
	}
	return DefaultSerde[T]()
}

// aggregate is the common part of Count, Reduce and Aggregate: step
// computes the new aggregate from the old one (hasOld false: none yet).
func aggregate[K, V, VA any](g *GroupedStream[K, V], op, store string, m Materialized[K, VA], vs serde.Serde[VA],
	step func(key K, value V, old VA, hasOld bool) VA) *Table[K, VA] {
	b := g.s.b
	funcName := b.NewName(op)
	ks := firstSerde(m.KeySerde, g.keySerde)
	g.build(funcName, store, func() topology.Processor {
		return &streamAggregate[K, V, VA]{tableStore: newTableStore(store, ks, vs), step: step}
	})
	addStore(b, store, m, funcName, ks, vs)
	return NewTable(b, funcName, ks, vs, store)
}

// Count counts the records of each key. Called without Materialized it
// uses one index fewer than with an unnamed one, as Kafka Streams (which
// burns a store name in count(Materialized) for compatibility).
func Count[K, V any](g *GroupedStream[K, V], ms ...Materialized[K, int64]) *Table[K, int64] {
	m := lastOf(ms)
	b := g.s.b
	if len(ms) > 0 && m.StoreName == "" {
		b.NewStoreName("KSTREAM-AGGREGATE-")
	}
	store := storeName(b, m, "KSTREAM-AGGREGATE-")
	return aggregate(g, "AGGREGATE", store, m, firstSerde(m.ValueSerde, serde.Int64()),
		func(_ K, _ V, old int64, _ bool) int64 { return old + 1 })
}

// Reduce combines the values of each key: the first value is the
// aggregate, later ones are folded in by reducer.
func Reduce[K, V any](g *GroupedStream[K, V], reducer func(agg, value V) V, ms ...Materialized[K, V]) *Table[K, V] {
	m := lastOf(ms)
	store := storeName(g.s.b, m, "KSTREAM-REDUCE-")
	return aggregate(g, "REDUCE", store, m, firstSerde(m.ValueSerde, g.valueSerde),
		func(_ K, v V, old V, hasOld bool) V {
			if !hasOld {
				return v
			}
			return reducer(old, v)
		})
}

// Aggregate folds the values of each key into an aggregate that starts as
// init().
func Aggregate[K, V, VA any](g *GroupedStream[K, V], init func() VA, agg func(key K, value V, agg VA) VA, ms ...Materialized[K, VA]) *Table[K, VA] {
	m := lastOf(ms)
	store := storeName(g.s.b, m, "KSTREAM-AGGREGATE-")
	return aggregate(g, "AGGREGATE", store, m, firstSerde(m.ValueSerde),
		func(k K, v V, old VA, hasOld bool) VA {
			if !hasOld {
				old = init()
			}
			return agg(k, v, old)
		})
}

// streamAggregate is Kafka Streams' KStreamAggregate and KStreamReduce.
type streamAggregate[K, V, VA any] struct {
	tableStore[K, VA]
	step func(key K, value V, old VA, hasOld bool) VA
}

func (p *streamAggregate[K, V, VA]) Init(ctx topology.Context) error { return p.init(ctx) }
func (p *streamAggregate[K, V, VA]) Close() error                    { p.close(); return nil }

func (p *streamAggregate[K, V, VA]) Process(r topology.Record) error {
	// As Kafka Streams: a record without a key or value has nothing to
	// aggregate and is dropped.
	if r.Key == nil || r.Value == nil {
		return nil
	}
	key := As[K](r.Key)
	kb, err := p.keyBytes(key)
	if err != nil {
		return err
	}
	old, hasOld, err := p.get(kb)
	if err != nil {
		return err
	}
	var oldBox any
	if hasOld {
		oldBox = old
	}
	return p.put(r, kb, boxOrNil(p.step(key, As[V](r.Value), old, hasOld)), oldBox)
}
