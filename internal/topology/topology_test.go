package topology_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/internal/topology"
)

func de(_ string, b []byte) (any, error) { return b, nil }
func ser(_ string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return v.([]byte), nil
}

func source(topics ...string) topology.SourceSpec {
	return topology.SourceSpec{Topics: topics, KeyDeserializer: de, ValueDeserializer: de}
}

func sink(topic string) topology.SinkSpec {
	return topology.SinkSpec{Topic: topic, KeySerializer: ser, ValueSerializer: ser}
}

var pass = topology.Funcs(func(ctx topology.Context, r topology.Record) error { ctx.Forward(r); return nil })

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// repartitioned is in -> p -> sink(rep); rep -> sink(out), with rep an
// internal topic of the given partition count (0: resolved).
func repartitioned(t *testing.T, partitions int32) *topology.Topology {
	t.Helper()
	topo := topology.New()
	must(t, topo.AddSource("src", source("in")))
	must(t, topo.AddProcessor("p", pass, "src"))
	must(t, topo.AddInternalTopic(topology.InternalTopic{Name: "rep", Partitions: partitions, Config: map[string]string{"cleanup.policy": "delete"}}))
	must(t, topo.AddSink("rep-sink", sink("rep"), "p"))
	must(t, topo.AddSource("rep-src", source("rep")))
	must(t, topo.AddSink("out-sink", sink("out"), "rep-src"))
	return topo
}

func TestCompileResolvesInternalTopics(t *testing.T) {
	topo := repartitioned(t, 0)
	c, err := topology.Compile(topo, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Subtopologies) != 2 {
		t.Fatalf("%d sub-topologies, want 2", len(c.Subtopologies))
	}
	st0, st1 := c.Subtopologies[0], c.Subtopologies[1]
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("sub 0 sources", st0.SourceTopics, []string{"in"})
	check("sub 0 sinks", st0.SinkTopics, []string{"app-rep"})
	check("sub 1 sources", st1.SourceTopics, []string{"app-rep"})
	check("sub 1 sinks", st1.SinkTopics, []string{"out"})
	check("sub 1 source node", st1.Sources["app-rep"].Name, "rep-src")
	check("compiled source spec", st1.Sources["app-rep"].Source.Topics, []string{"app-rep"})
	check("internal topics", c.InternalTopics, []topology.InternalTopic{{Name: "app-rep", Config: map[string]string{"cleanup.policy": "delete"}}})
	check("all source topics", c.SourceTopics(), []string{"app-rep", "in"})
	check("IsInternal(app-rep)", c.IsInternal("app-rep"), true)
	check("IsInternal(rep)", c.IsInternal("rep"), false)
	check("IsInternal(in)", c.IsInternal("in"), false)
	if st, ok := c.SubtopologyFor("app-rep"); !ok || st.ID != 1 {
		t.Errorf("SubtopologyFor(app-rep) = %v, %v; want sub-topology 1", st, ok)
	}
	if _, ok := c.SubtopologyFor("rep"); ok {
		t.Error("SubtopologyFor(rep) found the unprefixed name")
	}

	// The topology is not modified: it compiles again under another id.
	check("topology sink topic", topo.Node("rep-sink").Sink.Topic, "rep")
	check("topology source topics", topo.Node("rep-src").Source.Topics, []string{"rep"})
	c2, err := topology.Compile(topo, "other")
	if err != nil {
		t.Fatal(err)
	}
	check("recompiled sinks", c2.Subtopologies[0].SinkTopics, []string{"other-rep"})
	check("first compile kept", st0.SinkTopics, []string{"app-rep"})

	// Without an application id names stay as declared.
	c3, err := topology.Compile(topo, "")
	if err != nil {
		t.Fatal(err)
	}
	check("no app id", c3.SourceTopics(), []string{"in", "rep"})
}

