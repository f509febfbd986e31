package kstream_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/statemgr"
	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// The property tests feed random streams with out-of-order timestamps
// through a windowed count with emit-final (Suppress(UntilWindowCloses)),
// then a record far in the future on another key to close every window,
// and compare what was emitted with a brute-force reference computed here
// from the records alone.

type wevent struct {
	key string
	ts  int64 // ms
}

type winKey struct {
	key        string
	start, end int64
}

// randomEvents makes n events over 3 keys, mostly in time order with
// jitter, some far behind (late).
func randomEvents(rng *rand.Rand, base int64, n int, step, jitter int64) []wevent {
	out := make([]wevent, n)
	for i := range out {
		ts := base + int64(i)*step + rng.Int64N(2*jitter+1) - jitter
		if rng.IntN(10) == 0 {
			ts -= 5 * jitter // a straggler
		}
		out[i] = wevent{key: fmt.Sprintf("k%d", rng.IntN(3)), ts: max(base, ts)}
	}
	return out
}

// windowSet returns the windows that exist after the events seen so far
// (accepted ones), for windows defined by records.
type windowsOf func(accepted []wevent, key string) []winKey

// referenceFinal computes the final count of every window: the number of
// accepted records in it as of the last arrival at which the window
// existed and was open, and which records were late (no open window could
// take them). open(w, closeTime) says whether a window is open.
func referenceFinal(events []wevent, grace int64, canTake func(ts, closeTime int64) bool,
	windows windowsOf, open func(w winKey, closeTime int64) bool) (final map[winKey]int64, late int) {
	final = map[winKey]int64{}
	observed := int64(-1)
	var accepted []wevent
	for _, e := range events {
		observed = max(observed, e.ts)
		closeTime := observed - grace
		if !canTake(e.ts, closeTime) {
			late++
			continue
		}
		accepted = append(accepted, e)
		for _, w := range windows(accepted, e.key) {
			if !open(w, closeTime) {
				continue
			}
			n := int64(0)
			for _, a := range accepted {
				if a.key == w.key && a.ts >= w.start && a.ts <= w.end {
					n++
				}
			}
			if n > 0 {
				final[w] = n
			}
		}
	}
	return final, late
}

// emitted runs events through a driver and returns the final results on
// "out" (keyed by window), failing on a window emitted twice.
func emitted(t *testing.T, b *kstream.Builder, ws serde.Serde[kstream.Windowed[string]], events []wevent, flushAt int64, inclusiveEnd bool) (map[winKey]int64, *testutil.Driver) {
	t.Helper()
	d := testutil.NewDriver(t, build(t, b))
	in := testutil.InputTopic(d, "events", serde.String(), serde.String())
	for _, e := range events {
		in.PipeAt(e.key, "v", time.UnixMilli(e.ts))
	}
	in.PipeAt("flush", "v", time.UnixMilli(flushAt))
	out := map[winKey]int64{}
	for _, r := range testutil.OutputTopic(d, "out", ws, serde.Int64()).ReadRecords() {
		if r.Key.Key == "flush" {
			continue
		}
		end := r.Key.End
		if !inclusiveEnd {
			end-- // compare as closed intervals
		}
		w := winKey{r.Key.Key, r.Key.Start, end}
		if _, dup := out[w]; dup {
			t.Fatalf("window %+v emitted twice", w)
		}
		out[w] = r.Value
	}
	return out, d
}

