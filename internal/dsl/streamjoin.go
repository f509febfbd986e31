package dsl

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// Stream–stream joins, as Kafka Streams' KStreamImplJoin and
// KStreamKStreamJoin (with the spurious-result fix of KIP-633/3.1). Each
// side's records are buffered in a window store that retains duplicates,
// keyed by the record's key and timestamp; a record looks up the other
// side's store for the records within its window, forwards one result per
// match (timestamp: the later of the two), and is then buffered itself. A
// pair is thus emitted once, when its second record arrives.
//
// The nodes are Kafka Streams': under the left stream a "this-windowed"
// and a "this-join" node, under the right an "other-windowed" and an
// "other-join" node, and a "merge" node that is the result. The windowed
// nodes pass records on (they carry Kafka's names and list their side's
// store, so generated names and descriptions line up); the join nodes do
// the work, so each also lists its own side's store next to the other
// side's. Both join nodes share the stores, so the compiler puts both
// sides in one sub-topology, whose source topics must be co-partitioned.
//
// Time is the join's own: the highest timestamp either side has seen in
// the task (Kafka Streams' shared TimeTracker). A record is late when its
// window ended more than grace ago (t+after+grace below stream time for a
// left record, t+before+grace for a right one, as Kafka's JoinWindows
// defines grace); a late record is dropped and counted as "late".
//
// Left and outer joins keep a record that found no match in a shared
// key-value store (Kafka's TimestampedKeyAndJoinSide keys: 8-byte
// big-endian timestamp, a side byte 1 for left and 0 for right, the key;
// values: Kafka's ListValueStore list of LeftOrRightValue, so the changelog
// reads the same in Java). A record of the other side that matches it
// later removes it; otherwise its null result (joiner called with nil for
// the missing side, timestamp: the record's) is forwarded once stream time
// passes t+before+after+grace.
//
// Departures from Kafka Streams, and why:
//
//   - Kafka forwards a null result once stream time passes the record's
//     window end plus grace, and at once for a record that arrives after
//     its window ended. A record of the other side that is out of order
//     but not late can still match after that (a right record at t is
//     taken while t+before+grace reaches stream time, and may fall in a
//     left window that ended before), and Kafka then forwards both the
//     null result and the join. Here the null result waits until every
//     record that could still match would be late, t+before+after+grace,
//     so a null result is never followed by a join of the same record.
//   - Kafka does not drop late records: a record whose window has closed
//     still joins whatever the other store holds, and a left join forwards
//     its null result at once. Here it is dropped, as late records of
//     windowed aggregations are, so what a join emits depends only on
//     which records arrived within grace.
//   - The window stores retain before+after+grace+1 ms instead of
//     before+after+grace, so that the oldest record a record within grace
//     can match is still there (and a window of zero size with no grace
//     has a positive retention).
//   - Null results are looked for after every record, not at most once a
//     second of wall-clock time (Kafka's emit interval), so when they come
//     depends on the records alone.
//   - Timestamps are taken to be non-negative, as Kafka's are: the shared
//     store is read in the byte order of its keys.
//
// A record with a nil key or value is dropped and counted as
// "null-key-or-value". Kafka Streams 3.7 and later (KIP-962) forward a
// keyless record of the side a left or outer join keeps at once, joined
// with null; we drop it as earlier versions do, as the stream–table join
// does, because a Go key type has no null to hand on: later operators
// would see its zero value as a real key.

