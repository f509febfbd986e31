package kstream_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// Stream–stream join tests: the expected outputs are worked out by hand
// from the join's rules (see "Joins" in the package doc). Windows are
// written in ms; a left record at t joins right records in [t-before,
// t+after]; a left record is late when t+after+grace is below stream time
// (a right one: t+before+grace); a null result comes once stream time
// passes t+before+after+grace.

type joinKind string

const (
	innerJoin joinKind = "inner"
	leftJoin  joinKind = "left"
	outerJoin joinKind = "outer"
)

func orNull(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// addJoin joins l and r with kind, values joined as "left+right" (a
// missing side as "null").
func addJoin(kind joinKind, l, r *kstream.KStream[string, string], w kstream.JoinWindows, sj ...kstream.StreamJoined[string, string, string]) *kstream.KStream[string, string] {
	switch kind {
	case leftJoin:
		return kstream.LeftJoin(l, r, func(lv string, rv *string) string { return lv + "+" + orNull(rv) }, w, sj...)
	case outerJoin:
		return kstream.OuterJoin(l, r, func(lv, rv *string) string { return orNull(lv) + "+" + orNull(rv) }, w, sj...)
	}
	return kstream.Join(l, r, func(lv, rv string) string { return lv + "+" + rv }, w, sj...)
}

// joinDriver runs "left" joined with "right" into "out".
func joinDriver(t *testing.T, kind joinKind, w kstream.JoinWindows, sj ...kstream.StreamJoined[string, string, string]) (d *testutil.Driver, left, right *testutil.TestInputTopic[string, string], out *testutil.TestOutputTopic[string, string]) {
	t.Helper()
	b := kstream.NewBuilder()
	addJoin(kind, kstream.Stream(b, strStr, "left"), kstream.Stream(b, strStr, "right"), w, sj...).To("out")
	d = testutil.NewDriver(t, build(t, b))
	return d, strIn(d, "left"), strIn(d, "right"), strOut(d, "out")
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func TestJoinInner(t *testing.T) {
	d, left, right, out := joinDriver(t, innerJoin, kstream.JoinTimeDifferenceAndGrace(ms(10), ms(5)))
	left.PipeAt("a", "A1", at(100))  // stream time 100; nothing to join
	right.PipeAt("a", "a1", at(105)) // left window [95, 115]: A1
	right.PipeAt("b", "b1", at(106))
	left.PipeAt("a", "A2", at(112))  // right window [102, 122]: a1
	right.PipeAt("a", "a2", at(98))  // out of order, 98+10+5 >= 112: left [88, 108]: A1
	left.PipeAt("a", "A3", at(95))   // 95+10+5 < 112: late, although a1 and a2 are in its window
	left.PipeAt("b", "B1", at(100))  // 100+10+5 >= 112: right [90, 110]: b1
	right.PipeAt("c", "c1", at(200)) // nothing of c on the left
	wantRecs(t, "out", readAll(t, out), []kv{
		{"a", "A1+a1", 105}, {"a", "A2+a1", 112}, {"a", "A1+a2", 100}, {"b", "B1+b1", 106},
	})
	if n := d.Dropped("late"); n != 1 {
		t.Errorf("dropped %d late records, want 1 (A3)", n)
	}
}

// TestJoinWindowBoundsInclusive: records exactly before or after apart
// join, one ms further do not.
func TestJoinWindowBoundsInclusive(t *testing.T) {
	_, left, right, out := joinDriver(t, innerJoin, kstream.JoinTimeDifferenceAndGrace(ms(10), ms(100)))
	left.PipeAt("a", "A", at(100))
	right.PipeAt("a", "r110", at(110))
	right.PipeAt("a", "r111", at(111))
	right.PipeAt("a", "r90", at(90))
	right.PipeAt("a", "r89", at(89))
	wantRecs(t, "out", readAll(t, out), []kv{{"a", "A+r110", 110}, {"a", "A+r90", 100}})
}

// TestJoinOldestMatchRetained: the stores keep a record as long as a
// record that is not late can still match it. Here the right record at 90
// is taken (90+10 reaches stream time 100) and its window reaches back to
// 80, exactly before+after+grace behind the left store's latest record.
func TestJoinOldestMatchRetained(t *testing.T) {
	_, left, right, out := joinDriver(t, innerJoin, kstream.JoinTimeDifferenceWithNoGrace(ms(10)))
	left.PipeAt("a", "A80", at(80))
	left.PipeAt("b", "B100", at(100))
	right.PipeAt("a", "r90", at(90))
	wantRecs(t, "out", readAll(t, out), []kv{{"a", "A80+r90", 90}})
}

// TestJoinLeftNoSpuriousNull: a left record's null result waits until no
// right record can still match it; a match that arrives out of order but
// in time replaces it. Kafka Streams would forward A1+null at stream time
// 111 (window end 110 plus no grace) and then A1+a1 too.
func TestJoinLeftNoSpuriousNull(t *testing.T) {
	// size 20, no grace: a null result is due once t+20 < stream time.
	d, left, right, out := joinDriver(t, leftJoin, kstream.JoinTimeDifferenceWithNoGrace(ms(10)))
	left.PipeAt("a", "A1", at(100))
	left.PipeAt("b", "B1", at(101))
	left.PipeAt("z", "Z1", at(111))
	if got := readAll(t, out); len(got) != 0 {
		t.Fatalf("null results before their time: %+v", got)
	}
	right.PipeAt("a", "a1", at(105)) // 105+10 >= 111, not late: left [95, 115]: A1
	right.PipeAt("y", "y1", at(121)) // B1 is due after 121
	wantRecs(t, "out", readAll(t, out), []kv{{"a", "A1+a1", 105}})
	right.PipeAt("y", "y2", at(122)) // B1: 101+20 < 122
	right.PipeAt("b", "b1", at(100)) // 100+10 < 122: late, dropped; B1 had its null result
	right.PipeAt("y", "y3", at(200)) // Z1
	wantRecs(t, "out", readAll(t, out), []kv{{"b", "B1+null", 101}, {"z", "Z1+null", 111}})
	if n := d.Dropped("late"); n != 1 {
		t.Errorf("dropped %d late records, want 1 (b1)", n)
	}
}

func TestJoinOuter(t *testing.T) {
	// size 20, grace 5: a null result is due once t+25 < stream time.
	d, left, right, out := joinDriver(t, outerJoin, kstream.JoinTimeDifferenceAndGrace(ms(10), ms(5)))
	left.PipeAt("a", "A1", at(100))
	right.PipeAt("b", "b1", at(103))
	right.PipeAt("a", "a1", at(104)) // A1 matched: it no longer waits
	left.PipeAt("c", "C1", at(110))
	right.PipeAt("c", "c1", at(90)) // 90+10+5 < 110: late
	wantRecs(t, "out", readAll(t, out), []kv{{"a", "A1+a1", 104}})
	left.PipeAt("d", "D1", at(128)) // b1 due after 128
	wantRecs(t, "out", readAll(t, out), nil)
	left.PipeAt("d", "D2", at(129))  // b1: 103+25 < 129
	right.PipeAt("d", "d1", at(130)) // D1 and D2 matched
	left.PipeAt("e", "E1", at(200))  // C1: 110+25 < 200; E1 waits
	wantRecs(t, "out", readAll(t, out), []kv{
		{"b", "null+b1", 103}, {"d", "D1+d1", 130}, {"d", "D2+d1", 130}, {"c", "C1+null", 110},
	})
	if n := d.Dropped("late"); n != 1 {
		t.Errorf("dropped %d late records, want 1 (c1)", n)
	}
}

// TestJoinNullResultsInStoreOrder: null results due at once come oldest
// first, a right record before a left one of the same time (Kafka's
// shared-store key order), and with the triggering record's timestamp
// untouched in theirs.
func TestJoinNullResultsInStoreOrder(t *testing.T) {
	_, left, right, out := joinDriver(t, outerJoin, kstream.JoinTimeDifferenceWithNoGrace(ms(5)))
	left.PipeAt("b", "B", at(102))
	left.PipeAt("a", "A", at(100))
	right.PipeAt("c", "c", at(100))
	left.PipeAt("x", "X", at(200))
	wantRecs(t, "out", readAll(t, out), []kv{{"c", "null+c", 100}, {"a", "A+null", 100}, {"b", "B+null", 102}})
}

// TestJoinAsymmetricWindows: Before and After set each side of a left
// record's window; a right record sees the mirror image.
func TestJoinAsymmetricWindows(t *testing.T) {
	t.Run("before 5 after 20", func(t *testing.T) {
		// A left record at t joins right records in [t-5, t+20]; a right
		// one at t left records in [t-20, t+5]. Left late: t+20 < time;
		// right late: t+5 < time.
		w := kstream.JoinTimeDifferenceWithNoGrace(0).Before(ms(5)).After(ms(20))
		d, left, right, out := joinDriver(t, innerJoin, w)
		left.PipeAt("a", "A1", at(100))
		right.PipeAt("a", "a1", at(96))  // left [76, 101]: A1
		right.PipeAt("a", "a2", at(94))  // 94+5 < 100: late
		right.PipeAt("a", "a3", at(119)) // left [99, 124]: A1
		right.PipeAt("a", "a4", at(121)) // left [101, 126]: none
		left.PipeAt("a", "A2", at(116))  // 116+20 >= 121; right [111, 136]: a3, a4
		left.PipeAt("a", "A3", at(99))   // 99+20 < 121: late
		wantRecs(t, "out", readAll(t, out), []kv{
			{"a", "A1+a1", 100}, {"a", "A1+a3", 119}, {"a", "A2+a3", 119}, {"a", "A2+a4", 121},
		})
		if n := d.Dropped("late"); n != 2 {
			t.Errorf("dropped %d late records, want 2 (a2, A3)", n)
		}
	})
	t.Run("negative before", func(t *testing.T) {
		// A left record at t joins right records in [t+5, t+10] only.
		w := kstream.JoinTimeDifferenceAndGrace(0, ms(100)).Before(ms(-5)).After(ms(10))
		_, left, right, out := joinDriver(t, innerJoin, w)
		left.PipeAt("a", "A1", at(100))
		right.PipeAt("a", "a1", at(104)) // left [94, 99]
		right.PipeAt("a", "a2", at(105)) // left [95, 100]: A1
		right.PipeAt("a", "a3", at(110)) // left [100, 105]: A1
		right.PipeAt("a", "a4", at(111)) // left [101, 106]
		left.PipeAt("a", "A2", at(106))  // right [111, 116]: a4
		wantRecs(t, "out", readAll(t, out), []kv{{"a", "A1+a2", 105}, {"a", "A1+a3", 110}, {"a", "A2+a4", 111}})
	})
	t.Run("left join null results wait for the size", func(t *testing.T) {
		// Size 25, no grace: due once t+25 < time. A1's window ends at
		// 120, but a right record at 120 is taken until time 125.
		w := kstream.JoinTimeDifferenceWithNoGrace(0).Before(ms(5)).After(ms(20))
		_, left, right, out := joinDriver(t, leftJoin, w)
		left.PipeAt("a", "A1", at(100))
		left.PipeAt("b", "B1", at(100))
		left.PipeAt("x", "X", at(124))
		right.PipeAt("a", "a1", at(120)) // 120+5 >= 124: joins A1
		left.PipeAt("x", "X", at(126))   // B1: 100+25 < 126
		wantRecs(t, "out", readAll(t, out), []kv{{"a", "A1+a1", 120}, {"b", "B1+null", 100}})
	})
}

// TestJoinDuplicates: the stores retain every record, so equal records on
// both sides join pairwise; in a left join equal records wait together
// and a match releases them all.
func TestJoinDuplicates(t *testing.T) {
	t.Run("inner", func(t *testing.T) {
		_, left, right, out := joinDriver(t, innerJoin, kstream.JoinTimeDifferenceWithNoGrace(ms(10)))
		left.PipeAt("a", "A", at(100))
		left.PipeAt("a", "A", at(100))
		right.PipeAt("a", "x", at(100))
		right.PipeAt("a", "x", at(100))
		wantRecs(t, "out", readAll(t, out), []kv{{"a", "A+x", 100}, {"a", "A+x", 100}, {"a", "A+x", 100}, {"a", "A+x", 100}})
	})
	t.Run("left", func(t *testing.T) {
		_, left, right, out := joinDriver(t, leftJoin, kstream.JoinTimeDifferenceWithNoGrace(ms(10)))
		left.PipeAt("a", "A1", at(100))
		left.PipeAt("a", "A2", at(100))
		left.PipeAt("b", "B1", at(100))
		left.PipeAt("b", "B2", at(100))
		right.PipeAt("a", "x", at(105))
		left.PipeAt("z", "Z", at(200))
		wantRecs(t, "out", readAll(t, out), []kv{
			{"a", "A1+x", 105}, {"a", "A2+x", 105}, {"b", "B1+null", 100}, {"b", "B2+null", 100},
		})
	})
}

// TestJoinNilKeysAndValues: records with a nil key or value are dropped
// and counted, by every kind of join, on either side.
func TestJoinNilKeysAndValues(t *testing.T) {
	for _, kind := range []joinKind{innerJoin, leftJoin, outerJoin} {
		t.Run(string(kind), func(t *testing.T) {
			d, left, right, out := joinDriver(t, kind, kstream.JoinTimeDifferenceWithNoGrace(ms(10)))
			left.PipeRaw(nil, []byte("L"), at(100))
			right.PipeRaw(nil, []byte("R"), at(100))
			left.PipeRaw([]byte("a"), nil, at(100))
			right.PipeRaw([]byte("a"), nil, at(100))
			left.PipeAt("a", "A", at(100))
			right.PipeAt("a", "a", at(100)) // joins A only
			wantRecs(t, "out", readAll(t, out), []kv{{"a", "A+a", 100}})
			if n := d.Dropped("null-key-or-value"); n != 4 {
				t.Errorf("dropped %d records for a nil key or value, want 4", n)
			}
		})
	}
}

// TestSelfJoin: a stream joined with itself sees every ordered pair in the
// window, a record with itself included, as in Kafka Streams.
func TestSelfJoin(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr, "in")
	addJoin(innerJoin, s, s, kstream.JoinTimeDifferenceWithNoGrace(ms(10))).To("out")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")
	in.PipeAt("a", "1", at(100))
	in.PipeAt("a", "2", at(105))
	wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{
		{"a", "1+1", 100}, {"a", "2+1", 105}, {"a", "1+2", 105}, {"a", "2+2", 105},
	})
}

