package dsl

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// Foreign-key joins of two tables (Kafka Streams' KTable.join(other,
// foreignKeyExtractor, joiner), KIP-213): each row of the left table
// references at most one row of the right table by a foreign key taken
// from its value, and the result, keyed like the left table, holds the
// joined row. The two tables need not be co-partitioned; the join moves
// data between them through two internal topics:
//
//   - left side: a subscription node (KTABLE-FK-JOIN-SUBSCRIPTION-
//     REGISTRATION) turns each left update into subscriptions keyed by
//     the foreign key, carrying the left key, a hash of the left value and
//     the left partition, onto the registration topic;
//   - right side: a receive node keeps the subscriptions in the
//     subscription store, keyed by foreign key and left key, and a join
//     node answers each with the right row from the right table's store; a
//     right update is answered to every subscriber, found by a prefix scan
//     of the subscription store. Answers go onto the response topic, keyed
//     by the left key, to the partition of the subscribing row;
//   - left side again: the resolver drops an answer whose hash is not the
//     hash of the left row's current value (it answers an older version of
//     the row, whose foreign key may have changed since) and joins the
//     rest; the result node keeps the result in its store.
//
// The subscription and response records and the store's keys are written
// as Kafka Streams writes them (see fkwire.go).

// TableJoined configures a foreign-key join (Kafka Streams' TableJoined).
// The zero value gives generated names and the tables' serdes.
type TableJoined[K, KO any] struct {
	// Name names the join's internal topics
	// "<application.id>-<Name>-subscription-registration-topic" and
	// "<application.id>-<Name>-subscription-response-topic", its store
	// "<Name>-subscription-store" and its nodes "<Name>-subscription-..."
	// and "<Name>-result". Empty: generated names such as
	// KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic, which
	// change when the topology changes; name every join whose topics and
	// store must survive an upgrade.
	Name string
	// KeySerde writes the left table's keys into subscriptions, the
	// response topic and the subscription store; nil: the left table's
	// key serde, else DefaultSerde.
	KeySerde serde.Serde[K]
	// ForeignKeySerde writes foreign keys: the keys of the registration
	// topic, which must land on the partition of the right table's row,
	// and of the subscription store. Nil: the right table's key serde,
	// else DefaultSerde.
	ForeignKeySerde serde.Serde[KO]
}

// FKJoinOption is an option of a foreign-key join: a TableJoined[K, KO]
// or a Materialized[K, VR] of the result.
type FKJoinOption interface{ fkJoinOption() }

func (TableJoined[K, KO]) fkJoinOption() {}
func (Materialized[K, V]) fkJoinOption() {}

