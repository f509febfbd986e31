package topology_test

import (
	"bytes"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

// longWordCounts is a source, a filter, a grouped count (a repartition
// and the store "counts") and a sink.
func longWordCounts(t *testing.T) *topology.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	words := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), "words")
	long := words.Filter(func(_, w string) bool { return len(w) > 3 })
	counts := kstream.Count(kstream.GroupBy(long, func(_, w string) string { return w }), kstream.MaterializedAs[string, int64]("counts"))
	counts.ToStream().To("word-counts", kstream.ProducedWith(serde.String(), serde.Int64()))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestGraph(t *testing.T) {
	none := []string{}
	want := topology.Graph{
		Subtopologies: []topology.GraphSubtopology{
			{ID: 0, Nodes: []topology.GraphNode{
				{Name: "KSTREAM-SOURCE-0000000000", Kind: "source", Topics: []string{"words"},
					Successors: []string{"KSTREAM-FILTER-0000000001"}, Predecessors: none},
				{Name: "KSTREAM-FILTER-0000000001", Kind: "processor",
					Successors: []string{"KSTREAM-KEY-SELECT-0000000002"}, Predecessors: []string{"KSTREAM-SOURCE-0000000000"}},
				{Name: "KSTREAM-KEY-SELECT-0000000002", Kind: "processor",
					Successors: []string{"counts-repartition-filter"}, Predecessors: []string{"KSTREAM-FILTER-0000000001"}},
				{Name: "counts-repartition-filter", Kind: "processor",
					Successors: []string{"counts-repartition-sink"}, Predecessors: []string{"KSTREAM-KEY-SELECT-0000000002"}},
				{Name: "counts-repartition-sink", Kind: "sink", Topics: []string{"counts-repartition"},
					Successors: none, Predecessors: []string{"counts-repartition-filter"}},
			}},
			{ID: 1, Nodes: []topology.GraphNode{
				{Name: "counts-repartition-source", Kind: "source", Topics: []string{"counts-repartition"},
					Successors: []string{"KSTREAM-AGGREGATE-0000000003"}, Predecessors: none},
				{Name: "KSTREAM-AGGREGATE-0000000003", Kind: "processor", Stores: []string{"counts"},
					Successors: []string{"KTABLE-TOSTREAM-0000000007"}, Predecessors: []string{"counts-repartition-source"}},
				{Name: "KTABLE-TOSTREAM-0000000007", Kind: "processor",
					Successors: []string{"KSTREAM-SINK-0000000008"}, Predecessors: []string{"KSTREAM-AGGREGATE-0000000003"}},
				{Name: "KSTREAM-SINK-0000000008", Kind: "sink", Topics: []string{"word-counts"},
					Successors: none, Predecessors: []string{"KTABLE-TOSTREAM-0000000007"}},
			}},
		},
		Topics: []topology.GraphTopic{{Name: "words"}, {Name: "counts-repartition", Internal: true}, {Name: "word-counts"}},
		Stores: []topology.GraphStore{{Name: "counts", Kind: "keyvalue", Subtopology: 1, Changelog: "counts-changelog"}},
	}
	if got := longWordCounts(t).Graph(); !reflect.DeepEqual(got, want) {
		t.Errorf("Graph() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestMermaid(t *testing.T) {
	const want = `flowchart TB
    subgraph sub0 ["Sub-topology: 0"]
        n0("KSTREAM-SOURCE-0000000000")
        n1["KSTREAM-FILTER-0000000001"]
        n2["KSTREAM-KEY-SELECT-0000000002"]
        n3["counts-repartition-filter"]
        n4("counts-repartition-sink")
    end
    subgraph sub1 ["Sub-topology: 1"]
        n5("counts-repartition-source")
        n6["KSTREAM-AGGREGATE-0000000003"]
        n7["KTABLE-TOSTREAM-0000000007"]
        n8("KSTREAM-SINK-0000000008")
        s0[("counts")]
    end
    t0[/"words"/]
    t1[/"counts-repartition"/]
    t2[/"word-counts"/]
    t0 --> n0
    n0 --> n1
    n1 --> n2
    n2 --> n3
    n3 --> n4
    n4 --> t1
    t1 --> n5
    n5 --> n6
    n6 --> n7
    n6 -.-> s0
    n7 --> n8
    n8 --> t2
`
	if got := longWordCounts(t).Mermaid(); got != want {
		t.Errorf("Mermaid() =\n%s\nwant\n%s", got, want)
	}
}

func TestDOT(t *testing.T) {
	const want = `digraph topology {
    fontname="Helvetica";
    node [fontname="Helvetica", fontsize=11];
    subgraph cluster_0 {
        label="Sub-topology: 0";
        n0 [label="KSTREAM-SOURCE-0000000000", shape=box, style=rounded];
        n1 [label="KSTREAM-FILTER-0000000001", shape=box];
        n2 [label="KSTREAM-KEY-SELECT-0000000002", shape=box];
        n3 [label="counts-repartition-filter", shape=box];
        n4 [label="counts-repartition-sink", shape=box, style=rounded];
    }
    subgraph cluster_1 {
        label="Sub-topology: 1";
        n5 [label="counts-repartition-source", shape=box, style=rounded];
        n6 [label="KSTREAM-AGGREGATE-0000000003", shape=box];
        n7 [label="KTABLE-TOSTREAM-0000000007", shape=box];
        n8 [label="KSTREAM-SINK-0000000008", shape=box, style=rounded];
        s0 [label="counts", shape=cylinder];
    }
    t0 [label="words", shape=parallelogram];
    t1 [label="counts-repartition", shape=parallelogram];
    t2 [label="word-counts", shape=parallelogram];
    t0 -> n0;
    n0 -> n1;
    n1 -> n2;
    n2 -> n3;
    n3 -> n4;
    n4 -> t1;
    t1 -> n5;
    n5 -> n6;
    n6 -> n7;
    n6 -> s0 [style=dashed];
    n7 -> n8;
    n8 -> t2;
}
`
	if got := longWordCounts(t).DOT(); got != want {
		t.Errorf("DOT() =\n%s\nwant\n%s", got, want)
	}
}

// oddNames has names Mermaid and DOT must escape, a sink with a topic
// extractor, a store shared by two processors, a store nobody uses, and
// a topic that is both a node's and a store's name.
func oddNames(t *testing.T) *topology.Topology {
	t.Helper()
	topo := topology.New()
	must(t, topo.AddSource(`src "a"`, source(`in#1`, "in<2>")))
	must(t, topo.AddProcessor(`p\1`, pass, `src "a"`))
	must(t, topo.AddProcessor("p & 2", pass, `src "a"`))
	must(t, topo.AddStore(topology.StoreSpec{Name: "shared", Logging: true}, `p\1`, "p & 2"))
	must(t, topo.AddStore(topology.StoreSpec{Name: "unused", InMemory: true}))
	must(t, topo.AddSink("shared", sink("shared"), `p\1`))
	must(t, topo.AddSink("routed", topology.SinkSpec{
		TopicExtractor: func(_, _ any, _ topology.Metadata) string { return "x" },
		KeySerializer:  ser, ValueSerializer: ser,
	}, "p & 2"))
	return topo
}

// describedNodes are the node names Describe prints.
func describedNodes(d string) []string {
	re := regexp.MustCompile(`(?m)^    (?:Source|Processor|Sink): (.*) \((?:topics|stores|topic|extractor class): `)
	var out []string
	for _, m := range re.FindAllStringSubmatch(d, -1) {
		out = append(out, m[1])
	}
	return out
}

// Every node Describe prints is in the Graph, under the same sub-topology,
// and labels a node of the Mermaid and DOT pictures.
func TestGraphHasEveryDescribedNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		topo *topology.Topology
	}{
		{"long word counts", longWordCounts(t)},
		{"repartitioned", repartitioned(t, 0)},
		{"odd names", oddNames(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.topo.Graph()
			sub := map[string]int{}
			for _, st := range g.Subtopologies {
				for _, n := range st.Nodes {
					sub[n.Name] = st.ID
				}
			}
			described := describedNodes(tc.topo.Describe())
			if len(described) == 0 || len(described) != len(sub) {
				t.Fatalf("Describe prints %d nodes %q, Graph has %d", len(described), described, len(sub))
			}
			mermaid, dot := tc.topo.Mermaid(), tc.topo.DOT()
			for _, name := range described {
				if _, ok := sub[name]; !ok {
					t.Errorf("node %q is not in Graph()", name)
				}
				if !strings.Contains(mermaid, mermaidLabel(name)) {
					t.Errorf("node %q (label %s) is not in Mermaid():\n%s", name, mermaidLabel(name), mermaid)
				}
				if !strings.Contains(dot, "[label="+dotLabel(name)+", shape=box") {
					t.Errorf("node %q (label %s) is not in DOT():\n%s", name, dotLabel(name), dot)
				}
			}
		})
	}
}

