package kstream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

type wcount = struct {
	key        string
	start, end int64
	n          int64
}

func readWindowed(d *testutil.Driver, topic string, size time.Duration) []wcount {
	var out []wcount
	for _, r := range testutil.OutputTopic(d, topic, serde.TimeWindowed(serde.String(), size), serde.Int64()).ReadRecords() {
		out = append(out, wcount{r.Key.Key, r.Key.Start, r.Key.End, r.Value})
	}
	return out
}

// TestEmitFinalOncePerWindow: with Suppress(UntilWindowCloses) nothing is
// emitted while a window is open, and each window is emitted once, with
// its final count, when stream time passes its end plus grace; without
// it, every update is emitted.
func TestEmitFinalOncePerWindow(t *testing.T) {
	for _, final := range []bool{true, false} {
		b := kstream.NewBuilder()
		counts := kstream.WindowedCount(kstream.WindowedBy(kstream.GroupByKey(kstream.Stream(b, strStr, "in")),
			kstream.TumblingWindows(time.Minute, 10*time.Second)))
		if final {
			counts = counts.Suppress(kstream.UntilWindowCloses())
		}
		counts.ToStream().To("out", kstream.ProducedWith(serde.TimeWindowed(serde.String(), time.Minute), serde.Int64()))
		d := testutil.NewDriver(t, build(t, b))
		in := testutil.InputTopic(d, "in", serde.String(), serde.String())
		base := time.Now().Truncate(time.Hour).Add(-time.Hour)
		at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
		m0, m1 := base.UnixMilli(), base.Add(time.Minute).UnixMilli()

		in.PipeAt("a", "x", at(5))
		in.PipeAt("a", "x", at(30))
		in.PipeAt("b", "x", at(59))
		in.PipeAt("a", "x", at(65)) // next window; the first is still in grace
		in.PipeAt("a", "x", at(50)) // late but within grace: counted
		in.PipeAt("b", "x", at(69)) // stream time 69: end 60 + grace 10 < 69? not yet (needs >= 70)
		got := readWindowed(d, "out", time.Minute)
		if final && len(got) != 0 {
			t.Fatalf("emit-final emitted %v before any window closed", got)
		}
		if !final && len(got) != 6 {
			t.Fatalf("without suppression: %d updates, want 6: %v", len(got), got)
		}
		in.PipeAt("c", "x", at(70)) // closes [0, 60)
		in.PipeAt("a", "x", at(40)) // too late: dropped
		got = readWindowed(d, "out", time.Minute)
		if final {
			want := []wcount{{"a", m0, m1, 3}, {"b", m0, m1, 1}}
			if len(got) != 2 || !containsAll(got, want) {
				t.Fatalf("emit-final after close: %v, want %v", got, want)
			}
		}
		if d.Dropped("late") != 1 {
			t.Fatalf("late records dropped: %d, want 1", d.Dropped("late"))
		}
		in.PipeAt("c", "x", at(200)) // closes [60, 120)
		got = readWindowed(d, "out", time.Minute)
		if final {
			m2 := base.Add(2 * time.Minute).UnixMilli()
			want := []wcount{{"a", m1, m2, 1}, {"b", m1, m2, 1}, {"c", m1, m2, 1}}
			if len(got) != 3 || !containsAll(got, want) {
				t.Fatalf("emit-final of the second window: %v, want %v", got, want)
			}
		}
	}
}

func containsAll(got, want []wcount) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestUntilTimeLimit holds each key's updates back for the limit in stream
// time and emits only the latest; a full buffer emits its oldest early, or
// stops the application, as configured.
func TestUntilTimeLimit(t *testing.T) {
	base := time.Now().Truncate(time.Hour).Add(-time.Hour)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	topo := func(buf kstream.BufferConfig) *kstream.Builder {
		b := kstream.NewBuilder()
		kstream.Count(kstream.GroupByKey(kstream.Stream(b, strStr, "in")), kstream.MaterializedWith[string, int64](nil, nil)).
			Suppress(kstream.UntilTimeLimit(10*time.Second, buf)).ToStream().
			To("out", kstream.ProducedWith(serde.String(), serde.Int64()))
		return b
	}

	d := testutil.NewDriver(t, build(t, topo(kstream.BufferConfig{})))
	in := testutil.InputTopic(d, "in", serde.String(), serde.String())
	for _, s := range []int{0, 3, 6} {
		in.PipeAt("a", "x", at(s))
	}
	in.PipeAt("b", "x", at(9))
	if out := countOut(d, "out"); !out.IsEmpty() {
		t.Fatalf("emitted before the limit: %v", out.ReadRecords())
	}
	in.PipeAt("b", "x", at(10)) // a's first update was at 0: 10s have passed
	recs := countOut(d, "out").ReadRecords()
	if len(recs) != 1 || recs[0].Key != "a" || recs[0].Value != 3 {
		t.Fatalf("after the limit: %v, want a=3 once", recs)
	}

	// Emit early: a buffer of 2 keys emits the oldest when a third comes.
	d = testutil.NewDriver(t, build(t, topo(kstream.BufferConfig{MaxRecords: 2, OnFull: kstream.EmitEarlyWhenFull})))
	in = testutil.InputTopic(d, "in", serde.String(), serde.String())
	in.PipeAt("a", "x", at(0))
	in.PipeAt("b", "x", at(1))
	in.PipeAt("c", "x", at(2))
	recs = countOut(d, "out").ReadRecords()
	if len(recs) != 1 || recs[0].Key != "a" || d.Err() != nil {
		t.Fatalf("full buffer, emit early: %v (err %v), want a emitted", recs, d.Err())
	}

	// Shut down: the third key stops the application with an error saying so.
	d = testutil.NewDriver(t, build(t, topo(kstream.BufferConfig{MaxRecords: 2, OnFull: kstream.ShutDownWhenFull})))
	in = testutil.InputTopic(d, "in", serde.String(), serde.String())
	in.PipeAt("a", "x", at(0))
	in.PipeAt("b", "x", at(1))
	in.PipeAt("c", "x", at(2))
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("full buffer, shut down: err %v, want a buffer-full error", err)
	}
}