// JoinOnForeignKey joins each row of left with the row of right whose key
// fk returns for its value (the zero KO: none), as Kafka Streams'
// KTable#join and #leftJoin with a foreign-key extractor. An inner join
// has a row where both exist; leftJoin keeps every left row, joining the
// ones without a right row with a nil right side. Non-materialized inputs
// get a store first. The result is always materialized (see the ktable
// package doc for why).
func JoinOnForeignKey[K, V, KO, VO, VR any](left *Table[K, V], right *Table[KO, VO], fk func(V) KO,
	joiner func(V, *VO) VR, leftJoin bool, opts []FKJoinOption) *Table[K, VR] {
	b := left.b
	var tj TableJoined[K, KO]
	var m Materialized[K, VR]
	for _, o := range opts {
		switch o := o.(type) {
		case TableJoined[K, KO]:
			tj = o
		case Materialized[K, VR]:
			m = o
		default:
			b.Fail(fmt.Errorf("foreign-key join of %s with %s: option %T does not fit: want a %s or a %s",
				left.node, right.node, o, reflect.TypeFor[TableJoined[K, KO]](), reflect.TypeFor[Materialized[K, VR]]()))
		}
	}
	failed := NewTable[K, VR](b, left.node, left.keySerde, nil, "")
	if right.b != b {
		b.Fail(fmt.Errorf("foreign-key join of %s with %s: they belong to different builders", left.node, right.node))
		return failed
	}
	if !left.materialize(left.keySerde, left.valueSerde) || !right.materialize(right.keySerde, right.valueSerde) {
		return failed
	}
	j := &fkJoin[K, V, KO, VO, VR]{
		extract:     fk,
		joiner:      joiner,
		leftJoin:    leftJoin,
		keys:        firstSerde(tj.KeySerde, left.keySerde),
		foreignKeys: firstSerde(tj.ForeignKeySerde, right.keySerde),
		ownKeys:     tj.KeySerde != nil,
		ownFKs:      tj.ForeignKeySerde != nil,
		leftStore:   left.store,
		leftKeys:    OrDefault(left.keySerde),
		leftValues:  OrDefault(left.valueSerde),
		rightStore:  right.store,
		rightKeys:   OrDefault(right.keySerde),
		rightValues: OrDefault(right.valueSerde),
	}

	// Names in Kafka Streams' order (KTableImpl.doJoinOnForeignKey), each
	// using up one index whether or not the join is named.
	name := tj.Name
	named := func(suffix, op string) string {
		gen := b.NewTableName(op)
		if name != "" {
			return name + suffix
		}
		return gen
	}
	j.registrationTopic = named("-subscription-registration", "FK-JOIN-SUBSCRIPTION-REGISTRATION") + "-topic"
	sendName := named("-subscription-registration-processor", "FK-JOIN-SUBSCRIPTION-REGISTRATION")
	regSink := named("-subscription-registration-sink", "SINK")
	regSource := named("-subscription-registration-source", "SOURCE")
	j.subscriptionStore = named("-subscription-store", "FK-JOIN-SUBSCRIPTION-STATE-STORE")
	receiveName := named("-subscription-receive", "FK-JOIN-SUBSCRIPTION-PROCESSOR")
	answerName := named("-subscription-join-foreign", "FK-JOIN-SUBSCRIPTION-PROCESSOR")
	fanOutName := named("-foreign-join-subscription", "FK-JOIN-SUBSCRIPTION-PROCESSOR")
	responseTopic := named("-subscription-response", "FK-JOIN-SUBSCRIPTION-RESPONSE") + "-topic"
	respSink := named("-subscription-response-sink", "SINK")
	respSource := named("-subscription-response-source", "SOURCE")
	resolverName := named("-subscription-response-resolver", "FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR")
	resultName := named("-result", "FK-JOIN-OUTPUT")
	resultStore := storeName(b, m, "KTABLE-FK-JOIN-OUTPUT-")

	// Both topics are repartition topics: records are deleted once
	// processed. Their partition counts are left to the compiler: the
	// registration topic is read with the right table's topics, the
	// response topic with the left table's, and must be co-partitioned
	// with them.
	repartition := map[string]string{"cleanup.policy": "delete"}
	b.Fail(b.topo.AddInternalTopic(topology.InternalTopic{Name: j.registrationTopic, Config: repartition}))
	b.Fail(b.topo.AddInternalTopic(topology.InternalTopic{Name: responseTopic, Config: repartition}))

	// Left side: subscribe.
	b.Fail(b.topo.AddProcessor(sendName, func() topology.Processor { return &fkSubscribe[K, V, KO, VO, VR]{j: j} }, left.node))
	b.Fail(b.topo.AddSink(regSink, topology.SinkSpec{Topic: j.registrationTopic,
		KeySerializer: rawBytesSerializer, ValueSerializer: subscriptionSerializer}, sendName))

	// Right side: keep subscriptions, answer them, and answer again when
	// the right row changes.
	b.Fail(b.topo.AddSource(regSource, topology.SourceSpec{Topics: []string{j.registrationTopic},
		KeyDeserializer: rawBytesDeserializer, ValueDeserializer: subscriptionDeserializer}))
	b.Fail(b.topo.AddProcessor(receiveName, func() topology.Processor { return &fkReceive[K, V, KO, VO, VR]{j: j} }, regSource))
	b.Fail(b.topo.AddStore(topology.StoreSpec{Name: j.subscriptionStore, Logging: true, Internal: true}, receiveName))
	b.Fail(b.topo.AddProcessor(answerName, func() topology.Processor { return &fkAnswer[K, V, KO, VO, VR]{j: j} }, receiveName))
	b.Fail(b.topo.ConnectStores(answerName, right.store))
	b.Fail(b.topo.AddProcessor(fanOutName, func() topology.Processor { return &fkFanOut[K, V, KO, VO, VR]{j: j} }, right.node))
	b.Fail(b.topo.ConnectStores(fanOutName, j.subscriptionStore))
	b.Fail(b.topo.AddSink(respSink, topology.SinkSpec{Topic: responseTopic,
		KeySerializer: rawBytesSerializer, ValueSerializer: responseSerializer, Partitioner: toPrimaryPartition},
		answerName, fanOutName))

	// Left side again: drop stale answers, join the rest, keep the result.
	b.Fail(b.topo.AddSource(respSource, topology.SourceSpec{Topics: []string{responseTopic},
		KeyDeserializer: rawBytesDeserializer, ValueDeserializer: responseDeserializer}))
	b.Fail(b.topo.AddProcessor(resolverName, func() topology.Processor { return &fkResolve[K, V, KO, VO, VR]{j: j} }, respSource))
	b.Fail(b.topo.ConnectStores(resolverName, left.store))
	rks, rvs := firstSerde(m.KeySerde, left.keySerde), firstSerde(m.ValueSerde)
	b.Fail(b.topo.AddProcessor(resultName, func() topology.Processor {
		return &tableSource[K, VR]{tableStore: newTableStore(resultStore, rks, rvs)}
	}, resolverName))
	addStore(b, resultStore, m, resultName, rks, rvs)
	return NewTable(b, resultName, firstNonNil(m.KeySerde, left.keySerde), m.ValueSerde, resultStore)
}

