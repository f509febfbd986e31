package kstream_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/ktable"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// cacheSettings runs a driver test with the tables' write caches on (the
// default) and off: a join must read the table's latest row either way.
var cacheSettings = []struct {
	name string
	opts []testutil.DriverOption
}{
	{"cached", nil},
	{"uncached", []testutil.DriverOption{testutil.WithCacheMaxBytes(0)}},
}

// pipeClicksAndUsers feeds the story every stream–table join test checks:
// clicks arrive before their user exists, after, after the user changed
// (with a timestamp older than the change), after the user was deleted,
// and without a key or a value.
func pipeClicksAndUsers(d *testutil.Driver) {
	clicks, users := strIn(d, "clicks"), strIn(d, "users")
	clicks.PipeAt("alice", "c1", at(1)) // no row yet
	users.PipeAt("alice", "paris", at(2))
	clicks.PipeAt("alice", "c2", at(3))
	clicks.PipeAt("bob", "c3", at(4)) // bob has no row
	users.PipeAt("alice", "rome", at(10))
	clicks.PipeAt("alice", "c4", at(5))         // older than the change: joins the current row
	users.PipeRaw([]byte("alice"), nil, at(11)) // delete
	clicks.PipeAt("alice", "c5", at(12))
	users.PipeAt("alice", "oslo", at(13))
	clicks.PipeRaw(nil, []byte("c6"), at(14))    // no key
	clicks.PipeRaw([]byte("alice"), nil, at(15)) // no value
	clicks.PipeAt("alice", "c7", at(16))
}

func TestJoinTable(t *testing.T) {
	for _, cs := range cacheSettings {
		t.Run(cs.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			clicks := kstream.Stream(b, strStr, "clicks")
			users := ktable.Table(b, strStr, "users", kstream.MaterializedAs[string, string]("users"))
			kstream.JoinTable(clicks, users, func(c, city string) string { return c + "@" + city }).To("out")
			d := testutil.NewDriver(t, build(t, b), cs.opts...)
			pipeClicksAndUsers(d)

			wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{
				{"alice", "c2@paris", 3},
				{"alice", "c4@rome", 5},
				{"alice", "c7@oslo", 16},
			})
			if n := d.Dropped("null-key-or-value"); n != 2 {
				t.Errorf("dropped %d records without key or value, want 2", n)
			}
		})
	}
}

func TestLeftJoinTable(t *testing.T) {
	for _, cs := range cacheSettings {
		t.Run(cs.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			clicks := kstream.Stream(b, strStr, "clicks")
			users := ktable.Table(b, strStr, "users")
			kstream.LeftJoinTable(clicks, users, func(c string, city *string) string {
				if city == nil {
					return c + "@?"
				}
				return c + "@" + *city
			}).To("out")
			d := testutil.NewDriver(t, build(t, b), cs.opts...)
			pipeClicksAndUsers(d)

			wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{
				{"alice", "c1@?", 1},
				{"alice", "c2@paris", 3},
				{"bob", "c3@?", 4},
				{"alice", "c4@rome", 5},
				{"alice", "c5@?", 12},
				{"alice", "c7@oslo", 16},
			})
			if n := d.Dropped("null-key-or-value"); n != 2 {
				t.Errorf("dropped %d records without key or value, want 2", n)
			}
		})
	}
}

// The join node reads the table's store, so both sources are in one
// sub-topology (and must be co-partitioned); the table side has no edge to
// the join.
func TestJoinTableDescribe(t *testing.T) {
	b := kstream.NewBuilder()
	clicks := kstream.Stream(b, strStr, "clicks")
	users := ktable.Table(b, strStr, "users", kstream.MaterializedAs[string, string]("users"))
	kstream.LeftJoinTable(clicks, users, func(c string, city *string) string { return c }).To("out")
	const want = `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [clicks])
      --> KSTREAM-LEFTJOIN-0000000003
    Source: KSTREAM-SOURCE-0000000001 (topics: [users])
      --> KTABLE-SOURCE-0000000002
    Processor: KSTREAM-LEFTJOIN-0000000003 (stores: [users])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KTABLE-SOURCE-0000000002 (stores: [users])
      --> none
      <-- KSTREAM-SOURCE-0000000001
    Sink: KSTREAM-SINK-0000000004 (topic: out)
      <-- KSTREAM-LEFTJOIN-0000000003

`
	diffLines(t, build(t, b).Describe(), want)
}

// order is a click keyed by its own id whose value names the user: it must
// be re-keyed by user, and so repartitioned, before the join.
func rekeyedJoin(t *testing.T, j ...kstream.Joined[string, string, string]) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	clicks := kstream.Stream(b, strStr, "clicks") // key: click id, value: user
	users := ktable.Table(b, strStr, "users", kstream.MaterializedAs[string, string]("users"))
	byUser := kstream.SelectKey(clicks, func(_, user string) string { return user })
	kstream.JoinTable(byUser, users, func(user, city string) string { return user + "@" + city }, j...).To("out")
	return build(t, b)
}

