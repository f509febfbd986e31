// Package topology is the untyped processor graph every kstreams application
// compiles to: source, processor and sink nodes joined by parent/child edges,
// plus the internal topics that cut the graph into sub-topologies.
//
// The typed DSL (package kstream) only builds a Topology; the runtime and the
// test driver only read a Compiled one. Between nodes, keys and values travel
// as deserialized Go values (boxed in any); only sources and sinks see bytes.
package topology

import (
	"fmt"
	"sort"
)

// Deserializer turns a key or value read from topic into a Go value.
type Deserializer func(topic string, b []byte) (any, error)

// Serializer turns a Go key or value into bytes for topic. A nil value must
// serialize to nil (a tombstone).
type Serializer func(topic string, v any) ([]byte, error)

// TimestampExtractor picks a record's timestamp from the deserialized record;
// recordTimestamp is the Kafka record's own timestamp (ms).
type TimestampExtractor func(m Metadata, key, value any, recordTimestamp int64) int64

// TopicNameExtractor picks a sink's output topic per record.
type TopicNameExtractor func(key, value any, m Metadata) string

// Partitioner picks an output partition. Returning ok=false falls back to the
// default: Kafka's murmur2 of the serialized key.
type Partitioner func(topic string, key, value any, numPartitions int32) (partition int32, ok bool)

// Kind tells source, processor and sink nodes apart.
type Kind int

const (
	KindSource Kind = iota
	KindProcessor
	KindSink
)

// SourceSpec describes a source node.
type SourceSpec struct {
	Topics             []string
	KeyDeserializer    Deserializer
	ValueDeserializer  Deserializer
	TimestampExtractor TimestampExtractor // nil: the record's timestamp
	// RawKey and RawValue say the deserializer returns its input unchanged
	// ([]byte pass-through); the task then boxes a pointer to the record's
	// own bytes instead of calling it.
	RawKey, RawValue bool
}

// SinkSpec describes a sink node: a fixed Topic, or a TopicExtractor.
type SinkSpec struct {
	Topic           string
	TopicExtractor  TopicNameExtractor
	KeySerializer   Serializer
	ValueSerializer Serializer
	Partitioner     Partitioner // nil: murmur2 of the key bytes
}

// StoreSpec describes a state store the topology uses.
type StoreSpec struct {
	Name string
	// InMemory keeps the store in memory instead of Pebble on disk.
	InMemory bool
	// Logging backs the store by the changelog topic
	// "<application.id>-<Name>-changelog" (compacted).
	Logging bool
	// LogConfig holds extra changelog topic configs.
	LogConfig map[string]string
	// Caching puts a write cache in front of the store.
	Caching bool
	// Codec turns the store's bytes into typed keys and values for
	// interactive queries; nil for a store of raw bytes.
	Codec *StoreCodec

	// Kind is the store's shape: key-value (the zero value), window or
	// session. Window and session stores also use the fields below.
	Kind StoreKind
	// Retention (ms) keeps windows that long after their start (sessions
	// after their end); SegmentInterval (ms, 0: default) is the width of
	// the time segments dropped as a whole once expired.
	Retention       int64
	SegmentInterval int64
	// WindowSize (ms) of a time-window store, so queries can tell a
	// window's end; 0 for session stores.
	WindowSize int64
	// RetainDuplicates keeps every write of a key and window (join
	// buffers).
	RetainDuplicates bool
	// Internal stores (suppression buffers) are not offered to
	// interactive queries.
	Internal bool
}

// StoreKind is the shape of a store.
type StoreKind int

const (
	KeyValueStore StoreKind = iota
	WindowStore
	SessionStore
)

func (k StoreKind) String() string {
	switch k {
	case WindowStore:
		return "window"
	case SessionStore:
		return "session"
	}
	return "keyvalue"
}

// WindowChangelogExtraRetention is added to a window or session store's
// retention for its changelog's retention.ms, as Kafka Streams'
// windowstore.changelog.additional.retention.ms (default one day): a
// restore must still find every window the store retains.
const WindowChangelogExtraRetention = 24 * 60 * 60 * 1000

// StoreCodec is how interactive queries read a store: the DSL knows the
// store's types and serdes, the query layer only sees bytes. Serdes are
// given the store's changelog topic name, as the processors writing the
// store give them.
type StoreCodec struct {
	// KeyType and ValueType name the Go types, as in "string" or "int64".
	KeyType, ValueType string
	// KeySerde and ValueSerde are the store's serde.Serde[K] and
	// serde.Serde[V], for typed access.
	KeySerde, ValueSerde any
	// ParseKey parses a key written as text (in a URL) into a K.
	ParseKey func(text string) (any, error)
	// SerializeKey and DeserializeKey convert a K; DeserializeValue reads
	// a V.
	SerializeKey     func(topic string, key any) ([]byte, error)
	DeserializeKey   func(topic string, b []byte) (any, error)
	DeserializeValue func(topic string, b []byte) (any, error)
}

