package kstream_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/testutil"
)

// The join property tests feed random interleavings of left and right
// records, over a few keys, with timestamps out of order (some far behind)
// and some repeated keys and times, through an inner, a left and an outer join
// of the same two streams, then one left record far in the future on a
// key of its own, which closes every window. What each join emitted must
// be, as a multiset, what the reference below computes from the event
// list alone:
//
//   - stream time is the highest timestamp of the events so far; an event
//     is late when its window ended more than grace before it: a left
//     event at t when t+after+grace < stream time, a right one when
//     t+before+grace < stream time. Late events take no part;
//   - inner: every pair of a left event l and a right event r, both taken,
//     of one key, with l.t-before <= r.t <= l.t+after, with the later
//     timestamp of the two;
//   - left: inner, plus every taken left event no taken right event pairs
//     with, joined with null, at its own timestamp;
//   - outer: left, plus the same for right events.
//
// A null result the join forwarded before a match arrived would show as a
// result the reference lacks.

type joinEvent struct {
	left  bool
	key   string
	ts    int64 // ms after t0
	value string
}

// randomJoinEvents makes n events over 3 keys, at multiples of 5 ms:
// mostly in time order with
// jitter, one in ten far behind, one in eight repeating the previous
// event's key and time on either side (on the same side, a duplicate but
// for its value).
func randomJoinEvents(rng *rand.Rand, n int) []joinEvent {
	const step, jitter = 10, 40
	out := make([]joinEvent, n)
	for i := range out {
		e := joinEvent{left: rng.IntN(2) == 0, key: fmt.Sprintf("k%d", rng.IntN(3))}
		e.ts = int64(1000+i*step) + rng.Int64N(2*jitter+1) - jitter
		if rng.IntN(10) == 0 {
			e.ts -= 5 * jitter
		}
		// On a 5 ms grid, as the windows are, so records fall exactly on
		// window bounds and grace limits often.
		e.ts -= e.ts % 5
		if i > 0 && rng.IntN(8) == 0 {
			e.key, e.ts = out[i-1].key, out[i-1].ts
		}
		side := "R"
		if e.left {
			side = "L"
		}
		e.value = fmt.Sprintf("%s%d", side, i)
		out[i] = e
	}
	return out
}

// joinReference computes the multisets of "key|value@ts" each join must
// emit, and how many events are late.
func joinReference(events []joinEvent, before, after, grace int64) (inner, left, outer map[string]int, late int) {
	streamTime := int64(-1)
	var taken []joinEvent
	for _, e := range events {
		streamTime = max(streamTime, e.ts)
		reach := before
		if e.left {
			reach = after
		}
		if e.ts+reach+grace < streamTime {
			late++
			continue
		}
		taken = append(taken, e)
	}
	inner, left, outer = map[string]int{}, map[string]int{}, map[string]int{}
	add := func(key, value string, ts int64, to ...map[string]int) {
		for _, m := range to {
			m[fmt.Sprintf("%s|%s@%d", key, value, ts)]++
		}
	}
	matched := map[int]bool{}
	for i, l := range taken {
		if !l.left {
			continue
		}
		for j, r := range taken {
			if r.left || r.key != l.key || r.ts < l.ts-before || r.ts > l.ts+after {
				continue
			}
			matched[i], matched[j] = true, true
			add(l.key, l.value+"+"+r.value, max(l.ts, r.ts), inner, left, outer)
		}
	}
	for i, e := range taken {
		switch {
		case matched[i]:
		case e.left:
			add(e.key, e.value+"+null", e.ts, left, outer)
		default:
			add(e.key, "null+"+e.value, e.ts, outer)
		}
	}
	return inner, left, outer, late
}

func TestJoinsMatchReference(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		before, after, grace int64
	}{
		{"symmetric", 40, 40, 20},
		{"asymmetric no grace", 10, 60, 0},
		{"negative before", -15, 50, 30},
		{"equal times only", 0, 0, 5},
	} {
		for seed := range uint64(5) {
			t.Run(fmt.Sprintf("%s/seed%d", tc.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 17))
				events := randomJoinEvents(rng, 250)
				wantInner, wantLeft, wantOuter, late := joinReference(events, tc.before, tc.after, tc.grace)

				b := kstream.NewBuilder()
				l, r := kstream.Stream(b, strStr, "left"), kstream.Stream(b, strStr, "right")
				w := kstream.JoinTimeDifferenceAndGrace(0, ms(tc.grace)).Before(ms(tc.before)).After(ms(tc.after))
				for _, kind := range []joinKind{innerJoin, leftJoin, outerJoin} {
					addJoin(kind, l, r, w).To("out-" + string(kind))
				}
				d := testutil.NewDriver(t, build(t, b))
				in := map[bool]*testutil.TestInputTopic[string, string]{true: strIn(d, "left"), false: strIn(d, "right")}
				last := int64(0)
				for _, e := range events {
					in[e.left].PipeAt(e.key, e.value, at(e.ts))
					last = max(last, e.ts)
				}
				in[true].PipeAt("flush", "F", at(last+tc.before+tc.after+tc.grace+1000))

				for kind, want := range map[joinKind]map[string]int{innerJoin: wantInner, leftJoin: wantLeft, outerJoin: wantOuter} {
					got := map[string]int{}
					for _, r := range readAll(t, strOut(d, "out-"+string(kind))) {
						got[fmt.Sprintf("%s|%s@%d", r.Key, r.Value, r.TS)]++
					}
					compareMultisets(t, string(kind), got, want)
				}
				if d.Dropped("late") != int64(3*late) {
					t.Errorf("the three joins dropped %d late records, want 3 × %d", d.Dropped("late"), late)
				}
				if len(wantInner) == 0 || len(wantOuter) == len(wantInner) {
					t.Fatalf("reference has %d inner and %d outer results: the events test too little", len(wantInner), len(wantOuter))
				}
				if late == 0 && tc.grace < 30 {
					t.Fatal("no late events: the test checks nothing about grace")
				}
			})
		}
	}
}

func compareMultisets(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	bad := 0
	for _, k := range keys {
		if got[k] != want[k] {
			if bad++; bad <= 10 {
				t.Errorf("%s join: %s emitted %d times, reference %d", what, k, got[k], want[k])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s join: %d of %d results differ", what, bad, len(keys))
	}
}
