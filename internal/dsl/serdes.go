package dsl

import (
	"fmt"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
)

// DefaultSerde picks a serde for T when the user gave none: the built-in
// Kafka-compatible serde for string, []byte, int32, int64 and float64, and
// JSON for every other type.
func DefaultSerde[T any]() serde.Serde[T] {
	var zero T
	var s any
	switch any(zero).(type) {
	case string:
		s = serde.String()
	case []byte:
		s = serde.Bytes()
	case int32:
		s = serde.Int32()
	case int64:
		s = serde.Int64()
	case float64:
		s = serde.Float64()
	default:
		return serde.JSON[T]()
	}
	return s.(serde.Serde[T])
}

// OrDefault returns s, or DefaultSerde[T]() when s is nil.
func OrDefault[T any](s serde.Serde[T]) serde.Serde[T] {
	if s == nil {
		return DefaultSerde[T]()
	}
	return s
}

// Untyped adapts a typed serde to the runtime's byte-level functions. A nil
// value (a tombstone) serializes to nil bytes, and nil bytes deserialize to
// a nil value, so tombstones survive the boxing.
func Untyped[T any](s serde.Serde[T]) (topology.Serializer, topology.Deserializer) {
	ser := func(topic string, v any) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		if p, ok := v.(*T); ok && p != nil {
			return s.Serialize(topic, *p)
		}
		t, ok := v.(T)
		if !ok {
			var zero T
			return nil, fmt.Errorf("serializer for %T got a %T", zero, v)
		}
		return s.Serialize(topic, t)
	}
	de := func(topic string, b []byte) (any, error) {
		if b == nil {
			return nil, nil
		}
		return s.Deserialize(topic, b)
	}
	return ser, de
}

// As converts a boxed key or value back to T; nil (a tombstone) becomes the
// zero value.
//
// Between nodes a key or value of type T travels boxed either as T or as a
// *T into memory nobody writes again: a *T lets the runtime box a record's
// own bytes, or a key and value made together, without an allocation per
// field. Every reader goes through As (or Untyped), which accepts both.
func As[T any](x any) T {
	// *T first: when T is an interface type, x.(T) would accept the pointer.
	if p, ok := x.(*T); ok && p != nil {
		return *p
	}
	t, _ := x.(T)
	return t
}

// Pair boxes a key and a value with one allocation instead of two.
func Pair[K, V any](k K, v V) (key, value any) {
	p := &pair[K, V]{k, v}
	return &p.k, &p.v
}

type pair[K, V any] struct {
	k K
	v V
}

// IsPassThrough reports whether s deserializes to its input bytes.
func IsPassThrough[T any](s serde.Serde[T]) bool {
	_, ok := s.(serde.PassThrough)
	return ok
}

// Slab hands out *T from chunks, so boxing a value between nodes costs an
// allocation per chunk instead of per record. Values are never written after
// New returns, so sharing a chunk between records is safe; a chunk lives as
// long as any record that points into it. A Slab belongs to one node
// instance, which only its task's goroutine uses.
type Slab[T any] struct{ buf []T }

const slabChunk = 128

// New stores v and returns a pointer to it.
func (s *Slab[T]) New(v T) *T {
	if len(s.buf) == cap(s.buf) {
		s.buf = make([]T, 0, slabChunk)
	}
	s.buf = append(s.buf, v)
	return &s.buf[len(s.buf)-1]
}

// PairSlab boxes a key and a value together from a Slab.
type PairSlab[K, V any] struct{ s Slab[pair[K, V]] }

// Box returns the key and value boxed as *K and *V.
func (p *PairSlab[K, V]) Box(k K, v V) (key, value any) {
	x := p.s.New(pair[K, V]{k, v})
	return &x.k, &x.v
}

// NodeFunc is a processor made per task around a per-record function that
// may keep per-instance state (such as a Slab) in S.
type NodeFunc[S any] struct {
	ctx   topology.Context
	state S
	fn    func(ctx topology.Context, state *S, r topology.Record) error
}

// Supply returns a supplier of NodeFunc processors with fresh state each.
func Supply[S any](fn func(ctx topology.Context, state *S, r topology.Record) error) topology.Supplier {
	return func() topology.Processor { return &NodeFunc[S]{fn: fn} }
}

func (n *NodeFunc[S]) Init(ctx topology.Context) error { n.ctx = ctx; return nil }
func (n *NodeFunc[S]) Close() error                    { return nil }
func (n *NodeFunc[S]) Process(r topology.Record) error { return n.fn(n.ctx, &n.state, r) }