// JoinStreams joins left and right within w, as Kafka Streams'
// KStreamImpl.join: leftOuter keeps left records without a match (left
// and outer joins), rightOuter right ones (outer joins); join gets nil
// only for a side that may be missing. A side whose key changed goes
// through a repartition topic first, "<Name>-left-repartition" or
// "<Name>-right-repartition", else named after the side's node.
func JoinStreams[K, V, VO, VR any](left *Stream[K, V], right *Stream[K, VO], join func(left *V, right *VO) VR,
	w JoinWindows, leftOuter, rightOuter bool, sj StreamJoined[K, V, VO]) *Stream[K, VR] {
	b := left.b
	if right.b != b {
		b.Fail(fmt.Errorf("join of streams %s and %s: they belong to different builders", left.node, right.node))
		return NewStream[K, VR](b, left.node, left.keySerde, nil, false)
	}
	if err := w.check(); err != nil {
		b.Fail(fmt.Errorf("join of streams %s and %s: %w", left.node, right.node, err))
		return NewStream[K, VR](b, left.node, left.keySerde, nil, false)
	}
	keySerde := setSerde(sj.KeySerde, left.keySerde, right.keySerde)
	self := left.node == right.node
	if left.keyChanged {
		left = left.repartitionAs(suffixed(sj.Name, "-left", left.node), setSerde(sj.KeySerde, left.keySerde),
			setSerde(sj.ValueSerde, left.valueSerde), 0, nil)
	}
	if right.keyChanged {
		base := suffixed(sj.Name, "-right", right.node)
		if self && sj.Name == "" {
			// A self-join's sides share one generated base name, so Kafka
			// Streams reads both from one repartition topic (still using
			// up the indexes of a second one).
			b.repartitionNames(base)
			right = NewStream(b, left.node, setSerde(sj.KeySerde, right.keySerde), setSerde(sj.OtherValueSerde, right.valueSerde), false)
		} else {
			right = right.repartitionAs(base, setSerde(sj.KeySerde, right.keySerde), setSerde(sj.OtherValueSerde, right.valueSerde), 0, nil)
		}
	}

	// Names and index use in Kafka Streams' order (KStreamImplJoin.join).
	thisSuffix, thisOp := "-this-join", "JOINTHIS"
	if rightOuter {
		thisSuffix, thisOp = "-outer-this-join", "OUTERTHIS"
	}
	otherSuffix, otherOp := "-other-join", "JOINOTHER"
	if leftOuter {
		otherSuffix, otherOp = "-outer-other-join", "OUTEROTHER"
	}
	thisWindowed := b.NameOr(suffixed(sj.Name, "-this-windowed", ""), "WINDOWED")
	otherWindowed := b.NameOr(suffixed(sj.Name, "-other-windowed", ""), "WINDOWED")
	thisGen, otherGen := b.NewName(thisOp), b.NewName(otherOp)
	joinThis := suffixed(sj.Name, thisSuffix, thisGen)
	joinOther := suffixed(sj.Name, otherSuffix, otherGen)
	merge := b.NameOr(suffixed(sj.Name, "-merge", ""), "MERGE")
	thisStore := suffixed(sj.StoreName, thisSuffix, thisGen) + "-store"
	otherStore := suffixed(sj.StoreName, otherSuffix, otherGen) + "-store"
	sharedStore := ""
	if leftOuter {
		sharedSuffix := "-left-shared-join"
		if rightOuter {
			sharedSuffix = "-outer-shared-join"
		}
		index := strings.TrimPrefix(thisGen, "KSTREAM-"+thisOp+"-")
		sharedStore = suffixed(sj.StoreName, sharedSuffix, "KSTREAM-OUTERSHARED-"+index) + "-store"
	}

	before, after := w.before.Milliseconds(), w.after.Milliseconds()
	j := &windowJoin[K, V, VO, VR]{
		join:        join,
		leftStore:   thisStore,
		rightStore:  otherStore,
		sharedStore: sharedStore,
		ks:          firstSerde(keySerde),
		vs:          firstSerde(sj.ValueSerde, left.valueSerde),
		vos:         firstSerde(sj.OtherValueSerde, right.valueSerde),
		before:      before,
		after:       after,
		grace:       w.grace.Milliseconds(),
		leftOuter:   leftOuter,
		rightOuter:  rightOuter,
		clocks:      map[any]*windowJoinClock{},
	}
	passOn := topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		ctx.Forward(r)
		return nil
	})
	b.Fail(b.topo.AddProcessor(thisWindowed, passOn, left.node))
	b.Fail(b.topo.AddProcessor(otherWindowed, passOn, right.node))
	b.Fail(b.topo.AddProcessor(joinThis, func() topology.Processor { return j.side(true) }, thisWindowed))
	b.Fail(b.topo.AddProcessor(joinOther, func() topology.Processor { return j.side(false) }, otherWindowed))
	b.Fail(b.topo.AddProcessor(merge, passOn, joinThis, joinOther))

	size := before + after
	retention := size + j.grace + 1
	addJoinStore(b, thisStore, sj, topology.WindowStore, storeCodec(j.ks, j.vs, nil), retention, size, thisWindowed, joinOther)
	addJoinStore(b, otherStore, sj, topology.WindowStore, storeCodec(j.ks, j.vos, nil), retention, size, otherWindowed, joinThis)
	if sharedStore != "" {
		addJoinStore(b, sharedStore, sj, topology.KeyValueStore, nil, 0, 0, joinThis, joinOther)
	}
	b.Fail(b.topo.ConnectStores(joinThis, thisStore))
	b.Fail(b.topo.ConnectStores(joinOther, otherStore))
	return NewStream[K, VR](b, merge, keySerde, nil, false)
}