// ChangelogTopic is the changelog topic name of a store, without the
// application id prefix.
func ChangelogTopic(store string) string { return store + "-changelog" }

// Node is one vertex of the graph.
type Node struct {
	Name     string
	Kind     Kind
	Source   *SourceSpec // KindSource
	Supplier Supplier    // KindProcessor
	Sink     *SinkSpec   // KindSink
	Stores   []string    // state stores the processor uses
	Parents  []string
	Children []string

	order int // insertion index, for stable numbering and printing
}

// InternalTopic is a topic the application owns, named without the
// application id; at run time it becomes "<application.id>-<Name>".
type InternalTopic struct {
	Name string
	// Partitions is the partition count; 0 means "as many as the largest
	// source topic of the sub-topology that writes to it".
	Partitions int32
	// Config holds topic configs set at creation (cleanup.policy, ...).
	Config map[string]string
	// Store is set on a changelog topic: the store it backs. Its partition
	// count is that of the sub-topology that owns the store.
	Store string
}

// Topology is a graph under construction. It is not safe for concurrent use.
type Topology struct {
	nodes          map[string]*Node
	order          []*Node
	topicSources   map[string]string // topic -> source node name
	internalTopics map[string]*InternalTopic
	internalOrder  []string
	stores         map[string]*StoreSpec
	storeOrder     []string
	globals        map[string]*globalStore // global stores by name
	globalOrder    []string
	globalNodes    map[string]bool // the source and processor nodes of global stores
}

// New returns an empty topology.
func New() *Topology {
	return &Topology{
		nodes:          map[string]*Node{},
		topicSources:   map[string]string{},
		internalTopics: map[string]*InternalTopic{},
		stores:         map[string]*StoreSpec{},
		globals:        map[string]*globalStore{},
		globalNodes:    map[string]bool{},
	}
}

// AddStore declares a state store and connects it to processors.
func (t *Topology) AddStore(spec StoreSpec, processors ...string) error {
	if spec.Name == "" {
		return fmt.Errorf("topology: store name must not be empty")
	}
	if _, dup := t.stores[spec.Name]; dup {
		return fmt.Errorf("topology: store %q already added", spec.Name)
	}
	if _, dup := t.globals[spec.Name]; dup {
		return fmt.Errorf("topology: store %q already added as a global store", spec.Name)
	}
	c := spec
	t.stores[spec.Name] = &c
	t.storeOrder = append(t.storeOrder, spec.Name)
	for _, p := range processors {
		if err := t.ConnectStores(p, spec.Name); err != nil {
			return err
		}
	}
	return nil
}

// Store returns the spec of a declared store.
func (t *Topology) Store(name string) (StoreSpec, bool) {
	s, ok := t.stores[name]
	if !ok {
		return StoreSpec{}, false
	}
	return *s, true
}

// Stores returns every declared store in declaration order.
func (t *Topology) Stores() []StoreSpec {
	out := make([]StoreSpec, 0, len(t.storeOrder))
	for _, n := range t.storeOrder {
		out = append(out, *t.stores[n])
	}
	return out
}

func (t *Topology) add(n *Node, parents []string) error {
	if n.Name == "" {
		return fmt.Errorf("topology: node name must not be empty")
	}
	if _, dup := t.nodes[n.Name]; dup {
		return fmt.Errorf("topology: node %q already added", n.Name)
	}
	for _, p := range parents {
		pn, ok := t.nodes[p]
		if !ok {
			return fmt.Errorf("topology: node %q: parent %q not found", n.Name, p)
		}
		if pn.Kind == KindSink {
			return fmt.Errorf("topology: node %q: parent %q is a sink and cannot have children", n.Name, p)
		}
		if t.globalNodes[p] {
			return fmt.Errorf("topology: node %q: parent %q belongs to a global store and cannot have children", n.Name, p)
		}
	}
	n.order = len(t.order)
	t.nodes[n.Name] = n
	t.order = append(t.order, n)
	for _, p := range parents {
		pn := t.nodes[p]
		pn.Children = append(pn.Children, n.Name)
		n.Parents = append(n.Parents, p)
	}
	return nil
}

