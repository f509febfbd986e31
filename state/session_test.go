package state

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

func openSession(t *testing.T, db *PebbleDB, o SegmentedOptions) SessionStore {
	t.Helper()
	var s SessionStore
	if db == nil {
		s = NewInMemorySessionStore("w", o)
	} else {
		var err error
		if s, err = db.SessionStore("w", o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close session store: %v", err)
		}
	})
	return s
}

func mustPutSession(t testing.TB, s SessionStore, k string, start, end int64, v string) {
	t.Helper()
	if err := s.Put([]byte(k), start, end, []byte(v)); err != nil {
		t.Fatalf("Put(%q, %d, %d): %v", k, start, end, err)
	}
}

// drainSessions reads an iterator to the end as "key[start,end]=value"
// strings (key quoted) and closes it.
func drainSessions(t testing.TB, open func() (SessionIterator, error)) []string {
	t.Helper()
	it, err := open()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for it.Next() {
		out = append(out, sess(string(it.Key()), it.Start(), it.End(), string(it.Value())))
	}
	if err := errors.Join(it.Err(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return out
}

func sess(k string, start, end int64, v string) string {
	return fmt.Sprintf("%q[%d,%d]=%s", k, start, end, v)
}

func TestSessionKeyLayout(t *testing.T) {
	got := SessionKey([]byte("ab"), 0x0102030405060708, 0x1112131415161718)
	want := []byte("ab\x11\x12\x13\x14\x15\x16\x17\x18\x01\x02\x03\x04\x05\x06\x07\x08")
	if !bytes.Equal(got, want) {
		t.Fatalf("SessionKey = %x, want %x (key | end | start)", got, want)
	}
	k, start, end, err := ParseSessionKey(got)
	if err != nil || string(k) != "ab" || start != 0x0102030405060708 || end != 0x1112131415161718 {
		t.Fatalf("ParseSessionKey = %q, %x, %x, %v", k, start, end, err)
	}
	if _, _, _, err := ParseSessionKey(make([]byte, 15)); err == nil {
		t.Fatal("ParseSessionKey of 15 bytes: no error")
	}
}

func TestSessionFindSessions(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := openSession(t, kind.db(t), SegmentedOptions{Retention: 10_000, SegmentInterval: 50})
			// "a"'s sessions span segments 0 and 3; "ab" and "a\x00" share
			// "a"'s byte range.
			for _, x := range []struct {
				k          string
				start, end int64
			}{
				{"a", 100, 150}, {"a", 0, 10}, {"ab", 5, 25}, {"a", 40, 40}, {"a\x00", 0, 45}, {"a", 20, 30}, {"", 0, 10},
			} {
				mustPutSession(t, s, x.k, x.start, x.end, fmt.Sprint(x.start, "-", x.end))
			}
			a := []string{sess("a", 0, 10, "0-10"), sess("a", 20, 30, "20-30"), sess("a", 40, 40, "40-40"), sess("a", 100, 150, "100-150")}
			for _, c := range []struct {
				name                     string
				key                      string
				earliestEnd, latestStart int64
				want                     []string
			}{
				{"all", "a", 0, 1000, a},
				{"open bounds", "a", math.MinInt64, math.MaxInt64, a},
				{"ends before earliestEnd are out", "a", 11, 1000, a[1:]},
				{"end equal to earliestEnd is in", "a", 30, 1000, a[1:]},
				{"starts after latestStart are out", "a", 0, 39, a[:2]},
				{"start equal to latestStart is in", "a", 0, 40, a[:3]},
				{"a point inside one session", "a", 25, 25, a[1:2]},
				{"a gap between sessions", "a", 31, 39, nil},
				{"merge window around 35, gap 5", "a", 30, 40, a[1:3]},
				{"late session, started early, in a later segment", "a", 120, 100, a[3:]},
				{"after everything", "a", 151, 1000, nil},
				{"earliestEnd after latestStart still finds the spanning session", "a", 140, 110, a[3:]},
				{"other key", "ab", 0, 1000, []string{sess("ab", 5, 25, "5-25")}},
				{"key with a zero byte", "a\x00", 0, 1000, []string{sess("a\x00", 0, 45, "0-45")}},
				{"empty key", "", 0, 1000, []string{sess("", 0, 10, "0-10")}},
				{"absent key", "b", 0, 1000, nil},
			} {
				got := drainSessions(t, func() (SessionIterator, error) {
					return s.FindSessions([]byte(c.key), c.earliestEnd, c.latestStart)
				})
				if !slices.Equal(got, c.want) {
					t.Errorf("%s: FindSessions(%q, %d, %d) = %q\nwant %q", c.name, c.key, c.earliestEnd, c.latestStart, got, c.want)
				}
			}
			if got := drainSessions(t, func() (SessionIterator, error) { return s.Fetch([]byte("a")) }); !slices.Equal(got, a) {
				t.Errorf("Fetch(a) = %q\nwant %q", got, a)
			}
			for _, c := range []struct {
				key        string
				start, end int64
				want       string
			}{
				{"a", 20, 30, "20-30"}, {"a", 20, 31, ""}, {"a", 21, 30, ""}, {"ab", 5, 25, "5-25"}, {"a", 5, 25, ""},
			} {
				got, err := s.FetchSession([]byte(c.key), c.start, c.end)
				if err != nil || string(got) != c.want || (got == nil) != (c.want == "") {
					t.Errorf("FetchSession(%q, %d, %d) = %q, %v, want %q", c.key, c.start, c.end, got, err, c.want)
				}
			}

			// Remove, and a merge: [20,30] and [40,40] become [20,40].
			if err := s.Remove([]byte("a"), 20, 30); err != nil {
				t.Fatal(err)
			}
			if err := s.Remove([]byte("a"), 40, 40); err != nil {
				t.Fatal(err)
			}
			mustPutSession(t, s, "a", 20, 40, "merged")
			want := []string{sess("a", 0, 10, "0-10"), sess("a", 20, 40, "merged"), sess("a", 100, 150, "100-150")}
			if got := drainSessions(t, func() (SessionIterator, error) { return s.Fetch([]byte("a")) }); !slices.Equal(got, want) {
				t.Errorf("Fetch(a) after merge = %q\nwant %q", got, want)
			}
			if got, err := s.FetchSession([]byte("a"), 20, 30); err != nil || got != nil {
				t.Errorf("FetchSession of a removed session = %q, %v", got, err)
			}
		})
	}
}

