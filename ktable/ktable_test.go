package ktable_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/ktable"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

var strStr = kstream.ConsumedWith(serde.String(), serde.String())

func build(t *testing.T, b *kstream.Builder) *kstream.Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return topo
}

// row is an output record reduced to what the tests compare: Del marks a
// tombstone, TS is the offset in ms from t0.
type row[V any] struct {
	Key   string
	Value V
	Del   bool
	TS    int64
}

func upd[V any](k string, v V, ts int64) row[V] { return row[V]{Key: k, Value: v, TS: ts} }
func del[V any](k string, ts int64) row[V]      { return row[V]{Key: k, Del: true, TS: ts} }

func read[V any](t *testing.T, d *testutil.Driver, topic string, v serde.Serde[V]) []row[V] {
	t.Helper()
	var out []row[V]
	for _, r := range testutil.OutputTopic(d, topic, serde.String(), v).ReadRecords() {
		out = append(out, row[V]{Key: r.Key, Value: r.Value, Del: r.Tombstone, TS: r.Timestamp.Sub(t0).Milliseconds()})
	}
	return out
}

func want[V any](t *testing.T, what string, got, want []row[V]) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func contents[V any](t *testing.T, d *testutil.Driver, store string, v serde.Serde[V]) map[string]V {
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

func wantContents[V any](t *testing.T, got, want map[string]V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("store:\n got  %v\n want %v", got, want)
	}
}

func TestSourceTable(t *testing.T) {
	b := kstream.NewBuilder()
	users := ktable.Table(b, strStr, "users")
	users.ToStream().To("users-out")
	if users.StoreName() != "users-STATE-STORE-0000000000" {
		t.Errorf("StoreName() = %q", users.StoreName())
	}
	topo := build(t, b)
	const wantDescribe = `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [users])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [users-STATE-STORE-0000000000])
      --> KTABLE-TOSTREAM-0000000003
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-TOSTREAM-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KTABLE-SOURCE-0000000002
    Sink: KSTREAM-SINK-0000000004 (topic: users-out)
      <-- KTABLE-TOSTREAM-0000000003

`
	if got := topo.Describe(); got != wantDescribe {
		t.Errorf("Describe() =\n%s\nwant\n%s", got, wantDescribe)
	}

	d := testutil.NewDriver(t, topo)
	in := testutil.InputTopic(d, "users", serde.String(), serde.String())
	in.PipeAt("alice", "paris", at(1))
	in.PipeAt("bob", "oslo", at(2))
	in.PipeAt("alice", "rome", at(3))
	in.PipeTombstone("bob")
	in.PipeTombstone("nobody") // deleting an absent row changes nothing
	in.PipeRaw(nil, []byte("keyless"), at(6))

	want(t, "users-out", read(t, d, "users-out", serde.String()), []row[string]{
		upd("alice", "paris", 1), upd("bob", "oslo", 2), upd("alice", "rome", 3), del[string]("bob", 0),
	})
	wantContents(t, contents(t, d, "users-STATE-STORE-0000000000", serde.String()), map[string]string{"alice": "rome"})
	// The changelog holds the same updates, the delete as a tombstone.
	want(t, "changelog", read(t, d, "test-app-users-STATE-STORE-0000000000-changelog", serde.String()), []row[string]{
		upd("alice", "paris", 1), upd("bob", "oslo", 2), upd("alice", "rome", 3), del[string]("bob", 3),
	})
}

func TestSourceTableNamed(t *testing.T) {
	b := kstream.NewBuilder()
	users := ktable.Table(b, strStr.WithName("users-src"), "users", kstream.Materialized[string, string]{StoreName: "users", InMemory: true})
	if users.StoreName() != "users" || users.NodeName() != "users-src-table-source" {
		t.Errorf("store %q node %q", users.StoreName(), users.NodeName())
	}
	// The table node burned an index: the next generated name is 2.
	users.ToStream().To("out")
	if got := build(t, b).Describe(); !strings.Contains(got, "Processor: KTABLE-TOSTREAM-0000000002 (stores: [])") {
		t.Errorf("Describe() =\n%s", got)
	}
}

