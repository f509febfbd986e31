package dsl

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
)

// storeCodec describes a materialized store's types for interactive
// queries. parse reads a key written in a URL; nil: ParseKeyText.
func storeCodec[K, V any](ks serde.Serde[K], vs serde.Serde[V], parse func(string) (K, error)) *topology.StoreCodec {
	if parse == nil {
		parse = ParseKeyText[K]
	}
	return &topology.StoreCodec{
		KeyType:    typeName[K](),
		ValueType:  typeName[V](),
		KeySerde:   ks,
		ValueSerde: vs,
		ParseKey:   func(text string) (any, error) { return parse(text) },
		SerializeKey: func(topic string, key any) ([]byte, error) {
			k, ok := key.(K)
			if !ok {
				return nil, fmt.Errorf("key is a %T, the store's keys are %s", key, typeName[K]())
			}
			return ks.Serialize(topic, k)
		},
		DeserializeKey:   func(topic string, b []byte) (any, error) { return ks.Deserialize(topic, b) },
		DeserializeValue: func(topic string, b []byte) (any, error) { return vs.Deserialize(topic, b) },
	}
}

func typeName[T any]() string {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && t.Name() == "" {
		return "bytes"
	}
	return t.String()
}

// ParseKeyText is the default key parser of a store's keys in URLs:
// strings as they are, integers in decimal, byte slices as the text's
// bytes, anything else as JSON.
func ParseKeyText[K any](text string) (K, error) {
	var k K
	switch p := any(&k).(type) {
	case *string:
		*p = text
	case *[]byte:
		*p = []byte(text)
	case *int64, *int32, *int16, *int8, *int:
		n, err := strconv.ParseInt(text, 10, reflect.TypeFor[K]().Bits())
		if err != nil {
			return k, fmt.Errorf("key %q: want a decimal %s", text, typeName[K]())
		}
		reflect.ValueOf(p).Elem().SetInt(n)
	case *uint64, *uint32, *uint16, *uint8, *uint:
		n, err := strconv.ParseUint(text, 10, reflect.TypeFor[K]().Bits())
		if err != nil {
			return k, fmt.Errorf("key %q: want a decimal %s", text, typeName[K]())
		}
		reflect.ValueOf(p).Elem().SetUint(n)
	default:
		if err := json.Unmarshal([]byte(text), &k); err != nil {
			return k, fmt.Errorf("key %q: want JSON for %s: %w", text, typeName[K](), err)
		}
	}
	return k, nil
}