// TestSessionRetention: sessions expire by their end, segments are by end,
// and a long session that started early outlives shorter ones.
func TestSessionRetention(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			db := kind.db(t)
			s := openSession(t, db, SegmentedOptions{Retention: 300, SegmentInterval: 100})
			mustPutSession(t, s, "k", 0, 50, "short")
			mustPutSession(t, s, "j", 100, 150, "j")
			if got, want := segmentNames(t, s), []string{segName(0), segName(1)}; !slices.Equal(got, want) {
				t.Errorf("segments = %q, want %q", got, want)
			}
			mustPutSession(t, s, "k", 60, 420, "long") // segment 4, by its end
			// Observed end 420: ends <= 120 are expired, so [0,50] is,
			// with its segment (0..99); [100,150] is not.
			want := []string{sess("k", 60, 420, "long")}
			if got := drainSessions(t, func() (SessionIterator, error) { return s.Fetch([]byte("k")) }); !slices.Equal(got, want) {
				t.Errorf("Fetch(k) = %q, want %q", got, want)
			}
			if got, want := segmentNames(t, s), []string{segName(1), segName(4)}; !slices.Equal(got, want) {
				t.Errorf("segments after expiry = %q, want %q", got, want)
			}
			// A session ending at 120 is expired: skipped, no error.
			mustPutSession(t, s, "j", 110, 120, "expired")
			if got, err := s.FetchSession([]byte("j"), 110, 120); err != nil || got != nil {
				t.Errorf("FetchSession of an expired Put = %q, %v", got, err)
			}
			mustPutSession(t, s, "j", 900, 1000, "late")
			if got, want := segmentNames(t, s), []string{segName(10)}; !slices.Equal(got, want) {
				t.Errorf("segments = %q, want %q", got, want)
			}
			if db != nil {
				if got, want := segmentKeys(t, db), map[string]int{segName(10): 1}; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("keys on disk = %v, want %v", got, want)
				}
			}
			if got := drainSessions(t, func() (SessionIterator, error) { return s.Fetch([]byte("k")) }); got != nil {
				t.Errorf("Fetch(k) after expiry = %q", got)
			}
		})
	}
}

