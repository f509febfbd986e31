package dsl

import (
	"bytes"
	"fmt"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
)

// Table is a typed handle on a node whose output is a changelog stream: a
// Change per updated key (Kafka Streams' KTable).
type Table[K, V any] struct {
	b          *Builder
	node       string
	keySerde   serde.Serde[K] // nil: not known, DefaultSerde where needed
	valueSerde serde.Serde[V]
	store      string // the store holding the table; "" when not materialized
	// windowed tables (keys are serde.Windowed) know their windows'
	// grace, which Suppress(UntilWindowCloses) waits for.
	windowed bool
	grace    int64
}

// NewTable makes a handle for node; store is its materialized store, if any.
func NewTable[K, V any](b *Builder, node string, ks serde.Serde[K], vs serde.Serde[V], store string) *Table[K, V] {
	return &Table[K, V]{b: b, node: node, keySerde: ks, valueSerde: vs, store: store}
}

// Builder returns the builder the table belongs to.
func (t *Table[K, V]) Builder() *Builder { return t.b }

// NodeName is the name of the node producing this table.
func (t *Table[K, V]) NodeName() string { return t.node }

// KeySerde is the serde known for the key, or nil.
func (t *Table[K, V]) KeySerde() serde.Serde[K] { return t.keySerde }

// ValueSerde is the serde known for the value, or nil.
func (t *Table[K, V]) ValueSerde() serde.Serde[V] { return t.valueSerde }

// StoreName is the name of the store that holds the table, for reading it
// (interactive queries, the test driver), or "" when the table is not
// materialized (Filter, MapValues).
func (t *Table[K, V]) StoreName() string { return t.store }

// AddProcessor adds a processor node below this table and returns its name.
func (t *Table[K, V]) AddProcessor(name string, sup topology.Supplier) string {
	t.b.Fail(t.b.topo.AddProcessor(name, sup, t.node))
	return name
}

// SourceTable reads topic as a table: each record is the latest value of
// its key, a tombstone deletes it. The table is materialized in a store
// named m.StoreName, else "<topic>-STATE-STORE-<index>" as Kafka Streams
// names it.
func SourceTable[K, V any](b *Builder, c Consumed[K, V], topic string, m Materialized[K, V]) *Table[K, V] {
	store := storeName(b, m, topic+"-")
	src := Source(b, c, topic)
	// As Kafka Streams: a named source's table node is "<name>-table-source";
	// the index is used up either way.
	node := b.NewTableName("SOURCE")
	if c.Name != "" {
		node = c.Name + "-table-source"
	}
	// The store's serdes: Materialized's, else Consumed's; the table
	// handle keeps them unresolved (nil) when neither gave one.
	tks, tvs := c.KeySerde, c.ValueSerde
	if m.KeySerde != nil {
		tks = m.KeySerde
	}
	if m.ValueSerde != nil {
		tvs = m.ValueSerde
	}
	ks, vs := OrDefault(tks), OrDefault(tvs)
	b.Fail(b.topo.AddProcessor(node, func() topology.Processor {
		return &tableSource[K, V]{tableStore: newTableStore(store, ks, vs)}
	}, src.node))
	addStore(b, store, m, node, ks, vs)
	return NewTable(b, node, tks, tvs, store)
}

// tableSource is Kafka Streams' KTableSource: it materializes the records
// of a topic and forwards each update as a Change.
type tableSource[K, V any] struct {
	tableStore[K, V]
}

func (p *tableSource[K, V]) Init(ctx topology.Context) error { return p.init(ctx) }
func (p *tableSource[K, V]) Close() error                    { p.close(); return nil }

func (p *tableSource[K, V]) Process(r topology.Record) error {
	if r.Key == nil {
		return nil // a row needs a key
	}
	kb, err := p.keyBytes(As[K](r.Key))
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
	return p.put(r, kb, r.Value, oldBox)
}