// fkJoin is what the processors of one foreign-key join share; it is
// written while the join is built and only read after.
type fkJoin[K, V, KO, VO, VR any] struct {
	extract  func(V) KO
	joiner   func(V, *VO) VR
	leftJoin bool

	// keys and foreignKeys write the keys that travel between the sides;
	// ownKeys and ownFKs say they were given (TableJoined), so they may
	// write keys otherwise than the tables' stores do.
	keys              serde.Serde[K]
	foreignKeys       serde.Serde[KO]
	ownKeys           bool
	ownFKs            bool
	leftStore         string
	leftKeys          serde.Serde[K]
	leftValues        serde.Serde[V]
	rightStore        string
	rightKeys         serde.Serde[KO]
	rightValues       serde.Serde[VO]
	subscriptionStore string
	registrationTopic string // unresolved
}

// fkTopics are the topic names a join's serdes are given, resolved under
// the running application id. Keys get Kafka Streams' pseudo topics
// "<registration topic>-fk" and "-pk"; values the changelog topics of the
// stores they are read from, so a left value hashes to the same bytes
// whether the subscription or the resolver serializes it.
type fkTopics struct {
	fk, pk, leftStore, rightStore string
}

func (j *fkJoin[K, V, KO, VO, VR]) topics(ctx topology.Context) fkTopics {
	app := ctx.ApplicationID()
	reg := topology.InternalTopicName(app, j.registrationTopic)
	return fkTopics{
		fk:         reg + "-fk",
		pk:         reg + "-pk",
		leftStore:  topology.InternalTopicName(app, topology.ChangelogTopic(j.leftStore)),
		rightStore: topology.InternalTopicName(app, topology.ChangelogTopic(j.rightStore)),
	}
}

