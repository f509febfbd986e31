package topology

import (
	"fmt"
	"strings"
)

// Graph is the topology as data: what Describe prints, for programs (the
// JSON of GET /v1/topology) and pictures (Mermaid, DOT, the status page).
// Sub-topologies and their nodes come in Describe's numbering and order;
// internal topics are named without the application id, as Describe names
// them.
type Graph struct {
	Subtopologies []GraphSubtopology `json:"subtopologies"`
	// Topics are the topics the nodes read and write, internal ones
	// included, in order of first use (sub-topology by sub-topology, node
	// by node).
	Topics []GraphTopic `json:"topics"`
	// Stores are the declared state stores in declaration order, then the
	// global stores.
	Stores []GraphStore `json:"stores"`
	// GlobalStores are the global stores, each with its source and the
	// processor that writes it; they make no tasks.
	GlobalStores []GraphGlobalStore `json:"globalStores,omitempty"`
}

// GraphGlobalStore is a global store and its two nodes, numbered after the
// sub-topologies as Describe numbers it.
type GraphGlobalStore struct {
	ID    int         `json:"id"`
	Store string      `json:"store"`
	Nodes []GraphNode `json:"nodes"`
}

// GraphSubtopology is one sub-topology and its nodes, in Describe's order.
type GraphSubtopology struct {
	ID    int         `json:"id"`
	Nodes []GraphNode `json:"nodes"`
}

// GraphNode is one node of a sub-topology.
type GraphNode struct {
	Name string `json:"name"`
	// Kind is "source", "processor" or "sink".
	Kind string `json:"kind"`
	// Topics are a source's topics or a sink's topic; a sink that picks
	// its topic per record has none and TopicExtractor set.
	Topics         []string `json:"topics,omitempty"`
	TopicExtractor bool     `json:"topicExtractor,omitempty"`
	// Stores are the stores a processor uses, global stores it reads
	// included (Describe leaves those out, as Kafka Streams does).
	Stores []string `json:"stores,omitempty"`
	// Successors and Predecessors are node names, sorted as Describe
	// prints them.
	Successors   []string `json:"successors"`
	Predecessors []string `json:"predecessors"`
}

// GraphTopic is a topic the topology reads or writes.
type GraphTopic struct {
	Name string `json:"name"`
	// Internal topics (repartition topics) belong to the application: at
	// run time they are named "<application.id>-<Name>".
	Internal bool `json:"internal,omitempty"`
}

// GraphStore is a state store.
type GraphStore struct {
	Name string `json:"name"`
	// Kind is "keyvalue", "window" or "session".
	Kind string `json:"kind"`
	// Subtopology is the sub-topology whose processors use the store, -1
	// for a store no processor uses and for global stores.
	Subtopology int  `json:"subtopology"`
	InMemory    bool `json:"inMemory,omitempty"`
	// Global is set on a global store: every instance holds all of it,
	// read from its topic, which is also its changelog.
	Global bool `json:"global,omitempty"`
	// Changelog is the store's changelog topic without the application
	// id; empty when logging is off.
	Changelog string `json:"changelog,omitempty"`
}

