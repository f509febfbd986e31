package topology

import (
	"fmt"
	"sort"
)

// A global store is a key-value store that every instance of the
// application keeps whole, reading every partition of one topic (Kafka
// Streams' global store, which backs a GlobalKTable). Its source node and
// the processor that writes it belong to no sub-topology and make no task:
// the runtime runs them on a goroutine of their own, before and beside the
// tasks, and the topic is not part of the consumer group's subscription.
//
// The topic is the store's changelog, as in Kafka Streams: there is no
// "-changelog" topic, and a restart re-reads the topic from the offsets in
// the global state directory's checkpoint.
//
// Processors of any sub-topology read a global store by connecting to it
// (ConnectStores). Unlike a shared ordinary store that does not put them
// in one sub-topology, nor with the store's own nodes: every task of every
// sub-topology sees the same, whole store.

// GlobalStore is a global store of a compiled topology.
type GlobalStore struct {
	// ID numbers the global store after the sub-topologies, as Describe
	// prints it. Kafka Streams numbers global stores among the
	// sub-topologies in the order they were added, so its task ids may
	// skip numbers; here task ids are 0, 1, ... whatever the global
	// stores.
	ID int
	// Store is the store's spec; Logging is always off (the topic is the
	// changelog).
	Store StoreSpec
	// Topic is the (resolved) topic the store is read from.
	Topic string
	// Source reads Topic; Processor, its only child, writes the store.
	Source    *Node
	Processor *Node
}

// UpdateSubtopology shapes the global store's two nodes as a sub-topology,
// so that a task can run them on one partition of the topic, as Kafka
// Streams' GlobalStateUpdateTask runs them. Its ID is -1: it is not one of
// the application's sub-topologies and makes no task of the group.
func (g *GlobalStore) UpdateSubtopology() *Subtopology {
	return &Subtopology{
		ID:           -1,
		Nodes:        []*Node{g.Source, g.Processor},
		Sources:      map[string]*Node{g.Topic: g.Source},
		SourceTopics: []string{g.Topic},
		Stores:       []string{g.Store.Name},
		StoreSpecs:   []StoreSpec{g.Store},
		Changelogs:   map[string]string{},
	}
}

// globalStore is a global store as declared.
type globalStore struct {
	spec      StoreSpec
	source    string
	processor string
}

// AddGlobalStore declares a global store read from the one topic of
// source: a source node sourceName and below it a processor processorName,
// made by supplier, that writes every record it is given into the store
// (the only store it sees). Logging and caching are turned off: the topic
// is the store's changelog, and nothing is downstream of its processor to
// collapse updates for.
func (t *Topology) AddGlobalStore(spec StoreSpec, sourceName string, source SourceSpec, processorName string, supplier Supplier) error {
	switch {
	case spec.Name == "":
		return fmt.Errorf("topology: global store name must not be empty")
	case len(source.Topics) != 1:
		return fmt.Errorf("topology: global store %q: reads exactly one topic, not %d", spec.Name, len(source.Topics))
	case spec.Kind != KeyValueStore:
		return fmt.Errorf("topology: global store %q: must be a key-value store, not a %s store", spec.Name, spec.Kind)
	case supplier == nil:
		return fmt.Errorf("topology: global store %q: processor %q: nil supplier", spec.Name, processorName)
	case processorName == "" || processorName == sourceName:
		return fmt.Errorf("topology: global store %q: the processor needs a name of its own (source %q, processor %q)", spec.Name, sourceName, processorName)
	}
	if _, dup := t.stores[spec.Name]; dup {
		return fmt.Errorf("topology: store %q already added", spec.Name)
	}
	if _, dup := t.globals[spec.Name]; dup {
		return fmt.Errorf("topology: global store %q already added", spec.Name)
	}
	if _, dup := t.nodes[processorName]; dup {
		return fmt.Errorf("topology: node %q already added", processorName)
	}
	spec.Logging, spec.LogConfig, spec.Caching = false, nil, false
	if err := t.AddSource(sourceName, source); err != nil {
		return err
	}
	if err := t.AddProcessor(processorName, supplier, sourceName); err != nil {
		return err
	}
	t.globalNodes[sourceName], t.globalNodes[processorName] = true, true
	t.nodes[processorName].Stores = []string{spec.Name}
	t.globals[spec.Name] = &globalStore{spec: spec, source: sourceName, processor: processorName}
	t.globalOrder = append(t.globalOrder, spec.Name)
	return nil
}

// GlobalStore returns the spec of a declared global store.
func (t *Topology) GlobalStore(name string) (StoreSpec, bool) {
	g, ok := t.globals[name]
	if !ok {
		return StoreSpec{}, false
	}
	return g.spec, true
}

// IsGlobalStore reports whether name is a global store.
func (t *Topology) IsGlobalStore(name string) bool {
	_, ok := t.globals[name]
	return ok
}

// compileGlobals copies the global stores into c, numbered after the
// sub-topologies.
func (t *Topology) compileGlobals(c *Compiled, resolve func(string) string) {
	for i, name := range t.globalOrder {
		g := t.globals[name]
		src, proc := copyNode(t.nodes[g.source]), copyNode(t.nodes[g.processor])
		s := *src.Source
		s.Topics = []string{resolve(s.Topics[0])}
		src.Source = &s
		c.GlobalStores = append(c.GlobalStores, &GlobalStore{
			ID:        len(c.Subtopologies) + i,
			Store:     g.spec,
			Topic:     s.Topics[0],
			Source:    src,
			Processor: proc,
		})
	}
}

func copyNode(n *Node) *Node {
	cp := *n
	cp.Parents = append([]string(nil), n.Parents...)
	cp.Children = append([]string(nil), n.Children...)
	cp.Stores = append([]string(nil), n.Stores...)
	return &cp
}

// GlobalTopics returns the topics the global stores read, sorted.
func (c *Compiled) GlobalTopics() []string {
	out := make([]string, 0, len(c.GlobalStores))
	for _, g := range c.GlobalStores {
		out = append(out, g.Topic)
	}
	sort.Strings(out)
	return out
}

// GlobalStoreFor returns the global store read from topic (resolved name).
func (c *Compiled) GlobalStoreFor(topic string) (*GlobalStore, bool) {
	for _, g := range c.GlobalStores {
		if g.Topic == topic {
			return g, true
		}
	}
	return nil, false
}

// GlobalStoreNamed returns the global store called name.
func (c *Compiled) GlobalStoreNamed(name string) (*GlobalStore, bool) {
	for _, g := range c.GlobalStores {
		if g.Store.Name == name {
			return g, true
		}
	}
	return nil, false
}