// foreignKey returns the serialized foreign key of a left value (nil or a
// boxed V), or nil when the value is absent or references nothing.
func (j *fkJoin[K, V, KO, VO, VR]) foreignKey(t *fkTopics, value any) ([]byte, error) {
	if value == nil {
		return nil, nil
	}
	k := j.extract(As[V](value))
	if reflect.ValueOf(&k).Elem().IsZero() {
		return nil, nil
	}
	b, err := j.foreignKeys.Serialize(t.fk, k)
	if err != nil {
		return nil, fmt.Errorf("foreign-key join: serialize foreign key: %w", err)
	}
	if b == nil {
		b = []byte{} // a key, if an empty one
	}
	return b, nil
}

// keyValueStore returns the named store attached to the processor.
func keyValueStore(ctx topology.Context, name string) (state.KeyValueStore, error) {
	kv, ok := ctx.Store(name).(state.KeyValueStore)
	if !ok {
		return nil, fmt.Errorf("foreign-key join: store %s: got %T, want a state.KeyValueStore", name, ctx.Store(name))
	}
	return kv, nil
}

// taskPartition is the partition of the task a processor runs in, which
// is the partition of every record it reads: task ids are
// "<subtopology>_<partition>".
func taskPartition(ctx topology.Context) (int32, error) {
	id := ctx.TaskID()
	p, err := strconv.ParseInt(id[strings.LastIndexByte(id, '_')+1:], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("foreign-key join: partition of task %q: %w", id, err)
	}
	return int32(p), nil
}

// fkSubscribe is Kafka Streams' SubscriptionSendProcessorSupplier: for an
// update of a left row it unsubscribes the row from its old foreign key
// when that changed and subscribes it to the new one, with instructions
// that say which answers the result needs.
type fkSubscribe[K, V, KO, VO, VR any] struct {
	j         *fkJoin[K, V, KO, VO, VR]
	ctx       topology.Context
	t         fkTopics
	partition int32
	boxes     Slab[subscription]
}

func (p *fkSubscribe[K, V, KO, VO, VR]) Init(ctx topology.Context) error {
	p.ctx, p.t = ctx, p.j.topics(ctx)
	var err error
	p.partition, err = taskPartition(ctx)
	return err
}

func (p *fkSubscribe[K, V, KO, VO, VR]) Close() error { return nil }

func (p *fkSubscribe[K, V, KO, VO, VR]) Process(r topology.Record) error {
	j := p.j
	ch := As[Change](r.Value)
	if r.Key == nil || (ch.New == nil && ch.Old == nil) {
		return nil
	}
	oldFK, err := j.foreignKey(&p.t, ch.Old)
	if err != nil {
		return err
	}
	newFK, err := j.foreignKey(&p.t, ch.New)
	if err != nil {
		return err
	}
	pk, err := j.keys.Serialize(p.t.pk, As[K](r.Key))
	if err != nil {
		return fmt.Errorf("foreign-key join: serialize key: %w", err)
	}
	var hash valueHash
	if ch.New != nil {
		vb, err := j.leftValues.Serialize(p.t.leftStore, As[V](ch.New))
		if err != nil {
			return fmt.Errorf("foreign-key join: serialize value to hash it: %w", err)
		}
		hash = hashValue(vb)
	}
	send := func(fk []byte, in fkInstruction) {
		out := r
		out.Key = nil
		if fk != nil {
			out.Key = fk
		}
		out.Value = p.boxes.New(subscription{version: subscriptionVersion, hash: hash, instruction: in,
			primaryKey: pk, primaryPartition: p.partition})
		p.ctx.Forward(out)
	}
	moved := oldFK != nil && !bytes.Equal(oldFK, newFK)
	if j.leftJoin {
		// Every update needs an answer, even a delete or a row that
		// references nothing (subscribed under no key, which the right
		// side answers with "no row" without storing it): a left join has
		// a result for every left row.
		if moved {
			send(oldFK, fkDeleteNoPropagate)
		}
		send(newFK, fkPropagateNullIfNoFK)
		return nil
	}
	switch {
	case ch.New == nil: // the row is gone: so is its result
		if oldFK != nil {
			send(oldFK, fkDeleteAndPropagate)
		}
	case newFK == nil: // the row references nothing: no result
		topology.RecordDropped(p.ctx, "null-foreign-key")
		if oldFK != nil {
			send(oldFK, fkDeleteAndPropagate)
		}
	case moved:
		// The answer from the new key replaces the result, whether or
		// not there is a right row; the old key need not answer.
		send(oldFK, fkDeleteNoPropagate)
		send(newFK, fkPropagateNullIfNoFK)
	default:
		// A new row, or one whose key stayed: without a right row there
		// was and is no result, so only a right row needs an answer.
		send(newFK, fkPropagateOnlyIfFK)
	}
	return nil
}

