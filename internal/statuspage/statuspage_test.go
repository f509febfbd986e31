package statuspage

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/internal/topology"
)

func node(name, kind string, topics, stores, succ, pred []string) topology.GraphNode {
	if succ == nil {
		succ = []string{}
	}
	if pred == nil {
		pred = []string{}
	}
	return topology.GraphNode{Name: name, Kind: kind, Topics: topics, Stores: stores, Successors: succ, Predecessors: pred}
}

func list(s ...string) []string { return s }

// sample has two sub-topologies joined by a repartition topic, a branch,
// a store two processors share, a store nobody uses, a sink with a topic
// extractor, a topic written by the later sub-topology and read by the
// first, and names that need escaping.
func sample() topology.Graph {
	return topology.Graph{
		Subtopologies: []topology.GraphSubtopology{
			{ID: 0, Nodes: []topology.GraphNode{
				node("src", "source", list("in", "loop"), nil, list("split <&>"), nil),
				node("split <&>", "processor", nil, nil, list("a", "b"), list("src")),
				node("a", "processor", nil, list("shared"), list("rep-sink"), list("split <&>")),
				node("b", "processor", nil, list("shared"), list("routed"), list("split <&>")),
				node("rep-sink", "sink", list("rep"), nil, nil, list("a")),
				{Name: "routed", Kind: "sink", TopicExtractor: true, Successors: []string{}, Predecessors: list("b")},
			}},
			{ID: 1, Nodes: []topology.GraphNode{
				node("rep-src", "source", list("rep"), nil, list(`count "x"`), nil),
				node(`count "x"`, "processor", nil, list("counts"), list("out-sink", "loop-sink"), list("rep-src")),
				node("loop-sink", "sink", list("loop"), nil, nil, list(`count "x"`)),
				node("out-sink", "sink", list("out"), nil, nil, list(`count "x"`)),
			}},
		},
		Topics: []topology.GraphTopic{{Name: "in"}, {Name: "loop"}, {Name: "rep", Internal: true}, {Name: "out"}},
		Stores: []topology.GraphStore{
			{Name: "shared", Kind: "keyvalue", Subtopology: 0, Changelog: "shared-changelog"},
			{Name: "counts", Kind: "keyvalue", Subtopology: 1, InMemory: true},
			{Name: "unused", Kind: "window", Subtopology: -1},
		},
	}
}

// drawn parses the SVG and returns the data-name of each <g> by class.
func drawn(t *testing.T, svg string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			var class, name string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "class":
					class = a.Value
				case "data-name":
					name = a.Value
				}
			}
			out[class] = append(out[class], name)
		}
	}
}

