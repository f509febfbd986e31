package dsl

import (
	"fmt"
	"regexp"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// Joins that read a table: a stream joined with a table (Kafka Streams'
// KStreamKTableJoin) and two tables joined by key (KTableKTableInnerJoin,
// LeftJoin, OuterJoin). In both, the node an update flows through looks the
// other side up in that side's store, so the two sides share a store and the
// compiler puts them in one sub-topology, whose source topics must then be
// co-partitioned.

// Joined says how a stream–table join reads its stream side (Kafka
// Streams' Joined).
type Joined[K, V, VO any] struct {
	// Name names the join node and, when the stream's key changed since its
	// source, the repartition topic "<application.id>-<Name>-repartition"
	// the stream goes through first. Empty: KSTREAM-JOIN-<index> (or
	// KSTREAM-LEFTJOIN-<index>), and a topic named after the stream's node.
	Name string
	// KeySerde and ValueSerde write the repartition topic; nil: the
	// stream's serdes, else DefaultSerde.
	KeySerde   serde.Serde[K]
	ValueSerde serde.Serde[V]
	// OtherValueSerde writes the table's values into the store a table
	// that is not materialized (Filter, MapValues) gets for the join; nil:
	// the table's serde, else DefaultSerde.
	OtherValueSerde serde.Serde[VO]
}

// JoinStreamTable joins each record of s with the row of t under the same
// key, as Kafka Streams' KStreamKTableJoin: join gets the record's value
// and the row (nil when t has none); a left join forwards every record, an
// inner join only those that found a row. The table's updates never emit.
// A stream whose key changed is repartitioned first, so its records reach
// the task that holds their row.
func JoinStreamTable[K, V, VT, VR any](s *Stream[K, V], t *Table[K, VT], join func(value V, row *VT) VR, left bool, j Joined[K, V, VT]) *Stream[K, VR] {
	b := s.b
	if t.b != b {
		b.Fail(fmt.Errorf("join of stream %s with table %s: they belong to different builders", s.node, t.node))
		return NewStream[K, VR](b, s.node, s.keySerde, nil, false)
	}
	if s.keyChanged {
		// As Kafka Streams' repartitionForJoin: the topic is named after
		// the join, else after the stream's node.
		base := j.Name
		if base == "" {
			base = s.node
		}
		s = s.repartitionAs(base, firstNonNil(j.KeySerde, s.keySerde), firstNonNil(j.ValueSerde, s.valueSerde), 0, nil)
	}
	if !t.materialize(firstNonNil(t.keySerde, j.KeySerde), firstNonNil(t.valueSerde, j.OtherValueSerde)) {
		return NewStream[K, VR](b, s.node, s.keySerde, nil, false)
	}
	op := "JOIN"
	if left {
		op = "LEFTJOIN"
	}
	reader := newTableReader(t)
	name := s.AddProcessor(op, []Named{Named(j.Name)}, func() topology.Processor {
		return &streamTableJoin[K, V, VT, VR]{table: reader, join: join, left: left}
	})
	b.Fail(b.topo.ConnectStores(name, t.store))
	return NewStream[K, VR](b, name, firstNonNil(j.KeySerde, s.keySerde), nil, false)
}

// streamTableJoin is Kafka Streams' KStreamKTableJoinProcessor.
type streamTableJoin[K, V, VT, VR any] struct {
	table tableReader[K, VT]
	join  func(V, *VT) VR
	left  bool
	ctx   topology.Context
	boxes Slab[VR]
}

func (p *streamTableJoin[K, V, VT, VR]) Init(ctx topology.Context) error {
	p.ctx = ctx
	return p.table.init(ctx)
}

func (p *streamTableJoin[K, V, VT, VR]) Close() error { return nil }

func (p *streamTableJoin[K, V, VT, VR]) Process(r topology.Record) error {
	// As Kafka Streams: a record without a key has no row to join, and a
	// nil value is not a value a joiner could be given (nil stands for "no
	// row" on the table side), so both are dropped and counted.
	if r.Key == nil || r.Value == nil {
		topology.RecordDropped(p.ctx, "null-key-or-value")
		return nil
	}
	row, ok, err := p.table.get(As[K](r.Key))
	if err != nil {
		return err
	}
	if !ok && !p.left {
		return nil
	}
	var rowp *VT
	if ok {
		rowp = &row
	}
	r.Value = p.boxes.New(p.join(As[V](r.Value), rowp))
	p.ctx.Forward(r)
	return nil
}

// JoinTables joins a and b by key into a table, as Kafka Streams'
// KTableKTableJoin: an update of either side looks up the other side's
// row and updates (or deletes) the joined row, forwarding the change with
// the joined row it replaces. leftOuter keeps a's rows that b lacks,
// rightOuter b's rows that a lacks (both: an outer join); join is called
// with nil only for a side that may be absent. m, when not nil, keeps the
// result in a store of its own.
func JoinTables[K, V, VO, VR any](a *Table[K, V], b *Table[K, VO], join func(left *V, right *VO) VR, leftOuter, rightOuter bool, m *Materialized[K, VR]) *Table[K, VR] {
	bld := a.b
	if b.b != bld {
		bld.Fail(fmt.Errorf("join of tables %s and %s: they belong to different builders", a.node, b.node))
		return NewTable[K, VR](bld, a.node, a.keySerde, nil, "")
	}
	if !a.materialize(a.keySerde, a.valueSerde) || !b.materialize(b.keySerde, b.valueSerde) {
		return NewTable[K, VR](bld, a.node, a.keySerde, nil, "")
	}
	// Names in Kafka Streams' order: the result store, the merge node, the
	// node under a, the node under b.
	store := ""
	if m != nil {
		store = storeName(bld, *m, "KTABLE-MERGE-")
	}
	mergeName := bld.NewTableName("MERGE")
	readA, readB := newTableReader(a), newTableReader(b)
	thisName := a.AddProcessor(bld.NewTableName("JOINTHIS"), func() topology.Processor {
		return &tableJoinSide[K, V, VO, VR]{other: readB, join: join, thisOptional: rightOuter, otherOptional: leftOuter}
	})
	bld.Fail(bld.topo.ConnectStores(thisName, b.store))
	reversed := func(right *VO, left *V) VR { return join(left, right) }
	otherName := b.AddProcessor(bld.NewTableName("JOINOTHER"), func() topology.Processor {
		return &tableJoinSide[K, VO, V, VR]{other: readA, join: reversed, thisOptional: leftOuter, otherOptional: rightOuter}
	})
	bld.Fail(bld.topo.ConnectStores(otherName, a.store))

	if m == nil {
		bld.Fail(bld.topo.AddProcessor(mergeName, topology.Funcs(func(ctx topology.Context, r topology.Record) error {
			ctx.Forward(r)
			return nil
		}), thisName, otherName))
		return NewTable[K, VR](bld, mergeName, a.keySerde, nil, "")
	}
	ks, vs := firstSerde(m.KeySerde, a.keySerde), firstSerde(m.ValueSerde)
	bld.Fail(bld.topo.AddProcessor(mergeName, func() topology.Processor {
		return &tableMaterializer[K, VR]{tableStore: newTableStore(store, ks, vs)}
	}, thisName, otherName))
	addStore(bld, store, *m, mergeName, ks, vs)
	return NewTable(bld, mergeName, ks, vs, store)
}

// tableJoinSide is the node under one side of a table–table join (Kafka
// Streams' KTableKTableInnerJoin, LeftJoin, RightJoin and OuterJoin
// processors in one): for an update of this side it computes the joined
// row before and after the update from the other side's current row.
// thisOptional says a joined row may lack this side, otherOptional the
// other side; join takes this side first.
type tableJoinSide[K, VT, VO, VR any] struct {
	other                       tableReader[K, VO]
	join                        func(this *VT, other *VO) VR
	thisOptional, otherOptional bool
	ctx                         topology.Context
	boxes                       Slab[Change]
}

func (p *tableJoinSide[K, VT, VO, VR]) Init(ctx topology.Context) error {
	p.ctx = ctx
	return p.other.init(ctx)
}

func (p *tableJoinSide[K, VT, VO, VR]) Close() error { return nil }

func (p *tableJoinSide[K, VT, VO, VR]) Process(r topology.Record) error {
	if r.Key == nil || r.Value == nil {
		return nil
	}
	ch := As[Change](r.Value)
	o, ok, err := p.other.get(As[K](r.Key))
	if err != nil {
		return err
	}
	var other *VO
	if ok {
		other = &o
	}
	newRow, oldRow := p.row(ch.New, other), p.row(ch.Old, other)
	// A row that neither was nor is there changes nothing (Kafka Streams
	// forwards some of these as a change of null to null; downstream they
	// would only turn into tombstones of keys never written).
	if newRow == nil && oldRow == nil {
		return nil
	}
	r.Value = p.boxes.New(Change{New: newRow, Old: oldRow})
	p.ctx.Forward(r)
	return nil
}

// row is the joined row of this side's value (nil: absent, else a boxed
// VT) and the other side's, or nil when the join has no such row.
func (p *tableJoinSide[K, VT, VO, VR]) row(this any, other *VO) any {
	switch {
	case this == nil && other == nil,
		this == nil && !p.thisOptional,
		other == nil && !p.otherOptional:
		return nil
	}
	var thisp *VT
	if this != nil {
		v := As[VT](this)
		thisp = &v
	}
	return boxOrNil(p.join(thisp, other))
}

// tableMaterializer keeps the rows of the changes it receives in its store
// and forwards each change with the row the store held before (through
// the cache when the store caches): a materialized join result (Kafka
// Streams' KTableKTableJoinMerger), or a table materialized for a join.
type tableMaterializer[K, V any] struct {
	tableStore[K, V]
}

func (p *tableMaterializer[K, V]) Init(ctx topology.Context) error { return p.init(ctx) }
func (p *tableMaterializer[K, V]) Close() error                    { p.close(); return nil }

func (p *tableMaterializer[K, V]) Process(r topology.Record) error {
	if r.Key == nil || r.Value == nil {
		return nil
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
	return p.put(r, kb, As[Change](r.Value).New, oldBox)
}

// generatedSuffix is the index of a generated node name.
var generatedSuffix = regexp.MustCompile(`[0-9]{10}$`)

// materialize makes sure a join can read the table's rows from a store.
// A table that is not materialized (Filter, MapValues, a time-limit
// Suppress) gets a node below it that keeps its rows in a store of its own
// (logged and cached, like any table store), written with ks and vs (nil:
// DefaultSerde), and the handle moves to that node, so a second join of the
// same handle shares the store. Kafka Streams instead computes such a
// table's rows on demand from its nearest materialized ancestor; we keep no
// chain of operators to replay, so we pay for a store. Windowed tables
// cannot be joined; materialize records that error and reports false.
func (t *Table[K, V]) materialize(ks serde.Serde[K], vs serde.Serde[V]) bool {
	if t.windowed {
		t.b.Fail(fmt.Errorf("join of windowed table %s: joins of windowed tables are not supported", t.node))
		return false
	}
	if t.store != "" {
		return true
	}
	// Named as Kafka Streams names the store of a materialized operator:
	// KTABLE-FILTER-STATE-STORE-<index> for KTABLE-FILTER-<index>.
	prefix := generatedSuffix.ReplaceAllString(t.node, "")
	if prefix == t.node {
		prefix += "-"
	}
	store := t.b.NewStoreName(prefix)
	node := t.b.NewTableName("MATERIALIZE")
	kss, vss := OrDefault(ks), OrDefault(vs)
	t.AddProcessor(node, func() topology.Processor {
		return &tableMaterializer[K, V]{tableStore: newTableStore(store, kss, vss)}
	})
	addStore(t.b, store, Materialized[K, V]{}, node, kss, vss)
	t.node, t.store = node, store
	t.keySerde, t.valueSerde = firstNonNil(t.keySerde, ks), firstNonNil(t.valueSerde, vs)
	return true
}

// tableReader looks rows up in the store of a materialized table owned by
// another node (through its cache, so it sees every update already
// processed), as Kafka Streams' KTableValueGetter. It only reads: the
// owner keeps the store's flush listener.
type tableReader[K, V any] struct {
	name  string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	topic string
	store state.KeyValueStore
}

// newTableReader reads t's store with the serdes t's node writes it with.
func newTableReader[K, V any](t *Table[K, V]) tableReader[K, V] {
	return tableReader[K, V]{name: t.store, ks: OrDefault(t.keySerde), vs: OrDefault(t.valueSerde)}
}

func (r *tableReader[K, V]) init(ctx topology.Context) error {
	r.topic = topology.InternalTopicName(ctx.ApplicationID(), topology.ChangelogTopic(r.name))
	raw := ctx.Store(r.name)
	kv, ok := raw.(state.KeyValueStore)
	if !ok {
		return fmt.Errorf("join: store %s: got %T, want a state.KeyValueStore", r.name, raw)
	}
	r.store = kv
	return nil
}

// get returns the row of key; ok is false when there is none.
func (r *tableReader[K, V]) get(key K) (v V, ok bool, err error) {
	kb, err := r.ks.Serialize(r.topic, key)
	if err != nil {
		return v, false, fmt.Errorf("join: store %s: serialize key: %w", r.name, err)
	}
	b, err := r.store.Get(kb)
	if err != nil {
		return v, false, fmt.Errorf("join: store %s: get: %w", r.name, err)
	}
	if b == nil {
		return v, false, nil
	}
	if v, err = r.vs.Deserialize(r.topic, b); err != nil {
		return v, false, fmt.Errorf("join: store %s: deserialize value: %w", r.name, err)
	}
	return v, true, nil
}

// firstNonNil returns the first serde that is not nil, or nil.
func firstNonNil[T any](ss ...serde.Serde[T]) serde.Serde[T] {
	for _, s := range ss {
		if s != nil {
			return s
		}
	}
	return nil
}