func TestResolvePartitions(t *testing.T) {
	// in(4) -> r1(0) -> r2(0); x(3) + y(6) -> r3(0); fixed(2) stays 2, and
	// r3, read with it, takes its count (Kafka's CopartitionedTopicsEnforcer).
	topo := topology.New()
	must(t, topo.AddSource("in", source("in")))
	must(t, topo.AddSink("to-r1", sink("r1"), "in"))
	must(t, topo.AddSource("r1", source("r1")))
	must(t, topo.AddSink("to-r2", sink("r2"), "r1"))
	must(t, topo.AddSink("to-fixed", sink("fixed"), "r1"))
	must(t, topo.AddSource("r2", source("r2")))
	must(t, topo.AddSink("r2-out", sink("out"), "r2"))
	must(t, topo.AddSource("xy", source("x", "y")))
	must(t, topo.AddSink("to-r3", sink("r3"), "xy"))
	must(t, topo.AddSource("r3", source("r3")))
	must(t, topo.AddSource("fixed", source("fixed")))
	must(t, topo.AddProcessor("join", pass, "r3", "fixed"))
	// Declared out of dependency order so resolution needs several passes.
	for _, it := range []topology.InternalTopic{{Name: "r2"}, {Name: "r1"}, {Name: "r3"}, {Name: "fixed", Partitions: 2}} {
		must(t, topo.AddInternalTopic(it))
	}
	c, err := topology.Compile(topo, "app")
	if err != nil {
		t.Fatal(err)
	}
	external := map[string]int32{"in": 4, "x": 3, "y": 6, "out": 1}
	lookup := func(topic string) (int32, bool) { n, ok := external[topic]; return n, ok }
	if err := c.ResolvePartitions(lookup); err != nil {
		t.Fatal(err)
	}
	got := map[string]int32{}
	for _, it := range c.InternalTopics {
		got[it.Name] = it.Partitions
	}
	want := map[string]int32{"app-r1": 4, "app-r2": 4, "app-r3": 2, "app-fixed": 2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}

	// Only x(3) and y(6), read together, are not co-partitioned.
	_, err = c.CheckCopartitioning(lookup)
	if err == nil || !strings.Contains(err.Error(), "sub-topology 3: source topics are not co-partitioned: x has 3 partitions, y has 6;") {
		t.Fatalf("CheckCopartitioning = %v, want an error for x (3) and y (6)", err)
	}
}

func TestResolvePartitionsUnknown(t *testing.T) {
	c, err := topology.Compile(repartitioned(t, 0), "app")
	if err != nil {
		t.Fatal(err)
	}
	err = c.ResolvePartitions(func(string) (int32, bool) { return 0, false })
	if err == nil || !strings.Contains(err.Error(), `"app-rep"`) {
		t.Fatalf("ResolvePartitions with no known topics = %v, want an error naming app-rep", err)
	}
}

