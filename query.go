package kstreams

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/kstreams-go/kstreams/internal/assign"
	"github.com/kstreams-go/kstreams/internal/partition"
	"github.com/kstreams-go/kstreams/internal/statemgr"
	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// Interactive queries read the stores of a running app from outside its
// task loops, as Kafka Streams' KafkaStreams#store and
// #queryMetadataForKey do. The cluster map comes from the group
// assignment (every member learns where every task runs); a key's task is
// found with the producer's murmur2 partitioner over the store's
// sub-topology's partition count, as Kafka Streams does with the default
// partitioner.

// ErrUnknownStore is returned for a store name the topology does not have.
var ErrUnknownStore = errors.New("kstreams: unknown store")

// NotQueryableReason says why a store cannot answer right now.
type NotQueryableReason int

const (
	// ReasonRebalancing: the group is reassigning tasks; ask again shortly.
	ReasonRebalancing NotQueryableReason = iota + 1
	// ReasonRestoring: this instance owns the task but is still restoring its
	// stores from the changelog.
	ReasonRestoring
	// ReasonMoved: another instance owns the task now; Owner says which.
	ReasonMoved
	// ReasonNotRunning: the app is not running (created, shutting down or
	// stopped).
	ReasonNotRunning
)

func (r NotQueryableReason) String() string {
	switch r {
	case ReasonRebalancing:
		return "rebalancing"
	case ReasonRestoring:
		return "restoring"
	case ReasonMoved:
		return "moved"
	case ReasonNotRunning:
		return "not running"
	}
	return fmt.Sprintf("NotQueryableReason(%d)", int(r))
}

// NotQueryableError means a store (or the part of it that holds a key)
// cannot be read here right now. It is temporary except for ReasonMoved, which
// asks the caller to go to Owner.
type NotQueryableError struct {
	Store  string
	Task   string // the task holding the key, when known
	Reason NotQueryableReason
	// Owner is the endpoint of the instance that owns the task, for
	// ReasonMoved
	// (empty when that instance has no ApplicationServer).
	Owner string
}

func (e *NotQueryableError) Error() string {
	msg := fmt.Sprintf("kstreams: store %q not queryable", e.Store)
	if e.Task != "" {
		msg += " for task " + e.Task
	}
	msg += ": " + e.Reason.String()
	if e.Reason == ReasonMoved {
		owner := e.Owner
		if owner == "" {
			owner = "an instance without ApplicationServer"
		}
		msg += " to " + owner
	}
	return msg
}

// Instance is one member of the application as the group assignment
// describes it.
type Instance struct {
	ProcessID string `json:"processId"`
	// Endpoint is its ApplicationServer, empty if it serves no queries.
	Endpoint string `json:"endpoint,omitempty"`
	// Active and Standby are its tasks ("<subtopology>_<partition>").
	Active  []string `json:"active"`
	Standby []string `json:"standby"`
	// Partitions are the input partitions of its active tasks, by topic.
	Partitions map[string][]int32 `json:"partitions"`
	// Stores are the stores its active tasks hold.
	Stores []string `json:"stores"`
}

// Metadata is the application's cluster map, from the latest group
// assignment this instance received.
type Metadata struct {
	// Self is this instance's ApplicationServer and ProcessID its id.
	Self      string `json:"self,omitempty"`
	ProcessID string `json:"processId"`
	State     string `json:"state"`
	// Instances are every member of the group, sorted by endpoint, empty
	// before the first assignment.
	Instances []Instance `json:"instances"`
}

// Metadata returns the cluster map: every instance with its endpoint,
// tasks, partitions and stores.
func (a *App) Metadata() Metadata {
	md := Metadata{Self: a.cfg.ApplicationServer, ProcessID: a.processID, State: a.State().String(), Instances: []Instance{}}
	asg, ok := a.assignment()
	if !ok {
		return md
	}
	for _, h := range asg.Hosts {
		in := Instance{ProcessID: h.ProcessID, Endpoint: h.Endpoint, Active: []string{}, Standby: []string{},
			Partitions: map[string][]int32{}, Stores: []string{}}
		stores := map[string]bool{}
		for _, t := range h.Active {
			in.Active = append(in.Active, t.String())
			st := a.subtopology(t.Subtopology)
			if st == nil {
				continue
			}
			for _, topic := range st.SourceTopics {
				in.Partitions[topic] = append(in.Partitions[topic], t.Partition)
			}
			for _, s := range st.Stores {
				stores[s] = true
			}
		}
		for _, t := range h.Standby {
			in.Standby = append(in.Standby, t.String())
		}
		for topic := range in.Partitions {
			slices.Sort(in.Partitions[topic])
		}
		for _, g := range a.compiled.GlobalStores { // every instance holds them
			stores[g.Store.Name] = true
		}
		for s := range stores {
			in.Stores = append(in.Stores, s)
		}
		sort.Strings(in.Stores)
		md.Instances = append(md.Instances, in)
	}
	return md
}

