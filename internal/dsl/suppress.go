package dsl

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// Suppressed says how Table.Suppress holds updates back (Kafka Streams'
// Suppressed).
type Suppressed struct {
	untilWindowCloses bool
	timeLimit         time.Duration
	buffer            BufferConfig
	name              string
}

// BufferFull says what a full suppression buffer does.
type BufferFull int

const (
	// EmitEarlyWhenFull emits the oldest buffered updates to make room.
	EmitEarlyWhenFull BufferFull = iota
	// ShutDownWhenFull stops the application with an error.
	ShutDownWhenFull
)

// BufferConfig bounds a suppression buffer; zero bounds are unbounded.
type BufferConfig struct {
	MaxRecords int
	MaxBytes   int64
	OnFull     BufferFull
}

// UntilWindowCloses emits each window of a windowed table once, with its
// final value, when the window closes (its end plus grace has passed in
// stream time). Its buffer is unbounded unless b says otherwise; a bounded
// one must shut down when full, since emitting early would break the one
// final result per window.
func UntilWindowCloses(b ...BufferConfig) Suppressed {
	s := Suppressed{untilWindowCloses: true}
	if len(b) > 0 {
		s.buffer = b[len(b)-1]
	}
	return s
}

// UntilTimeLimit emits each key's latest value once limit has passed in
// stream time since the key's first held-back update.
func UntilTimeLimit(limit time.Duration, b BufferConfig) Suppressed {
	return Suppressed{timeLimit: limit, buffer: b}
}

// WithName names the suppression node (and its buffer store
// "<name>-store").
func (s Suppressed) WithName(name string) Suppressed { s.name = name; return s }

// windowEnder is implemented by serde.Windowed keys.
type windowEnder interface{ WindowEnd() int64 }

// Suppress holds a table's updates back as s says, keeping only the
// latest per key. The buffer is a changelogged store, so what it holds
// survives a restart.
func (t *Table[K, V]) Suppress(s Suppressed) *Table[K, V] {
	b := t.b
	if s.untilWindowCloses && !t.windowed {
		b.Fail(errors.New("suppress: UntilWindowCloses needs a windowed table (from a windowed aggregation)"))
	}
	if s.untilWindowCloses && (s.buffer.MaxRecords > 0 || s.buffer.MaxBytes > 0) && s.buffer.OnFull == EmitEarlyWhenFull {
		b.Fail(errors.New("suppress: UntilWindowCloses with a bounded buffer must use ShutDownWhenFull"))
	}
	if s.timeLimit < 0 {
		b.Fail(fmt.Errorf("suppress: time limit %v is negative", s.timeLimit))
	}
	name := b.TableNameOr(s.name, "SUPPRESS")
	store := name + "-store"
	if s.name == "" {
		store = b.NewStoreName("KTABLE-SUPPRESS-")
	}
	ks, vs := OrDefault(t.keySerde), OrDefault(t.valueSerde)
	limit := s.timeLimit.Milliseconds()
	if s.untilWindowCloses {
		limit = t.grace
	}
	sup := s
	node := t.AddProcessor(name, func() topology.Processor {
		return &suppressProcessor[K, V]{store: store, ks: ks, vs: vs, s: sup, limit: limit, entries: map[string]*suppressEntry{}, observed: -1}
	})
	b.Fail(b.topo.AddStore(topology.StoreSpec{Name: store, InMemory: true, Logging: true, Internal: true}, node))
	out := NewTable(b, node, t.keySerde, t.valueSerde, "")
	out.windowed, out.grace = t.windowed, t.grace
	return out
}

type suppressEntry struct {
	key        string // serialized key
	bufferTime int64  // window end, or first update time
	ts         int64  // timestamp of the latest update
	newB, oldB []byte // nil: null
	size       int64
	index      int // in the heap; -1 when out
}

type suppressHeap []*suppressEntry