func compareFinal(t *testing.T, got, want map[winKey]int64) {
	t.Helper()
	var keys []winKey
	for w := range want {
		keys = append(keys, w)
	}
	for w := range got {
		if _, ok := want[w]; !ok {
			keys = append(keys, w)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].key != keys[j].key {
			return keys[i].key < keys[j].key
		}
		return keys[i].start < keys[j].start
	})
	bad := 0
	for _, w := range keys {
		if got[w] != want[w] {
			bad++
			if bad <= 10 {
				t.Errorf("window %s [%d, %d]: emitted %d, reference %d", w.key, w.start, w.end, got[w], want[w])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d windows differ", bad, len(keys))
	}
}

func countTopology(agg func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[kstream.Windowed[string], int64], ws serde.Serde[kstream.Windowed[string]]) *kstream.Builder {
	return windowCountTopology(agg, ws, true)
}

// windowCountTopology writes the windowed counts agg makes of "events" to
// "out": with emit-final when suppress, else every update that reaches
// the sink.
func windowCountTopology(agg func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[kstream.Windowed[string], int64], ws serde.Serde[kstream.Windowed[string]], suppress bool) *kstream.Builder {
	b := kstream.NewBuilder()
	g := kstream.GroupByKey(kstream.Stream(b, strStr, "events"))
	counts := agg(g)
	if suppress {
		counts = counts.Suppress(kstream.UntilWindowCloses())
	}
	counts.ToStream().To("out", kstream.ProducedWith(ws, serde.Int64()))
	return b
}

// timeWindowsReference is referenceFinal for time windows.
func timeWindowsReference(events []wevent, size, adv, grace int64) (map[winKey]int64, int) {
	startsOf := func(ts int64) []int64 {
		var out []int64
		for s := ts - ts%adv; s > ts-size; s -= adv {
			out = append(out, s)
		}
		return out
	}
	return referenceFinal(events, grace,
		func(ts, closeTime int64) bool {
			for _, s := range startsOf(ts) {
				if s+size > closeTime {
					return true
				}
			}
			return false
		},
		func(accepted []wevent, key string) []winKey {
			var out []winKey
			e := accepted[len(accepted)-1]
			for _, s := range startsOf(e.ts) {
				out = append(out, winKey{key, s, s + size - 1})
			}
			return out
		},
		func(w winKey, closeTime int64) bool { return w.end+1 > closeTime })
}

// slidingReference is referenceFinal for sliding windows.
func slidingReference(events []wevent, diff, grace int64) (map[winKey]int64, int) {
	return referenceFinal(events, grace,
		func(ts, closeTime int64) bool { return ts+diff >= closeTime },
		func(accepted []wevent, key string) []winKey {
			// Every window the accepted records of key define.
			var ts []int64
			for _, a := range accepted {
				if a.key == key {
					ts = append(ts, a.ts)
				}
			}
			seen := map[winKey]bool{}
			var out []winKey
			add := func(w winKey) {
				if !seen[w] {
					seen[w] = true
					out = append(out, w)
				}
			}
			for _, t1 := range ts {
				add(winKey{key, max(0, t1-diff), max(0, t1-diff) + diff})
				for _, t2 := range ts {
					if t2 > t1 && t2 <= t1+diff {
						add(winKey{key, t1 + 1, t1 + 1 + diff})
						break
					}
				}
			}
			return out
		},
		func(w winKey, closeTime int64) bool { return w.end >= closeTime })
}

var timeWindowCases = []struct {
	name                string
	size, advance, grac time.Duration
}{
	{"tumbling", time.Minute, time.Minute, 10 * time.Second},
	{"tumbling no grace", time.Minute, time.Minute, 0},
	{"hopping", time.Minute, 20 * time.Second, 15 * time.Second},
}

func TestTimeWindowsMatchReference(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli()
	for _, tc := range timeWindowCases {
		for seed := range uint64(5) {
			t.Run(fmt.Sprintf("%s/seed%d", tc.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				events := randomEvents(rng, base, 400, 1000, 8000)
				want, late := timeWindowsReference(events, tc.size.Milliseconds(), tc.advance.Milliseconds(), tc.grac.Milliseconds())
				ws := serde.TimeWindowed(serde.String(), tc.size)
				b := countTopology(func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[kstream.Windowed[string], int64] {
					return kstream.WindowedCount(kstream.WindowedBy(g, kstream.HoppingWindows(tc.size, tc.advance, tc.grac)),
						kstream.MaterializedAs[string, int64]("counts"))
				}, ws)
				got, d := emitted(t, b, ws, events, base+int64(len(events))*1000+24*3600*1000, false)
				compareFinal(t, got, want)
				if d.Dropped("late") != int64(late) {
					t.Fatalf("dropped %d late records, reference %d", d.Dropped("late"), late)
				}
				if late == 0 && tc.grac < 15*time.Second {
					t.Fatal("the stream had no late records: the test checks nothing about grace")
				}
			})
		}
	}
}

func TestSlidingWindowsMatchReference(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli()
	const diff, grace = int64(10_000), int64(5_000)
	for seed := range uint64(5) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			events := randomEvents(rng, base, 300, 1500, 6000)
			want, late := slidingReference(events, diff, grace)
			ws := serde.TimeWindowed(serde.String(), time.Duration(diff)*time.Millisecond)
			b := countTopology(func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[kstream.Windowed[string], int64] {
				return kstream.WindowedCount(kstream.WindowedBySliding(g, kstream.SlidingWindowsOf(time.Duration(diff)*time.Millisecond, time.Duration(grace)*time.Millisecond)))
			}, ws)
			got, d := emitted(t, b, ws, events, base+int64(len(events))*1500+24*3600*1000, true)
			compareFinal(t, got, want)
			if d.Dropped("late") != int64(late) || late == 0 {
				t.Fatalf("dropped %d late records, reference %d (want some)", d.Dropped("late"), late)
			}
		})
	}
}

