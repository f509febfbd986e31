package ktable_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/ktable"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// joinStep is one record piped into the left or right table's topic.
type joinStep struct {
	topic, key, value string
	del               bool
	ts                int64
}

// joinSteps updates and deletes rows on either side, before and after the
// other side has the key.
var joinSteps = []joinStep{
	{"left", "k1", "a1", false, 1},   // 0: left only
	{"right", "k1", "b1", false, 2},  // 1: both
	{"left", "k1", "a2", false, 3},   // 2: left changes
	{"right", "k2", "b2", false, 4},  // 3: right only
	{"right", "k1", "b3", false, 5},  // 4: right changes
	{"left", "k1", "", true, 6},      // 5: left deleted, right stays
	{"right", "k2", "", true, 7},     // 6: right deleted, left never there
	{"left", "k2", "a3", false, 8},   // 7: left only
	{"right", "k1", "", true, 9},     // 8: right deleted, left gone
	{"left", "k3", "a4", false, 10},  // 9: left only
	{"right", "k3", "b4", false, 11}, // 10: both
	{"right", "k3", "", true, 12},    // 11: right deleted, left stays
	{"left", "k3", "", true, 13},     // 12: left deleted, right gone
}

func orDash(p *string) string {
	if p == nil {
		return "-"
	}
	return *p
}

// joinKinds hold, per step of joinSteps, the joined rows each kind of join
// forwards, worked out by hand: a row that stops existing is a delete.
var joinKinds = []struct {
	name string
	join func(l, r *kstream.KTable[string, string], m ...kstream.Materialized[string, string]) *kstream.KTable[string, string]
	want [][]row[string]
}{
	{
		name: "inner",
		join: func(l, r *kstream.KTable[string, string], m ...kstream.Materialized[string, string]) *kstream.KTable[string, string] {
			return ktable.Join(l, r, func(a, b string) string { return a + "+" + b }, m...)
		},
		want: [][]row[string]{
			nil,
			{upd("k1", "a1+b1", 2)},
			{upd("k1", "a2+b1", 3)},
			nil,
			{upd("k1", "a2+b3", 5)},
			{del[string]("k1", 6)},
			nil,
			nil,
			nil,
			nil,
			{upd("k3", "a4+b4", 11)},
			{del[string]("k3", 12)},
			nil,
		},
	},
	{
		name: "left",
		join: func(l, r *kstream.KTable[string, string], m ...kstream.Materialized[string, string]) *kstream.KTable[string, string] {
			return ktable.LeftJoin(l, r, func(a string, b *string) string { return a + "+" + orDash(b) }, m...)
		},
		want: [][]row[string]{
			{upd("k1", "a1+-", 1)},
			{upd("k1", "a1+b1", 2)},
			{upd("k1", "a2+b1", 3)},
			nil, // a right row alone is no row of a left join
			{upd("k1", "a2+b3", 5)},
			{del[string]("k1", 6)},
			nil,
			{upd("k2", "a3+-", 8)},
			nil,
			{upd("k3", "a4+-", 10)},
			{upd("k3", "a4+b4", 11)},
			{upd("k3", "a4+-", 12)}, // back to the left row alone
			{del[string]("k3", 13)},
		},
	},
	{
		name: "outer",
		join: func(l, r *kstream.KTable[string, string], m ...kstream.Materialized[string, string]) *kstream.KTable[string, string] {
			return ktable.OuterJoin(l, r, func(a, b *string) string { return orDash(a) + "+" + orDash(b) }, m...)
		},
		want: [][]row[string]{
			{upd("k1", "a1+-", 1)},
			{upd("k1", "a1+b1", 2)},
			{upd("k1", "a2+b1", 3)},
			{upd("k2", "-+b2", 4)},
			{upd("k1", "a2+b3", 5)},
			{upd("k1", "-+b3", 6)}, // the right row alone
			{del[string]("k2", 7)},
			{upd("k2", "a3+-", 8)},
			{del[string]("k1", 9)},
			{upd("k3", "a4+-", 10)},
			{upd("k3", "a4+b4", 11)},
			{upd("k3", "a4+-", 12)},
			{del[string]("k3", 13)},
		},
	},
}

