package topology_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/internal/topology"
)

// withGlobal is in -> join -> sink(out), with join connected to the global
// store "g" read from topic "gt" (source g-src, processor g-proc).
func withGlobal(t *testing.T) *topology.Topology {
	t.Helper()
	topo := topology.New()
	must(t, topo.AddGlobalStore(topology.StoreSpec{Name: "g", Logging: true, Caching: true},
		"g-src", source("gt"), "g-proc", pass))
	must(t, topo.AddSource("src", source("in")))
	must(t, topo.AddProcessor("join", pass, "src"))
	must(t, topo.ConnectStores("join", "g"))
	must(t, topo.AddSink("out", sink("out"), "join"))
	return topo
}

func TestCompileLeavesGlobalStoresOut(t *testing.T) {
	c, err := topology.Compile(withGlobal(t), "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Subtopologies) != 1 {
		t.Fatalf("%d sub-topologies, want 1", len(c.Subtopologies))
	}
	st := c.Subtopologies[0]
	var names []string
	for _, n := range st.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"src", "join", "out"}; !reflect.DeepEqual(names, want) {
		t.Errorf("sub-topology 0 nodes %q, want %q", names, want)
	}
	if len(st.Stores) != 0 || len(st.StoreSpecs) != 0 {
		t.Errorf("sub-topology 0 stores %q, want none: the global store is not the task's", st.Stores)
	}
	if got := c.SourceTopics(); !reflect.DeepEqual(got, []string{"in"}) {
		t.Errorf("SourceTopics() = %q, want [in]: the global topic is not subscribed", got)
	}
	if _, ok := c.SubtopologyFor("gt"); ok {
		t.Error("SubtopologyFor(gt) found a sub-topology")
	}
	if len(c.InternalTopics) != 0 {
		t.Errorf("internal topics %v, want none: the global topic is the changelog", c.InternalTopics)
	}
	// The join still declares the store, so its task can hand it over.
	if got := st.Nodes[1].Stores; !reflect.DeepEqual(got, []string{"g"}) {
		t.Errorf("join's stores %q, want [g]", got)
	}
	g, ok := c.GlobalStoreFor("gt")
	if !ok || g.Store.Name != "g" || g.ID != 1 || g.Source.Name != "g-src" || g.Processor.Name != "g-proc" {
		t.Fatalf("GlobalStoreFor(gt) = %+v, %v", g, ok)
	}
	if g.Store.Logging || g.Store.Caching {
		t.Errorf("global store logs (%v) or caches (%v); want neither", g.Store.Logging, g.Store.Caching)
	}
	if got := c.GlobalTopics(); !reflect.DeepEqual(got, []string{"gt"}) {
		t.Errorf("GlobalTopics() = %q", got)
	}
	up := g.UpdateSubtopology()
	if up.ID != -1 || !reflect.DeepEqual(up.SourceTopics, []string{"gt"}) || up.Sources["gt"] != g.Source ||
		len(up.Nodes) != 2 || up.Nodes[1] != g.Processor {
		t.Errorf("UpdateSubtopology() = %+v", up)
	}
}

// Two sub-topologies reading one global store stay apart.
func TestSharedGlobalStoreJoinsNothing(t *testing.T) {
	topo := withGlobal(t)
	must(t, topo.AddSource("src2", source("in2")))
	must(t, topo.AddProcessor("join2", pass, "src2"))
	must(t, topo.ConnectStores("join2", "g"))
	c, err := topology.Compile(topo, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Subtopologies) != 2 || len(c.GlobalStores) != 1 || c.GlobalStores[0].ID != 2 {
		t.Fatalf("%d sub-topologies and global stores %+v; want 2 and one numbered 2", len(c.Subtopologies), c.GlobalStores)
	}
}

func TestAddGlobalStoreErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(topo *topology.Topology) error
		want string
	}{
		{"two topics", func(topo *topology.Topology) error {
			return topo.AddGlobalStore(topology.StoreSpec{Name: "x"}, "s", source("a", "b"), "p", pass)
		}, "exactly one topic"},
		{"window store", func(topo *topology.Topology) error {
			return topo.AddGlobalStore(topology.StoreSpec{Name: "x", Kind: topology.WindowStore}, "s", source("a"), "p", pass)
		}, "key-value"},
		{"duplicate name", func(topo *topology.Topology) error {
			return topo.AddGlobalStore(topology.StoreSpec{Name: "g"}, "s", source("a"), "p", pass)
		}, `"g" already added`},
		{"ordinary store of a global store's name", func(topo *topology.Topology) error {
			return topo.AddStore(topology.StoreSpec{Name: "g"})
		}, "already added as a global store"},
		{"topic read by a stream", func(topo *topology.Topology) error {
			return topo.AddGlobalStore(topology.StoreSpec{Name: "x"}, "s", source("in"), "p", pass)
		}, `topic "in" is already read`},
		{"child of the global processor", func(topo *topology.Topology) error {
			return topo.AddProcessor("child", pass, "g-proc")
		}, "belongs to a global store"},
		{"processor name taken", func(topo *topology.Topology) error {
			return topo.AddGlobalStore(topology.StoreSpec{Name: "x"}, "s", source("a"), "join", pass)
		}, `node "join" already added`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.add(withGlobal(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestGlobalStoreGraph(t *testing.T) {
	topo := withGlobal(t)
	g := topo.Graph()
	none := []string{}
	wantGlobal := []topology.GraphGlobalStore{{ID: 1, Store: "g", Nodes: []topology.GraphNode{
		{Name: "g-src", Kind: "source", Topics: []string{"gt"}, Successors: []string{"g-proc"}, Predecessors: none},
		{Name: "g-proc", Kind: "processor", Stores: []string{"g"}, Successors: none, Predecessors: []string{"g-src"}},
	}}}
	if !reflect.DeepEqual(g.GlobalStores, wantGlobal) {
		t.Errorf("GlobalStores =\n%+v\nwant\n%+v", g.GlobalStores, wantGlobal)
	}
	if want := []topology.GraphStore{{Name: "g", Kind: "keyvalue", Subtopology: -1, Global: true}}; !reflect.DeepEqual(g.Stores, want) {
		t.Errorf("Stores = %+v, want %+v", g.Stores, want)
	}
	if got := g.Topics; !reflect.DeepEqual(got, []topology.GraphTopic{{Name: "in"}, {Name: "out"}, {Name: "gt"}}) {
		t.Errorf("Topics = %+v", got)
	}
	const mermaid = `flowchart TB
    subgraph sub0 ["Sub-topology: 0"]
        n0("src")
        n1["join"]
        n2("out")
    end
    subgraph global1 ["Sub-topology: 1 for global store"]
        n3("g-src")
        n4["g-proc"]
        s0[("g")]
    end
    t0[/"in"/]
    t1[/"out"/]
    t2[/"gt"/]
    t0 --> n0
    n0 --> n1
    n1 --> n2
    n1 -.-> s0
    n2 --> t1
    t2 --> n3
    n3 --> n4
    n4 -.-> s0
`
	if got := g.Mermaid(); got != mermaid {
		t.Errorf("Mermaid() =\n%s\nwant\n%s", got, mermaid)
	}
	if dot := g.DOT(); !strings.Contains(dot, "subgraph cluster_global_1 {") || !strings.Contains(dot, `s0 [label="g", shape=cylinder];`) {
		t.Errorf("DOT() has no global store cluster:\n%s", dot)
	}
}
