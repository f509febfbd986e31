package topology

import (
	"fmt"
	"sort"
	"strings"
)

// Describe prints the topology in the text shape of Kafka Streams'
// Topology#describe(): sub-topologies, each node with its successors (-->)
// and predecessors (<--), then the global stores, each as its source and
// processor. Internal topics print without the application id.
//
// As in Kafka Streams, a processor's stores leave out the global stores it
// reads. Kafka Streams numbers the global stores among the sub-topologies
// in the order they were added; they are numbered after them here (see
// GlobalStore.ID).
func (t *Topology) Describe() string {
	var b strings.Builder
	b.WriteString("Topologies:\n")
	groups := t.groups()
	for i, group := range groups {
		fmt.Fprintf(&b, "   Sub-topology: %d\n", i)
		for _, n := range describeOrder(t, group) {
			t.describeNode(&b, n)
		}
		b.WriteString("\n")
	}
	for i, name := range t.globalOrder {
		g := t.globals[name]
		fmt.Fprintf(&b, "   Sub-topology: %d for global store (will not generate tasks)\n", len(groups)+i)
		t.describeNode(&b, t.nodes[g.source])
		t.describeNode(&b, t.nodes[g.processor])
		b.WriteString("\n")
	}
	return b.String()
}

func (t *Topology) describeNode(b *strings.Builder, n *Node) {
	switch n.Kind {
	case KindSource:
		fmt.Fprintf(b, "    Source: %s (topics: [%s])\n", n.Name, strings.Join(n.Source.Topics, ", "))
	case KindProcessor:
		stores := n.Stores
		if !t.globalNodes[n.Name] {
			stores = t.localStores(n.Stores)
		}
		fmt.Fprintf(b, "    Processor: %s (stores: [%s])\n", n.Name, strings.Join(stores, ", "))
	case KindSink:
		if n.Sink.Topic != "" {
			fmt.Fprintf(b, "    Sink: %s (topic: %s)\n", n.Name, n.Sink.Topic)
		} else {
			fmt.Fprintf(b, "    Sink: %s (extractor class: %T)\n", n.Name, n.Sink.TopicExtractor)
		}
	}
	if n.Kind != KindSink {
		fmt.Fprintf(b, "      --> %s\n", joinOrNone(sortedCopy(n.Children)))
	}
	if n.Kind != KindSource {
		fmt.Fprintf(b, "      <-- %s\n", joinOrNone(sortedCopy(n.Parents)))
	}
}

// localStores leaves the global stores out of stores.
func (t *Topology) localStores(stores []string) []string {
	out := stores[:0:0]
	for _, s := range stores {
		if !t.IsGlobalStore(s) {
			out = append(out, s)
		}
	}
	return out
}

// describeOrder sorts a sub-topology's nodes as Kafka Streams prints them:
// by distance from the sources, then by name.
func describeOrder(t *Topology, group []*Node) []*Node {
	depth := map[string]int{}
	var visit func(n *Node) int
	visit = func(n *Node) int {
		if d, ok := depth[n.Name]; ok {
			return d
		}
		depth[n.Name] = 0 // guards against cycles
		d := 0
		for _, p := range n.Parents {
			if pd := visit(t.nodes[p]) + 1; pd > d {
				d = pd
			}
		}
		depth[n.Name] = d
		return d
	}
	out := append([]*Node(nil), group...)
	for _, n := range out {
		visit(n)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if depth[out[i].Name] != depth[out[j].Name] {
			return depth[out[i].Name] < depth[out[j].Name]
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func joinOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