// TestSelfJoinAfterKeyChange: both sides of a re-keyed self-join read one
// repartition topic, as in Kafka Streams (which still uses up the indexes
// of a second), unless the join is named: then each side has its own.
func TestSelfJoinAfterKeyChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sj     []kstream.StreamJoined[string, string, string]
		topics string
		merge  string
	}{
		{"generated", nil, "KSTREAM-KEY-SELECT-0000000001-repartition", "KSTREAM-MERGE-0000000012"},
		{"named", []kstream.StreamJoined[string, string, string]{{Name: "j"}}, "j-left-repartition j-right-repartition", "j-merge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			s := kstream.SelectKey(kstream.Stream(b, strStr, "in"), func(_, v string) string { return v[:1] })
			addJoin(innerJoin, s, s, kstream.JoinTimeDifferenceWithNoGrace(ms(10)), tc.sj...).To("out")
			topo := build(t, b)
			var topics []string
			for _, it := range topo.InternalTopics() {
				topics = append(topics, it.Name)
			}
			if strings.Join(topics, " ") != tc.topics {
				t.Errorf("internal topics %q, want %q", topics, tc.topics)
			}
			if topo.Node(tc.merge) == nil {
				t.Errorf("no merge node %s", tc.merge)
			}
			d := testutil.NewDriver(t, topo)
			in := strIn(d, "in")
			in.PipeAt("x", "a1", at(100))
			in.PipeAt("y", "a2", at(105))
			wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{
				{"a", "a1+a1", 100}, {"a", "a2+a1", 105}, {"a", "a1+a2", 105}, {"a", "a2+a2", 105},
			})
		})
	}
}