func mermaidLabel(s string) string {
	return `"` + strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "&", "#amp;").Replace(s) + `"`
}

func dotLabel(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func TestGraphOddNames(t *testing.T) {
	g := oddNames(t).Graph()
	want := []topology.GraphStore{
		{Name: "shared", Kind: "keyvalue", Subtopology: 0, Changelog: "shared-changelog"},
		{Name: "unused", Kind: "keyvalue", Subtopology: -1, InMemory: true},
	}
	if !reflect.DeepEqual(g.Stores, want) {
		t.Errorf("Stores = %+v, want %+v", g.Stores, want)
	}
	wantTopics := []topology.GraphTopic{{Name: "in#1"}, {Name: "in<2>"}, {Name: "shared"}}
	if !reflect.DeepEqual(g.Topics, wantTopics) {
		t.Errorf("Topics = %+v, want %+v", g.Topics, wantTopics)
	}
	// Describe's order: by depth, then name.
	routed := g.Subtopologies[0].Nodes[3]
	if routed.Name != "routed" || routed.Kind != "sink" || !routed.TopicExtractor || routed.Topics != nil {
		t.Errorf("node 3 = %+v, want the sink routed with a topic extractor and no topic", routed)
	}
	m := g.Mermaid()
	for _, line := range []string{
		`n0("src #quot;a#quot;")`,
		`n1["p #amp; 2"]`,
		`t1[/"in#lt;2#gt;"/]`,
		`t0[/"in#35;1"/]`,
		`s0[("shared")]`,
		"    s1[(\"unused\")]\n", // outside the sub-topology
		"n1 -.-> s0",
		"n2 -.-> s0",
		"n4 --> t2", // the sink "shared" writes the topic "shared"
	} {
		if !strings.Contains(m, line) {
			t.Errorf("Mermaid() lacks %q:\n%s", line, m)
		}
	}
	d := g.DOT()
	for _, line := range []string{
		`n0 [label="src \"a\"", shape=box, style=rounded];`,
		`n2 [label="p\\1", shape=box];`,
		"    s1 [label=\"unused\", shape=cylinder];\n",
		"n2 -> s0 [style=dashed];",
	} {
		if !strings.Contains(d, line) {
			t.Errorf("DOT() lacks %q:\n%s", line, d)
		}
	}
}

// TestDOTParsesWithGraphviz runs Graphviz on the DOT output when it is
// installed (apt-get install graphviz); CI does not install it.
func TestDOTParsesWithGraphviz(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("Graphviz's dot is not installed; the DOT output is checked by the exact-output test only")
	}
	for name, topo := range map[string]*topology.Topology{"long word counts": longWordCounts(t), "odd names": oddNames(t)} {
		cmd := exec.Command(dot, "-Tsvg")
		cmd.Stdin = strings.NewReader(topo.DOT())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || !bytes.Contains(out, []byte("<svg")) {
			t.Errorf("%s: dot -Tsvg: %v %s", name, err, stderr.Bytes())
		}
	}
}