// fkReceive is Kafka Streams' SubscriptionReceiveProcessorSupplier: it
// keeps each left row's subscription in the subscription store, keyed by
// foreign key then left key, and passes it on to be answered.
type fkReceive[K, V, KO, VO, VR any] struct {
	j     *fkJoin[K, V, KO, VO, VR]
	ctx   topology.Context
	store state.KeyValueStore
}

func (p *fkReceive[K, V, KO, VO, VR]) Init(ctx topology.Context) error {
	p.ctx = ctx
	var err error
	p.store, err = keyValueStore(ctx, p.j.subscriptionStore)
	return err
}

func (p *fkReceive[K, V, KO, VO, VR]) Close() error { return nil }

func (p *fkReceive[K, V, KO, VO, VR]) Process(r topology.Record) error {
	s, _ := r.Value.(*subscription)
	if s == nil {
		return nil
	}
	fk := rawKey(r.Key)
	if fk == nil {
		// Only a left join's "answer even without a key" comes keyless;
		// it is answered, never stored.
		if s.instruction != fkPropagateNullIfNoFK {
			topology.RecordDropped(p.ctx, "null-foreign-key")
			return nil
		}
		p.ctx.Forward(r)
		return nil
	}
	// A fresh key each time: the changelog record is sent asynchronously
	// with the key's bytes.
	key := appendCombinedKey(nil, fk, s.primaryKey)
	if s.instruction.isDelete() {
		if _, err := p.store.Delete(key); err != nil {
			return fmt.Errorf("foreign-key join: store %s: delete subscription: %w", p.j.subscriptionStore, err)
		}
	} else {
		vb, err := appendSubscription(nil, s)
		if err != nil {
			return err
		}
		if err := p.store.Put(key, vb); err != nil {
			return fmt.Errorf("foreign-key join: store %s: put subscription: %w", p.j.subscriptionStore, err)
		}
	}
	p.ctx.Forward(r)
	return nil
}

// fkAnswer is Kafka Streams' SubscriptionJoinProcessorSupplier: it
// answers a subscription, as its instruction asks, with the right row of
// its foreign key.
type fkAnswer[K, V, KO, VO, VR any] struct {
	j     *fkJoin[K, V, KO, VO, VR]
	ctx   topology.Context
	t     fkTopics
	right state.KeyValueStore
	boxes Slab[response]
}

func (p *fkAnswer[K, V, KO, VO, VR]) Init(ctx topology.Context) error {
	p.ctx, p.t = ctx, p.j.topics(ctx)
	var err error
	p.right, err = keyValueStore(ctx, p.j.rightStore)
	return err
}

func (p *fkAnswer[K, V, KO, VO, VR]) Close() error { return nil }

func (p *fkAnswer[K, V, KO, VO, VR]) Process(r topology.Record) error {
	s, _ := r.Value.(*subscription)
	if s == nil || s.instruction == fkDeleteNoPropagate {
		return nil
	}
	var row []byte
	if fk := rawKey(r.Key); fk != nil && s.instruction != fkDeleteAndPropagate {
		var err error
		if row, err = p.rightRow(fk); err != nil {
			return err
		}
	}
	if row == nil && s.instruction == fkPropagateOnlyIfFK {
		return nil
	}
	out := r
	out.Key = s.primaryKey
	out.Value = p.boxes.New(response{hash: s.hash, foreignValue: row, primaryPartition: s.primaryPartition})
	p.ctx.Forward(out)
	return nil
}

