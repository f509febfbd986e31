package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kstreams-go/kstreams/serde"
)

// ErrReadOnly is returned by a typed view's writes when its store is only a
// ReadOnlyKeyValueStore (as interactive queries get).
var ErrReadOnly = errors.New("state: store is read-only")

// KeyValueView is a typed view of a byte-level store: keys and values go
// through serdes (with topic ""), so processors and interactive queries
// work in their own types while the store stays bytes. Range bounds and
// PrefixScan order by the serialized bytes, which is numeric order only for
// serdes that preserve it (Int64's big-endian bytes sort negative numbers
// after positive ones, as in Kafka Streams).
type KeyValueView[K, V any] struct {
	r ReadOnlyKeyValueStore
	w KeyValueStore // nil when r is read-only
	k serde.Serde[K]
	v serde.Serde[V]
}

// Typed returns a typed view of s. Writes need s to be a KeyValueStore;
// otherwise they return ErrReadOnly.
func Typed[K, V any](s ReadOnlyKeyValueStore, k serde.Serde[K], v serde.Serde[V]) *KeyValueView[K, V] {
	w, _ := s.(KeyValueStore)
	return &KeyValueView[K, V]{r: s, w: w, k: k, v: v}
}

// TypedTimestamped returns a typed view of a timestamped store: values are
// stored as TimestampedSerde(v) lays them out.
func TypedTimestamped[K, V any](s ReadOnlyKeyValueStore, k serde.Serde[K], v serde.Serde[V]) *KeyValueView[K, ValueAndTimestamp[V]] {
	return Typed(s, k, TimestampedSerde(v))
}

// where names the store in errors, when it has a name.
func (t *KeyValueView[K, V]) where() string {
	if n, ok := t.r.(interface{ Name() string }); ok {
		return fmt.Sprintf("state: store %q", n.Name())
	}
	return "state: store"
}

func (t *KeyValueView[K, V]) key(key K) ([]byte, error) {
	b, err := t.k.Serialize("", key)
	if err != nil {
		return nil, fmt.Errorf("%s: serialize key: %w", t.where(), err)
	}
	return b, nil
}

// value deserializes b; found is false for nil (absent).
func (t *KeyValueView[K, V]) value(b []byte) (v V, found bool, err error) {
	if b == nil {
		return v, false, nil
	}
	if v, err = t.v.Deserialize("", b); err != nil {
		return v, false, fmt.Errorf("%s: deserialize value: %w", t.where(), err)
	}
	return v, true, nil
}

// Get returns the value under key; found is false when the key is absent.
func (t *KeyValueView[K, V]) Get(key K) (value V, found bool, err error) {
	kb, err := t.key(key)
	if err != nil {
		return value, false, err
	}
	b, err := t.r.Get(kb)
	if err != nil {
		return value, false, err
	}
	return t.value(b)
}

func (t *KeyValueView[K, V]) writable() error {
	if t.w == nil {
		return fmt.Errorf("%s: %w", t.where(), ErrReadOnly)
	}
	return nil
}

// Put writes value under key. A value that serializes to nil (a tombstone)
// deletes the key.
func (t *KeyValueView[K, V]) Put(key K, value V) error {
	if err := t.writable(); err != nil {
		return err
	}
	kb, err := t.key(key)
	if err != nil {
		return err
	}
	vb, err := t.v.Serialize("", value)
	if err != nil {
		return fmt.Errorf("%s: serialize value: %w", t.where(), err)
	}
	return t.w.Put(kb, vb)
}

// PutIfAbsent writes value only when key is absent; otherwise it returns
// the value there with found true.
func (t *KeyValueView[K, V]) PutIfAbsent(key K, value V) (old V, found bool, err error) {
	if err := t.writable(); err != nil {
		return old, false, err
	}
	kb, err := t.key(key)
	if err != nil {
		return old, false, err
	}
	vb, err := t.v.Serialize("", value)
	if err != nil {
		return old, false, fmt.Errorf("%s: serialize value: %w", t.where(), err)
	}
	b, err := t.w.PutIfAbsent(kb, vb)
	if err != nil {
		return old, false, err
	}
	return t.value(b)
}

// Delete removes key and returns the value it had; found is false when it
// was absent.
func (t *KeyValueView[K, V]) Delete(key K) (old V, found bool, err error) {
	if err := t.writable(); err != nil {
		return old, false, err
	}
	kb, err := t.key(key)
	if err != nil {
		return old, false, err
	}
	b, err := t.w.Delete(kb)
	if err != nil {
		return old, false, err
	}
	return t.value(b)
}

func (t *KeyValueView[K, V]) bound(k *K) ([]byte, error) {
	if k == nil {
		return nil, nil
	}
	return t.key(*k)
}