// TestJoinStoreAndNodeNames: store, changelog and node names are Kafka
// Streams', generated or made from StreamJoined's names.
func TestJoinStoreAndNodeNames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kind   joinKind
		sj     []kstream.StreamJoined[string, string, string]
		stores []string
		nodes  []string
	}{
		{"inner generated", innerJoin, nil,
			[]string{"KSTREAM-JOINTHIS-0000000004-store", "KSTREAM-JOINOTHER-0000000005-store"},
			[]string{"KSTREAM-WINDOWED-0000000002", "KSTREAM-WINDOWED-0000000003", "KSTREAM-JOINTHIS-0000000004", "KSTREAM-JOINOTHER-0000000005", "KSTREAM-MERGE-0000000006"}},
		{"left generated", leftJoin, nil,
			[]string{"KSTREAM-JOINTHIS-0000000004-store", "KSTREAM-OUTEROTHER-0000000005-store", "KSTREAM-OUTERSHARED-0000000004-store"},
			[]string{"KSTREAM-WINDOWED-0000000002", "KSTREAM-WINDOWED-0000000003", "KSTREAM-JOINTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005", "KSTREAM-MERGE-0000000006"}},
		{"outer generated", outerJoin, nil,
			[]string{"KSTREAM-OUTERTHIS-0000000004-store", "KSTREAM-OUTEROTHER-0000000005-store", "KSTREAM-OUTERSHARED-0000000004-store"},
			[]string{"KSTREAM-WINDOWED-0000000002", "KSTREAM-WINDOWED-0000000003", "KSTREAM-OUTERTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005", "KSTREAM-MERGE-0000000006"}},
		{"inner named", innerJoin, []kstream.StreamJoined[string, string, string]{kstream.StreamJoinedAs[string, string, string]("orders").WithName("j")},
			[]string{"orders-this-join-store", "orders-other-join-store"},
			[]string{"j-this-windowed", "j-other-windowed", "j-this-join", "j-other-join", "j-merge"}},
		{"left named", leftJoin, []kstream.StreamJoined[string, string, string]{kstream.StreamJoinedAs[string, string, string]("orders").WithName("j")},
			[]string{"orders-this-join-store", "orders-outer-other-join-store", "orders-left-shared-join-store"},
			[]string{"j-this-windowed", "j-other-windowed", "j-this-join", "j-outer-other-join", "j-merge"}},
		{"outer named", outerJoin, []kstream.StreamJoined[string, string, string]{kstream.StreamJoinedAs[string, string, string]("orders").WithName("j")},
			[]string{"orders-outer-this-join-store", "orders-outer-other-join-store", "orders-outer-shared-join-store"},
			[]string{"j-this-windowed", "j-other-windowed", "j-outer-this-join", "j-outer-other-join", "j-merge"}},
		{"stores named only", outerJoin, []kstream.StreamJoined[string, string, string]{kstream.StreamJoinedAs[string, string, string]("orders")},
			[]string{"orders-outer-this-join-store", "orders-outer-other-join-store", "orders-outer-shared-join-store"},
			[]string{"KSTREAM-WINDOWED-0000000002", "KSTREAM-WINDOWED-0000000003", "KSTREAM-OUTERTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005", "KSTREAM-MERGE-0000000006"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			w := kstream.JoinTimeDifferenceAndGrace(time.Second, 2*time.Second)
			addJoin(tc.kind, kstream.Stream(b, strStr, "left"), kstream.Stream(b, strStr, "right"), w, tc.sj...).To("out")
			topo := build(t, b)
			var nodes []string
			for _, n := range topo.Nodes() {
				if n.Kind == topology.KindProcessor {
					nodes = append(nodes, n.Name)
				}
			}
			if strings.Join(nodes, " ") != strings.Join(tc.nodes, " ") {
				t.Errorf("processors %q, want %q", nodes, tc.nodes)
			}
			var stores []string
			for _, s := range topo.Stores() {
				stores = append(stores, s.Name)
				if s.Caching {
					t.Errorf("store %s caches; join stores never do", s.Name)
				}
				if want := s.Kind == topology.WindowStore; s.RetainDuplicates != want {
					t.Errorf("store %s: kind %v, retains duplicates: %v", s.Name, s.Kind, s.RetainDuplicates)
				}
				if s.Kind == topology.WindowStore && (s.Retention != 4001 || s.WindowSize != 2000) {
					t.Errorf("window store %s: retention %d, size %d; want 4001 (size + grace + 1) and 2000", s.Name, s.Retention, s.WindowSize)
				}
			}
			if strings.Join(stores, " ") != strings.Join(tc.stores, " ") {
				t.Errorf("stores %q, want %q", stores, tc.stores)
			}
			c, err := topology.Compile(topo, "app")
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Subtopologies) != 1 {
				t.Fatalf("%d sub-topologies, want both sides in one", len(c.Subtopologies))
			}
			changelogs := map[string]map[string]string{}
			for _, it := range c.InternalTopics {
				changelogs[it.Name] = it.Config
			}
			for _, s := range tc.stores {
				cfg, ok := changelogs["app-"+s+"-changelog"]
				shared := strings.Contains(strings.ToLower(s), "shared")
				switch {
				case !ok:
					t.Errorf("no changelog app-%s-changelog (have %v)", s, changelogs)
				case shared && cfg["cleanup.policy"] != "compact":
					t.Errorf("%s: changelog config %v, want compacted", s, cfg)
				case !shared && (cfg["cleanup.policy"] != "compact,delete" || cfg["retention.ms"] != "86404001"):
					t.Errorf("%s: changelog config %v, want compact,delete kept a day past retention", s, cfg)
				}
			}
		})
	}
}