// KeyQueryMetadata says where a key of a store lives.
type KeyQueryMetadata struct {
	// Active is the endpoint of the instance running the key's task and
	// ActiveProcessID its id; Local is true when that is this instance.
	Active          string
	ActiveProcessID string
	Local           bool
	// Standbys are the endpoints of the instances keeping standby copies.
	Standbys  []string
	Partition int32
	Task      string
}

// QueryMetadataForKey says which instance holds key in store, computing
// the key's partition as the producer does. The key is serialized with the
// store's key serde; a store without one (Processor API stores) takes the
// key as []byte.
func QueryMetadataForKey[K any](a *App, store string, key K) (KeyQueryMetadata, error) {
	kb, err := a.storeKeyBytes(store, key)
	if err != nil {
		return KeyQueryMetadata{}, err
	}
	return a.QueryMetadataForKeyBytes(store, kb)
}

// QueryMetadataForKeyBytes is QueryMetadataForKey for a key already
// serialized as the store holds it.
func (a *App) QueryMetadataForKeyBytes(store string, key []byte) (KeyQueryMetadata, error) {
	st, _, err := a.storeSpec(store)
	if err != nil {
		return KeyQueryMetadata{}, err
	}
	if st == nil {
		return a.globalKeyMetadata(store)
	}
	if err := a.queryableState(store); err != nil {
		return KeyQueryMetadata{}, err
	}
	asg, ok := a.assignment()
	if !ok {
		return KeyQueryMetadata{}, &NotQueryableError{Store: store, Reason: ReasonRebalancing}
	}
	t, err := taskForKey(asg, st.ID, key)
	if err != nil {
		return KeyQueryMetadata{}, fmt.Errorf("kstreams: store %q: %w", store, err)
	}
	md := KeyQueryMetadata{Partition: t.Partition, Task: t.String()}
	if h, ok := asg.ActiveHost(t); ok {
		md.Active, md.ActiveProcessID = h.Endpoint, h.ProcessID
		md.Local = h.ProcessID == a.processID
	} else {
		return md, &NotQueryableError{Store: store, Task: t.String(), Reason: ReasonRebalancing}
	}
	for _, h := range asg.StandbyHosts(t) {
		md.Standbys = append(md.Standbys, h.Endpoint)
	}
	return md, nil
}

func taskForKey(asg assign.Assignment, sub int, key []byte) (assign.Task, error) {
	n := asg.Partitions[sub]
	if n <= 0 {
		return assign.Task{}, fmt.Errorf("sub-topology %d has no partitions in the assignment", sub)
	}
	if key == nil {
		key = []byte{}
	}
	return assign.Task{Subtopology: sub, Partition: partition.ForKey(key, n)}, nil
}

func (a *App) assignment() (assign.Assignment, bool) {
	if a.balancer == nil {
		return assign.Assignment{}, false
	}
	return a.balancer.LatestAssignment()
}

// storeSpec finds the sub-topology and spec of a store.
func (a *App) storeSpec(name string) (*topology.Subtopology, topology.StoreSpec, error) {
	for _, st := range a.compiled.Subtopologies {
		for _, spec := range st.StoreSpecs {
			if spec.Name == name && !spec.Internal {
				return st, spec, nil
			}
		}
	}
	if g, ok := a.compiled.GlobalStoreNamed(name); ok {
		return nil, g.Store, nil // no sub-topology's: see global.go
	}
	return nil, topology.StoreSpec{}, fmt.Errorf("%w %q", ErrUnknownStore, name)
}

// changelogTopic is the topic a store's serdes are given.
func (a *App) changelogTopic(store string) string {
	if g, ok := a.compiled.GlobalStoreNamed(store); ok {
		return g.Topic // a global store's topic is its changelog
	}
	return topology.InternalTopicName(a.cfg.ApplicationID, topology.ChangelogTopic(store))
}