func TestFilterMapValuesToStream(t *testing.T) {
	b := kstream.NewBuilder()
	t1 := ktable.Table(b, strStr, "in")
	upper := ktable.MapValues(t1, strings.ToUpper)
	upper.Filter(func(_, v string) bool { return len(v) > 2 }).ToStream().To("long")
	upper.FilterNot(func(_, v string) bool { return len(v) > 2 }).ToStream().To("short")
	lengths := ktable.MapValuesWithKey(t1, func(k, v string) int64 { return int64(len(k) + len(v)) })
	lengths.ToStream().To("lengths", kstream.ProducedWith(serde.String(), serde.Int64()))
	if upper.StoreName() != "" {
		t.Errorf("a mapped table is not materialized; StoreName() = %q", upper.StoreName())
	}

	d := testutil.NewDriver(t, build(t, b))
	in := testutil.InputTopic(d, "in", serde.String(), serde.String())
	in.PipeAt("a", "xyz", at(1))
	in.PipeAt("b", "hi", at(2))
	in.PipeAt("a", "no", at(3))  // stops matching "long": a delete there
	in.PipeAt("b", "hey", at(4)) // starts matching "long", stops matching "short"
	in.PipeTombstone("a")

	// As Kafka Streams: every update a filter drops reaches downstream as a
	// delete, whether or not the row passed before.
	want(t, "long", read(t, d, "long", serde.String()), []row[string]{
		upd("a", "XYZ", 1), del[string]("b", 2), del[string]("a", 3), upd("b", "HEY", 4), del[string]("a", 0),
	})
	want(t, "short", read(t, d, "short", serde.String()), []row[string]{
		del[string]("a", 1), upd("b", "HI", 2), upd("a", "NO", 3), del[string]("b", 4), del[string]("a", 0),
	})
	want(t, "lengths", read(t, d, "lengths", serde.Int64()), []row[int64]{
		upd("a", int64(4), 1), upd("b", int64(3), 2), upd("a", int64(3), 3), upd("b", int64(4), 4), del[int64]("a", 0),
	})
}

// TestGroupByCount counts users per region from a user -> region table:
// moving a user takes one from the old region and adds one to the new.
func TestGroupByCount(t *testing.T) {
	b := kstream.NewBuilder()
	users := ktable.Table(b, strStr, "user-regions")
	byRegion := ktable.GroupBy(users, func(_, region string) (string, string) { return region, region },
		kstream.GroupedAs[string, string]("users-by-region"))
	counts := ktable.Count(byRegion, kstream.MaterializedAs[string, int64]("region-counts"))
	counts.ToStream().To("region-counts-out", kstream.ProducedWith(serde.String(), serde.Int64()))
	topo := build(t, b)
	got := topo.Describe()
	for _, w := range []string{
		"Processor: users-by-region (stores: [])\n      --> KSTREAM-SINK-0000000004\n",
		"Sink: KSTREAM-SINK-0000000004 (topic: users-by-region-repartition)",
		"Source: KSTREAM-SOURCE-0000000005 (topics: [users-by-region-repartition])\n      --> KTABLE-AGGREGATE-0000000006\n",
		"Processor: KTABLE-AGGREGATE-0000000006 (stores: [region-counts])",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("Describe() lacks %q:\n%s", w, got)
		}
	}

	d := testutil.NewDriver(t, topo)
	in := testutil.InputTopic(d, "user-regions", serde.String(), serde.String())
	in.PipeAt("alice", "eu", at(1))
	in.PipeAt("bob", "us", at(2))
	in.PipeAt("carol", "eu", at(3))
	in.PipeAt("alice", "us", at(4)) // moves: eu -1, us +1
	in.PipeTombstone("bob")         // leaves: us -1
	in.PipeAt("carol", "eu", at(6)) // same region: one record, -1 +1

	want(t, "region-counts-out", read(t, d, "region-counts-out", serde.Int64()), []row[int64]{
		upd("eu", int64(1), 1), upd("us", int64(1), 2), upd("eu", int64(2), 3),
		upd("eu", int64(1), 4), upd("us", int64(2), 4),
		upd("us", int64(1), 0), // the tombstone was piped at the driver's clock, t0
		upd("eu", int64(1), 6), // carol alone in eu: 1 - 1 + 1
	})
	wantContents(t, contents(t, d, "region-counts", serde.Int64()), map[string]int64{"eu": 1, "us": 1})
}

// TestGroupByRepartitionBytes pins the repartition topic's values to Kafka
// Streams' Change layout: old only (flag 0), new only (flag 1), both with
// the new value's length as a zigzag varint (flag 2).
func TestGroupByRepartitionBytes(t *testing.T) {
	b := kstream.NewBuilder()
	users := ktable.Table(b, strStr, "user-regions")
	ktable.Count(ktable.GroupBy(users, func(_, region string) (string, string) { return region, region },
		kstream.GroupedAs[string, string]("by-region")))
	d := testutil.NewDriver(t, build(t, b))
	in := testutil.InputTopic(d, "user-regions", serde.String(), serde.String())
	in.PipeAt("alice", "eu", at(1))
	in.PipeAt("alice", "us", at(2))
	in.PipeAt("alice", "us", at(3))
	type raw struct {
		Key   string
		Value []byte
	}
	var got []raw
	for _, r := range testutil.OutputTopic(d, "test-app-by-region-repartition", serde.String(), serde.Bytes()).ReadRecords() {
		got = append(got, raw{r.Key, r.Value})
	}
	wantRaw := []raw{
		{"eu", []byte("eu\x01")},
		{"eu", []byte("eu\x00")},
		{"us", []byte("us\x01")},
		{"us", []byte("\x04usus\x02")},
	}
	if !reflect.DeepEqual(got, wantRaw) {
		t.Errorf("repartition records:\n got  %q\n want %q", got, wantRaw)
	}
}

