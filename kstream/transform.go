package kstream

import (
	"github.com/kstreams-go/kstreams/internal/dsl"
	"github.com/kstreams-go/kstreams/internal/topology"
)

// Map replaces each record's key and value. The key changes, so a later
// key-based stateful operator repartitions first.
func Map[K, V, KR, VR any](s *KStream[K, V], fn func(key K, value V) (KR, VR), name ...Named) *KStream[KR, VR] {
	n := s.AddProcessor("MAP", name, dsl.Supply(func(ctx topology.Context, boxes *dsl.PairSlab[KR, VR], r topology.Record) error {
		k, v := fn(dsl.As[K](r.Key), dsl.As[V](r.Value))
		r.Key, r.Value = boxes.Box(k, v)
		ctx.Forward(r)
		return nil
	}))
	return dsl.NewStream[KR, VR](s.Builder(), n, nil, nil, true)
}

// MapValues replaces each record's value; the key stays.
func MapValues[K, V, VR any](s *KStream[K, V], fn func(value V) VR, name ...Named) *KStream[K, VR] {
	return MapValuesWithKey(s, func(_ K, v V) VR { return fn(v) }, name...)
}

// MapValuesWithKey replaces each record's value, seeing its key.
func MapValuesWithKey[K, V, VR any](s *KStream[K, V], fn func(key K, value V) VR, name ...Named) *KStream[K, VR] {
	n := s.AddProcessor("MAPVALUES", name, dsl.Supply(func(ctx topology.Context, boxes *dsl.Slab[VR], r topology.Record) error {
		r.Value = boxes.New(fn(dsl.As[K](r.Key), dsl.As[V](r.Value)))
		ctx.Forward(r)
		return nil
	}))
	return dsl.NewStream[K, VR](s.Builder(), n, s.KeySerde(), nil, s.KeyChanged())
}

// SelectKey gives each record a new key computed from it.
func SelectKey[K, V, KR any](s *KStream[K, V], fn func(key K, value V) KR, name ...Named) *KStream[KR, V] {
	n := s.AddProcessor("KEY-SELECT", name, dsl.Supply(func(ctx topology.Context, boxes *dsl.Slab[KR], r topology.Record) error {
		r.Key = boxes.New(fn(dsl.As[K](r.Key), dsl.As[V](r.Value)))
		ctx.Forward(r)
		return nil
	}))
	return dsl.NewStream[KR, V](s.Builder(), n, nil, s.ValueSerde(), true)
}

// FlatMap turns each record into zero or more records.
func FlatMap[K, V, KR, VR any](s *KStream[K, V], fn func(key K, value V) []KeyValue[KR, VR], name ...Named) *KStream[KR, VR] {
	n := s.AddProcessor("FLATMAP", name, dsl.Supply(func(ctx topology.Context, boxes *dsl.PairSlab[KR, VR], r topology.Record) error {
		for _, kv := range fn(dsl.As[K](r.Key), dsl.As[V](r.Value)) {
			out := r
			out.Key, out.Value = boxes.Box(kv.Key, kv.Value)
			ctx.Forward(out)
		}
		return nil
	}))
	return dsl.NewStream[KR, VR](s.Builder(), n, nil, nil, true)
}

// FlatMapValues turns each record's value into zero or more values, each a
// record with the same key.
func FlatMapValues[K, V, VR any](s *KStream[K, V], fn func(value V) []VR, name ...Named) *KStream[K, VR] {
	return FlatMapValuesWithKey(s, func(_ K, v V) []VR { return fn(v) }, name...)
}

// FlatMapValuesWithKey is FlatMapValues seeing the key.
func FlatMapValuesWithKey[K, V, VR any](s *KStream[K, V], fn func(key K, value V) []VR, name ...Named) *KStream[K, VR] {
	n := s.AddProcessor("FLATMAPVALUES", name, dsl.Supply(func(ctx topology.Context, boxes *dsl.Slab[VR], r topology.Record) error {
		for _, v := range fn(dsl.As[K](r.Key), dsl.As[V](r.Value)) {
			out := r
			out.Value = boxes.New(v)
			ctx.Forward(out)
		}
		return nil
	}))
	return dsl.NewStream[K, VR](s.Builder(), n, s.KeySerde(), nil, s.KeyChanged())
}
