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