// joinShapes vary how the join's inputs and result are kept: the result in
// a store of its own or not, and a right side that is not materialized
// (MapValues) and must be for the join.
var joinShapes = []struct {
	name         string
	materialized bool
	mapRight     bool
}{
	{"plain", false, false},
	{"materialized result", true, false},
	{"unmaterialized right side", false, true},
}

// TestTableJoins pipes joinSteps into every kind of join, with caching on
// and off, and checks after each step the joined changes forwarded, the
// rows of a materialized result, and, through an aggregation that adds each
// new row and takes out each old one, that every change carries the row it
// replaces.
func TestTableJoins(t *testing.T) {
	for _, kind := range joinKinds {
		for _, shape := range joinShapes {
			for _, caching := range []bool{true, false} {
				name := kind.name + "/" + shape.name + "/uncached"
				if caching {
					name = kind.name + "/" + shape.name + "/cached"
				}
				t.Run(name, func(t *testing.T) {
					b := kstream.NewBuilder()
					left := ktable.Table(b, strStr, "left")
					right := ktable.Table(b, strStr, "right")
					if shape.mapRight {
						right = ktable.MapValues(right, func(v string) string { return v })
					}
					var m []kstream.Materialized[string, string]
					if shape.materialized {
						m = append(m, kstream.MaterializedAs[string, string]("joined"))
					}
					joined := kind.join(left, right, m...)
					if got, want := joined.StoreName(), map[bool]string{true: "joined"}[shape.materialized]; got != want {
						t.Errorf("StoreName() = %q, want %q", got, want)
					}
					joined.ToStream().To("out")
					rowsOf(joined, "rows")

					var opts []testutil.DriverOption
					if !caching {
						opts = append(opts, testutil.WithCacheMaxBytes(0))
					}
					d := testutil.NewDriver(t, build(t, b), opts...)
					in := map[string]*testutil.TestInputTopic[string, string]{
						"left":  testutil.InputTopic(d, "left", serde.String(), serde.String()),
						"right": testutil.InputTopic(d, "right", serde.String(), serde.String()),
					}
					rows := map[string]string{} // the join's rows so far, from its changes
					for i, s := range joinSteps {
						if s.del {
							in[s.topic].PipeRaw([]byte(s.key), nil, at(s.ts))
						} else {
							in[s.topic].PipeAt(s.key, s.value, at(s.ts))
						}
						if err := d.Err(); err != nil {
							t.Fatalf("step %d: %v", i, err)
						}
						got := read(t, d, "out", serde.String())
						want(t, fmt.Sprintf("step %d (%s %s)", i, s.topic, s.key), got, kind.want[i])
						for _, r := range kind.want[i] {
							if r.Del {
								delete(rows, r.Key)
							} else {
								rows[r.Key] = r.Value
							}
						}
						checkRows(t, i, d, rows)
						if shape.materialized {
							wantContents(t, contents(t, d, "joined", serde.String()), rows)
						}
					}
				})
			}
		}
	}
}

// rowsOf keeps, in the store named store under the key "all", the sorted
// list of "key=value" of t's rows, maintained from t's changes alone: an
// old value the change carries wrongly shows up as "!missing" or a stale
// entry.
func rowsOf(t *kstream.KTable[string, string], store string) {
	all := ktable.GroupBy(t, func(k, v string) (string, string) { return "all", k + "=" + v })
	ktable.Aggregate(all,
		func() []string { return []string{} },
		func(_, kv string, agg []string) []string {
			agg = append(agg, kv)
			slices.Sort(agg)
			return agg
		},
		func(_, kv string, agg []string) []string {
			i := slices.Index(agg, kv)
			if i < 0 {
				return append(agg, "!missing "+kv)
			}
			return slices.Delete(agg, i, i+1)
		},
		kstream.Materialized[string, []string]{StoreName: store, ValueSerde: serde.JSON[[]string]()})
}