// sessionReference computes the final count of every session: sessions
// as sets of records, merged as records arrive; a record whose merged
// session would end before the close time is late.
func sessionReference(events []wevent, gap, grace int64) (map[winKey]int64, int) {
	type sess struct {
		key        string
		start, end int64
		n          int64
	}
	var live []*sess
	observed := int64(-1)
	late := 0
	for _, e := range events {
		observed = max(observed, e.ts)
		closeTime := observed - grace
		closed := func(end int64) bool { return end+gap <= closeTime }
		var hit []*sess
		var rest []*sess
		start, end := e.ts, e.ts
		for _, s := range live {
			if s.key == e.key && s.end >= e.ts-gap && s.start <= e.ts+gap && !closed(s.end) {
				hit = append(hit, s)
				start, end = min(start, s.start), max(end, s.end)
			} else {
				rest = append(rest, s)
			}
		}
		if closed(end) {
			late++
			continue
		}
		m := &sess{key: e.key, start: start, end: end, n: 1}
		for _, s := range hit {
			m.n += s.n
		}
		live = append(rest, m)
	}
	want := map[winKey]int64{}
	for _, s := range live {
		want[winKey{s.key, s.start, s.end}] = s.n
	}
	return want, late
}

func TestSessionWindowsMatchReference(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli()
	const gap, grace = int64(3_000), int64(4_000)
	for seed := range uint64(5) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 13))
			events := randomEvents(rng, base, 300, 1200, 5000)
			want, late := sessionReference(events, gap, grace)
			ws := serde.SessionWindowed(serde.String())
			b := countTopology(func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[kstream.Windowed[string], int64] {
				return kstream.SessionCount(kstream.WindowedBySession(g, kstream.SessionWindowsOf(time.Duration(gap)*time.Millisecond, time.Duration(grace)*time.Millisecond)))
			}, ws)
			got, d := emitted(t, b, ws, events, base+int64(len(events))*1200+24*3600*1000, true)
			compareFinal(t, got, want)
			if d.Dropped("late") != int64(late) || late == 0 {
				t.Fatalf("dropped %d late records, reference %d (want some)", d.Dropped("late"), late)
			}
		})
	}
}

// outCollector keeps what a task sends to topic "out".
type outCollector struct{ keys, values [][]byte }

func (c *outCollector) Send(topic string, _ int32, key, value []byte, _ []topology.Header, _ int64) error {
	if topic == "out" {
		c.keys, c.values = append(c.keys, key), append(c.values, value)
	}
	return nil
}

func (*outCollector) Partitions(string) (int32, bool) { return 1, true }