func (a *App) storeKeyBytes(store string, key any) ([]byte, error) {
	_, spec, err := a.storeSpec(store)
	if err != nil {
		return nil, err
	}
	if spec.Codec == nil {
		b, ok := key.([]byte)
		if !ok {
			return nil, fmt.Errorf("kstreams: store %q holds raw bytes: query it with a []byte key, not %T", store, key)
		}
		return b, nil
	}
	b, err := spec.Codec.SerializeKey(a.changelogTopic(store), key)
	if err != nil {
		return nil, fmt.Errorf("kstreams: store %q: serialize key: %w", store, err)
	}
	return b, nil
}

// queryableState fails unless the app is running or rebalancing.
func (a *App) queryableState(store string) error {
	switch a.State() {
	case Running:
		return nil
	case Rebalancing:
		return nil // tasks that are up still answer; the others say why
	}
	return &NotQueryableError{Store: store, Reason: ReasonNotRunning}
}

// withLocalStore runs fn on the key-value store of the local active task
// t while that task cannot be closed under it.
func (a *App) withLocalStore(store string, t assign.Task, asg assign.Assignment, fn func(state.KeyValueStore) error) error {
	return a.withLocalTask(store, t, asg, func(m *statemgr.Manager) error {
		kv := m.Store(store)
		if kv == nil {
			return fmt.Errorf("kstreams: task %s has no key-value store %q", t, store)
		}
		return fn(kv)
	})
}

// withLocalTask runs fn on the stores of the local active task t while
// that task cannot be closed under it.
func (a *App) withLocalTask(store string, t assign.Task, asg assign.Assignment, fn func(*statemgr.Manager) error) error {
	a.mu.Lock()
	r := a.runners[task.ID{Subtopology: t.Subtopology, Partition: t.Partition}]
	a.mu.Unlock()
	if r == nil {
		if h, ok := asg.ActiveHost(t); ok && h.ProcessID != a.processID {
			return &NotQueryableError{Store: store, Task: t.String(), Reason: ReasonMoved, Owner: h.Endpoint}
		}
		return &NotQueryableError{Store: store, Task: t.String(), Reason: ReasonRebalancing}
	}
	r.queryMu.RLock()
	defer r.queryMu.RUnlock()
	if !r.queryable {
		if r.stopped.Load() {
			return &NotQueryableError{Store: store, Task: t.String(), Reason: ReasonRebalancing}
		}
		return &NotQueryableError{Store: store, Task: t.String(), Reason: ReasonRestoring}
	}
	return fn(r.stores)
}

// getLocal reads key from this instance's active task that owns it.
func (a *App) getLocal(store string, key []byte) (value []byte, found bool, err error) {
	st, _, err := a.storeSpec(store)
	if err != nil {
		return nil, false, err
	}
	if st == nil {
		return a.getGlobal(store, key)
	}
	if err := a.queryableState(store); err != nil {
		return nil, false, err
	}
	asg, ok := a.assignment()
	if !ok {
		return nil, false, &NotQueryableError{Store: store, Reason: ReasonRebalancing}
	}
	t, err := taskForKey(asg, st.ID, key)
	if err != nil {
		return nil, false, fmt.Errorf("kstreams: store %q: %w", store, err)
	}
	err = a.withLocalStore(store, t, asg, func(kv state.KeyValueStore) error {
		v, err := kv.Get(key)
		if err != nil {
			return fmt.Errorf("kstreams: store %q task %s: get: %w", store, t, err)
		}
		value = v
		return nil
	})
	return value, value != nil, err
}