// TestJoinChangelogs: the stores log Kafka Streams' layouts: window
// stores key|timestamp|sequence number with the value, the shared store
// TimestampedKeyAndJoinSide keys and ListValueStore lists of
// LeftOrRightValue, and a tombstone once a record's null result is out.
func TestJoinChangelogs(t *testing.T) {
	d, left, _, out := joinDriver(t, leftJoin, kstream.JoinTimeDifferenceWithNoGrace(ms(10)), kstream.StreamJoinedAs[string, string, string]("s"))
	left.PipeAt("b", "B1", at(100))
	left.PipeAt("b", "B2", at(100))
	ts := at(100).UnixMilli()

	window := testutil.OutputTopic(d, "test-app-s-this-join-store-changelog", serde.Bytes(), serde.String()).ReadRecords()
	if len(window) != 2 {
		t.Fatalf("this-join store changelog has %d records, want 2", len(window))
	}
	for i, r := range window {
		want := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte("b"), uint64(ts)), uint32(i+1))
		if string(r.Key) != string(want) || r.Value != []string{"B1", "B2"}[i] {
			t.Errorf("window changelog record %d: key %x value %q, want %x %q", i, r.Key, r.Value, want, []string{"B1", "B2"}[i])
		}
	}

	shared := testutil.OutputTopic(d, "test-app-s-left-shared-join-store-changelog", serde.Bytes(), serde.Bytes())
	key := append(binary.BigEndian.AppendUint64(nil, uint64(ts)), 1, 'b') // left side
	one := []byte{1, 0, 0, 0, 1, 0, 0, 0, 3, 1, 'B', '1'}
	two := []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 'B', '1', 0, 0, 0, 3, 1, 'B', '2'}
	recs := shared.ReadRecords()
	if len(recs) != 2 || string(recs[0].Key) != string(key) || string(recs[0].Value) != string(one) ||
		string(recs[1].Key) != string(key) || string(recs[1].Value) != string(two) {
		t.Fatalf("shared store changelog %+v, want key %x with values %x then %x", recs, key, one, two)
	}
	left.PipeAt("z", "Z", at(200))
	recs = shared.ReadRecords()
	// B1 and B2 are emitted and their entry deleted, then Z waits.
	if len(recs) != 2 || string(recs[0].Key) != string(key) || !recs[0].Tombstone {
		t.Fatalf("after the null results: shared changelog %+v, want a tombstone for %x first", recs, key)
	}
	wantRecs(t, "out", readAll(t, out), []kv{{"b", "B1+null", 100}, {"b", "B2+null", 100}})
}

