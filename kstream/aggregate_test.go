package kstream_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

type cnt = rec[string, int64]

func countOut(d *testutil.Driver, topic string) *testutil.TestOutputTopic[string, int64] {
	return testutil.OutputTopic(d, topic, serde.String(), serde.Int64())
}

// storeContents reads every entry of a store through a typed view.
func storeContents[V any](t *testing.T, d *testutil.Driver, store string, v serde.Serde[V]) map[string]V {
	t.Helper()
	it, err := testutil.StoreView(d, store, serde.String(), v).All()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[string]V{}
	for it.Next() {
		out[it.Key()] = it.Value()
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantStore[V any](t *testing.T, got, want map[string]V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("store:\n got  %v\n want %v", got, want)
	}
}

// wordCount is Kafka Streams' WordCountDemo: lines -> words -> group by
// word -> count into the store "counts" -> word-counts.
func wordCount(m kstream.Materialized[string, int64]) *kstream.Builder {
	b := kstream.NewBuilder()
	lines := kstream.Stream(b, strStr, "lines")
	words := kstream.FlatMapValues(lines, func(line string) []string { return strings.Fields(strings.ToLower(line)) })
	counts := kstream.Count(kstream.GroupBy(words, func(_, w string) string { return w }), m)
	counts.ToStream().To("word-counts")
	return b
}

func TestWordCount(t *testing.T) {
	b := wordCount(kstream.MaterializedAs[string, int64]("counts"))
	topo := build(t, b)
	// The same description Kafka Streams gives its WordCountDemo.
	diffLines(t, topo.Describe(), `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [lines])
      --> KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
      --> KSTREAM-KEY-SELECT-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])
      --> counts-repartition-filter
      <-- KSTREAM-FLATMAPVALUES-0000000001
    Processor: counts-repartition-filter (stores: [])
      --> counts-repartition-sink
      <-- KSTREAM-KEY-SELECT-0000000002
    Sink: counts-repartition-sink (topic: counts-repartition)
      <-- counts-repartition-filter

   Sub-topology: 1
    Source: counts-repartition-source (topics: [counts-repartition])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [counts])
      --> KTABLE-TOSTREAM-0000000007
      <-- counts-repartition-source
    Processor: KTABLE-TOSTREAM-0000000007 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KSTREAM-AGGREGATE-0000000003
    Sink: KSTREAM-SINK-0000000008 (topic: word-counts)
      <-- KTABLE-TOSTREAM-0000000007

`)

	d := testutil.NewDriver(t, topo)
	in := strIn(d, "lines")
	in.PipeAt("", "all streams lead to Kafka", at(10))
	in.PipeAt("", "hello Kafka streams", at(20))
	in.PipeAt("", "join kafka summit", at(30))

	want := []cnt{
		{"all", 1, 10}, {"streams", 1, 10}, {"lead", 1, 10}, {"to", 1, 10}, {"kafka", 1, 10},
		{"hello", 1, 20}, {"kafka", 2, 20}, {"streams", 2, 20},
		{"join", 1, 30}, {"kafka", 3, 30}, {"summit", 1, 30},
	}
	wantRecs(t, "word-counts", readAll(t, countOut(d, "word-counts")), want)
	// The changelog carries the same updates, as 8-byte big-endian longs.
	raw, _ := testutil.OutputTopic(d, "test-app-counts-changelog", serde.String(), serde.Bytes()).ReadRecord()
	if raw.Key != "all" || !reflect.DeepEqual(raw.Value, []byte{0, 0, 0, 0, 0, 0, 0, 1}) {
		t.Errorf("first changelog record %q = % x, want all = 00 00 00 00 00 00 00 01", raw.Key, raw.Value)
	}
	wantRecs(t, "changelog", readAll(t, countOut(d, "test-app-counts-changelog")), want[1:])
	wantStore(t, storeContents(t, d, "counts", serde.Int64()), map[string]int64{
		"all": 1, "hello": 1, "join": 1, "kafka": 3, "lead": 1, "streams": 2, "summit": 1, "to": 1,
	})
	if got := d.Produced("test-app-counts-repartition"); got != 11 {
		t.Errorf("repartition topic got %d records, want one per word (11)", got)
	}
}

// TestCachingCollapsesUpdates pipes a line with a repeated word. The driver
// commits after every input record, so caching only collapses the updates
// one record causes: with caching the count of "a" goes downstream once,
// with its final value; without, every update does. Kafka Streams flushes
// dirty keys in the order of their last write, so "b" comes first.
func TestCachingCollapsesUpdates(t *testing.T) {
	tests := []struct {
		name string
		m    kstream.Materialized[string, int64]
		want []cnt
	}{
		{"cached", kstream.Materialized[string, int64]{StoreName: "counts"},
			[]cnt{{"b", 1, 5}, {"a", 3, 5}, {"a", 4, 6}}},
		{"not cached", kstream.Materialized[string, int64]{StoreName: "counts", CachingDisabled: true},
			[]cnt{{"a", 1, 5}, {"a", 2, 5}, {"b", 1, 5}, {"a", 3, 5}, {"a", 4, 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testutil.NewDriver(t, build(t, wordCount(tt.m)))
			in := strIn(d, "lines")
			in.PipeAt("", "a a b a", at(5))
			in.PipeAt("", "a", at(6))
			wantRecs(t, "word-counts", readAll(t, countOut(d, "word-counts")), tt.want)
			// The changelog sees what reached the store: with caching,
			// only the flushed values.
			wantRecs(t, "changelog", readAll(t, countOut(d, "test-app-counts-changelog")), tt.want)
			wantStore(t, storeContents(t, d, "counts", serde.Int64()), map[string]int64{"a": 4, "b": 1})
		})
	}
}

// TestCacheSizeZeroForwardsEveryUpdate: the driver option turns caches
// into pass-throughs.
func TestCacheSizeZeroForwardsEveryUpdate(t *testing.T) {
	d := testutil.NewDriver(t, build(t, wordCount(kstream.MaterializedAs[string, int64]("counts"))), testutil.WithCacheMaxBytes(0))
	strIn(d, "lines").PipeAt("", "a a", at(1))
	wantRecs(t, "word-counts", readAll(t, countOut(d, "word-counts")), []cnt{{"a", 1, 1}, {"a", 2, 1}})
}

func TestStoreKinds(t *testing.T) {
	tests := []struct {
		name          string
		m             kstream.Materialized[string, int64]
		wantChangelog int
	}{
		{"pebble", kstream.Materialized[string, int64]{StoreName: "counts"}, 4},
		{"in memory", kstream.Materialized[string, int64]{StoreName: "counts", InMemory: true}, 4},
		{"logging disabled", kstream.Materialized[string, int64]{StoreName: "counts", LoggingDisabled: true}, 0},
		{"in memory, not logged, not cached", kstream.Materialized[string, int64]{StoreName: "counts", InMemory: true, LoggingDisabled: true, CachingDisabled: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := build(t, wordCount(tt.m))
			d := testutil.NewDriver(t, topo)
			in := strIn(d, "lines")
			in.PipeAt("", "x y", at(1))
			in.PipeAt("", "y z", at(2))
			wantRecs(t, "word-counts", readAll(t, countOut(d, "word-counts")), []cnt{
				{"x", 1, 1}, {"y", 1, 1}, {"y", 2, 2}, {"z", 1, 2},
			})
			wantStore(t, storeContents(t, d, "counts", serde.Int64()), map[string]int64{"x": 1, "y": 2, "z": 1})
			if got := d.Produced("test-app-counts-changelog"); got != tt.wantChangelog {
				t.Errorf("changelog got %d records, want %d", got, tt.wantChangelog)
			}
			c, err := topology.Compile(topo, "test-app")
			if err != nil {
				t.Fatal(err)
			}
			_, declared := c.Subtopologies[1].Changelogs["counts"]
			if declared != (tt.wantChangelog > 0) {
				t.Errorf("changelog topic declared = %v", declared)
			}
		})
	}
}

// TestGroupByKeyRepartitionsOnlyAfterKeyChange: grouping a stream whose key
// is as read needs no repartition; after SelectKey it does, through a topic
// named after the generated store.
func TestGroupByKeyRepartitionsOnlyAfterKeyChange(t *testing.T) {
	t.Run("key unchanged", func(t *testing.T) {
		b := kstream.NewBuilder()
		s := kstream.Stream(b, strStr, "in")
		kstream.Count(kstream.GroupByKey(s)).ToStream().To("out")
		topo := build(t, b)
		diffLines(t, topo.Describe(), `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [in])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> KTABLE-TOSTREAM-0000000003
      <-- KSTREAM-SOURCE-0000000000
    Processor: KTABLE-TOSTREAM-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-AGGREGATE-0000000002
    Sink: KSTREAM-SINK-0000000004 (topic: out)
      <-- KTABLE-TOSTREAM-0000000003

`)
		d := testutil.NewDriver(t, topo)
		in := strIn(d, "in")
		in.PipeAt("k", "v1", at(1))
		in.PipeAt("j", "v2", at(2))
		in.PipeAt("k", "v3", at(3))
		wantRecs(t, "out", readAll(t, countOut(d, "out")), []cnt{{"k", 1, 1}, {"j", 1, 2}, {"k", 2, 3}})
	})
	t.Run("after SelectKey", func(t *testing.T) {
		b := kstream.NewBuilder()
		s := kstream.SelectKey(kstream.Stream(b, strStr, "in"), func(_, v string) string { return v[:1] })
		counts := kstream.Count(kstream.GroupByKey(s))
		counts.ToStream().To("out")
		if counts.StoreName() != "KSTREAM-AGGREGATE-STATE-STORE-0000000002" {
			t.Errorf("StoreName() = %q", counts.StoreName())
		}
		topo := build(t, b)
		diffLines(t, topo.Describe(), `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [in])
      --> KSTREAM-KEY-SELECT-0000000001
    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])
      --> KSTREAM-FILTER-0000000005
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-FILTER-0000000005 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-KEY-SELECT-0000000001
    Sink: KSTREAM-SINK-0000000004 (topic: KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition)
      <-- KSTREAM-FILTER-0000000005

   Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000002])
      --> KTABLE-TOSTREAM-0000000007
      <-- KSTREAM-SOURCE-0000000006
    Processor: KTABLE-TOSTREAM-0000000007 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KSTREAM-AGGREGATE-0000000003
    Sink: KSTREAM-SINK-0000000008 (topic: out)
      <-- KTABLE-TOSTREAM-0000000007

`)
		d := testutil.NewDriver(t, topo)
		in := strIn(d, "in")
		in.PipeAt("1", "apple", at(1))
		in.PipeAt("2", "banana", at(2))
		in.PipeAt("3", "avocado", at(3))
		wantRecs(t, "out", readAll(t, countOut(d, "out")), []cnt{{"a", 1, 1}, {"b", 1, 2}, {"a", 2, 3}})
		rep := readAll(t, strOut(d, "test-app-KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition"))
		wantRecs(t, "repartition", rep, []kv{{"a", "apple", 1}, {"b", "banana", 2}, {"a", "avocado", 3}})
	})
	t.Run("Grouped name", func(t *testing.T) {
		b := kstream.NewBuilder()
		s := kstream.SelectKey(kstream.Stream(b, strStr, "in"), func(_, v string) string { return v[:1] })
		g := kstream.GroupByKey(s, kstream.GroupedAs[string, string]("by-letter"))
		kstream.Count(g, kstream.MaterializedAs[string, int64]("counts")).ToStream().To("out")
		// A second aggregation of a named grouping reads the same topic.
		kstream.Reduce(g, func(a, v string) string { return a + "," + v }).ToStream().To("joined")
		topo := build(t, b)
		got := topo.Describe()
		for _, want := range []string{
			"Sink: by-letter-repartition-sink (topic: by-letter-repartition)",
			"Source: by-letter-repartition-source (topics: [by-letter-repartition])\n      --> KSTREAM-AGGREGATE-0000000002, KSTREAM-REDUCE-0000000009\n",
			"Processor: KSTREAM-REDUCE-0000000009 (stores: [KSTREAM-REDUCE-STATE-STORE-0000000008])",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("Describe() lacks %q:\n%s", want, got)
			}
		}
		if n := strings.Count(got, "Sub-topology:"); n != 2 {
			t.Errorf("%d sub-topologies, want 2", n)
		}
		d := testutil.NewDriver(t, topo)
		in := strIn(d, "in")
		in.PipeAt("1", "apple", at(1))
		in.PipeAt("2", "avocado", at(2))
		wantRecs(t, "out", readAll(t, countOut(d, "out")), []cnt{{"a", 1, 1}, {"a", 2, 2}})
		wantRecs(t, "joined", readAll(t, strOut(d, "joined")), []kv{{"a", "apple", 1}, {"a", "apple,avocado", 2}})
	})
}

// TestGeneratedStoreNames pins Kafka Streams' index use: count() takes a
// store index, count(Materialized) without a name burns one more (Kafka
// Streams keeps that for compatibility), a named store takes none.
func TestGeneratedStoreNames(t *testing.T) {
	tests := []struct {
		name      string
		count     func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[string, int64]
		store, fn string
	}{
		{"Count()", func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[string, int64] {
			return kstream.Count(g)
		}, "KSTREAM-AGGREGATE-STATE-STORE-0000000001", "KSTREAM-AGGREGATE-0000000002"},
		{"Count(unnamed Materialized)", func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[string, int64] {
			return kstream.Count(g, kstream.Materialized[string, int64]{InMemory: true})
		}, "KSTREAM-AGGREGATE-STATE-STORE-0000000002", "KSTREAM-AGGREGATE-0000000003"},
		{"Count(MaterializedAs)", func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[string, int64] {
			return kstream.Count(g, kstream.MaterializedAs[string, int64]("c"))
		}, "c", "KSTREAM-AGGREGATE-0000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			table := tt.count(kstream.GroupByKey(kstream.Stream(b, strStr, "in")))
			if table.StoreName() != tt.store || table.NodeName() != tt.fn {
				t.Errorf("store %q, node %q; want %q, %q", table.StoreName(), table.NodeName(), tt.store, tt.fn)
			}
		})
	}
}

