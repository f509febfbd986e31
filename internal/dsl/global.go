package dsl

import (
	"fmt"
	"reflect"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// GlobalTable is a typed handle on a global store: a table every instance
// of the application holds whole, read from every partition of its topic
// (Kafka Streams' GlobalKTable). It has no node to build on: streams join
// it (JoinGlobal, LeftJoinGlobal), and the test driver and interactive
// queries read its store.
type GlobalTable[K, V any] struct {
	b          *Builder
	store      string
	topic      string
	keySerde   serde.Serde[K] // the store's, resolved
	valueSerde serde.Serde[V]
}

// Builder returns the builder the table belongs to.
func (g *GlobalTable[K, V]) Builder() *Builder { return g.b }

// StoreName is the name of the global store holding the table.
func (g *GlobalTable[K, V]) StoreName() string { return g.store }

// Topic is the topic the table is read from.
func (g *GlobalTable[K, V]) Topic() string { return g.topic }

// KeySerde is the serde the store's keys are written with.
func (g *GlobalTable[K, V]) KeySerde() serde.Serde[K] { return g.keySerde }

// ValueSerde is the serde the store's values are written with.
func (g *GlobalTable[K, V]) ValueSerde() serde.Serde[V] { return g.valueSerde }

// SourceGlobalTable reads topic into a global store named m.StoreName,
// else "<topic>-STATE-STORE-<index>". As Kafka Streams names them, its
// source node is "<c.Name>-source" (else KSTREAM-SOURCE-<index>) and the
// node writing the store c.Name (else KTABLE-SOURCE-<index>). The store is
// written with Materialized's serdes, else Consumed's; it is never logged
// (its topic is its changelog) nor cached. The store keeps no timestamps,
// so c.TimestampExtractor has no effect.
func SourceGlobalTable[K, V any](b *Builder, c Consumed[K, V], topic string, m Materialized[K, V]) *GlobalTable[K, V] {
	store := storeName(b, m, topic+"-")
	source, node := b.NewName("SOURCE"), b.NewTableName("SOURCE")
	if c.Name != "" {
		source, node = c.Name+"-source", c.Name
	}
	cks, cvs := OrDefault(c.KeySerde), OrDefault(c.ValueSerde)
	_, kd := Untyped(cks)
	_, vd := Untyped(cvs)
	spec := topology.SourceSpec{Topics: []string{topic}, KeyDeserializer: kd, ValueDeserializer: vd}
	ks, vs := firstSerde(m.KeySerde, c.KeySerde), firstSerde(m.ValueSerde, c.ValueSerde)
	b.Fail(b.topo.AddGlobalStore(topology.StoreSpec{
		Name:     store,
		InMemory: m.InMemory,
		Codec:    storeCodec(ks, vs, m.KeyParser),
	}, source, spec, node, func() topology.Processor {
		return &globalTableSource[K, V]{name: store, topic: topic, ks: ks, vs: vs}
	}))
	return &GlobalTable[K, V]{b: b, store: store, topic: topic, keySerde: ks, valueSerde: vs}
}

// globalTableSource writes each record of the topic into the global store,
// as Kafka Streams' KTableSource does for a global table: a tombstone
// deletes its key, a record without a key is dropped. Nothing is
// downstream of it. Store serdes are given the topic's name: it is the
// store's changelog.
type globalTableSource[K, V any] struct {
	name, topic string
	ks          serde.Serde[K]
	vs          serde.Serde[V]
	ctx         topology.Context
	store       state.KeyValueStore
}

func (p *globalTableSource[K, V]) Init(ctx topology.Context) error {
	p.ctx = ctx
	kv, ok := ctx.Store(p.name).(state.KeyValueStore)
	if !ok {
		return fmt.Errorf("global store %s: got %T, want a state.KeyValueStore", p.name, ctx.Store(p.name))
	}
	p.store = kv
	return nil
}

func (p *globalTableSource[K, V]) Close() error { return nil }

func (p *globalTableSource[K, V]) Process(r topology.Record) error {
	if r.Key == nil {
		topology.RecordDropped(p.ctx, "null-key")
		return nil
	}
	kb, err := p.ks.Serialize(p.topic, As[K](r.Key))
	if err != nil {
		return fmt.Errorf("global store %s: serialize key: %w", p.name, err)
	}
	var vb []byte
	if r.Value != nil {
		if vb, err = p.vs.Serialize(p.topic, As[V](r.Value)); err != nil {
			return fmt.Errorf("global store %s: serialize value: %w", p.name, err)
		}
		if vb == nil {
			vb = []byte{} // a value, not a delete
		}
	}
	if err := p.store.Put(kb, vb); err != nil {
		return fmt.Errorf("global store %s: %w", p.name, err)
	}
	return nil
}

// JoinGlobal joins each record of s with the row of g under
// keyMapper(key, value) and forwards joiner(value, row) under the record's
// key, for records whose row exists. Records with a nil value, or whose
// mapped key is a nil pointer or interface, are dropped.
func JoinGlobal[K, V, KG, VG, VR any](s *Stream[K, V], g *GlobalTable[KG, VG], keyMapper func(key K, value V) KG, joiner func(value V, row VG) VR, name ...Named) *Stream[K, VR] {
	return globalJoin(s, g, keyMapper, func(v V, row *VG) (VR, bool) {
		if row == nil {
			var zero VR
			return zero, false
		}
		return joiner(v, *row), true
	}, false, name)
}

// LeftJoinGlobal is JoinGlobal that also forwards records without a row,
// as joiner(value, nil), including those whose mapped key is nil. Records
// with a nil value are dropped.
func LeftJoinGlobal[K, V, KG, VG, VR any](s *Stream[K, V], g *GlobalTable[KG, VG], keyMapper func(key K, value V) KG, joiner func(value V, row *VG) VR, name ...Named) *Stream[K, VR] {
	return globalJoin(s, g, keyMapper, func(v V, row *VG) (VR, bool) { return joiner(v, row), true }, true, name)
}

// globalJoin adds Kafka Streams' KStreamGlobalKTableJoin: a processor,
// named KSTREAM-LEFTJOIN-<index> for inner and left joins alike, that
// reads the global store. It stays in the stream's sub-topology: a global
// store joins no sub-topologies, and the stream needs no repartition, as
// every task sees every row.
func globalJoin[K, V, KG, VG, VR any](s *Stream[K, V], g *GlobalTable[KG, VG], keyMapper func(K, V) KG,
	join func(V, *VG) (VR, bool), left bool, name []Named) *Stream[K, VR] {
	if g.b != s.b {
		s.b.Fail(fmt.Errorf("join with global table %s: the table belongs to another builder", g.store))
	}
	// Only a pointer or interface key can be nil; asking the others costs
	// a boxing per record.
	kind := reflect.TypeFor[KG]().Kind()
	nilable := kind == reflect.Pointer || kind == reflect.Interface
	n := s.AddProcessor("LEFTJOIN", name, func() topology.Processor {
		return &globalJoinProcessor[K, V, KG, VG, VR]{g: g, keyMapper: keyMapper, join: join, left: left, nilable: nilable}
	})
	s.b.Fail(s.b.topo.ConnectStores(n, g.store))
	return NewStream[K, VR](s.b, n, s.keySerde, nil, s.keyChanged)
}

type globalJoinProcessor[K, V, KG, VG, VR any] struct {
	g         *GlobalTable[KG, VG]
	keyMapper func(K, V) KG
	join      func(V, *VG) (VR, bool)
	left      bool
	nilable   bool // a mapped key may be nil
	ctx       topology.Context
	store     state.ReadOnlyKeyValueStore
	boxes     Slab[VR]
}

func (p *globalJoinProcessor[K, V, KG, VG, VR]) Init(ctx topology.Context) error {
	p.ctx = ctx
	kv, ok := ctx.Store(p.g.store).(state.ReadOnlyKeyValueStore)
	if !ok {
		return fmt.Errorf("global store %s: got %T, want a state.ReadOnlyKeyValueStore", p.g.store, ctx.Store(p.g.store))
	}
	p.store = kv
	return nil
}

func (p *globalJoinProcessor[K, V, KG, VG, VR]) Close() error { return nil }

func (p *globalJoinProcessor[K, V, KG, VG, VR]) Process(r topology.Record) error {
	if r.Value == nil {
		topology.RecordDropped(p.ctx, "null-key-or-value")
		return nil
	}
	v := As[V](r.Value)
	mapped := p.keyMapper(As[K](r.Key), v)
	var row *VG
	if p.nilable && boxOrNil(mapped) == nil {
		if !p.left {
			topology.RecordDropped(p.ctx, "null-key-or-value")
			return nil
		}
	} else {
		kb, err := p.g.keySerde.Serialize(p.g.topic, mapped)
		if err != nil {
			return fmt.Errorf("join with global store %s: serialize key: %w", p.g.store, err)
		}
		vb, err := p.store.Get(kb)
		if err != nil {
			return fmt.Errorf("join with global store %s: %w", p.g.store, err)
		}
		if vb != nil {
			vg, err := p.g.valueSerde.Deserialize(p.g.topic, vb)
			if err != nil {
				return fmt.Errorf("join with global store %s: deserialize value: %w", p.g.store, err)
			}
			row = &vg
		}
	}
	out, ok := p.join(v, row)
	if !ok {
		return nil
	}
	r.Value = p.boxes.New(out)
	p.ctx.Forward(r)
	return nil
}
