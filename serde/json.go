package serde

import (
	"encoding/json"
	"fmt"
)

// JSON returns a serde that encodes values with encoding/json. Errors name the
// topic and wrap encoding/json's error, so errors.As finds a
// *json.SyntaxError or *json.UnmarshalTypeError underneath.
//
// Deserializing nil (a tombstone) gives the zero value of T; an empty,
// non-nil slice is not valid JSON and is an error.
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }

type jsonSerde[T any] struct{}

func (jsonSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("serde: json serialize for topic %q: %w", topic, err)
	}
	return b, nil
}

func (jsonSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("serde: json deserialize from topic %q: %w", topic, err)
	}
	return v, nil
}
