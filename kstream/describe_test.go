package kstream_test

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/kstream"
)

func diffLines(t *testing.T, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("line %d:\n got  %q\n want %q", i+1, gl, wl)
			break
		}
	}
	t.Errorf("Describe() =\n%s\nwant\n%s", got, want)
}

// splitTopology is input -> filter -> split into two branches and a
// default, each to its own topic, plus filter -> repartition -> mapValues
// -> out-r. filter names the filter (generated when empty).
func splitTopology(t *testing.T, filter string) *kstream.Topology {
	b := kstream.NewBuilder()
	var named []kstream.Named
	if filter != "" {
		named = append(named, kstream.Named(filter))
	}
	f := kstream.Stream(b, strStr, "input").Filter(func(k, v string) bool { return v != "" }, named...)
	br := f.Split().
		Branch(hasPrefix("a")).
		Branch(hasPrefix("b")).
		DefaultBranch()
	br["KSTREAM-BRANCH-00000000021"].To("out-1")
	br["KSTREAM-BRANCH-00000000022"].To("out-2")
	br["KSTREAM-BRANCH-00000000020"].To("out-default")
	kstream.MapValues(f.Repartition(), strings.ToUpper).To("out-r")
	return build(t, b)
}

func TestDescribe(t *testing.T) {
	const want = `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000001 (stores: [])
      --> KSTREAM-BRANCH-0000000002, KSTREAM-FILTER-0000000008
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-BRANCH-0000000002 (stores: [])
      --> KSTREAM-BRANCH-00000000020, KSTREAM-BRANCH-00000000021, KSTREAM-BRANCH-00000000022
      <-- KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000008 (stores: [])
      --> KSTREAM-SINK-0000000007
      <-- KSTREAM-FILTER-0000000001
    Processor: KSTREAM-BRANCH-00000000020 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KSTREAM-BRANCH-0000000002
    Processor: KSTREAM-BRANCH-00000000021 (stores: [])
      --> KSTREAM-SINK-0000000003
      <-- KSTREAM-BRANCH-0000000002
    Processor: KSTREAM-BRANCH-00000000022 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-BRANCH-0000000002
    Sink: KSTREAM-SINK-0000000007 (topic: KSTREAM-REPARTITION-0000000006-repartition)
      <-- KSTREAM-FILTER-0000000008
    Sink: KSTREAM-SINK-0000000003 (topic: out-1)
      <-- KSTREAM-BRANCH-00000000021
    Sink: KSTREAM-SINK-0000000004 (topic: out-2)
      <-- KSTREAM-BRANCH-00000000022
    Sink: KSTREAM-SINK-0000000005 (topic: out-default)
      <-- KSTREAM-BRANCH-00000000020

   Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000009 (topics: [KSTREAM-REPARTITION-0000000006-repartition])
      --> KSTREAM-MAPVALUES-0000000010
    Processor: KSTREAM-MAPVALUES-0000000010 (stores: [])
      --> KSTREAM-SINK-0000000011
      <-- KSTREAM-SOURCE-0000000009
    Sink: KSTREAM-SINK-0000000011 (topic: out-r)
      <-- KSTREAM-MAPVALUES-0000000010

`
	diffLines(t, splitTopology(t, "").Describe(), want)
}

func TestDescribeUserNames(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr.WithName("orders-source"), "orders", "returns")
	br := s.Split(kstream.Named("route-")).
		Branch(hasPrefix("big"), kstream.Named("big")).
		NoDefaultBranch()
	br["route-big"].To("big-orders", kstream.Produced[string, string]{}.WithName("big-sink"))
	kstream.Process(s, supply(&strProc{}), kstream.Named("audit"))
	kstream.Stores(b, "audit", "audit-store")
	s.ToTopicFunc(func(k, v string, _ kstream.RecordMetadata) string { return k }, kstream.Produced[string, string]{Name: "dynamic"})

	const want = `Topologies:
   Sub-topology: 0
    Source: orders-source (topics: [orders, returns])
      --> audit, dynamic, route-
    Processor: audit (stores: [audit-store])
      --> none
      <-- orders-source
    Sink: dynamic (extractor class: topology.TopicNameExtractor)
      <-- orders-source
    Processor: route- (stores: [])
      --> route-big
      <-- orders-source
    Processor: route-big (stores: [])
      --> big-sink
      <-- route-
    Sink: big-sink (topic: big-orders)
      <-- route-big

`
	diffLines(t, build(t, b).Describe(), want)
}