func TestSVGDrawsEveryNodeTopicAndStore(t *testing.T) {
	g := sample()
	got := drawn(t, SVG(g))
	want := map[string][]string{
		"node source":    list("src", "rep-src"),
		"node processor": list("split <&>", "a", "b", `count "x"`),
		"node sink":      list("rep-sink", "routed", "loop-sink", "out-sink"),
		"topic":          list("in", "loop", "rep", "out"),
		"store":          list("shared", "counts", "unused"),
		"subtopology":    list("", ""),
	}
	for class, names := range want {
		if !sameSet(got[class], names) {
			t.Errorf("<g class=%q>: %q, want %q", class, got[class], names)
		}
	}
	if len(got) != len(want) {
		t.Errorf("classes drawn: %v", got)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// No two boxes overlap, every box is inside the picture, and each node and
// store inside its sub-topology's frame, topics outside every frame.
func TestLayoutKeepsBoxesApart(t *testing.T) {
	l := build(sample())
	var all []*item
	for r, row := range l.rows {
		for _, it := range row {
			if it.row != r {
				t.Errorf("%q is in row %d but says %d", it.name, r, it.row)
			}
			if it.x < margin || it.x+it.w > l.width-margin || it.y < margin || it.y+itemHeight > l.height-margin {
				t.Errorf("%q at (%.0f,%.0f) w %.0f is outside the %.0fx%.0f picture", it.name, it.x, it.y, it.w, l.width, l.height)
			}
			all = append(all, it)
		}
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if a.y < b.y+itemHeight && b.y < a.y+itemHeight && a.x < b.x+b.w && b.x < a.x+a.w {
				t.Errorf("%q and %q overlap", a.name, b.name)
			}
		}
	}
	inside := func(it *item, c cluster) bool { return it.y >= c.top && it.y+itemHeight <= c.bottom }
	subOf := map[string]int{}
	for _, st := range sample().Subtopologies {
		for _, n := range st.Nodes {
			subOf[n.Name] = st.ID
		}
	}
	subOf["shared"], subOf["counts"] = 0, 1
	for _, it := range all {
		switch {
		case it.kind == waypoint:
		case it.kind == topic || it.name == "unused":
			for _, c := range l.clusters {
				if inside(it, c) {
					t.Errorf("%q is inside sub-topology %d's frame", it.name, c.id)
				}
			}
		default:
			if c := l.clusters[subOf[it.name]]; !inside(it, c) {
				t.Errorf("%q (y %.0f) is outside sub-topology %d's frame (%.0f to %.0f)", it.name, it.y, c.id, c.top, c.bottom)
			}
		}
	}
	// The repartition topic sits between the two frames.
	rep := all[0]
	for _, it := range all {
		if it.name == "rep" && it.kind == topic {
			rep = it
		}
	}
	if !(rep.y > l.clusters[0].bottom && rep.y+itemHeight < l.clusters[1].top) {
		t.Errorf("topic rep at y %.0f is not between the frames %+v", rep.y, l.clusters)
	}
}

func TestRestorePercent(t *testing.T) {
	for _, tc := range []struct {
		r    Restore
		want int
	}{
		{Restore{Position: 0, End: 200}, 0},
		{Restore{Position: 50, End: 200}, 25},
		{Restore{Position: 250, End: 200}, 100},
		{Restore{Position: 0, End: 0}, 100},
		{Restore{Position: 10, End: 200, Done: true}, 100},
	} {
		if got := tc.r.Percent(); got != tc.want {
			t.Errorf("%+v.Percent() = %d, want %d", tc.r, got, tc.want)
		}
	}
}

func TestRender(t *testing.T) {
	r := NewRenderer(sample())
	p := Page{
		ApplicationID: "app<1>", ProcessID: "host-1", Endpoint: "10.0.0.1:8080", State: "RUNNING", Guarantee: "at_least_once",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Tasks: []Task{
			{ID: "0_0", Owner: "10.0.0.1:8080", Local: true, State: "running", Partitions: list("in-0", "loop-0")},
			{ID: "0_1", Owner: "10.0.0.2:8080", OwnerURL: "http://10.0.0.2:8080/"},
			{ID: "1_0", Owner: "10.0.0.1:8080", Local: true, State: "restoring",
				Restores: []Restore{{Store: "counts", Position: 30, End: 120, Restored: 28}}},
			{ID: "1_0", Standby: true, Owner: "10.0.0.1:8080", Local: true, State: "standby", Lag: 7},
		},
		Stores: []Store{{Name: "counts", Kind: "keyvalue", Changelog: "app-counts-changelog"}},
	}
	var b strings.Builder
	if err := r.Render(&b, p); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, w := range []string{
		"<title>app&lt;1&gt; · kstreams</title>",
		`<section id="live">`,
		`<svg xmlns="http://www.w3.org/2000/svg"`,
		`<g class="node processor" data-name="split &lt;&amp;&gt;">`,
		`<tr data-task="0_0" class="local">`,
		"<td>in-0, loop-0</td>",
		`<a href="http://10.0.0.2:8080/">10.0.0.2:8080</a>`,
		`<span class="ts ts-restoring">restoring</span>`,
		`counts <progress max="100" value="25"></progress> 25%`,
		"<td>7</td>",
		"<td>app-counts-changelog</td>",
		"as of 03:04:05",
	} {
		if !strings.Contains(page, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
	b.Reset()
	if err := r.RenderLive(&b, p); err != nil {
		t.Fatal(err)
	}
	if live := b.String(); strings.Contains(live, "<svg") || strings.Contains(live, "<html") || !strings.Contains(live, `<tr data-task="1_0" class="local">`) {
		t.Errorf("RenderLive: want the tasks without the page around them, got\n%s", live)
	}
}

func TestSVGOfAnEmptyTopology(t *testing.T) {
	svg := SVG(topology.Graph{})
	if got := drawn(t, svg); len(got) != 0 || !strings.Contains(svg, `width="52" height="24"`) {
		t.Errorf("SVG of an empty graph = %s", svg)
	}
}