func TestLoggedSessionChangelogLayoutAndRestore(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			o := SegmentedOptions{Retention: 1000, SegmentInterval: 100}
			inner := openSession(t, kind.db(t), o)
			var rec logRecorder
			s := NewLoggedSession(inner, rec.log)
			if InnerSession(s) != inner || InnerSession(inner) != nil {
				t.Fatal("InnerSession does not unwrap the logging layer")
			}
			mustPutSession(t, s, "a", 1, 2, "v1")
			mustPutSession(t, s, "ab", 0x0102, 0x0304, "v2")
			if err := s.Remove([]byte("a"), 1, 2); err != nil {
				t.Fatal(err)
			}
			mustPutSession(t, s, "a", 5, 900, "v3")
			mustPutSession(t, s, "a", 10, 20, "v4")
			mustPutSession(t, s, "a", 5, 90, "v5")
			if err := s.Remove([]byte("a"), 10, 20); err != nil {
				t.Fatal(err)
			}
			want := []KeyValue{
				{[]byte("a\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("v1")},
				{[]byte("ab\x00\x00\x00\x00\x00\x00\x03\x04\x00\x00\x00\x00\x00\x00\x01\x02"), []byte("v2")},
				{[]byte("a\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01"), nil},
				{SessionKey([]byte("a"), 5, 900), []byte("v3")},
				{SessionKey([]byte("a"), 10, 20), []byte("v4")},
				{SessionKey([]byte("a"), 5, 90), []byte("v5")},
				{SessionKey([]byte("a"), 10, 20), nil},
			}
			if !slices.EqualFunc(rec.records, want, func(a, b KeyValue) bool {
				return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && (a.Value == nil) == (b.Value == nil)
			}) {
				t.Fatalf("changelog = %q\nwant %q", rec.records, want)
			}
			wantA := []string{sess("a", 5, 90, "v5"), sess("a", 5, 900, "v3")}
			if got := drainSessions(t, func() (SessionIterator, error) { return s.Fetch([]byte("a")) }); !slices.Equal(got, wantA) {
				t.Fatalf("logged store holds %q, want %q", got, wantA)
			}
			fresh, err := newSessionStore("w", o, memSegments{})
			if err != nil {
				t.Fatal(err)
			}
			for _, batch := range [][]KeyValue{rec.records[:4], rec.records[4:]} {
				if err := fresh.RestoreBatch(batch); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range []string{"a", "ab"} {
				want := drainSessions(t, func() (SessionIterator, error) { return s.Fetch([]byte(k)) })
				got := drainSessions(t, func() (SessionIterator, error) { return fresh.Fetch([]byte(k)) })
				if !slices.Equal(got, want) {
					t.Errorf("restored Fetch(%q) = %q, want %q", k, got, want)
				}
			}
			if got, want := segmentNames(t, fresh), segmentNames(t, inner); !slices.Equal(got, want) {
				t.Errorf("restored store's segments = %q, want %q", got, want)
			}
			// Expired: neither stored nor logged.
			n := len(rec.records)
			mustPutSession(t, s, "z", 3000, 3000, "late")
			mustPutSession(t, s, "z", 1000, 2000, "old") // 2000 <= 3000 - 1000
			if len(rec.records) != n+1 || !bytes.Equal(rec.records[n].Key, SessionKey([]byte("z"), 3000, 3000)) {
				t.Errorf("logged %q after a live and an expired Put", rec.records[n:])
			}
			if err := fresh.RestoreBatch([]KeyValue{{Key: make([]byte, 15), Value: []byte("x")}}); err == nil {
				t.Error("RestoreBatch of a malformed key: no error")
			}
		})
	}
}