var generatedName = regexp.MustCompile(`^KSTREAM-[A-Z]+(?:-[A-Z]+)*-(\d{10})$`)

// TestGeneratedNames checks that every generated name is
// KSTREAM-<OP>-<10-digit index>, that indexes grow in the order operators
// were added, and that naming one operator leaves every other name as it
// was (its index is consumed all the same).
func TestGeneratedNames(t *testing.T) {
	names := func(topo *kstream.Topology) []string {
		var out []string
		for _, n := range topo.Nodes() {
			out = append(out, n.Name)
		}
		return out
	}
	generated := names(splitTopology(t, ""))
	last := -1
	var ops []string
	for _, n := range generated {
		m := generatedName.FindStringSubmatch(n)
		if m == nil {
			continue // branch children and repartition nodes derive from a generated name
		}
		i, _ := strconv.Atoi(m[1])
		if i == last {
			t.Errorf("%s: index %d used twice", n, i)
		}
		last = i
		ops = append(ops, n)
	}
	// A repartition burns its indexes in Kafka Streams' order (sink,
	// filter, source) but adds the filter before the sink, so sort by index.
	sort.Slice(ops, func(i, j int) bool { return ops[i][len(ops[i])-10:] < ops[j][len(ops[j])-10:] })
	wantOps := []string{
		"KSTREAM-SOURCE-0000000000",
		"KSTREAM-FILTER-0000000001",
		"KSTREAM-BRANCH-0000000002",
		"KSTREAM-SINK-0000000003",
		"KSTREAM-SINK-0000000004",
		"KSTREAM-SINK-0000000005",
		"KSTREAM-SINK-0000000007",
		"KSTREAM-FILTER-0000000008",
		"KSTREAM-SOURCE-0000000009",
		"KSTREAM-MAPVALUES-0000000010",
		"KSTREAM-SINK-0000000011",
	}
	if fmt.Sprint(ops) != fmt.Sprint(wantOps) {
		t.Errorf("generated names in order:\n %q\nwant\n %q", ops, wantOps)
	}

	named := names(splitTopology(t, "valid-only"))
	if len(named) != len(generated) {
		t.Fatalf("naming the filter changed the node count: %d, want %d", len(named), len(generated))
	}
	for i := range generated {
		want := generated[i]
		if want == "KSTREAM-FILTER-0000000001" {
			want = "valid-only"
		}
		if named[i] != want {
			t.Errorf("node %d = %q, want %q", i, named[i], want)
		}
	}
}

func TestDescribeSubtopologySplitAtRepartition(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr, "in")
	s.Repartition(kstream.Repartitioned[string, string]{Name: "first"}).
		Repartition(kstream.Repartitioned[string, string]{Name: "second"}).
		To("out")
	got := build(t, b).Describe()
	for i, sub := range []string{
		"   Sub-topology: 0\n    Source: KSTREAM-SOURCE-0000000000 (topics: [in])\n      --> first-repartition-filter\n",
		"    Processor: first-repartition-filter (stores: [])\n      --> first-repartition-sink\n",
		"   Sub-topology: 1\n    Source: first-repartition-source (topics: [first-repartition])\n      --> second-repartition-filter\n",
		"   Sub-topology: 2\n    Source: second-repartition-source (topics: [second-repartition])\n      --> KSTREAM-SINK-0000000009\n",
	} {
		if !strings.Contains(got, sub) {
			t.Errorf("sub-topology %d missing or different; want\n%s\nin\n%s", i, sub, got)
		}
	}
	if n := strings.Count(got, "Sub-topology:"); n != 3 {
		t.Errorf("%d sub-topologies, want 3:\n%s", n, got)
	}
}
