package dsl

import (
	"fmt"
	"reflect"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// tableStore is how a node that materializes a table (an aggregation, a
// source table) reads and writes its store through the store's serdes and
// forwards each update downstream as a Change.
//
// When the store is a cache, writes only go to the cache and nothing is
// forwarded while processing: the cache's flush listener forwards each
// dirty key once per flush, with the value it had before the flush cycle as
// Old, as Kafka Streams' caching stores do. That is how repeated updates of
// a key between two commits collapse into one downstream record.
type tableStore[K, V any] struct {
	name  string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	topic string // the changelog topic name, which store serdes are given

	ctx   topology.Context
	store state.KeyValueStore
	cache state.Cache
	boxes Slab[Change]
}

func newTableStore[K, V any](name string, ks serde.Serde[K], vs serde.Serde[V]) tableStore[K, V] {
	return tableStore[K, V]{name: name, ks: ks, vs: vs}
}

func (s *tableStore[K, V]) init(ctx topology.Context) error {
	s.ctx = ctx
	s.topic = topology.InternalTopicName(ctx.ApplicationID(), topology.ChangelogTopic(s.name))
	raw := ctx.Store(s.name)
	kv, ok := raw.(state.KeyValueStore)
	if !ok {
		return fmt.Errorf("store %s: got %T, want a state.KeyValueStore", s.name, raw)
	}
	s.store = kv
	if c, ok := kv.(state.Cache); ok {
		s.cache = c
		c.SetFlushListener(s.flushed)
	}
	return nil
}

func (s *tableStore[K, V]) close() {
	if s.cache != nil {
		s.cache.SetFlushListener(nil)
	}
}

func (s *tableStore[K, V]) keyBytes(key K) ([]byte, error) {
	kb, err := s.ks.Serialize(s.topic, key)
	if err != nil {
		return nil, fmt.Errorf("store %s: serialize key: %w", s.name, err)
	}
	return kb, nil
}

// get returns the stored value of a key; ok is false when there is none.
func (s *tableStore[K, V]) get(kb []byte) (v V, ok bool, err error) {
	b, err := s.store.Get(kb)
	if err != nil || b == nil {
		return v, false, err
	}
	if v, err = s.vs.Deserialize(s.topic, b); err != nil {
		return v, false, fmt.Errorf("store %s: deserialize value: %w", s.name, err)
	}
	return v, true, nil
}

// put stores newV (nil: delete) under key and, unless the store caches,
// forwards Change{newV, oldV} with r's timestamp. newV and oldV are nil or
// boxed V. Deleting an absent row does nothing, cached or not.
func (s *tableStore[K, V]) put(r topology.Record, kb []byte, newV, oldV any) error {
	if newV == nil && oldV == nil {
		return nil
	}
	var vb []byte
	if newV != nil {
		var err error
		if vb, err = s.vs.Serialize(s.topic, As[V](newV)); err != nil {
			return fmt.Errorf("store %s: serialize value: %w", s.name, err)
		}
		if vb == nil {
			vb = []byte{} // a value, not a delete
		}
	}
	if s.cache != nil {
		return s.cache.PutAt(kb, vb, r.Timestamp)
	}
	if err := s.store.Put(kb, vb); err != nil {
		return err
	}
	r.Value = s.boxes.New(Change{New: newV, Old: oldV})
	s.ctx.Forward(r)
	return nil
}

// flushed is the cache's flush listener: it forwards what the cache wrote
// through.
func (s *tableStore[K, V]) flushed(kb, newB, oldB []byte, ts int64) error {
	if newB == nil && oldB == nil {
		return nil // a key deleted before it ever reached the store
	}
	k, err := s.ks.Deserialize(s.topic, kb)
	if err != nil {
		return fmt.Errorf("store %s: deserialize key: %w", s.name, err)
	}
	var ch Change
	if newB != nil {
		v, err := s.vs.Deserialize(s.topic, newB)
		if err != nil {
			return fmt.Errorf("store %s: deserialize value: %w", s.name, err)
		}
		ch.New = v
	}
	if oldB != nil {
		v, err := s.vs.Deserialize(s.topic, oldB)
		if err != nil {
			return fmt.Errorf("store %s: deserialize old value: %w", s.name, err)
		}
		ch.Old = v
	}
	s.ctx.Forward(topology.Record{Key: k, Value: s.boxes.New(ch), Timestamp: ts})
	return nil
}

// boxOrNil boxes v, or returns nil when v is a nil pointer or interface:
// an aggregator or reducer returning nil deletes the row, as null does in
// Kafka Streams.
func boxOrNil[V any](v V) any {
	x := any(v)
	if x == nil {
		return nil
	}
	if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil
	}
	return x
}

// addStore declares a materialized store, written with ks and vs, and
// connects it to processor.
func addStore[K, V any](b *Builder, name string, m Materialized[K, V], processor string, ks serde.Serde[K], vs serde.Serde[V]) {
	b.Fail(b.topo.AddStore(topology.StoreSpec{
		Name:      name,
		InMemory:  m.InMemory,
		Logging:   !m.LoggingDisabled,
		LogConfig: m.LogConfig,
		Caching:   !m.CachingDisabled,
		Codec:     storeCodec(ks, vs, m.KeyParser),
	}, processor))
}