// Filter keeps the rows for which pred is true. A row that stops matching
// (or never matched) is forwarded as a delete, as Kafka Streams does, so a
// downstream table drops it.
func (t *Table[K, V]) Filter(pred func(key K, value V) bool, name ...Named) *Table[K, V] {
	return t.filter(pred, false, name)
}

// FilterNot drops the rows for which pred is true, forwarding them as
// deletes.
func (t *Table[K, V]) FilterNot(pred func(key K, value V) bool, name ...Named) *Table[K, V] {
	return t.filter(pred, true, name)
}

func (t *Table[K, V]) filter(pred func(K, V) bool, not bool, name []Named) *Table[K, V] {
	n := t.AddProcessor(t.b.TableNameOr(nameOf(name), "FILTER"), Supply(func(ctx topology.Context, boxes *Slab[Change], r topology.Record) error {
		ch := As[Change](r.Value)
		k := As[K](r.Key)
		var out Change
		if ch.New != nil && pred(k, As[V](ch.New)) != not {
			out.New = ch.New
		}
		if ch.Old != nil && pred(k, As[V](ch.Old)) != not {
			out.Old = ch.Old
		}
		r.Value = boxes.New(out)
		ctx.Forward(r)
		return nil
	}))
	return NewTable(t.b, n, t.keySerde, t.valueSerde, "")
}

// MapTableValues maps the value of every row (new and old alike); a nil
// pointer result deletes the row.
func MapTableValues[K, V, VR any](t *Table[K, V], fn func(key K, value V) VR, name ...Named) *Table[K, VR] {
	n := t.AddProcessor(t.b.TableNameOr(nameOf(name), "MAPVALUES"), Supply(func(ctx topology.Context, boxes *Slab[Change], r topology.Record) error {
		ch := As[Change](r.Value)
		k := As[K](r.Key)
		var out Change
		if ch.New != nil {
			out.New = boxOrNil(fn(k, As[V](ch.New)))
		}
		if ch.Old != nil {
			out.Old = boxOrNil(fn(k, As[V](ch.Old)))
		}
		r.Value = boxes.New(out)
		ctx.Forward(r)
		return nil
	}))
	return NewTable[K, VR](t.b, n, t.keySerde, nil, "")
}

// ToStream turns the table's changelog into a stream of its new values; a
// deleted row becomes a record with a nil value (a tombstone).
func (t *Table[K, V]) ToStream(name ...Named) *Stream[K, V] {
	n := t.AddProcessor(t.b.TableNameOr(nameOf(name), "TOSTREAM"), topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		r.Value = As[Change](r.Value).New
		ctx.Forward(r)
		return nil
	}))
	return NewStream(t.b, n, t.keySerde, t.valueSerde, false)
}

// GroupedTable is a table re-keyed for an aggregation (Kafka Streams'
// KGroupedTable): every update of the source table arrives as a subtract
// of its old row and an add of its new row, through a repartition topic.
type GroupedTable[K, V any] struct {
	b          *Builder
	node       string // the KTABLE-SELECT node
	keySerde   serde.Serde[K]
	valueSerde serde.Serde[V]
	name       string // Grouped.Name
	source     string // the repartition source, shared when name is set
}

// Builder returns the builder the grouping belongs to.
func (g *GroupedTable[K, V]) Builder() *Builder { return g.b }

// GroupTable re-keys a table for aggregation: fn maps each row to the key
// and value it is aggregated under. A row whose key or value maps to nil
// (a nil pointer) is left out.
func GroupTable[K, V, KR, VR any](t *Table[K, V], fn func(key K, value V) (KR, VR), g Grouped[KR, VR]) *GroupedTable[KR, VR] {
	ks := g.KeySerde
	topicKeys := OrDefault(ks)
	n := t.AddProcessor(t.b.TableNameOr(g.Name, "SELECT"), Supply(func(ctx topology.Context, boxes *Slab[Change], r topology.Record) error {
		return repartitionMap(ctx, boxes, r, fn, topicKeys)
	}))
	return &GroupedTable[KR, VR]{b: t.b, node: n, keySerde: ks, valueSerde: g.ValueSerde, name: g.Name}
}