// TestJoinInMemoryAndUnlogged: StreamJoined's store options reach the
// stores.
func TestJoinInMemoryAndUnlogged(t *testing.T) {
	b := kstream.NewBuilder()
	sj := kstream.StreamJoined[string, string, string]{StoreName: "m", InMemory: true, LoggingDisabled: true}
	addJoin(outerJoin, kstream.Stream(b, strStr, "left"), kstream.Stream(b, strStr, "right"), kstream.JoinTimeDifferenceWithNoGrace(ms(10)), sj).To("out")
	topo := build(t, b)
	for _, s := range topo.Stores() {
		if !s.InMemory || s.Logging {
			t.Errorf("store %s: in memory %v, logged %v; want in memory, unlogged", s.Name, s.InMemory, s.Logging)
		}
	}
	d := testutil.NewDriver(t, topo)
	strIn(d, "left").PipeAt("a", "A", at(100))
	strIn(d, "right").PipeAt("a", "a", at(101))
	wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{{"a", "A+a", 101}})
}

func TestJoinWindowsValidated(t *testing.T) {
	for _, w := range []kstream.JoinWindows{
		kstream.JoinTimeDifferenceWithNoGrace(-time.Second),
		kstream.JoinTimeDifferenceWithNoGrace(time.Second).Before(-2 * time.Second),
		kstream.JoinTimeDifferenceAndGrace(time.Second, -time.Second),
	} {
		b := kstream.NewBuilder()
		addJoin(innerJoin, kstream.Stream(b, strStr, "left"), kstream.Stream(b, strStr, "right"), w)
		if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "join windows") {
			before, after := w.Bounds()
			t.Errorf("windows before %v after %v grace %v: Build error %v, want one about the join windows", before, after, w.Grace(), err)
		}
	}
}

