package topology_test

import (
	"reflect"
	"testing"

	"github.com/kstreams-go/kstreams/internal/topology"
)

// streamTableJoin is the topology of a stream re-keyed and joined with a
// table: clicks -> select -> sink(rep); rep + users -> join (which reads the
// users table's store) -> sink(enriched); enriched-rep -> count, with
// enriched-rep written by the join's sub-topology. rep and enriched-rep are
// internal topics declared with 0 partitions, users-store is logged.
func streamTableJoin(t *testing.T) *topology.Topology {
	t.Helper()
	topo := topology.New()
	must(t, topo.AddSource("clicks", source("clicks")))
	must(t, topo.AddProcessor("select", pass, "clicks"))
	must(t, topo.AddSink("to-rep", sink("rep"), "select"))
	must(t, topo.AddSource("rep", source("rep")))
	must(t, topo.AddSource("users", source("users")))
	must(t, topo.AddProcessor("users-table", pass, "users"))
	must(t, topo.AddProcessor("join", pass, "rep"))
	must(t, topo.AddStore(topology.StoreSpec{Name: "users-store", Logging: true}, "users-table", "join"))
	must(t, topo.AddSink("to-enriched-rep", sink("enriched-rep"), "join"))
	must(t, topo.AddSource("enriched-rep", source("enriched-rep")))
	must(t, topo.AddProcessor("count", pass, "enriched-rep"))
	must(t, topo.AddStore(topology.StoreSpec{Name: "count-store", Logging: true}, "count"))
	for _, name := range []string{"rep", "enriched-rep"} {
		must(t, topo.AddInternalTopic(topology.InternalTopic{Name: name}))
	}
	return topo
}

func partitionsOf(c *topology.Compiled) map[string]int32 {
	out := map[string]int32{}
	for _, it := range c.InternalTopics {
		out[it.Name] = it.Partitions
	}
	return out
}

// A repartition topic read together with a table's topic takes the table
// topic's count, not the count of the topic its writers read; what follows
// it resolves from there.
func TestRepartitionTopicTakesItsCopartitionGroupsCount(t *testing.T) {
	c, err := topology.Compile(streamTableJoin(t), "app")
	if err != nil {
		t.Fatal(err)
	}
	external := map[string]int32{"clicks": 2, "users": 4}
	lookup := func(topic string) (int32, bool) { n, ok := external[topic]; return n, ok }
	must(t, c.ResolvePartitions(lookup))
	want := map[string]int32{
		"app-rep":                   4, // the table's count; its writer reads 2
		"app-enriched-rep":          4, // written by the 4-partition join
		"app-users-store-changelog": 4,
		"app-count-store-changelog": 4,
	}
	if got := partitionsOf(c); !reflect.DeepEqual(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}
	got, err := c.CheckCopartitioning(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]int32{0: 2, 1: 4, 2: 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("CheckCopartitioning = %v, want %v", got, want)
	}
}

// Repartition topics read together with no fixed topic (two re-keyed
// streams joined) share the largest of the counts their writers give them.
func TestRepartitionTopicsReadTogetherShareTheLargestCount(t *testing.T) {
	topo := topology.New()
	must(t, topo.AddSource("a", source("a")))
	must(t, topo.AddSink("to-ra", sink("ra"), "a"))
	must(t, topo.AddSource("b", source("b")))
	must(t, topo.AddSink("to-rb", sink("rb"), "b"))
	must(t, topo.AddSource("rab", source("ra", "rb")))
	must(t, topo.AddSink("out", sink("out"), "rab"))
	for _, name := range []string{"ra", "rb"} {
		must(t, topo.AddInternalTopic(topology.InternalTopic{Name: name}))
	}
	c, err := topology.Compile(topo, "app")
	if err != nil {
		t.Fatal(err)
	}
	external := map[string]int32{"a": 2, "b": 6}
	lookup := func(topic string) (int32, bool) { n, ok := external[topic]; return n, ok }
	must(t, c.ResolvePartitions(lookup))
	if got, want := partitionsOf(c), map[string]int32{"app-ra": 6, "app-rb": 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}
	if _, err := c.CheckCopartitioning(lookup); err != nil {
		t.Fatal(err)
	}
}

// A repartition topic declared with a count keeps it; when that count
// differs from the topics it is read with, CheckCopartitioning says so,
// naming every topic with its count.
func TestCopartitioningErrorNamesTopicsAndCounts(t *testing.T) {
	topo := streamTableJoin(t)
	must(t, topo.AddSource("views", source("views")))
	must(t, topo.AddProcessor("views-join", pass, "views"))
	must(t, topo.ConnectStores("views-join", "users-store"))
	must(t, topo.AddInternalTopic(topology.InternalTopic{Name: "fixed", Partitions: 3}))
	must(t, topo.AddSink("to-fixed", sink("fixed"), "clicks"))
	must(t, topo.AddSource("fixed", source("fixed")))
	must(t, topo.AddProcessor("fixed-join", pass, "fixed"))
	must(t, topo.ConnectStores("fixed-join", "users-store"))
	c, err := topology.Compile(topo, "app")
	if err != nil {
		t.Fatal(err)
	}
	external := map[string]int32{"clicks": 2, "users": 4, "views": 2}
	lookup := func(topic string) (int32, bool) { n, ok := external[topic]; return n, ok }
	must(t, c.ResolvePartitions(lookup))
	// rep is read with users(4), views(2) and fixed(3): it takes the
	// largest, and the check then fails.
	if got := partitionsOf(c)["app-rep"]; got != 4 {
		t.Errorf("app-rep has %d partitions, want 4", got)
	}
	_, err = c.CheckCopartitioning(lookup)
	const want = "sub-topology 1: source topics are not co-partitioned: app-fixed has 3 partitions, app-rep has 4, users has 4, views has 2; " +
		"they must have equal partition counts, or repartition one of them"
	if err == nil || err.Error() != want {
		t.Fatalf("CheckCopartitioning error:\n got  %v\n want %s", err, want)
	}
}
