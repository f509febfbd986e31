package kstreams

import (
	"errors"
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/internal/statemgr"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
)

var errNotWindowed = errors.New("kstreams: not a window or session store")

type rawWindow struct {
	start, end int64
	value      []byte
}

// fetchWindowsLocal reads key's windows (window stores: start in [from,
// to]; session stores: sessions overlapping [from, to]) from the local
// active task that owns the key.
func (a *App) fetchWindowsLocal(store string, key []byte, from, to int64) ([]rawWindow, error) {
	st, spec, err := a.storeSpec(store)
	if err != nil {
		return nil, err
	}
	if spec.Kind == topology.KeyValueStore {
		return nil, fmt.Errorf("%w: %q holds key-value pairs", errNotWindowed, store)
	}
	if err := a.queryableState(store); err != nil {
		return nil, err
	}
	asg, ok := a.assignment()
	if !ok {
		return nil, &NotQueryableError{Store: store, Reason: ReasonRebalancing}
	}
	t, err := taskForKey(asg, st.ID, key)
	if err != nil {
		return nil, fmt.Errorf("kstreams: store %q: %w", store, err)
	}
	var out []rawWindow
	err = a.withLocalTask(store, t, asg, func(m *statemgr.Manager) error {
		if w := m.WindowStore(store); w != nil {
			it, err := w.FetchRange(key, from, to)
			if err != nil {
				return err
			}
			defer it.Close()
			for it.Next() {
				out = append(out, rawWindow{start: it.Start(), end: it.Start() + spec.WindowSize, value: append([]byte(nil), it.Value()...)})
			}
			return it.Err()
		}
		if s := m.SessionStore(store); s != nil {
			it, err := s.FindSessions(key, from, to)
			if err != nil {
				return err
			}
			defer it.Close()
			for it.Next() {
				out = append(out, rawWindow{start: it.Start(), end: it.End(), value: append([]byte(nil), it.Value()...)})
			}
			return it.Err()
		}
		return fmt.Errorf("kstreams: task %s has no window store %q", t, store)
	})
	return out, err
}

// WindowValue is one window of a key and its value. A time window is
// [Start, End); sliding and session windows are [Start, End].
type WindowValue[V any] struct {
	Start, End time.Time
	Value      V
}

// ReadOnlyWindowStore is typed, read-only access to the local part of a
// window or session store.
type ReadOnlyWindowStore[K, V any] struct {
	app   *App
	name  string
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// WindowStore returns typed read-only access to a window or session store
// of the topology (a windowed aggregation's store). K and V are the
// aggregation's key and value types.
func WindowStore[K, V any](a *App, name string) (*ReadOnlyWindowStore[K, V], error) {
	_, spec, err := a.storeSpec(name)
	if err != nil {
		return nil, err
	}
	if spec.Kind == topology.KeyValueStore {
		return nil, fmt.Errorf("%w: %q holds key-value pairs; use Store", errNotWindowed, name)
	}
	if spec.Codec == nil {
		return nil, fmt.Errorf("kstreams: store %q has no serdes to read it with", name)
	}
	ks, ok1 := spec.Codec.KeySerde.(serde.Serde[K])
	vs, ok2 := spec.Codec.ValueSerde.(serde.Serde[V])
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("kstreams: store %q holds %s keys and %s values, not %T and %T",
			name, spec.Codec.KeyType, spec.Codec.ValueType, *new(K), *new(V))
	}
	return &ReadOnlyWindowStore[K, V]{app: a, name: name, topic: a.changelogTopic(name), ks: ks, vs: vs}, nil
}

// Fetch returns key's windows starting in [from, to] (for a session
// store: the sessions overlapping [from, to]), oldest first. A
// *NotQueryableError says the key's task is not readable here now.
func (s *ReadOnlyWindowStore[K, V]) Fetch(key K, from, to time.Time) ([]WindowValue[V], error) {
	kb, err := s.ks.Serialize(s.topic, key)
	if err != nil {
		return nil, fmt.Errorf("kstreams: store %q: serialize key: %w", s.name, err)
	}
	raw, err := s.app.fetchWindowsLocal(s.name, kb, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	out := make([]WindowValue[V], 0, len(raw))
	for _, w := range raw {
		v, err := s.vs.Deserialize(s.topic, w.value)
		if err != nil {
			return nil, fmt.Errorf("kstreams: store %q: deserialize value: %w", s.name, err)
		}
		out = append(out, WindowValue[V]{Start: time.UnixMilli(w.start), End: time.UnixMilli(w.end), Value: v})
	}
	return out, nil
}