// rightRow returns the right table's row under a foreign key written by
// the join's foreign-key serde, or nil.
func (p *fkAnswer[K, V, KO, VO, VR]) rightRow(fk []byte) ([]byte, error) {
	j := p.j
	key := fk
	if j.ownFKs {
		// The right store may write its keys otherwise.
		k, err := j.foreignKeys.Deserialize(p.t.fk, fk)
		if err != nil {
			return nil, fmt.Errorf("foreign-key join: deserialize foreign key: %w", err)
		}
		if key, err = j.rightKeys.Serialize(p.t.rightStore, k); err != nil {
			return nil, fmt.Errorf("foreign-key join: store %s: serialize key: %w", j.rightStore, err)
		}
	}
	row, err := p.right.Get(key)
	if err != nil {
		return nil, fmt.Errorf("foreign-key join: store %s: get: %w", j.rightStore, err)
	}
	return row, nil
}

// fkFanOut is Kafka Streams' ForeignTableJoinProcessorSupplier: an update
// of a right row is answered to every left row subscribed to its key,
// found by a prefix scan of the subscription store.
type fkFanOut[K, V, KO, VO, VR any] struct {
	j      *fkJoin[K, V, KO, VO, VR]
	ctx    topology.Context
	t      fkTopics
	store  state.KeyValueStore
	prefix []byte
	boxes  Slab[response]
}

func (p *fkFanOut[K, V, KO, VO, VR]) Init(ctx topology.Context) error {
	p.ctx, p.t = ctx, p.j.topics(ctx)
	var err error
	p.store, err = keyValueStore(ctx, p.j.subscriptionStore)
	return err
}

func (p *fkFanOut[K, V, KO, VO, VR]) Close() error { return nil }

func (p *fkFanOut[K, V, KO, VO, VR]) Process(r topology.Record) (err error) {
	j := p.j
	ch := As[Change](r.Value)
	if r.Key == nil || (ch.New == nil && ch.Old == nil) {
		return nil
	}
	fk, err := j.foreignKeys.Serialize(p.t.fk, As[KO](r.Key))
	if err != nil {
		return fmt.Errorf("foreign-key join: serialize foreign key: %w", err)
	}
	var row []byte
	if ch.New != nil {
		if row, err = j.rightValues.Serialize(p.t.rightStore, As[VO](ch.New)); err != nil {
			return fmt.Errorf("foreign-key join: serialize right value: %w", err)
		}
	}
	p.prefix = appendCombinedKeyPrefix(p.prefix[:0], fk)
	it, err := p.store.PrefixScan(p.prefix)
	if err != nil {
		return fmt.Errorf("foreign-key join: store %s: scan: %w", j.subscriptionStore, err)
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("foreign-key join: store %s: close scan: %w", j.subscriptionStore, cerr)
		}
	}()
	for it.Next() {
		// The prefix holds the key's length, so a longer key that merely
		// starts with the same bytes is not in the scan.
		_, pk, err := splitCombinedKey(it.Key())
		if err != nil {
			return fmt.Errorf("foreign-key join: store %s: %w", j.subscriptionStore, err)
		}
		s, err := parseSubscription(it.Value())
		if err != nil {
			return fmt.Errorf("foreign-key join: store %s: %w", j.subscriptionStore, err)
		}
		out := r
		out.Key = bytes.Clone(pk) // the iterator's bytes are reused; the sink sends asynchronously
		out.Value = p.boxes.New(response{hash: s.hash, foreignValue: row, primaryPartition: s.primaryPartition})
		p.ctx.Forward(out)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("foreign-key join: store %s: scan: %w", j.subscriptionStore, err)
	}
	return nil
}

// fkResolve is Kafka Streams' ResponseJoinProcessorSupplier: it drops an
// answer meant for another version of the left row than the current one
// (compared by the hash the subscription carried), joins the rest with
// the current row and forwards the result, or nil to delete it.
type fkResolve[K, V, KO, VO, VR any] struct {
	j     *fkJoin[K, V, KO, VO, VR]
	ctx   topology.Context
	t     fkTopics
	left  state.KeyValueStore
	boxes Slab[VR]
}