// TestSuppressNeedsWindowedTable: UntilWindowCloses on a plain table is a
// build error, as is a bounded emit-early buffer for it.
func TestSuppressNeedsWindowedTable(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Count(kstream.GroupByKey(kstream.Stream(b, strStr, "in"))).Suppress(kstream.UntilWindowCloses())
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "windowed") {
		t.Fatalf("Build: %v, want an error about a windowed table", err)
	}
	b = kstream.NewBuilder()
	kstream.WindowedCount(kstream.WindowedBy(kstream.GroupByKey(kstream.Stream(b, strStr, "in")), kstream.TumblingWindows(time.Minute, 0))).
		Suppress(kstream.UntilWindowCloses(kstream.BufferConfig{MaxRecords: 10}))
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "ShutDownWhenFull") {
		t.Fatalf("Build: %v, want an error about the bounded buffer", err)
	}
}

// TestWindowedReduceAggregateAndSessionMerge: reduce and aggregate per
// window, and a session aggregate whose merger combines two sessions a
// record bridges (the merged-away sessions are deleted downstream).
func TestWindowedReduceAggregateAndSessionMerge(t *testing.T) {
	base := time.Now().Truncate(time.Hour).Add(-time.Hour)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	b := kstream.NewBuilder()
	nums := kstream.GroupByKey(kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.Int64()), "in"))
	tw := kstream.WindowedBy(nums, kstream.TumblingWindows(time.Minute, time.Minute))
	ws := serde.TimeWindowed(serde.String(), time.Minute)
	kstream.WindowedReduce(tw, func(a, v int64) int64 { return max(a, v) }).ToStream().
		To("max", kstream.ProducedWith(ws, serde.Int64()))
	kstream.WindowedAggregate(tw, func() int64 { return 100 }, func(_ string, v, agg int64) int64 { return agg + v },
		kstream.MaterializedWith[string, int64](nil, serde.Int64())).ToStream().
		To("sum", kstream.ProducedWith(ws, serde.Int64()))
	sw := kstream.WindowedBySession(nums, kstream.SessionWindowsOf(10*time.Second, time.Minute))
	kstream.SessionAggregate(sw, func() int64 { return 0 }, func(_ string, v, agg int64) int64 { return agg + v },
		func(_ string, x, y int64) int64 { return x + y }, kstream.MaterializedWith[string, int64](nil, serde.Int64())).ToStream().
		To("sessions", kstream.ProducedWith(serde.SessionWindowed(serde.String()), serde.Int64()))
	d := testutil.NewDriver(t, build(t, b))
	in := testutil.InputTopic(d, "in", serde.String(), serde.Int64())
	in.PipeAt("k", 5, at(0))
	in.PipeAt("k", 3, at(20))
	in.PipeAt("k", 7, at(5))  // joins the session at 0: [0s, 5s]; 20s is 15s away
	in.PipeAt("k", 1, at(12)) // within 10s of 5s and of 20s: merges [0s, 5s] and [20s, 20s]

	last := func(topic string, sess bool) map[[2]int64]*int64 {
		s := serde.TimeWindowed(serde.String(), time.Minute)
		if sess {
			s = serde.SessionWindowed(serde.String())
		}
		out := map[[2]int64]*int64{}
		for _, r := range testutil.OutputTopic(d, topic, s, serde.Int64()).ReadRecords() {
			k := [2]int64{r.Key.Start, r.Key.End}
			if r.Value == 0 && sess {
				out[k] = nil // a merged-away session's tombstone reads as 0 here
				continue
			}
			v := r.Value
			out[k] = &v
		}
		return out
	}
	m0, m1 := base.UnixMilli(), base.Add(time.Minute).UnixMilli()
	if got := last("max", false); len(got) != 1 || *got[[2]int64{m0, m1}] != 7 {
		t.Fatalf("windowed reduce (max): %v", got)
	}
	if got := last("sum", false); len(got) != 1 || *got[[2]int64{m0, m1}] != 116 {
		t.Fatalf("windowed aggregate (100 + sum): %v", got)
	}
	sessions := last("sessions", true)
	merged := sessions[[2]int64{at(0).UnixMilli(), at(20).UnixMilli()}]
	if merged == nil || *merged != 16 {
		t.Fatalf("merged session [0s, 20s]: %v, want 16 (all: %v)", merged, sessions)
	}
	for k, v := range sessions {
		if k != [2]int64{at(0).UnixMilli(), at(20).UnixMilli()} && v != nil {
			t.Fatalf("session %v still has value %d after the merge", k, *v)
		}
	}
}