func (h suppressHeap) Len() int           { return len(h) }
func (h suppressHeap) Less(i, j int) bool { return h[i].bufferTime < h[j].bufferTime }
func (h suppressHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *suppressHeap) Push(x any) { e := x.(*suppressEntry); e.index = len(*h); *h = append(*h, e) }
func (h *suppressHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

// suppressProcessor is Kafka Streams' KTableSuppressProcessor over a time
// ordered buffer. Stream time is the highest timestamp it has seen.
type suppressProcessor[K, V any] struct {
	store    string
	topic    string
	ks       serde.Serde[K]
	vs       serde.Serde[V]
	s        Suppressed
	limit    int64
	ctx      topology.Context
	kv       state.KeyValueStore
	entries  map[string]*suppressEntry
	order    suppressHeap
	bytes    int64
	observed int64
	boxes    Slab[Change]
}

func (p *suppressProcessor[K, V]) Init(ctx topology.Context) error {
	p.ctx = ctx
	p.topic = topology.InternalTopicName(ctx.ApplicationID(), topology.ChangelogTopic(p.store))
	kv, ok := ctx.Store(p.store).(state.KeyValueStore)
	if !ok {
		return fmt.Errorf("suppress buffer %s: got %T, want a state.KeyValueStore", p.store, ctx.Store(p.store))
	}
	p.kv = kv
	// A restored buffer: hold its entries again.
	it, err := kv.All()
	if err != nil {
		return err
	}
	defer it.Close()
	for it.Next() {
		e, err := decodeSuppressEntry(string(it.Key()), it.Value())
		if err != nil {
			return fmt.Errorf("suppress buffer %s: %w", p.store, err)
		}
		p.entries[e.key] = e
		heap.Push(&p.order, e)
		p.bytes += e.size
		p.observed = max(p.observed, e.ts)
	}
	return it.Err()
}

func (p *suppressProcessor[K, V]) Close() error { return nil }

func (p *suppressProcessor[K, V]) Process(r topology.Record) error {
	p.observed = max(p.observed, r.Timestamp)
	ch := As[Change](r.Value)
	key := As[K](r.Key)
	kb, err := p.ks.Serialize(p.topic, key)
	if err != nil {
		return fmt.Errorf("suppress: serialize key: %w", err)
	}
	newB, err := p.valueBytes(ch.New)
	if err != nil {
		return err
	}
	e := p.entries[string(kb)]
	if e == nil {
		oldB, err := p.valueBytes(ch.Old)
		if err != nil {
			return err
		}
		e = &suppressEntry{key: string(kb), oldB: oldB, bufferTime: r.Timestamp, index: -1}
		if p.s.untilWindowCloses {
			we, ok := any(key).(windowEnder)
			if !ok {
				return fmt.Errorf("suppress: key %T is not windowed", r.Key)
			}
			e.bufferTime = we.WindowEnd()
		}
		p.entries[e.key] = e
		heap.Push(&p.order, e)
	} else {
		p.bytes -= e.size
	}
	e.newB, e.ts = newB, r.Timestamp
	e.size = int64(len(e.key) + len(e.newB) + len(e.oldB) + 32)
	p.bytes += e.size
	if err := p.kv.Put(kb, encodeSuppressEntry(e)); err != nil {
		return fmt.Errorf("suppress buffer %s: %w", p.store, err)
	}
	if err := p.evictExpired(); err != nil {
		return err
	}
	return p.enforceBounds()
}

func (p *suppressProcessor[K, V]) valueBytes(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := p.vs.Serialize(p.topic, As[V](v))
	if err != nil {
		return nil, fmt.Errorf("suppress: serialize value: %w", err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func (p *suppressProcessor[K, V]) evictExpired() error {
	expiry := p.observed - p.limit
	for len(p.order) > 0 && p.order[0].bufferTime <= expiry {
		if err := p.emit(heap.Pop(&p.order).(*suppressEntry)); err != nil {
			return err
		}
	}
	return nil
}

func (p *suppressProcessor[K, V]) enforceBounds() error {
	over := func() bool {
		return (p.s.buffer.MaxRecords > 0 && len(p.entries) > p.s.buffer.MaxRecords) ||
			(p.s.buffer.MaxBytes > 0 && p.bytes > p.s.buffer.MaxBytes)
	}
	for over() {
		if p.s.buffer.OnFull == ShutDownWhenFull {
			return fmt.Errorf("suppress buffer %s is full (%d records, %d bytes; limits %d records, %d bytes) and is set to shut down when full",
				p.store, len(p.entries), p.bytes, p.s.buffer.MaxRecords, p.s.buffer.MaxBytes)
		}
		if err := p.emit(heap.Pop(&p.order).(*suppressEntry)); err != nil {
			return err
		}
	}
	return nil
}

// emit forwards a held-back update and forgets it. A final result that is
// a delete (a session merged away) is dropped: there was never a result.
func (p *suppressProcessor[K, V]) emit(e *suppressEntry) error {
	delete(p.entries, e.key)
	p.bytes -= e.size
	if err := p.kv.Put([]byte(e.key), nil); err != nil {
		return fmt.Errorf("suppress buffer %s: %w", p.store, err)
	}
	if e.newB == nil && p.s.untilWindowCloses {
		return nil
	}
	k, err := p.ks.Deserialize(p.topic, []byte(e.key))
	if err != nil {
		return fmt.Errorf("suppress: deserialize key: %w", err)
	}
	var ch Change
	if e.newB != nil {
		v, err := p.vs.Deserialize(p.topic, e.newB)
		if err != nil {
			return fmt.Errorf("suppress: deserialize value: %w", err)
		}
		ch.New = v
	}
	if e.oldB != nil {
		v, err := p.vs.Deserialize(p.topic, e.oldB)
		if err != nil {
			return fmt.Errorf("suppress: deserialize value: %w", err)
		}
		ch.Old = v
	}
	p.ctx.Forward(topology.Record{Key: k, Value: p.boxes.New(ch), Timestamp: e.ts})
	return nil
}

// Buffer store value: bufferTime(8) ts(8) then new and old, each as a
// 4-byte length (0xffffffff: null) and the bytes.
func encodeSuppressEntry(e *suppressEntry) []byte {
	out := make([]byte, 0, 24+len(e.newB)+len(e.oldB))
	out = binary.BigEndian.AppendUint64(out, uint64(e.bufferTime))
	out = binary.BigEndian.AppendUint64(out, uint64(e.ts))
	for _, b := range [][]byte{e.newB, e.oldB} {
		if b == nil {
			out = binary.BigEndian.AppendUint32(out, 0xffffffff)
			continue
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

func decodeSuppressEntry(key string, b []byte) (*suppressEntry, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("entry of %d bytes, want at least 16", len(b))
	}
	e := &suppressEntry{key: key, index: -1}
	e.bufferTime = int64(binary.BigEndian.Uint64(b))
	e.ts = int64(binary.BigEndian.Uint64(b[8:]))
	rest := b[16:]
	var parts [2][]byte
	for i := range parts {
		if len(rest) < 4 {
			return nil, errors.New("truncated entry")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if n == 0xffffffff {
			continue
		}
		if uint32(len(rest)) < n {
			return nil, errors.New("truncated entry")
		}
		parts[i] = append([]byte{}, rest[:n]...)
		rest = rest[n:]
	}
	e.newB, e.oldB = parts[0], parts[1]
	e.size = int64(len(e.key) + len(e.newB) + len(e.oldB) + 32)
	return e, nil
}