// TestGroupByReduce keeps the total balance across accounts: an update
// subtracts the account's old balance and adds the new one.
func TestGroupByReduce(t *testing.T) {
	b := kstream.NewBuilder()
	accounts := ktable.Table(b, kstream.ConsumedWith(serde.String(), serde.Int64()), "balances")
	total := ktable.Reduce(
		ktable.GroupBy(accounts, func(_ string, balance int64) (string, int64) { return "total", balance }),
		func(agg, v int64) int64 { return agg + v },
		func(agg, v int64) int64 { return agg - v },
		kstream.MaterializedAs[string, int64]("total"))
	total.ToStream().To("total-out")
	topo := build(t, b)
	// Generated names as Kafka Streams: the select node, then sink and
	// source of the repartition topic named after the store, then the
	// reduce node.
	for _, w := range []string{
		"Processor: KTABLE-SELECT-0000000003 (stores: [])\n      --> KSTREAM-SINK-0000000004\n",
		"Sink: KSTREAM-SINK-0000000004 (topic: total-repartition)",
		"Processor: KTABLE-REDUCE-0000000006 (stores: [total])",
	} {
		if got := topo.Describe(); !strings.Contains(got, w) {
			t.Errorf("Describe() lacks %q:\n%s", w, got)
		}
	}
	d := testutil.NewDriver(t, topo)
	in := testutil.InputTopic(d, "balances", serde.String(), serde.Int64())
	in.PipeAt("a", 10, at(1))
	in.PipeAt("b", 5, at(2))
	in.PipeAt("a", 7, at(3))
	in.PipeTombstone("b")
	want(t, "total-out", read(t, d, "total-out", serde.Int64()), []row[int64]{
		upd("total", int64(10), 1), upd("total", int64(15), 2), upd("total", int64(12), 3), upd("total", int64(7), 0),
	})
	wantContents(t, contents(t, d, "total", serde.Int64()), map[string]int64{"total": 7})
}

// TestGroupByAggregate keeps the sorted list of users in each region, with
// a JSON store; generated names follow Kafka Streams.
func TestGroupByAggregate(t *testing.T) {
	b := kstream.NewBuilder()
	users := ktable.Table(b, strStr, "user-regions")
	members := ktable.Aggregate(
		ktable.GroupBy(users, func(user, region string) (string, string) { return region, user }),
		func() []string { return []string{} },
		func(_ string, user string, agg []string) []string {
			agg = append(agg, user)
			slices.Sort(agg)
			return agg
		},
		func(_ string, user string, agg []string) []string {
			return slices.DeleteFunc(agg, func(u string) bool { return u == user })
		})
	if members.StoreName() != "KTABLE-AGGREGATE-STATE-STORE-0000000004" || members.NodeName() != "KTABLE-AGGREGATE-0000000007" {
		t.Errorf("store %q node %q", members.StoreName(), members.NodeName())
	}
	members.ToStream().To("members")
	d := testutil.NewDriver(t, build(t, b))
	in := testutil.InputTopic(d, "user-regions", serde.String(), serde.String())
	in.PipeAt("carol", "eu", at(1))
	in.PipeAt("alice", "eu", at(2))
	in.PipeAt("bob", "us", at(3))
	in.PipeAt("carol", "us", at(4))
	want(t, "members", read(t, d, "members", serde.JSON[[]string]()), []row[[]string]{
		upd("eu", []string{"carol"}, 1),
		upd("eu", []string{"alice", "carol"}, 2),
		upd("us", []string{"bob"}, 3),
		upd("eu", []string{"alice"}, 4),
		upd("us", []string{"bob", "carol"}, 4),
	})
	if n := d.Produced("test-app-KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition"); n != 5 {
		t.Errorf("repartition topic has %d records, want 5", n)
	}
	wantContents(t, contents(t, d, members.StoreName(), serde.JSON[[]string]()), map[string][]string{
		"eu": {"alice"}, "us": {"bob", "carol"},
	})
}