// addJoinStore declares one of a join's stores: never cached (a join
// reads back what it just wrote, and every write must reach the changelog
// in order), window stores retaining duplicates, none of them offered to
// interactive queries.
func addJoinStore[K, V, VO any](b *Builder, name string, sj StreamJoined[K, V, VO], kind topology.StoreKind, codec *topology.StoreCodec,
	retention, size int64, processors ...string) {
	b.Fail(b.topo.AddStore(topology.StoreSpec{
		Name:             name,
		InMemory:         sj.InMemory,
		Logging:          !sj.LoggingDisabled,
		LogConfig:        sj.LogConfig,
		Codec:            codec,
		Kind:             kind,
		Retention:        retention,
		WindowSize:       size,
		RetainDuplicates: kind == topology.WindowStore,
		Internal:         true,
	}, processors...))
}

// suffixed is name+suffix, or orElse when name is empty.
func suffixed(name, suffix, orElse string) string {
	if name == "" {
		return orElse
	}
	return name + suffix
}

// setSerde returns the first serde that is set, or nil.
func setSerde[T any](ss ...serde.Serde[T]) serde.Serde[T] {
	for _, s := range ss {
		if s != nil {
			return s
		}
	}
	return nil
}

// windowJoin is one join: its configuration, the same for both sides, and
// the clock each task's pair of join nodes shares. The clocks are keyed by
// the task's left window store, which both nodes of a task are given and
// no other task has (a task id is not enough: two instances of an
// application in one process may each hold a task of that id for a while
// during a rebalance).
type windowJoin[K, V, VO, VR any] struct {
	join                               func(*V, *VO) VR
	leftStore, rightStore, sharedStore string
	ks                                 serde.Serde[K]
	vs                                 serde.Serde[V]
	vos                                serde.Serde[VO]
	before, after, grace               int64 // ms, as seen from the left
	leftOuter, rightOuter              bool

	mu     sync.Mutex
	clocks map[any]*windowJoinClock
}

// windowJoinClock is the state a task's two join nodes share.
type windowJoinClock struct {
	// streamTime is the highest timestamp either side has seen, or -1.
	streamTime int64
	// sharedMin is at most the lowest timestamp in the shared store:
	// MaxInt64 when it is known to be empty, MinInt64 when not known (a
	// store restored at start), so that the next record reads it.
	sharedMin int64
	users     int
}

func (j *windowJoin[K, V, VO, VR]) acquire(key any) *windowJoinClock {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := j.clocks[key]
	if c == nil {
		c = &windowJoinClock{streamTime: -1, sharedMin: math.MinInt64}
		j.clocks[key] = c
	}
	c.users++
	return c
}

func (j *windowJoin[K, V, VO, VR]) release(key any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if c := j.clocks[key]; c != nil {
		if c.users--; c.users <= 0 {
			delete(j.clocks, key)
		}
	}
}

// side makes the join node of the left side (Kafka's this-join) or the
// right side (other-join) for one task.
func (j *windowJoin[K, V, VO, VR]) side(left bool) *windowJoinSide[K, V, VO, VR] {
	p := &windowJoinSide[K, V, VO, VR]{j: j, left: left, before: j.before, after: j.after, outer: j.leftOuter}
	if !left {
		p.before, p.after, p.outer = j.after, j.before, j.rightOuter
	}
	return p
}

// Side bytes of the shared store's keys and values, as Kafka's
// TimestampedKeyAndJoinSide and LeftOrRightValue serializers write them.
const (
	joinSideRight byte = 0
	joinSideLeft  byte = 1
)

// windowJoinSide is one side's join node: Kafka Streams'
// KStreamKStreamJoinLeftSide or RightSide, plus the buffering of
// KStreamJoinWindow.
type windowJoinSide[K, V, VO, VR any] struct {
	j     *windowJoin[K, V, VO, VR]
	left  bool
	outer bool // this side's records without a match get a null result
	// before and after: the other side's records at [t-before, t+after]
	// join a record of this side at t.
	before, after int64

	ctx         topology.Context
	clock       *windowJoinClock
	clockKey    any
	this, other state.WindowStore
	shared      state.KeyValueStore // nil in an inner join
	// The stores' changelog topics, which serdes are given, as Kafka's
	// metered stores give them.
	thisTopic, otherTopic, sharedTopic string

	boxes   Slab[VR]
	matches []windowJoinMatch
	expired []state.KeyValue
	keyBuf  []byte
}