func TestCheckCopartitioning(t *testing.T) {
	topo := repartitioned(t, 0)
	must(t, topo.AddSource("more", source("more")))
	must(t, topo.AddProcessor("merge", pass, "src", "more"))
	c, err := topology.Compile(topo, "app")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ok", func(t *testing.T) {
		c, err := topology.Compile(topo, "app")
		if err != nil {
			t.Fatal(err)
		}
		lookup := func(topic string) (int32, bool) { return 5, topic == "in" || topic == "more" }
		must(t, c.ResolvePartitions(lookup))
		got, err := c.CheckCopartitioning(lookup)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[int]int32{0: 5, 1: 5}; !reflect.DeepEqual(got, want) {
			t.Errorf("CheckCopartitioning = %v, want %v", got, want)
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		counts := map[string]int32{"in": 3, "more": 4, "app-rep": 4}
		_, err := c.CheckCopartitioning(func(topic string) (int32, bool) { n, ok := counts[topic]; return n, ok })
		if err == nil {
			t.Fatal("want an error")
		}
		for _, s := range []string{"sub-topology 0", "in has 3 partitions", "more has 4"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	})
	t.Run("missing topic", func(t *testing.T) {
		_, err := c.CheckCopartitioning(func(topic string) (int32, bool) { return 1, topic == "in" })
		if err == nil || !strings.Contains(err.Error(), `source topic "more" of sub-topology 0 does not exist`) {
			t.Fatalf("CheckCopartitioning = %v, want an error naming the missing topic", err)
		}
	})
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		add  func(topo *topology.Topology) error
		want string
	}{
		{"source reads a topic read by another", func(topo *topology.Topology) error {
			return topo.AddSource("src2", source("other", "in"))
		}, `source "src2": topic "in" is already read by source "src"`},
		{"source without topics", func(topo *topology.Topology) error {
			return topo.AddSource("src2", source())
		}, `source "src2": no topics`},
		{"source without deserializers", func(topo *topology.Topology) error {
			return topo.AddSource("src2", topology.SourceSpec{Topics: []string{"x"}})
		}, "deserializers are required"},
		{"duplicate node name", func(topo *topology.Topology) error {
			return topo.AddProcessor("src", pass, "src")
		}, `node "src" already added`},
		{"empty node name", func(topo *topology.Topology) error {
			return topo.AddProcessor("", pass, "src")
		}, "name must not be empty"},
		{"unknown parent", func(topo *topology.Topology) error {
			return topo.AddProcessor("p", pass, "nope")
		}, `parent "nope" not found`},
		{"processor without parent", func(topo *topology.Topology) error {
			return topo.AddProcessor("p", pass)
		}, "needs at least one parent"},
		{"nil supplier", func(topo *topology.Topology) error {
			return topo.AddProcessor("p", nil, "src")
		}, "nil supplier"},
		{"sink as parent", func(topo *topology.Topology) error {
			must(t, topo.AddSink("snk", sink("out"), "src"))
			return topo.AddProcessor("p", pass, "snk")
		}, `parent "snk" is a sink`},
		{"sink with topic and extractor", func(topo *topology.Topology) error {
			spec := sink("out")
			spec.TopicExtractor = func(any, any, topology.Metadata) string { return "x" }
			return topo.AddSink("snk", spec, "src")
		}, `sink "snk": set exactly one of a topic and a topic extractor`},
		{"sink with neither topic nor extractor", func(topo *topology.Topology) error {
			return topo.AddSink("snk", sink(""), "src")
		}, `sink "snk": set exactly one of a topic and a topic extractor`},
		{"sink without serializers", func(topo *topology.Topology) error {
			return topo.AddSink("snk", topology.SinkSpec{Topic: "out"}, "src")
		}, "serializers are required"},
		{"sink without parent", func(topo *topology.Topology) error {
			return topo.AddSink("snk", sink("out"))
		}, "needs at least one parent"},
		{"stores on a source", func(topo *topology.Topology) error {
			return topo.ConnectStores("src", "s")
		}, `"src" is not a processor`},
		{"duplicate internal topic", func(topo *topology.Topology) error {
			must(t, topo.AddInternalTopic(topology.InternalTopic{Name: "r"}))
			return topo.AddInternalTopic(topology.InternalTopic{Name: "r"})
		}, `internal topic "r" already declared`},
		{"negative partitions", func(topo *topology.Topology) error {
			return topo.AddInternalTopic(topology.InternalTopic{Name: "r", Partitions: -1})
		}, "negative partition count -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := topology.New()
			must(t, topo.AddSource("src", source("in")))
			err := tt.add(topo)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSharedStoreJoinsSubtopologies(t *testing.T) {
	topo := topology.New()
	must(t, topo.AddSource("a", source("a")))
	must(t, topo.AddProcessor("pa", pass, "a"))
	must(t, topo.AddSource("b", source("b")))
	must(t, topo.AddProcessor("pb", pass, "b"))
	must(t, topo.AddSource("c", source("c")))
	must(t, topo.AddStore(topology.StoreSpec{Name: "store", Logging: true}, "pa", "pb"))
	c, err := topology.Compile(topo, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Subtopologies) != 2 {
		t.Fatalf("%d sub-topologies, want 2 (a+b sharing a store, and c)", len(c.Subtopologies))
	}
	if got := c.Subtopologies[0].SourceTopics; !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("sub-topology 0 reads %v, want [a b]", got)
	}
	if got := c.Subtopologies[0].Stores; !reflect.DeepEqual(got, []string{"store"}) {
		t.Errorf("sub-topology 0 stores %v, want [store]", got)
	}
	if got := c.Subtopologies[1].SourceTopics; !reflect.DeepEqual(got, []string{"c"}) {
		t.Errorf("sub-topology 1 reads %v, want [c]", got)
	}
}

func TestDescribeNumbersByFirstNode(t *testing.T) {
	topo := topology.New()
	must(t, topo.AddSource("s1", source("t1")))
	must(t, topo.AddSource("s2", source("t2")))
	must(t, topo.AddSink("k2", sink("o2"), "s2"))
	must(t, topo.AddSink("k1", sink("o1"), "s1"))
	want := `Topologies:
   Sub-topology: 0
    Source: s1 (topics: [t1])
      --> k1
    Sink: k1 (topic: o1)
      <-- s1

   Sub-topology: 1
    Source: s2 (topics: [t2])
      --> k2
    Sink: k2 (topic: o2)
      <-- s2

`
	if got := topo.Describe(); got != want {
		t.Errorf("Describe() =\n%s\nwant\n%s", got, want)
	}
}

func TestChangelogTopicsDeclaredAndSized(t *testing.T) {
	topo := topology.New()
	must(t, topo.AddSource("a", source("a")))
	must(t, topo.AddProcessor("pa", pass, "a"))
	must(t, topo.AddStore(topology.StoreSpec{Name: "counts", Logging: true, LogConfig: map[string]string{"min.insync.replicas": "2"}}, "pa"))
	must(t, topo.AddStore(topology.StoreSpec{Name: "scratch"}, "pa"))
	c, err := topology.Compile(topo, "app")
	must(t, err)
	if got := c.Subtopologies[0].Changelogs; !reflect.DeepEqual(got, map[string]string{"counts": "app-counts-changelog"}) {
		t.Fatalf("changelogs %v", got)
	}
	must(t, c.ResolvePartitions(func(string) (int32, bool) { return 6, true }))
	var found bool
	for _, it := range c.InternalTopics {
		if it.Name == "app-counts-changelog" {
			found = true
			if it.Partitions != 6 || it.Config["cleanup.policy"] != "compact" || it.Config["min.insync.replicas"] != "2" {
				t.Fatalf("changelog topic %+v", it)
			}
		}
	}
	if !found {
		t.Fatal("changelog topic not declared")
	}
}

func TestUndeclaredStoreFailsCompile(t *testing.T) {
	topo := topology.New()
	must(t, topo.AddSource("a", source("a")))
	must(t, topo.AddProcessor("pa", pass, "a"))
	must(t, topo.ConnectStores("pa", "nope"))
	if _, err := topology.Compile(topo, "app"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("got %v", err)
	}
}