// rangeLocal reads the entries with from <= key <= to (nil: open) of
// every local active task of store, merged in key order, at most limit
// (limit <= 0: all).
func (a *App) rangeLocal(store string, from, to []byte, limit int) ([]state.KeyValue, error) {
	st, _, err := a.storeSpec(store)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return a.rangeGlobal(store, from, to, limit)
	}
	if err := a.queryableState(store); err != nil {
		return nil, err
	}
	asg, ok := a.assignment()
	if !ok {
		return nil, &NotQueryableError{Store: store, Reason: ReasonRebalancing}
	}
	var out []state.KeyValue
	for _, h := range asg.Hosts {
		if h.ProcessID != a.processID {
			continue
		}
		for _, t := range h.Active {
			if t.Subtopology != st.ID {
				continue
			}
			err := a.withLocalStore(store, t, asg, func(kv state.KeyValueStore) error {
				part, err := scan(kv, from, to, limit)
				if err != nil {
					return fmt.Errorf("kstreams: store %q task %s: range: %w", store, t, err)
				}
				out = append(out, part...)
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(out, func(x, y state.KeyValue) int { return bytes.Compare(x.Key, y.Key) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// scan copies up to limit entries of a range out of a store.
func scan(kv state.ReadOnlyKeyValueStore, from, to []byte, limit int) (out []state.KeyValue, err error) {
	it, err := kv.Range(from, to)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for (limit <= 0 || len(out) < limit) && it.Next() {
		out = append(out, state.KeyValue{Key: bytes.Clone(it.Key()), Value: bytes.Clone(it.Value())})
	}
	return out, it.Err()
}

// ReadOnlyStore is typed, read-only access to the local part of a
// key-value store: the stores of this instance's active tasks.
type ReadOnlyStore[K, V any] struct {
	app   *App
	name  string
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// KeyValue is one typed entry.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// Store returns typed read-only access to a key-value store of the
// topology. K and V must be the store's types (those of its serdes); a
// Processor API store, which has none, is read as Store[[]byte, []byte].
func Store[K, V any](a *App, name string) (*ReadOnlyStore[K, V], error) {
	_, spec, err := a.storeSpec(name)
	if err != nil {
		return nil, err
	}
	s := &ReadOnlyStore[K, V]{app: a, name: name, topic: a.changelogTopic(name)}
	if spec.Codec == nil {
		ks, ok1 := serde.Bytes().(serde.Serde[K])
		vs, ok2 := serde.Bytes().(serde.Serde[V])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("kstreams: store %q holds raw bytes: open it as Store[[]byte, []byte]", name)
		}
		s.ks, s.vs = ks, vs
		return s, nil
	}
	ks, ok1 := spec.Codec.KeySerde.(serde.Serde[K])
	vs, ok2 := spec.Codec.ValueSerde.(serde.Serde[V])
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("kstreams: store %q holds %s keys and %s values, not %T and %T",
			name, spec.Codec.KeyType, spec.Codec.ValueType, *new(K), *new(V))
	}
	s.ks, s.vs = ks, vs
	return s, nil
}

// Get returns the value under key. A *NotQueryableError says the key's
// task is not readable here right now (and for ReasonMoved, where it is).
func (s *ReadOnlyStore[K, V]) Get(key K) (value V, found bool, err error) {
	kb, err := s.ks.Serialize(s.topic, key)
	if err != nil {
		return value, false, fmt.Errorf("kstreams: store %q: serialize key: %w", s.name, err)
	}
	b, found, err := s.app.getLocal(s.name, kb)
	if err != nil || !found {
		return value, false, err
	}
	value, err = s.vs.Deserialize(s.topic, b)
	if err != nil {
		return value, false, fmt.Errorf("kstreams: store %q: deserialize value: %w", s.name, err)
	}
	return value, true, nil
}

// Range returns the local entries with from <= key <= to in serialized
// key order (nil bounds are open), at most limit (<= 0: all).
func (s *ReadOnlyStore[K, V]) Range(from, to *K, limit int) ([]KeyValue[K, V], error) {
	var fb, tb []byte
	var err error
	if from != nil {
		if fb, err = s.ks.Serialize(s.topic, *from); err != nil {
			return nil, fmt.Errorf("kstreams: store %q: serialize from: %w", s.name, err)
		}
	}
	if to != nil {
		if tb, err = s.ks.Serialize(s.topic, *to); err != nil {
			return nil, fmt.Errorf("kstreams: store %q: serialize to: %w", s.name, err)
		}
	}
	raw, err := s.app.rangeLocal(s.name, fb, tb, limit)
	if err != nil {
		return nil, err
	}
	out := make([]KeyValue[K, V], 0, len(raw))
	for _, e := range raw {
		k, err := s.ks.Deserialize(s.topic, e.Key)
		if err != nil {
			return nil, fmt.Errorf("kstreams: store %q: deserialize key: %w", s.name, err)
		}
		v, err := s.vs.Deserialize(s.topic, e.Value)
		if err != nil {
			return nil, fmt.Errorf("kstreams: store %q: deserialize value: %w", s.name, err)
		}
		out = append(out, KeyValue[K, V]{Key: k, Value: v})
	}
	return out, nil
}

// All returns every local entry in key order, at most limit (<= 0: all).
func (s *ReadOnlyStore[K, V]) All(limit int) ([]KeyValue[K, V], error) {
	return s.Range(nil, nil, limit)
}