func TestSessionReopenPebble(t *testing.T) {
	dir := t.TempDir()
	o := SegmentedOptions{Retention: 1000, SegmentInterval: 100}
	db, err := OpenPebble(dir, PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.SessionStore("w", o)
	if err != nil {
		t.Fatal(err)
	}
	for end := int64(0); end < 1500; end += 70 {
		mustPutSession(t, s, "k", end-10, end, strconv.FormatInt(end, 10))
	}
	want := drainSessions(t, func() (SessionIterator, error) { return s.Fetch([]byte("k")) })
	wantSegs := segmentNames(t, s)
	if err := errors.Join(s.Close(), db.Close()); err != nil {
		t.Fatal(err)
	}
	db = openTestPebble(t, dir, PebbleOptions{})
	s = openSession(t, db, o)
	if got := segmentNames(t, s); !slices.Equal(got, wantSegs) {
		t.Errorf("segments after reopen = %q, want %q", got, wantSegs)
	}
	if got := drainSessions(t, func() (SessionIterator, error) { return s.Fetch([]byte("k")) }); !slices.Equal(got, want) || len(want) != 15 {
		t.Errorf("Fetch after reopen = %q\nwant %q", got, want)
	}
	if err := s.(Clearer).Clear(); err != nil {
		t.Fatal(err)
	}
	if got := segmentKeys(t, db); len(got) != 0 {
		t.Errorf("keys on disk after Clear = %v", got)
	}
}

// TestSessionConcurrentReads: one writer merging sessions forward (and so
// dropping segments) while readers look them up; run with -race.
func TestSessionConcurrentReads(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := openSession(t, kind.db(t), SegmentedOptions{Retention: 100, SegmentInterval: 20})
			var (
				stop   atomic.Bool
				wg     sync.WaitGroup
				failed atomic.Value
			)
			for range 4 {
				wg.Go(func() {
					for !stop.Load() {
						it, err := s.FindSessions([]byte("k"), 0, math.MaxInt64)
						if err != nil {
							failed.Store(err)
							return
						}
						last := int64(math.MinInt64)
						for it.Next() {
							if it.Start() < last || string(it.Value()) != fmt.Sprint(it.Start(), "-", it.End()) {
								failed.Store(fmt.Errorf("session [%d,%d]=%q after start %d", it.Start(), it.End(), it.Value(), last))
							}
							last = it.Start()
						}
						if err := errors.Join(it.Err(), it.Close()); err != nil {
							failed.Store(err)
						}
					}
				})
			}
			// Sessions of 5 ms, each extended once (removed and put again).
			for start := int64(0); start < 5000; start += 10 {
				mustPutSession(t, s, "k", start, start+2, fmt.Sprint(start, "-", start+2))
				if err := s.Remove([]byte("k"), start, start+2); err != nil {
					t.Fatal(err)
				}
				mustPutSession(t, s, "k", start, start+5, fmt.Sprint(start, "-", start+5))
			}
			stop.Store(true)
			wg.Wait()
			if err, _ := failed.Load().(error); err != nil {
				t.Error(err)
			}
			if got := segmentNames(t, s); len(got) > 7 {
				t.Errorf("%d segments live: %q", len(got), got)
			}
		})
	}
}