func TestJoinTableRepartitionsAReKeyedStream(t *testing.T) {
	for _, tc := range []struct {
		name           string
		joined         []kstream.Joined[string, string, string]
		topic          string
		joinNode, sink string
	}{
		{
			name:     "generated names",
			topic:    "KSTREAM-KEY-SELECT-0000000003-repartition",
			joinNode: "KSTREAM-JOIN-0000000007",
			sink:     "KSTREAM-SINK-0000000004",
		},
		{
			name:     "named join",
			joined:   []kstream.Joined[string, string, string]{kstream.JoinedAs[string, string, string]("enrich")},
			topic:    "enrich-repartition",
			joinNode: "enrich",
			sink:     "enrich-repartition-sink",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := rekeyedJoin(t, tc.joined...)
			var topics []string
			for _, it := range topo.InternalTopics() {
				topics = append(topics, it.Name)
			}
			if want := []string{tc.topic}; !reflect.DeepEqual(topics, want) {
				t.Errorf("internal topics %q, want %q", topics, want)
			}
			desc := topo.Describe()
			for _, s := range []string{
				"Sink: " + tc.sink + " (topic: " + tc.topic + ")",
				"Processor: " + tc.joinNode + " (stores: [users])",
				"Sub-topology: 1",
			} {
				if !strings.Contains(desc, s) {
					t.Errorf("Describe() does not contain %q:\n%s", s, desc)
				}
			}

			d := testutil.NewDriver(t, topo)
			clicks, users := strIn(d, "clicks"), strIn(d, "users")
			users.PipeAt("alice", "paris", at(1))
			users.PipeAt("bob", "oslo", at(2))
			clicks.PipeAt("click-1", "alice", at(3))
			clicks.PipeAt("click-2", "bob", at(4))
			clicks.PipeAt("click-3", "carol", at(5)) // no row
			users.PipeAt("alice", "rome", at(6))
			clicks.PipeAt("click-4", "alice", at(7))

			wantRecs(t, "repartition", readAll(t, strOut(d, "test-app-"+tc.topic)), []kv{
				{"alice", "alice", 3}, {"bob", "bob", 4}, {"carol", "carol", 5}, {"alice", "alice", 7},
			})
			wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{
				{"alice", "alice@paris", 3}, {"bob", "bob@oslo", 4}, {"alice", "alice@rome", 7},
			})
		})
	}
}

// A table that is not materialized (here a Filter) is materialized for the
// join: the join sees the filtered rows, and a row the filter drops is gone
// for the join too.
func TestJoinTableMaterializesAFilteredTable(t *testing.T) {
	for _, cs := range cacheSettings {
		t.Run(cs.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			clicks := kstream.Stream(b, strStr, "clicks")
			users := ktable.Table(b, strStr, "users")
			open := users.Filter(func(_, city string) bool { return city != "closed" })
			if open.StoreName() != "" {
				t.Fatalf("a filtered table has store %q before the join", open.StoreName())
			}
			kstream.LeftJoinTable(clicks, open, func(c string, city *string) string {
				if city == nil {
					return c + "@?"
				}
				return c + "@" + *city
			}).To("out")
			if open.StoreName() != "KTABLE-FILTER-STATE-STORE-0000000005" {
				t.Errorf("StoreName() after the join = %q", open.StoreName())
			}
			d := testutil.NewDriver(t, build(t, b), cs.opts...)
			clicksIn, usersIn := strIn(d, "clicks"), strIn(d, "users")
			usersIn.PipeAt("alice", "paris", at(1))
			clicksIn.PipeAt("alice", "c1", at(2))
			usersIn.PipeAt("alice", "closed", at(3)) // filtered out: the row is deleted
			clicksIn.PipeAt("alice", "c2", at(4))
			usersIn.PipeAt("alice", "rome", at(5))
			clicksIn.PipeAt("alice", "c3", at(6))

			wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{
				{"alice", "c1@paris", 2}, {"alice", "c2@?", 4}, {"alice", "c3@rome", 6},
			})
			wantStore(t, storeContents(t, d, open.StoreName(), serde.String()), map[string]string{"alice": "rome"})
		})
	}
}

func TestJoinTableOfAWindowedTableFailsToBuild(t *testing.T) {
	b := kstream.NewBuilder()
	clicks := kstream.Stream(b, strStr, "clicks")
	counts := kstream.WindowedCount(kstream.WindowedBy(kstream.GroupByKey(clicks), kstream.TumblingWindows(time.Minute, 0)))
	keyed := kstream.Map(clicks, func(k, v string) (kstream.Windowed[string], string) {
		return kstream.Windowed[string]{Key: k}, v
	})
	kstream.JoinTable(keyed, counts, func(v string, n int64) string { return v }).To("out")
	_, err := b.Build()
	if err == nil || !strings.Contains(err.Error(), "joins of windowed tables are not supported") {
		t.Fatalf("Build() = %v, want an error about windowed tables", err)
	}
}