// TestJoinRepartitionsChangedKeys: a side whose key changed goes through
// a repartition topic first, named after the join or the side's node.
func TestJoinRepartitionsChangedKeys(t *testing.T) {
	rekey := func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
		return kstream.SelectKey(s, func(_, v string) string { return strings.SplitN(v, ":", 2)[0] })
	}
	for _, tc := range []struct {
		name   string
		sj     []kstream.StreamJoined[string, string, string]
		topics []string
	}{
		{"generated", nil, []string{"KSTREAM-KEY-SELECT-0000000001-repartition"}},
		{"named", []kstream.StreamJoined[string, string, string]{{Name: "j"}}, []string{"j-left-repartition"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			l := rekey(kstream.Stream(b, strStr, "left"))
			addJoin(innerJoin, l, kstream.Stream(b, strStr, "right"), kstream.JoinTimeDifferenceWithNoGrace(ms(10)), tc.sj...).To("out")
			topo := build(t, b)
			var topics []string
			for _, it := range topo.InternalTopics() {
				topics = append(topics, it.Name)
			}
			if strings.Join(topics, " ") != strings.Join(tc.topics, " ") {
				t.Errorf("internal topics %q, want %q", topics, tc.topics)
			}
			d := testutil.NewDriver(t, topo)
			strIn(d, "left").PipeAt("x", "a:1", at(100))
			strIn(d, "right").PipeAt("a", "r", at(101))
			strIn(d, "right").PipeAt("x", "r", at(101))
			wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{{"a", "a:1+r", 101}})
		})
	}
	t.Run("both sides", func(t *testing.T) {
		b := kstream.NewBuilder()
		l, r := rekey(kstream.Stream(b, strStr, "left")), rekey(kstream.Stream(b, strStr, "right"))
		addJoin(innerJoin, l, r, kstream.JoinTimeDifferenceWithNoGrace(ms(10))).To("out")
		topo := build(t, b)
		var topics []string
		for _, it := range topo.InternalTopics() {
			topics = append(topics, it.Name)
		}
		if want := "KSTREAM-KEY-SELECT-0000000001-repartition KSTREAM-KEY-SELECT-0000000003-repartition"; strings.Join(topics, " ") != want {
			t.Errorf("internal topics %q, want %q", topics, want)
		}
	})
}