// AddSource adds a source node reading spec.Topics.
func (t *Topology) AddSource(name string, spec SourceSpec) error {
	if len(spec.Topics) == 0 {
		return fmt.Errorf("topology: source %q: no topics", name)
	}
	if spec.KeyDeserializer == nil || spec.ValueDeserializer == nil {
		return fmt.Errorf("topology: source %q: key and value deserializers are required", name)
	}
	for _, topic := range spec.Topics {
		if other, ok := t.topicSources[topic]; ok {
			return fmt.Errorf("topology: source %q: topic %q is already read by source %q", name, topic, other)
		}
	}
	if err := t.add(&Node{Name: name, Kind: KindSource, Source: &spec}, nil); err != nil {
		return err
	}
	for _, topic := range spec.Topics {
		t.topicSources[topic] = name
	}
	return nil
}

// AddProcessor adds a processor node below parents.
func (t *Topology) AddProcessor(name string, supplier Supplier, parents ...string) error {
	if supplier == nil {
		return fmt.Errorf("topology: processor %q: nil supplier", name)
	}
	if len(parents) == 0 {
		return fmt.Errorf("topology: processor %q: needs at least one parent", name)
	}
	return t.add(&Node{Name: name, Kind: KindProcessor, Supplier: supplier}, parents)
}

// AddSink adds a sink node below parents.
func (t *Topology) AddSink(name string, spec SinkSpec, parents ...string) error {
	if (spec.Topic == "") == (spec.TopicExtractor == nil) {
		return fmt.Errorf("topology: sink %q: set exactly one of a topic and a topic extractor", name)
	}
	if spec.KeySerializer == nil || spec.ValueSerializer == nil {
		return fmt.Errorf("topology: sink %q: key and value serializers are required", name)
	}
	if len(parents) == 0 {
		return fmt.Errorf("topology: sink %q: needs at least one parent", name)
	}
	return t.add(&Node{Name: name, Kind: KindSink, Sink: &spec}, parents)
}

// ConnectStores records that processor uses the named stores.
func (t *Topology) ConnectStores(processor string, stores ...string) error {
	n, ok := t.nodes[processor]
	if !ok || n.Kind != KindProcessor {
		return fmt.Errorf("topology: connect stores %v: %q is not a processor", stores, processor)
	}
	n.Stores = append(n.Stores, stores...)
	return nil
}

// AddInternalTopic declares a topic the application creates and owns.
func (t *Topology) AddInternalTopic(it InternalTopic) error {
	if _, dup := t.internalTopics[it.Name]; dup {
		return fmt.Errorf("topology: internal topic %q already declared", it.Name)
	}
	if it.Partitions < 0 {
		return fmt.Errorf("topology: internal topic %q: negative partition count %d", it.Name, it.Partitions)
	}
	c := it
	t.internalTopics[it.Name] = &c
	t.internalOrder = append(t.internalOrder, it.Name)
	return nil
}

// Node returns the named node, or nil.
func (t *Topology) Node(name string) *Node { return t.nodes[name] }

// Nodes returns every node in insertion order.
func (t *Topology) Nodes() []*Node { return append([]*Node(nil), t.order...) }

// InternalTopics returns the declared internal topics in declaration order.
func (t *Topology) InternalTopics() []InternalTopic {
	out := make([]InternalTopic, 0, len(t.internalOrder))
	for _, name := range t.internalOrder {
		out = append(out, *t.internalTopics[name])
	}
	return out
}

// IsInternal reports whether topic (unprefixed) is an internal topic.
func (t *Topology) IsInternal(topic string) bool {
	_, ok := t.internalTopics[topic]
	return ok
}

// groups cuts the graph into connected components (sub-topologies): nodes
// joined by an edge or sharing a store. Topics never join components, so a
// sink and the source reading its topic land in different sub-topologies.
// Groups are numbered by their earliest-added node, as Kafka Streams does.
// The nodes of global stores are in no group, and sharing a global store
// joins nothing.
func (t *Topology) groups() [][]*Node {
	parent := make([]int, len(t.order))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra < rb {
			parent[rb] = ra
		} else if rb < ra {
			parent[ra] = rb
		}
	}
	storeOwner := map[string]int{}
	for _, n := range t.order {
		if t.globalNodes[n.Name] {
			continue
		}
		for _, c := range n.Children {
			union(n.order, t.nodes[c].order)
		}
		for _, s := range n.Stores {
			if t.IsGlobalStore(s) {
				continue
			}
			if o, ok := storeOwner[s]; ok {
				union(n.order, o)
			} else {
				storeOwner[s] = n.order
			}
		}
	}
	byRoot := map[int][]*Node{}
	var roots []int
	for _, n := range t.order {
		if t.globalNodes[n.Name] {
			continue
		}
		r := find(n.order)
		if _, seen := byRoot[r]; !seen {
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], n)
	}
	sort.Ints(roots)
	out := make([][]*Node, 0, len(roots))
	for _, r := range roots {
		out = append(out, byRoot[r])
	}
	return out
}