func (p *fkResolve[K, V, KO, VO, VR]) Init(ctx topology.Context) error {
	p.ctx, p.t = ctx, p.j.topics(ctx)
	var err error
	p.left, err = keyValueStore(ctx, p.j.leftStore)
	return err
}

func (p *fkResolve[K, V, KO, VO, VR]) Close() error { return nil }

func (p *fkResolve[K, V, KO, VO, VR]) Process(r topology.Record) error {
	j := p.j
	resp, _ := r.Value.(*response)
	pk := rawKey(r.Key)
	if resp == nil || pk == nil {
		return nil
	}
	key, err := j.keys.Deserialize(p.t.pk, pk)
	if err != nil {
		return fmt.Errorf("foreign-key join: deserialize key: %w", err)
	}
	storeKey := pk
	if j.ownKeys {
		if storeKey, err = j.leftKeys.Serialize(p.t.leftStore, key); err != nil {
			return fmt.Errorf("foreign-key join: store %s: serialize key: %w", j.leftStore, err)
		}
	}
	current, err := p.left.Get(storeKey)
	if err != nil {
		return fmt.Errorf("foreign-key join: store %s: get: %w", j.leftStore, err)
	}
	var hash valueHash
	if current != nil {
		hash = hashValue(current)
	}
	if hash != resp.hash {
		return nil // an answer to a version of the row that is no longer current
	}
	var result any
	if current != nil && (resp.foreignValue != nil || j.leftJoin) {
		lv, err := j.leftValues.Deserialize(p.t.leftStore, current)
		if err != nil {
			return fmt.Errorf("foreign-key join: store %s: deserialize value: %w", j.leftStore, err)
		}
		var rv *VO
		if resp.foreignValue != nil {
			v, err := j.rightValues.Deserialize(p.t.rightStore, resp.foreignValue)
			if err != nil {
				return fmt.Errorf("foreign-key join: deserialize right value: %w", err)
			}
			rv = &v
		}
		if joined := j.joiner(lv, rv); boxOrNil(joined) != nil {
			result = p.boxes.New(joined) // a nil pointer deletes the row
		}
	}
	r.Key, r.Value = key, result
	p.ctx.Forward(r)
	return nil
}

// rawKey returns a key that travels as bytes, or nil.
func rawKey(k any) []byte {
	b, _ := k.([]byte)
	return b
}

// The internal topics' serdes: keys are already bytes, values are the
// wire forms of subscriptions and responses.
func rawBytesSerializer(_ string, v any) ([]byte, error) { return rawKey(v), nil }

func rawBytesDeserializer(_ string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	return b, nil
}

func subscriptionSerializer(_ string, v any) ([]byte, error) {
	s, ok := v.(*subscription)
	if !ok || s == nil {
		return nil, fmt.Errorf("foreign-key join: registration topic got a %T, want a subscription", v)
	}
	return appendSubscription(nil, s)
}

func subscriptionDeserializer(_ string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	s, err := parseSubscription(b)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func responseSerializer(_ string, v any) ([]byte, error) {
	r, ok := v.(*response)
	if !ok || r == nil {
		return nil, fmt.Errorf("foreign-key join: response topic got a %T, want a response", v)
	}
	return appendResponse(nil, r), nil
}

func responseDeserializer(_ string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	r, err := parseResponse(b)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// toPrimaryPartition sends a response to the partition of the left row
// that subscribed, whatever partitioner placed that row (Kafka Streams'
// default response partitioner); a subscription without one (version 0)
// falls back to murmur2 of the key.
func toPrimaryPartition(_ string, _, value any, n int32) (int32, bool) {
	r, _ := value.(*response)
	if r == nil || r.primaryPartition < 0 || r.primaryPartition >= n {
		return 0, false
	}
	return r.primaryPartition, true
}