// TestJoinRepartitionTakesOtherSidesCount: the repartition topic of a
// re-keyed side is created with the other side's partition count, so the
// join is co-partitioned whatever its own source has.
func TestJoinRepartitionTakesOtherSidesCount(t *testing.T) {
	b := kstream.NewBuilder()
	l := kstream.SelectKey(kstream.Stream(b, strStr, "clicks"), func(_, v string) string { return v })
	addJoin(innerJoin, l, kstream.Stream(b, strStr, "views"), kstream.JoinTimeDifferenceWithNoGrace(time.Second),
		kstream.StreamJoined[string, string, string]{Name: "j"}).To("out")
	c, err := topology.Compile(build(t, b), "app")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int32{"clicks": 4, "views": 3}
	lookup := func(topic string) (int32, bool) { n, ok := counts[topic]; return n, ok }
	if err := c.ResolvePartitions(lookup); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range c.InternalTopics {
		if it.Name == "app-j-left-repartition" {
			found = true
			if it.Partitions != 3 {
				t.Errorf("%s has %d partitions, want the 3 of views", it.Name, it.Partitions)
			}
		}
	}
	if !found {
		t.Fatalf("no topic app-j-left-repartition among %+v", c.InternalTopics)
	}
	if _, err := c.CheckCopartitioning(lookup); err != nil {
		t.Fatalf("co-partitioning: %v", err)
	}
}

// TestJoinCopartitioningChecked: both join nodes share the stores, so the
// two source topics are in one sub-topology and must have as many
// partitions; the check names the topics and their counts.
func TestJoinCopartitioningChecked(t *testing.T) {
	b := kstream.NewBuilder()
	addJoin(leftJoin, kstream.Stream(b, strStr, "clicks"), kstream.Stream(b, strStr, "views"), kstream.JoinTimeDifferenceWithNoGrace(time.Second)).To("out")
	c, err := topology.Compile(build(t, b), "app")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int32{"clicks": 4, "views": 3}
	_, err = c.CheckCopartitioning(func(topic string) (int32, bool) { n, ok := counts[topic]; return n, ok })
	if !namesTopicsAndCounts(err) {
		t.Fatalf("want an error naming clicks, views and their counts 4 and 3, got %v", err)
	}
	counts["views"] = 4
	if _, err := c.CheckCopartitioning(func(topic string) (int32, bool) { n, ok := counts[topic]; return n, ok }); err != nil {
		t.Fatalf("co-partitioned topics: %v", err)
	}
}