func TestReduce(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.Int64()), "amounts")
	sums := kstream.Reduce(kstream.GroupByKey(s), func(agg, v int64) int64 { return agg + v },
		kstream.MaterializedAs[string, int64]("sums"))
	sums.ToStream().To("sums-out")
	d := testutil.NewDriver(t, build(t, b))
	in := testutil.InputTopic(d, "amounts", serde.String(), serde.Int64())
	in.PipeAt("a", 1, at(1))
	in.PipeAt("b", 2, at(2))
	in.PipeAt("a", 3, at(3))
	in.PipeTombstone("a") // no value: nothing to reduce, dropped
	in.PipeAt("a", 10, at(5))
	wantRecs(t, "sums-out", readAll(t, countOut(d, "sums-out")), []cnt{{"a", 1, 1}, {"b", 2, 2}, {"a", 4, 3}, {"a", 14, 5}})
	wantStore(t, storeContents(t, d, "sums", serde.Int64()), map[string]int64{"a": 14, "b": 2})
}

type orderStats struct {
	Orders int64   `json:"orders"`
	Total  float64 `json:"total"`
	Max    float64 `json:"max"`
}

func TestAggregateStruct(t *testing.T) {
	b := kstream.NewBuilder()
	orders := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.Float64()), "orders")
	stats := kstream.Aggregate(kstream.GroupByKey(orders),
		func() orderStats { return orderStats{} },
		func(_ string, amount float64, agg orderStats) orderStats {
			agg.Orders++
			agg.Total += amount
			agg.Max = max(agg.Max, amount)
			return agg
		},
		kstream.Materialized[string, orderStats]{StoreName: "stats", ValueSerde: serde.JSON[orderStats]()})
	stats.ToStream().To("stats-out")
	d := testutil.NewDriver(t, build(t, b))
	in := testutil.InputTopic(d, "orders", serde.String(), serde.Float64())
	in.PipeAt("alice", 10, at(1))
	in.PipeAt("bob", 5, at(2))
	in.PipeAt("alice", 30, at(3))
	in.PipeAt("alice", 20, at(4))

	out := testutil.OutputTopic(d, "stats-out", serde.String(), serde.String())
	wantRecs(t, "stats-out (JSON text)", readAll(t, out), []kv{
		{"alice", `{"orders":1,"total":10,"max":10}`, 1},
		{"bob", `{"orders":1,"total":5,"max":5}`, 2},
		{"alice", `{"orders":2,"total":40,"max":30}`, 3},
		{"alice", `{"orders":3,"total":60,"max":30}`, 4},
	})
	wantStore(t, storeContents(t, d, "stats", serde.JSON[orderStats]()), map[string]orderStats{
		"alice": {Orders: 3, Total: 60, Max: 30},
		"bob":   {Orders: 1, Total: 5, Max: 5},
	})
}

// TestAggregateNilPointerDeletes: an aggregator returning a nil pointer
// deletes the key, and the table forwards the delete as a tombstone.
func TestAggregateNilPointerDeletes(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr, "in")
	t1 := kstream.Aggregate(kstream.GroupByKey(s),
		func() *string { return nil },
		func(_ string, v string, agg *string) *string {
			if v == "reset" {
				return nil
			}
			if agg != nil {
				v = *agg + v
			}
			return &v
		},
		kstream.Materialized[string, *string]{StoreName: "acc", CachingDisabled: true})
	t1.ToStream().To("out", kstream.ProducedWith(serde.String(), serde.JSON[*string]()))
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")
	in.PipeAt("k", "a", at(1))
	in.PipeAt("k", "b", at(2))
	in.PipeAt("k", "reset", at(3))
	in.PipeAt("k", "c", at(4))
	var got []string
	for _, r := range strOut(d, "out").ReadRecords() {
		if r.Tombstone {
			got = append(got, "<delete>")
		} else {
			got = append(got, r.Value)
		}
	}
	if want := []string{`"a"`, `"ab"`, "<delete>", `"c"`}; !reflect.DeepEqual(got, want) {
		t.Errorf("out = %q, want %q", got, want)
	}
}