func checkRows(t *testing.T, step int, d *testutil.Driver, rows map[string]string) {
	t.Helper()
	var want []string
	for _, k := range slices.Sorted(maps.Keys(rows)) {
		want = append(want, k+"="+rows[k])
	}
	got := contents(t, d, "rows", serde.JSON[[]string]())["all"]
	if !slices.Equal(got, want) {
		t.Errorf("step %d: rows from the join's changes %q, want %q", step, got, want)
	}
}

// Node and store names follow Kafka Streams: the merge node, then the node
// under each side, each reading the other side's store; the result store,
// when asked for without a name, is KTABLE-MERGE-STATE-STORE-<index>.
func TestTableJoinDescribe(t *testing.T) {
	b := kstream.NewBuilder()
	left := ktable.Table(b, strStr, "left")
	right := ktable.Table(b, strStr, "right")
	joined := ktable.Join(left, right, func(a, b string) string { return a + b }, kstream.Materialized[string, string]{})
	if joined.StoreName() != "KTABLE-MERGE-STATE-STORE-0000000006" {
		t.Errorf("StoreName() = %q", joined.StoreName())
	}
	const wantDescribe = `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [left])
      --> KTABLE-SOURCE-0000000002
    Source: KSTREAM-SOURCE-0000000004 (topics: [right])
      --> KTABLE-SOURCE-0000000005
    Processor: KTABLE-SOURCE-0000000002 (stores: [left-STATE-STORE-0000000000])
      --> KTABLE-JOINTHIS-0000000008
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-SOURCE-0000000005 (stores: [right-STATE-STORE-0000000003])
      --> KTABLE-JOINOTHER-0000000009
      <-- KSTREAM-SOURCE-0000000004
    Processor: KTABLE-JOINOTHER-0000000009 (stores: [left-STATE-STORE-0000000000])
      --> KTABLE-MERGE-0000000007
      <-- KTABLE-SOURCE-0000000005
    Processor: KTABLE-JOINTHIS-0000000008 (stores: [right-STATE-STORE-0000000003])
      --> KTABLE-MERGE-0000000007
      <-- KTABLE-SOURCE-0000000002
    Processor: KTABLE-MERGE-0000000007 (stores: [KTABLE-MERGE-STATE-STORE-0000000006])
      --> none
      <-- KTABLE-JOINOTHER-0000000009, KTABLE-JOINTHIS-0000000008

`
	if got := build(t, b).Describe(); got != wantDescribe {
		t.Errorf("Describe() =\n%s\nwant\n%s", got, wantDescribe)
	}
}

// A filtered table joined twice is materialized once: both joins read
// (and hang below) the one store.
func TestTableJoinMaterializesOnce(t *testing.T) {
	b := kstream.NewBuilder()
	users := ktable.Table(b, strStr, "users")
	active := users.Filter(func(_, v string) bool { return v != "gone" })
	ktable.Join(users, active, func(a, b string) string { return a + b })
	ktable.LeftJoin(active, users, func(a string, b *string) string { return a })
	desc := build(t, b).Describe()
	if got := strings.Count(desc, "Processor: KTABLE-MATERIALIZE-"); got != 1 {
		t.Errorf("Describe() has %d KTABLE-MATERIALIZE nodes, want 1:\n%s", got, desc)
	}
	if want := "Processor: KTABLE-MATERIALIZE-0000000005 (stores: [KTABLE-FILTER-STATE-STORE-0000000004])\n" +
		"      --> KTABLE-JOINOTHER-0000000008, KTABLE-JOINTHIS-0000000010\n"; !strings.Contains(desc, want) {
		t.Errorf("Describe() lacks %q:\n%s", want, desc)
	}
	if active.StoreName() != "KTABLE-FILTER-STATE-STORE-0000000004" {
		t.Errorf("StoreName() of the filtered table after the joins = %q", active.StoreName())
	}
}