// TestJoinCopartitioningCheckedAtStart: an application whose join reads
// topics of 4 and 3 partitions stops at start with an error naming both.
func TestJoinCopartitioningCheckedAtStart(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "clicks", 4)
	c.CreateTopic(t, "views", 3)
	b := kstream.NewBuilder()
	addJoin(innerJoin, kstream.Stream(b, strStr, "clicks"), kstream.Stream(b, strStr, "views"), kstream.JoinTimeDifferenceWithNoGrace(time.Second)).To("out")
	app, err := kstreams.New(build(t, b), kstreams.Config{ApplicationID: "join-copart", Brokers: c.Addrs(), StateDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err = app.Run(ctx); !namesTopicsAndCounts(err) {
		t.Fatalf("want a co-partitioning error naming clicks, views and their counts 4 and 3, got %v", err)
	}
}

// TestJoinOverKfake runs a left join in an application on the in-process
// broker, over two partitions: each key's pair joins, and the key whose
// right record never comes gets its null result once a later record of
// its partition moves stream time past its window.
func TestJoinOverKfake(t *testing.T) {
	c := testutil.NewCluster(t)
	for _, topic := range []string{"orders", "payments", "paid"} {
		c.CreateTopic(t, topic, 2)
	}
	b := kstream.NewBuilder()
	addJoin(leftJoin, kstream.Stream(b, strStr, "orders"), kstream.Stream(b, strStr, "payments"), kstream.JoinTimeDifferenceWithNoGrace(time.Second),
		kstream.StreamJoinedAs[string, string, string]("pay")).To("paid")
	app, err := kstreams.New(build(t, b), kstreams.Config{ApplicationID: "join-run", Brokers: c.Addrs(), StateDir: t.TempDir(),
		CommitInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(context.Background()) }()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	rec := func(key, value string, offset time.Duration) *kgo.Record {
		return &kgo.Record{Key: []byte(key), Value: []byte(value), Timestamp: base.Add(offset)}
	}
	c.Produce(t, "orders", rec("a", "A", 0), rec("b", "B", 0), rec("c", "C", 0))
	c.Produce(t, "payments", rec("a", "pa", 100*time.Millisecond), rec("b", "pb", 200*time.Millisecond))
	if n := len(c.ConsumeAll(t, "paid", 2, 30*time.Second)); n != 2 {
		t.Fatalf("paid has %d records, want the 2 joined pairs", n)
	}
	// Only now, so that no payment can be taken after it and be late: one
	// record a minute later on each partition of orders closes C's window
	// wherever c lives.
	p := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for part := int32(0); part < 2; part++ {
		r := rec("zz", "Z", time.Minute)
		r.Topic, r.Partition = "orders", part
		if err := p.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for _, r := range c.ConsumeAll(t, "paid", 3, 30*time.Second) {
		got[string(r.Key)+"|"+string(r.Value)] = true
	}
	for _, want := range []string{"a|A+pa", "b|B+pb", "c|C+null"} {
		if !got[want] {
			t.Errorf("paid lacks %s; got %v", want, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("paid holds %v, want the 3 results only", got)
	}
	// The left store logged each order: A, B, C and the two Z.
	if n := len(c.ConsumeAll(t, "join-run-pay-this-join-store-changelog", 5, 30*time.Second)); n != 5 {
		t.Errorf("pay-this-join-store changelog has %d records, want 5", n)
	}
	app.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// namesTopicsAndCounts reports whether err is a co-partitioning error
// that names the topics clicks and views and their counts, 4 and 3.
func namesTopicsAndCounts(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	for _, want := range []string{"co-partitioned", "clicks", "views", "4", "3"} {
		if !strings.Contains(msg, want) {
			return false
		}
	}
	return true
}

// TestJoinDescribe: the join's nodes as Kafka Streams describes them, but
// for each join node also listing its own side's store, which it writes.
func TestJoinDescribe(t *testing.T) {
	b := kstream.NewBuilder()
	addJoin(leftJoin, kstream.Stream(b, strStr, "left"), kstream.Stream(b, strStr, "right"), kstream.JoinTimeDifferenceWithNoGrace(time.Second)).To("out")
	const want = `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [left])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [right])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [KSTREAM-JOINTHIS-0000000004-store])
      --> KSTREAM-JOINTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [KSTREAM-OUTEROTHER-0000000005-store])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [KSTREAM-OUTEROTHER-0000000005-store, KSTREAM-OUTERSHARED-0000000004-store, KSTREAM-JOINTHIS-0000000004-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [KSTREAM-JOINTHIS-0000000004-store, KSTREAM-OUTERSHARED-0000000004-store, KSTREAM-OUTEROTHER-0000000005-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> KSTREAM-SINK-0000000007
      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005
    Sink: KSTREAM-SINK-0000000007 (topic: out)
      <-- KSTREAM-MERGE-0000000006

`
	diffLines(t, build(t, b).Describe(), want)
}