func (k Kind) String() string {
	switch k {
	case KindSource:
		return "source"
	case KindProcessor:
		return "processor"
	case KindSink:
		return "sink"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Graph returns the topology as data.
func (t *Topology) Graph() Graph {
	g := Graph{Subtopologies: []GraphSubtopology{}, Topics: []GraphTopic{}, Stores: []GraphStore{}}
	seenTopic := map[string]bool{}
	addTopic := func(name string) {
		if !seenTopic[name] {
			seenTopic[name] = true
			g.Topics = append(g.Topics, GraphTopic{Name: name, Internal: t.IsInternal(name)})
		}
	}
	storeSub := map[string]int{}
	groups := t.groups()
	for i, group := range groups {
		st := GraphSubtopology{ID: i, Nodes: []GraphNode{}}
		for _, n := range describeOrder(t, group) {
			gn := graphNode(n)
			for _, topic := range gn.Topics {
				addTopic(topic)
			}
			for _, s := range t.localStores(n.Stores) {
				storeSub[s] = i
			}
			st.Nodes = append(st.Nodes, gn)
		}
		g.Subtopologies = append(g.Subtopologies, st)
	}
	for i, name := range t.globalOrder {
		gs := t.globals[name]
		src, proc := graphNode(t.nodes[gs.source]), graphNode(t.nodes[gs.processor])
		for _, topic := range src.Topics {
			addTopic(topic)
		}
		g.GlobalStores = append(g.GlobalStores, GraphGlobalStore{ID: len(groups) + i, Store: name, Nodes: []GraphNode{src, proc}})
	}
	for _, spec := range t.Stores() {
		gs := GraphStore{Name: spec.Name, Kind: spec.Kind.String(), Subtopology: -1, InMemory: spec.InMemory}
		if sub, ok := storeSub[spec.Name]; ok {
			gs.Subtopology = sub
		}
		if spec.Logging {
			gs.Changelog = ChangelogTopic(spec.Name)
		}
		g.Stores = append(g.Stores, gs)
	}
	for _, name := range t.globalOrder {
		spec := t.globals[name].spec
		g.Stores = append(g.Stores, GraphStore{Name: name, Kind: spec.Kind.String(), Subtopology: -1, InMemory: spec.InMemory, Global: true})
	}
	return g
}

func graphNode(n *Node) GraphNode {
	gn := GraphNode{
		Name:         n.Name,
		Kind:         n.Kind.String(),
		Stores:       append([]string(nil), n.Stores...),
		Successors:   sortedCopy(n.Children),
		Predecessors: sortedCopy(n.Parents),
	}
	switch n.Kind {
	case KindSource:
		gn.Topics = append([]string(nil), n.Source.Topics...)
	case KindSink:
		if n.Sink.Topic != "" {
			gn.Topics = []string{n.Sink.Topic}
		} else {
			gn.TopicExtractor = true
		}
	}
	if gn.Successors == nil {
		gn.Successors = []string{}
	}
	if gn.Predecessors == nil {
		gn.Predecessors = []string{}
	}
	return gn
}

// nodeGroups is every group of nodes the pictures draw in a box of its
// own: the sub-topologies, then the global stores.
func (g Graph) nodeGroups() [][]GraphNode {
	out := make([][]GraphNode, 0, len(g.Subtopologies)+len(g.GlobalStores))
	for _, st := range g.Subtopologies {
		out = append(out, st.Nodes)
	}
	for _, gs := range g.GlobalStores {
		out = append(out, gs.Nodes)
	}
	return out
}

// ids names the graph's vertices for Mermaid and DOT, whose identifiers
// cannot hold every character a node, topic or store name may: nodes are
// n0, n1, … in Graph's order, topics t0, … and stores s0, …. A topic, a
// store and a node may share a name; their ids never do.
type ids struct {
	node, topic, store map[string]string
}

func (g Graph) ids() ids {
	id := ids{node: map[string]string{}, topic: map[string]string{}, store: map[string]string{}}
	for _, nodes := range g.nodeGroups() {
		for _, n := range nodes {
			id.node[n.Name] = fmt.Sprintf("n%d", len(id.node))
		}
	}
	for i, topic := range g.Topics {
		id.topic[topic.Name] = fmt.Sprintf("t%d", i)
	}
	for i, s := range g.Stores {
		id.store[s.Name] = fmt.Sprintf("s%d", i)
	}
	return id
}

// edge is one line of a picture: data flows from a topic to a source, a
// node to its successor and a sink to its topic; a processor uses a store.
type edge struct {
	from, to string
	store    bool
}

// edges lists the edges between ids: for each node in order, the topics
// into it, then its successors, stores and output topic.
func (g Graph) edges(id ids) []edge {
	var out []edge
	for _, nodes := range g.nodeGroups() {
		for _, n := range nodes {
			me := id.node[n.Name]
			if n.Kind == "source" {
				for _, topic := range n.Topics {
					out = append(out, edge{from: id.topic[topic], to: me})
				}
			}
			for _, s := range n.Successors {
				out = append(out, edge{from: me, to: id.node[s]})
			}
			for _, s := range n.Stores {
				if sid, ok := id.store[s]; ok {
					out = append(out, edge{from: me, to: sid, store: true})
				}
			}
			if n.Kind == "sink" {
				for _, topic := range n.Topics {
					out = append(out, edge{from: me, to: id.topic[topic]})
				}
			}
		}
	}
	return out
}

var mermaidEscaper = strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "&", "#amp;")

// Mermaid renders the graph as a Mermaid flowchart: a subgraph per
// sub-topology holding its nodes (sources and sinks rounded, processors
// square) and stores (cylinders); topics are parallelograms outside them.
// Solid arrows carry records, dotted ones join processors to their stores.
func (g Graph) Mermaid() string {
	id := g.ids()
	label := func(s string) string { return `"` + mermaidEscaper.Replace(s) + `"` }
	var b strings.Builder
	b.WriteString("flowchart TB\n")
	for _, st := range g.Subtopologies {
		fmt.Fprintf(&b, "    subgraph sub%d [%s]\n", st.ID, label(fmt.Sprintf("Sub-topology: %d", st.ID)))
		for _, n := range st.Nodes {
			if n.Kind == "processor" {
				fmt.Fprintf(&b, "        %s[%s]\n", id.node[n.Name], label(n.Name))
			} else {
				fmt.Fprintf(&b, "        %s(%s)\n", id.node[n.Name], label(n.Name))
			}
		}
		for _, s := range g.Stores {
			if s.Subtopology == st.ID {
				fmt.Fprintf(&b, "        %s[(%s)]\n", id.store[s.Name], label(s.Name))
			}
		}
		b.WriteString("    end\n")
	}
	for _, gs := range g.GlobalStores {
		fmt.Fprintf(&b, "    subgraph global%d [%s]\n", gs.ID, label(fmt.Sprintf("Sub-topology: %d for global store", gs.ID)))
		for _, n := range gs.Nodes {
			if n.Kind == "processor" {
				fmt.Fprintf(&b, "        %s[%s]\n", id.node[n.Name], label(n.Name))
			} else {
				fmt.Fprintf(&b, "        %s(%s)\n", id.node[n.Name], label(n.Name))
			}
		}
		fmt.Fprintf(&b, "        %s[(%s)]\n", id.store[gs.Store], label(gs.Store))
		b.WriteString("    end\n")
	}
	for _, s := range g.Stores {
		if s.Subtopology < 0 && !s.Global {
			fmt.Fprintf(&b, "    %s[(%s)]\n", id.store[s.Name], label(s.Name))
		}
	}
	for _, topic := range g.Topics {
		fmt.Fprintf(&b, "    %s[/%s/]\n", id.topic[topic.Name], label(topic.Name))
	}
	for _, e := range g.edges(id) {
		arrow := "-->"
		if e.store {
			arrow = "-.->"
		}
		fmt.Fprintf(&b, "    %s %s %s\n", e.from, arrow, e.to)
	}
	return b.String()
}

var dotEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// DOT renders the graph in Graphviz's DOT language, shaped as Mermaid
// draws it: a cluster per sub-topology, topics as parallelograms, stores
// as cylinders, dashed edges from processors to their stores.
func (g Graph) DOT() string {
	id := g.ids()
	quote := func(s string) string { return `"` + dotEscaper.Replace(s) + `"` }
	var b strings.Builder
	b.WriteString("digraph topology {\n")
	b.WriteString("    fontname=\"Helvetica\";\n")
	b.WriteString("    node [fontname=\"Helvetica\", fontsize=11];\n")
	for _, st := range g.Subtopologies {
		fmt.Fprintf(&b, "    subgraph cluster_%d {\n", st.ID)
		fmt.Fprintf(&b, "        label=%s;\n", quote(fmt.Sprintf("Sub-topology: %d", st.ID)))
		for _, n := range st.Nodes {
			style := ", style=rounded"
			if n.Kind == "processor" {
				style = ""
			}
			fmt.Fprintf(&b, "        %s [label=%s, shape=box%s];\n", id.node[n.Name], quote(n.Name), style)
		}
		for _, s := range g.Stores {
			if s.Subtopology == st.ID {
				fmt.Fprintf(&b, "        %s [label=%s, shape=cylinder];\n", id.store[s.Name], quote(s.Name))
			}
		}
		b.WriteString("    }\n")
	}
	for _, gs := range g.GlobalStores {
		fmt.Fprintf(&b, "    subgraph cluster_global_%d {\n", gs.ID)
		fmt.Fprintf(&b, "        label=%s;\n", quote(fmt.Sprintf("Sub-topology: %d for global store", gs.ID)))
		for _, n := range gs.Nodes {
			style := ", style=rounded"
			if n.Kind == "processor" {
				style = ""
			}
			fmt.Fprintf(&b, "        %s [label=%s, shape=box%s];\n", id.node[n.Name], quote(n.Name), style)
		}
		fmt.Fprintf(&b, "        %s [label=%s, shape=cylinder];\n", id.store[gs.Store], quote(gs.Store))
		b.WriteString("    }\n")
	}
	for _, s := range g.Stores {
		if s.Subtopology < 0 && !s.Global {
			fmt.Fprintf(&b, "    %s [label=%s, shape=cylinder];\n", id.store[s.Name], quote(s.Name))
		}
	}
	for _, topic := range g.Topics {
		fmt.Fprintf(&b, "    %s [label=%s, shape=parallelogram];\n", id.topic[topic.Name], quote(topic.Name))
	}
	for _, e := range g.edges(id) {
		attr := ""
		if e.store {
			attr = " [style=dashed]"
		}
		fmt.Fprintf(&b, "    %s -> %s%s;\n", e.from, e.to, attr)
	}
	b.WriteString("}\n")
	return b.String()
}

// Mermaid renders the topology as a Mermaid flowchart: t.Graph().Mermaid().
func (t *Topology) Mermaid() string { return t.Graph().Mermaid() }

// DOT renders the topology in Graphviz's DOT language: t.Graph().DOT().
func (t *Topology) DOT() string { return t.Graph().DOT() }