// runtimeOutput runs events, then a record on key "flush" at closeAt, through
// b's one sub-topology on a task whose stores are made as the runtime makes
// them (statemgr: the windowed aggregation's store behind a write cache of
// cacheBytes), committing (flushing every store) after about one record in
// commitEvery, as the commit interval does, and at the end. It returns the
// windows written to "out" (inclusiveEnd: as the serde reports their end),
// in order, and how many records were dropped as late.
func runtimeOutput(t *testing.T, b *kstream.Builder, ws serde.Serde[kstream.Windowed[string]], events []wevent, closeAt int64,
	inclusiveEnd bool, cacheBytes int64, commitEvery int, rng *rand.Rand) (out []winCount, late int) {
	t.Helper()
	c, err := topology.Compile(build(t, b), "app")
	if err != nil || len(c.Subtopologies) != 1 {
		t.Fatalf("compile: %v, %d sub-topologies", err, len(c.Subtopologies))
	}
	st := c.Subtopologies[0]
	m, err := statemgr.Open(statemgr.Config{Task: "0_0", Dir: t.TempDir(), Specs: st.StoreSpecs, CacheBytes: cacheBytes,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	col := &outCollector{}
	tk, err := task.New(task.Config{ApplicationID: "app", Subtopology: st, Collector: col, Stores: m.Stores(),
		OnDropped: func(reason string) {
			if reason == "late" {
				late++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tk.Close() })
	for i, e := range append(slices.Clip(events), wevent{"flush", closeAt}) {
		if err := tk.Add(&kgo.Record{Topic: "events", Offset: int64(i), Key: []byte(e.key), Value: []byte("v"), Timestamp: time.UnixMilli(e.ts)}); err != nil {
			t.Fatal(err)
		}
		for {
			ok, err := tk.Process()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
		}
		if rng.IntN(commitEvery) == 0 {
			if err := tk.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tk.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range col.keys {
		k, err := ws.Deserialize("out", col.keys[i])
		if err != nil {
			t.Fatal(err)
		}
		v, err := serde.Int64().Deserialize("out", col.values[i])
		if err != nil {
			t.Fatal(err)
		}
		if k.Key == "flush" {
			continue
		}
		end := k.End
		if !inclusiveEnd {
			end--
		}
		out = append(out, winCount{winKey{k.Key, k.Start, end}, v})
	}
	return out, late
}

type winCount struct {
	w winKey
	n int64
}

// TestCachedWindowsMatchReference runs the property tests' streams through
// the runtime's store stack, where the windowed aggregation's window or
// session store is cached: with emit-final the output is the reference's, each window once;
// without, the latest update of each window is its reference count, and
// with room in the cache fewer updates come out than without it. A cache
// of a few windows evicts at nearly every record; none (a task without a
// cache budget) forwards every update at once.
func TestCachedWindowsMatchReference(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli()
	type agg = func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[kstream.Windowed[string], int64]
	type tcase struct {
		name         string
		events       []wevent
		ws           serde.Serde[kstream.Windowed[string]]
		agg          agg
		inclusiveEnd bool
		want         map[winKey]int64
		late         int
	}
	var cases []tcase
	for _, tc := range timeWindowCases {
		for seed := range uint64(2) {
			events := randomEvents(rand.New(rand.NewPCG(seed, 7)), base, 400, 1000, 8000)
			want, late := timeWindowsReference(events, tc.size.Milliseconds(), tc.advance.Milliseconds(), tc.grac.Milliseconds())
			cases = append(cases, tcase{fmt.Sprintf("%s/seed%d", tc.name, seed), events, serde.TimeWindowed(serde.String(), tc.size),
				func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[kstream.Windowed[string], int64] {
					return kstream.WindowedCount(kstream.WindowedBy(g, kstream.HoppingWindows(tc.size, tc.advance, tc.grac)),
						kstream.MaterializedAs[string, int64]("counts"))
				}, false, want, late})
		}
	}
	const diff, grace = 10 * time.Second, 5 * time.Second
	for seed := range uint64(2) {
		events := randomEvents(rand.New(rand.NewPCG(seed, 11)), base, 300, 1500, 6000)
		want, late := slidingReference(events, diff.Milliseconds(), grace.Milliseconds())
		cases = append(cases, tcase{fmt.Sprintf("sliding/seed%d", seed), events, serde.TimeWindowed(serde.String(), diff),
			func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[kstream.Windowed[string], int64] {
				return kstream.WindowedCount(kstream.WindowedBySliding(g, kstream.SlidingWindowsOf(diff, grace)))
			}, true, want, late})
	}
	const gap, sgrace = 3 * time.Second, 4 * time.Second
	for seed := range uint64(2) {
		events := randomEvents(rand.New(rand.NewPCG(seed, 13)), base, 300, 1200, 5000)
		want, late := sessionReference(events, gap.Milliseconds(), sgrace.Milliseconds())
		cases = append(cases, tcase{fmt.Sprintf("session/seed%d", seed), events, serde.SessionWindowed(serde.String()),
			func(g *kstream.KGroupedStream[string, string]) *kstream.KTable[kstream.Windowed[string], int64] {
				return kstream.SessionCount(kstream.WindowedBySession(g, kstream.SessionWindowsOf(gap, sgrace)))
			}, true, want, late})
	}
	for _, tc := range cases {
		for _, cache := range []struct {
			name        string
			bytes       int64
			commitEvery int
		}{{"none", 0, 1}, {"few windows", 400, 5}, {"roomy", 1 << 20, 50}} {
			closeAt := base + 48*3600*1000
			t.Run(tc.name+"/"+cache.name+"/emit final", func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				out, late := runtimeOutput(t, windowCountTopology(tc.agg, tc.ws, true), tc.ws, tc.events, closeAt, tc.inclusiveEnd, cache.bytes, cache.commitEvery, rng)
				got := map[winKey]int64{}
				for _, o := range out {
					if _, dup := got[o.w]; dup {
						t.Fatalf("window %+v emitted twice", o.w)
					}
					got[o.w] = o.n
				}
				compareFinal(t, got, tc.want)
				if late != tc.late {
					t.Fatalf("dropped %d late records, reference %d", late, tc.late)
				}
			})
			t.Run(tc.name+"/"+cache.name+"/every update", func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				out, late := runtimeOutput(t, windowCountTopology(tc.agg, tc.ws, false), tc.ws, tc.events, closeAt, tc.inclusiveEnd, cache.bytes, cache.commitEvery, rng)
				latest := map[winKey]int64{}
				for _, o := range out {
					latest[o.w] = o.n
				}
				compareFinal(t, latest, tc.want)
				if late != tc.late {
					t.Fatalf("dropped %d late records, reference %d", late, tc.late)
				}
				if cache.bytes == 0 {
					return
				}
				uncached, _ := runtimeOutput(t, windowCountTopology(tc.agg, tc.ws, false), tc.ws, tc.events, closeAt, tc.inclusiveEnd, 0, 1, rng)
				if cache.bytes > 1000 && len(out) >= len(uncached) {
					t.Fatalf("%d updates came out, %d without the cache: it collapsed none", len(out), len(uncached))
				}
			})
		}
	}
}

// TestWindowStoreChangelogConfig: window and session store changelogs are
// compacted and deleted, kept for the store's retention plus a day, as
// Kafka Streams configures them; the stores are declared with their kind.
func TestWindowStoreChangelogConfig(t *testing.T) {
	b := kstream.NewBuilder()
	g := kstream.GroupByKey(kstream.Stream(b, strStr, "in"))
	m := kstream.MaterializedAs[string, int64]("w")
	m.Retention = time.Hour
	kstream.WindowedCount(kstream.WindowedBy(g, kstream.TumblingWindows(time.Minute, 30*time.Second)), m)
	kstream.SessionCount(kstream.WindowedBySession(g, kstream.SessionWindowsOf(time.Minute, 0)), kstream.MaterializedAs[string, int64]("s"))
	topo := build(t, b)
	c, err := topology.Compile(topo, "app")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"app-w-changelog": fmt.Sprint((time.Hour + 24*time.Hour).Milliseconds()),
		"app-s-changelog": fmt.Sprint((2*time.Minute + 24*time.Hour).Milliseconds()),
	}
	for _, it := range c.InternalTopics {
		if ret, ok := want[it.Name]; ok {
			if it.Config["cleanup.policy"] != "compact,delete" || it.Config["retention.ms"] != ret {
				t.Errorf("%s config %v, want compact,delete and retention.ms %s", it.Name, it.Config, ret)
			}
			delete(want, it.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("changelogs missing: %v", want)
	}
	for _, st := range c.Subtopologies {
		for _, spec := range st.StoreSpecs {
			if (spec.Name == "w" && spec.Kind != topology.WindowStore) || (spec.Name == "s" && spec.Kind != topology.SessionStore) {
				t.Errorf("store %s declared as %v", spec.Name, spec.Kind)
			}
		}
	}
}