type windowJoinMatch struct {
	start int64
	value []byte
}

func (p *windowJoinSide[K, V, VO, VR]) Init(ctx topology.Context) error {
	p.ctx = ctx
	j := p.j
	leftStore, err := joinWindowStore(ctx, j.leftStore)
	if err != nil {
		return err
	}
	rightStore, err := joinWindowStore(ctx, j.rightStore)
	if err != nil {
		return err
	}
	topic := func(store string) string {
		return topology.InternalTopicName(ctx.ApplicationID(), topology.ChangelogTopic(store))
	}
	p.this, p.other, p.thisTopic, p.otherTopic = leftStore, rightStore, topic(j.leftStore), topic(j.rightStore)
	if !p.left {
		p.this, p.other, p.thisTopic, p.otherTopic = rightStore, leftStore, p.otherTopic, p.thisTopic
	}
	if j.sharedStore != "" {
		kv, ok := ctx.Store(j.sharedStore).(state.KeyValueStore)
		if !ok {
			return fmt.Errorf("store %s: got %T, want a state.KeyValueStore", j.sharedStore, ctx.Store(j.sharedStore))
		}
		p.shared, p.sharedTopic = kv, topic(j.sharedStore)
	}
	if t := reflect.TypeOf(leftStore); !t.Comparable() {
		return fmt.Errorf("store %s: a %v cannot key the join's shared clock", j.leftStore, t)
	}
	p.clockKey = leftStore
	p.clock = j.acquire(leftStore)
	return nil
}

func joinWindowStore(ctx topology.Context, name string) (state.WindowStore, error) {
	s, ok := ctx.Store(name).(state.WindowStore)
	if !ok {
		return nil, fmt.Errorf("store %s: got %T, want a state.WindowStore", name, ctx.Store(name))
	}
	return s, nil
}

func (p *windowJoinSide[K, V, VO, VR]) Close() error {
	if p.clock != nil {
		p.j.release(p.clockKey)
		p.clock = nil
	}
	return nil
}

func (p *windowJoinSide[K, V, VO, VR]) Process(r topology.Record) error {
	c := p.clock
	c.streamTime = max(c.streamTime, r.Timestamp)
	if err := p.emitExpired(r); err != nil {
		return err
	}
	if r.Key == nil || r.Value == nil {
		topology.RecordDropped(p.ctx, "null-key-or-value")
		return nil
	}
	ts := r.Timestamp
	if ts+p.after+p.j.grace < c.streamTime {
		topology.RecordDropped(p.ctx, "late")
		return nil
	}
	key := As[K](r.Key)
	otherKey, err := p.j.ks.Serialize(p.otherTopic, key)
	if err != nil {
		return fmt.Errorf("store %s: serialize key: %w", p.other.Name(), err)
	}
	if err := p.fetchMatches(otherKey, ts); err != nil {
		return err
	}
	var sharedKey []byte
	if p.shared != nil {
		if sharedKey, err = p.j.ks.Serialize(p.sharedTopic, key); err != nil {
			return fmt.Errorf("store %s: serialize key: %w", p.j.sharedStore, err)
		}
	}
	for i, m := range p.matches {
		if p.shared != nil && (i == 0 || m.start != p.matches[i-1].start) {
			// The matched record no longer waits for a null result, nor
			// do the other records of its side with its key and time
			// (they match this record too).
			if err := p.removeWaiting(m.start, !p.left, sharedKey); err != nil {
				return err
			}
		}
		res, err := p.joinOne(r.Value, m.value)
		if err != nil {
			return err
		}
		p.forward(r, r.Key, res, max(ts, m.start))
	}
	value, err := p.serializeThis(r.Value)
	if err != nil {
		return err
	}
	if len(p.matches) == 0 && p.outer {
		if err := p.addWaiting(ts, sharedKey, value); err != nil {
			return err
		}
	}
	// Serialized again for this store's topic, which serdes may depend on.
	thisKey, err := p.j.ks.Serialize(p.thisTopic, key)
	if err != nil {
		return fmt.Errorf("store %s: serialize key: %w", p.this.Name(), err)
	}
	if err := p.this.Put(thisKey, value, ts); err != nil {
		return fmt.Errorf("store %s: put: %w", p.this.Name(), err)
	}
	return nil
}