// repartitionMap is Kafka Streams' KTableRepartitionMap: the old row is
// subtracted under its old key and the new row added under its new key; a
// row whose key stays the same travels as one Change with both values.
func repartitionMap[K, V, KR, VR any](ctx topology.Context, boxes *Slab[Change], r topology.Record,
	fn func(K, V) (KR, VR), keySerde serde.Serde[KR]) error {
	ch := As[Change](r.Value)
	k := As[K](r.Key)
	var newKey, newVal, oldKey, oldVal any
	if ch.New != nil {
		kr, vr := fn(k, As[V](ch.New))
		newKey, newVal = boxOrNil(kr), boxOrNil(vr)
	}
	if ch.Old != nil {
		kr, vr := fn(k, As[V](ch.Old))
		oldKey, oldVal = boxOrNil(kr), boxOrNil(vr)
	}
	hasNew := newKey != nil && newVal != nil
	hasOld := oldKey != nil && oldVal != nil
	if hasNew && hasOld {
		same, err := sameKey(keySerde, newKey.(KR), oldKey.(KR))
		if err != nil {
			return err
		}
		if same {
			r.Key, r.Value = newKey, boxes.New(Change{New: newVal, Old: oldVal})
			ctx.Forward(r)
			return nil
		}
	}
	// The subtract goes first, so an aggregate never counts a row twice.
	if hasOld {
		out := r
		out.Key, out.Value = oldKey, boxes.New(Change{Old: oldVal})
		ctx.Forward(out)
	}
	if hasNew {
		out := r
		out.Key, out.Value = newKey, boxes.New(Change{New: newVal})
		ctx.Forward(out)
	}
	return nil
}

// sameKey compares keys as the partitioner sees them: by their bytes.
func sameKey[K any](s serde.Serde[K], a, b K) (bool, error) {
	ab, err := s.Serialize("", a)
	if err != nil {
		return false, fmt.Errorf("serialize key: %w", err)
	}
	bb, err := s.Serialize("", b)
	if err != nil {
		return false, fmt.Errorf("serialize key: %w", err)
	}
	return bytes.Equal(ab, bb), nil
}

// build adds the repartition topic (sink and source; no filter, as Kafka
// Streams' GroupedTableOperationRepartitionNode), the aggregation
// processor KTABLE-<op>-<index> and its store.
func (g *GroupedTable[K, V]) build(op, store string, sup topology.Supplier) string {
	b := g.b
	sinkName, sourceName := b.NewName("SINK"), b.NewName("SOURCE")
	funcName := b.NewTableName(op)
	if g.name == "" || g.source == "" {
		base := g.name
		if base == "" {
			base = store
		}
		topic := base + "-repartition"
		b.Fail(b.topo.AddInternalTopic(topology.InternalTopic{Name: topic, Config: map[string]string{"cleanup.policy": "delete"}}))
		kser, kde := Untyped(OrDefault(g.keySerde))
		vser, vde := changeSerdes(OrDefault(g.valueSerde))
		b.Fail(b.topo.AddSink(sinkName, topology.SinkSpec{Topic: topic, KeySerializer: kser, ValueSerializer: vser}, g.node))
		b.Fail(b.topo.AddSource(sourceName, topology.SourceSpec{Topics: []string{topic}, KeyDeserializer: kde, ValueDeserializer: vde,
			RawKey: IsPassThrough(OrDefault(g.keySerde))}))
		g.source = sourceName
	}
	b.Fail(b.topo.AddProcessor(funcName, sup, g.source))
	return funcName
}