func (t *KeyValueView[K, V]) iter(it Iterator, err error) (*TypedIterator[K, V], error) {
	if err != nil {
		return nil, err
	}
	return &TypedIterator[K, V]{view: t, it: it}, nil
}

// Range iterates keys in [from, to], both inclusive; a nil bound is open.
func (t *KeyValueView[K, V]) Range(from, to *K) (*TypedIterator[K, V], error) {
	fb, err := t.bound(from)
	if err != nil {
		return nil, err
	}
	tb, err := t.bound(to)
	if err != nil {
		return nil, err
	}
	return t.iter(t.r.Range(fb, tb))
}

// ReverseRange is Range in descending key order.
func (t *KeyValueView[K, V]) ReverseRange(from, to *K) (*TypedIterator[K, V], error) {
	fb, err := t.bound(from)
	if err != nil {
		return nil, err
	}
	tb, err := t.bound(to)
	if err != nil {
		return nil, err
	}
	return t.iter(t.r.ReverseRange(fb, tb))
}

// All iterates every entry in key order.
func (t *KeyValueView[K, V]) All() (*TypedIterator[K, V], error) { return t.iter(t.r.All()) }

// PrefixScan iterates the entries whose serialized key starts with prefix.
func (t *KeyValueView[K, V]) PrefixScan(prefix []byte) (*TypedIterator[K, V], error) {
	return t.iter(t.r.PrefixScan(prefix))
}

// ApproximateNumEntries is the store's.
func (t *KeyValueView[K, V]) ApproximateNumEntries() (int64, error) {
	return t.r.ApproximateNumEntries()
}

// TypedIterator deserializes the entries of an Iterator. A deserialization
// error stops it and is returned by Err. It must be closed. Key and Value
// may share the store's bytes (with serde.Bytes()), valid until Next.
type TypedIterator[K, V any] struct {
	view  *KeyValueView[K, V]
	it    Iterator
	key   K
	value V
	err   error
}

// Next moves to the next entry, reporting whether there is one.
func (t *TypedIterator[K, V]) Next() bool {
	if t.err != nil || !t.it.Next() {
		return false
	}
	k, err := t.view.k.Deserialize("", t.it.Key())
	if err != nil {
		t.err = fmt.Errorf("%s: deserialize key: %w", t.view.where(), err)
		return false
	}
	v, _, err := t.view.value(t.it.Value())
	if err != nil {
		t.err = err
		return false
	}
	t.key, t.value = k, v
	return true
}

func (t *TypedIterator[K, V]) Key() K   { return t.key }
func (t *TypedIterator[K, V]) Value() V { return t.value }

// Err returns the error that stopped the iteration, if any.
func (t *TypedIterator[K, V]) Err() error {
	if t.err != nil {
		return t.err
	}
	return t.it.Err()
}

// Close closes the underlying iterator.
func (t *TypedIterator[K, V]) Close() error { return t.it.Close() }

// ValueAndTimestamp is a value with the timestamp of the record that last
// wrote it, what Kafka Streams' timestamped stores hold.
type ValueAndTimestamp[V any] struct {
	Value     V
	Timestamp int64
}

// timestampSize is the width of the timestamp in front of the value.
const timestampSize = 8

type timestampedSerde[V any] struct{ v serde.Serde[V] }

// TimestampedSerde lays out a ValueAndTimestamp as Kafka Streams'
// ValueAndTimestampSerializer does: the timestamp as 8 big-endian bytes,
// then the value's bytes. A value that serializes to nil makes the whole
// thing nil (a tombstone), and nil deserializes to the zero
// ValueAndTimestamp, as every serde treats tombstones.
func TimestampedSerde[V any](v serde.Serde[V]) serde.Serde[ValueAndTimestamp[V]] {
	return timestampedSerde[V]{v: v}
}

func (s timestampedSerde[V]) Serialize(topic string, x ValueAndTimestamp[V]) ([]byte, error) {
	vb, err := s.v.Serialize(topic, x.Value)
	if err != nil || vb == nil {
		return nil, err
	}
	out := make([]byte, timestampSize+len(vb))
	binary.BigEndian.PutUint64(out, uint64(x.Timestamp))
	copy(out[timestampSize:], vb)
	return out, nil
}

func (s timestampedSerde[V]) Deserialize(topic string, b []byte) (ValueAndTimestamp[V], error) {
	var x ValueAndTimestamp[V]
	if b == nil {
		return x, nil
	}
	if len(b) < timestampSize {
		return x, fmt.Errorf("state: deserialize timestamped value from topic %q: %d bytes, need at least %d for the timestamp", topic, len(b), timestampSize)
	}
	v, err := s.v.Deserialize(topic, b[timestampSize:])
	if err != nil {
		return x, err
	}
	x.Value, x.Timestamp = v, int64(binary.BigEndian.Uint64(b))
	return x, nil
}