// fetchMatches reads the other side's records within the window of a
// record of this side at ts into p.matches, oldest first.
func (p *windowJoinSide[K, V, VO, VR]) fetchMatches(key []byte, ts int64) error {
	p.matches = p.matches[:0]
	it, err := p.other.FetchRange(key, ts-p.before, ts+p.after)
	if err != nil {
		return fmt.Errorf("store %s: fetch: %w", p.other.Name(), err)
	}
	for it.Next() {
		p.matches = append(p.matches, windowJoinMatch{start: it.Start(), value: append([]byte(nil), it.Value()...)})
	}
	err = it.Err()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store %s: fetch: %w", p.other.Name(), err)
	}
	return nil
}

func (p *windowJoinSide[K, V, VO, VR]) forward(r topology.Record, key any, res VR, ts int64) {
	p.ctx.Forward(topology.Record{Key: key, Value: p.boxes.New(res), Timestamp: ts, Headers: r.Headers})
}

// joinOne joins this side's value with the other side's serialized value.
func (p *windowJoinSide[K, V, VO, VR]) joinOne(this any, other []byte) (VR, error) {
	var zero VR
	if p.left {
		v := As[V](this)
		o, err := p.j.vos.Deserialize(p.otherTopic, other)
		if err != nil {
			return zero, fmt.Errorf("store %s: deserialize value: %w", p.other.Name(), err)
		}
		return p.j.join(&v, &o), nil
	}
	v := As[VO](this)
	o, err := p.j.vs.Deserialize(p.otherTopic, other)
	if err != nil {
		return zero, fmt.Errorf("store %s: deserialize value: %w", p.other.Name(), err)
	}
	return p.j.join(&o, &v), nil
}

func (p *windowJoinSide[K, V, VO, VR]) serializeThis(value any) ([]byte, error) {
	var b []byte
	var err error
	if p.left {
		b, err = p.j.vs.Serialize(p.thisTopic, As[V](value))
	} else {
		b, err = p.j.vos.Serialize(p.thisTopic, As[VO](value))
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: serialize value: %w", p.this.Name(), err)
	}
	if b == nil {
		b = []byte{} // a nil value would read as a delete
	}
	return b, nil
}

// sharedKeyOf lays out Kafka's TimestampedKeyAndJoinSide: timestamp,
// side, key.
func (p *windowJoinSide[K, V, VO, VR]) sharedKeyOf(ts int64, left bool, key []byte) []byte {
	side := joinSideRight
	if left {
		side = joinSideLeft
	}
	p.keyBuf = binary.BigEndian.AppendUint64(p.keyBuf[:0], uint64(ts))
	p.keyBuf = append(p.keyBuf, side)
	return append(p.keyBuf, key...)
}

// addWaiting adds a record of this side without a match to the shared
// store, after the others of its key, time and side.
func (p *windowJoinSide[K, V, VO, VR]) addWaiting(ts int64, key, value []byte) error {
	k := p.sharedKeyOf(ts, p.left, key)
	old, err := p.shared.Get(k)
	if err != nil {
		return fmt.Errorf("store %s: get: %w", p.j.sharedStore, err)
	}
	side := joinSideRight
	if p.left {
		side = joinSideLeft
	}
	list, err := appendJoinList(old, side, value)
	if err != nil {
		return fmt.Errorf("store %s: %w", p.j.sharedStore, err)
	}
	if err := p.shared.Put(k, list); err != nil {
		return fmt.Errorf("store %s: put: %w", p.j.sharedStore, err)
	}
	p.clock.sharedMin = min(p.clock.sharedMin, ts)
	return nil
}

// removeWaiting removes the records of one side, key and time from the
// shared store, if any wait there.
func (p *windowJoinSide[K, V, VO, VR]) removeWaiting(ts int64, left bool, key []byte) error {
	k := p.sharedKeyOf(ts, left, key)
	old, err := p.shared.Get(k)
	if err != nil {
		return fmt.Errorf("store %s: get: %w", p.j.sharedStore, err)
	}
	if old == nil {
		return nil
	}
	if _, err := p.shared.Delete(k); err != nil {
		return fmt.Errorf("store %s: delete: %w", p.j.sharedStore, err)
	}
	return nil
}