func tableAggregate[K, V, VA any](g *GroupedTable[K, V], op, store string, m Materialized[K, VA], vs serde.Serde[VA],
	step func(key K, ch Change, old VA, hasOld bool) any) *Table[K, VA] {
	ks := firstSerde(m.KeySerde, g.keySerde)
	funcName := g.build(op, store, func() topology.Processor {
		return &tableAggregator[K, VA]{tableStore: newTableStore(store, ks, vs), step: step}
	})
	addStore(g.b, store, m, funcName, ks, vs)
	return NewTable(g.b, funcName, ks, vs, store)
}

// CountTable counts the rows grouped under each key. A key whose count
// drops to zero keeps the row 0, as in Kafka Streams.
func CountTable[K, V any](g *GroupedTable[K, V], ms ...Materialized[K, int64]) *Table[K, int64] {
	m := lastOf(ms)
	m.ValueSerde = firstSerde(m.ValueSerde, serde.Int64())
	return AggregateTable(g, func() int64 { return 0 },
		func(_ K, _ V, agg int64) int64 { return agg + 1 },
		func(_ K, _ V, agg int64) int64 { return agg - 1 },
		m)
}

// ReduceTable keeps, per key, the rows grouped under it combined by adder;
// an update first takes the old row out with subtractor. A nil pointer
// result deletes the key.
func ReduceTable[K, V any](g *GroupedTable[K, V], adder, subtractor func(agg, value V) V, ms ...Materialized[K, V]) *Table[K, V] {
	m := lastOf(ms)
	// As Kafka Streams: the store is named like an aggregate's, the
	// processor KTABLE-REDUCE-<index>.
	store := storeName(g.b, m, "KTABLE-AGGREGATE-")
	return tableAggregate(g, "REDUCE", store, m, firstSerde(m.ValueSerde, g.valueSerde),
		func(_ K, ch Change, old V, hasOld bool) any {
			agg := any(nil)
			if hasOld {
				agg = old
			}
			if ch.Old != nil && agg != nil {
				agg = boxOrNil(subtractor(As[V](agg), As[V](ch.Old)))
			}
			if ch.New != nil {
				if agg == nil {
					agg = As[V](ch.New)
				} else {
					agg = boxOrNil(adder(As[V](agg), As[V](ch.New)))
				}
			}
			return agg
		})
}

// AggregateTable folds the rows grouped under each key into an aggregate
// that starts as init(): adder adds a row, subtractor takes an old one out.
func AggregateTable[K, V, VA any](g *GroupedTable[K, V], init func() VA, adder, subtractor func(key K, value V, agg VA) VA, ms ...Materialized[K, VA]) *Table[K, VA] {
	m := lastOf(ms)
	store := storeName(g.b, m, "KTABLE-AGGREGATE-")
	return tableAggregate(g, "AGGREGATE", store, m, firstSerde(m.ValueSerde),
		func(k K, ch Change, old VA, hasOld bool) any {
			agg := any(nil)
			if hasOld {
				agg = old
			}
			if ch.Old != nil && agg != nil {
				agg = boxOrNil(subtractor(k, As[V](ch.Old), As[VA](agg)))
			}
			if ch.New != nil {
				acc := init()
				if agg != nil {
					acc = As[VA](agg)
				}
				agg = boxOrNil(adder(k, As[V](ch.New), acc))
			}
			return agg
		})
}

// tableAggregator is Kafka Streams' KTableAggregate and KTableReduce.
type tableAggregator[K, VA any] struct {
	tableStore[K, VA]
	step func(key K, ch Change, old VA, hasOld bool) any
}

func (p *tableAggregator[K, VA]) Init(ctx topology.Context) error { return p.init(ctx) }
func (p *tableAggregator[K, VA]) Close() error                    { p.close(); return nil }

func (p *tableAggregator[K, VA]) Process(r topology.Record) error {
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
	return p.put(r, kb, p.step(key, As[Change](r.Value), old, hasOld), oldBox)
}