// emitExpired forwards the null results of the waiting records that
// nothing can match any more (t+before+after+grace below stream time),
// oldest first, and removes them from the shared store.
func (p *windowJoinSide[K, V, VO, VR]) emitExpired(r topology.Record) error {
	if p.shared == nil {
		return nil
	}
	c := p.clock
	// Records before dueBefore are due; computed so as not to overflow.
	dueBefore := c.streamTime - (p.j.before + p.j.after) - p.j.grace
	if c.sharedMin >= dueBefore {
		return nil
	}
	it, err := p.shared.All()
	if err != nil {
		return fmt.Errorf("store %s: read: %w", p.j.sharedStore, err)
	}
	p.expired = p.expired[:0]
	next := int64(math.MaxInt64)
	for it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		ts := int64(binary.BigEndian.Uint64(k))
		if ts >= dueBefore {
			next = ts
			break
		}
		p.expired = append(p.expired, state.KeyValue{Key: append([]byte(nil), k...), Value: append([]byte(nil), it.Value()...)})
	}
	err = it.Err()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store %s: read: %w", p.j.sharedStore, err)
	}
	c.sharedMin = next
	for _, e := range p.expired {
		ts := int64(binary.BigEndian.Uint64(e.Key))
		key, err := p.j.ks.Deserialize(p.sharedTopic, e.Key[9:])
		if err != nil {
			return fmt.Errorf("store %s: deserialize key: %w", p.j.sharedStore, err)
		}
		var boxedKey any = key
		err = eachJoinListValue(e.Value, func(side byte, value []byte) error {
			var res VR
			if side == joinSideLeft {
				v, err := p.j.vs.Deserialize(p.sharedTopic, value)
				if err != nil {
					return fmt.Errorf("deserialize value: %w", err)
				}
				res = p.j.join(&v, nil)
			} else {
				v, err := p.j.vos.Deserialize(p.sharedTopic, value)
				if err != nil {
					return fmt.Errorf("deserialize value: %w", err)
				}
				res = p.j.join(nil, &v)
			}
			p.forward(r, boxedKey, res, ts)
			return nil
		})
		if err != nil {
			return fmt.Errorf("store %s: %w", p.j.sharedStore, err)
		}
		if _, err := p.shared.Delete(e.Key); err != nil {
			return fmt.Errorf("store %s: delete: %w", p.j.sharedStore, err)
		}
	}
	return nil
}

// The shared store's values are Kafka's ListSerde of byte arrays: a
// strategy byte (1: each entry prefixed by its length), a 4-byte
// big-endian count, then per entry a 4-byte big-endian length and the
// entry: a LeftOrRightValue, one side byte then the value's bytes.
const joinListVariableSize byte = 1

// appendJoinList returns the list old (nil: empty) with one more entry.
func appendJoinList(old []byte, side byte, value []byte) ([]byte, error) {
	n := uint32(0)
	if old != nil {
		if len(old) < 5 || old[0] != joinListVariableSize {
			return nil, fmt.Errorf("shared join value of %d bytes is not a list of byte arrays", len(old))
		}
		n = binary.BigEndian.Uint32(old[1:5])
	}
	out := make([]byte, 0, max(len(old), 5)+4+1+len(value))
	out = append(out, joinListVariableSize)
	out = binary.BigEndian.AppendUint32(out, n+1)
	if old != nil {
		out = append(out, old[5:]...)
	}
	out = binary.BigEndian.AppendUint32(out, uint32(1+len(value)))
	out = append(out, side)
	return append(out, value...), nil
}

// eachJoinListValue calls fn with each entry's side and value bytes.
func eachJoinListValue(list []byte, fn func(side byte, value []byte) error) error {
	if len(list) < 5 || list[0] != joinListVariableSize {
		return fmt.Errorf("shared join value of %d bytes is not a list of byte arrays", len(list))
	}
	n := binary.BigEndian.Uint32(list[1:5])
	rest := list[5:]
	for i := uint32(0); i < n; i++ {
		if len(rest) < 4 {
			return fmt.Errorf("shared join value: entry %d of %d is cut short", i, n)
		}
		size := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if size < 1 || uint64(size) > uint64(len(rest)) {
			return fmt.Errorf("shared join value: entry %d of %d has a bad length %d", i, n, size)
		}
		if err := fn(rest[0], rest[1:size]); err != nil {
			return err
		}
		rest = rest[size:]
	}
	return nil
}
