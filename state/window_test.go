package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// segmentedKind opens a fresh window or session store of one backend,
// named "w"; db is nil for the in-memory one. The test's cleanup closes the
// store and then the db.
type segmentedKind struct {
	name string
	db   func(t *testing.T) *PebbleDB
}

var segmentedKinds = []segmentedKind{
	{"memory", func(*testing.T) *PebbleDB { return nil }},
	{"pebble", func(t *testing.T) *PebbleDB {
		db := openTestPebble(t, t.TempDir(), PebbleOptions{})
		// Neighbours whose names start like the store's or its segments'
		// ("w", "w.", a window store "w.x" whose segments are "w.x.<hex>"):
		// the store must neither list them as segments nor read their keys.
		for _, n := range []string{"v", "w", "w.", "w.000000000000000", "wa", "x"} {
			for _, k := range []string{"", "a", "k", "\xff"} {
				mustPut(t, db.Store(n), k, "neighbour "+n)
			}
		}
		nb, err := db.WindowStore("w.x", SegmentedOptions{Retention: 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		for _, start := range []int64{0, 1 << 30, 1 << 35} {
			mustPutWindow(t, nb, "a", "neighbour", start)
		}
		return db
	}},
}

func openWindow(t *testing.T, db *PebbleDB, o SegmentedOptions) WindowStore {
	t.Helper()
	var s WindowStore
	if db == nil {
		s = NewInMemoryWindowStore("w", o)
	} else {
		var err error
		if s, err = db.WindowStore("w", o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close window store: %v", err)
		}
	})
	return s
}

func mustPutWindow(t testing.TB, s WindowStore, k, v string, start int64) {
	t.Helper()
	var value []byte
	if v != "<nil>" {
		value = []byte(v)
	}
	if err := s.Put([]byte(k), value, start); err != nil {
		t.Fatalf("Put(%q, %d): %v", k, start, err)
	}
}

func mustFetch(t testing.TB, s ReadOnlyWindowStore, k string, start int64) []byte {
	t.Helper()
	v, err := s.Fetch([]byte(k), start)
	if err != nil {
		t.Fatalf("Fetch(%q, %d): %v", k, start, err)
	}
	return v
}

// drainWindows reads an iterator to the end as "key@start=value" strings
// (key quoted) and closes it.
func drainWindows(t testing.TB, open func() (WindowIterator, error)) []string {
	t.Helper()
	it, err := open()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for it.Next() {
		out = append(out, fmt.Sprintf("%q@%d=%s", it.Key(), it.Start(), it.Value()))
	}
	if err := errors.Join(it.Err(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return out
}

func win(k string, start int64, v string) string { return fmt.Sprintf("%q@%d=%s", k, start, v) }

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// segmentNames returns the live segments of an inner window or session
// store.
func segmentNames(t *testing.T, s any) []string {
	t.Helper()
	switch s := s.(type) {
	case *windowStore:
		return s.seg.segmentNames()
	case *sessionStore:
		return s.seg.segmentNames()
	}
	t.Fatalf("%T is not an inner segmented store", s)
	return nil
}

// segmentKeys counts the keys on disk of each segment of store "w",
// reading Pebble directly.
func segmentKeys(t *testing.T, db *PebbleDB) map[string]int {
	t.Helper()
	it, err := db.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int)
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		n, w := binary.Uvarint(k)
		name := string(k[w : w+int(n)])
		if _, ok := (&segmented{name: "w"}).parseSegmentName(name); ok {
			out[name]++
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return out
}

func segName(id int64) string { return fmt.Sprintf("w.%016x", id) }

func TestWindowKeyLayout(t *testing.T) {
	got := WindowKey([]byte("ab"), 0x0102030405060708, 0x0a0b0c0d)
	want := []byte("ab\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d")
	if !bytes.Equal(got, want) {
		t.Fatalf("WindowKey = %x, want %x", got, want)
	}
	k, start, seq, err := ParseWindowKey(got)
	if err != nil || string(k) != "ab" || start != 0x0102030405060708 || seq != 0x0a0b0c0d {
		t.Fatalf("ParseWindowKey = %q, %x, %x, %v", k, start, seq, err)
	}
	if k, start, seq, err := ParseWindowKey(WindowKey(nil, -1, math.MaxInt32)); err != nil || len(k) != 0 || start != -1 || seq != math.MaxInt32 {
		t.Fatalf("ParseWindowKey(empty key) = %q, %d, %d, %v", k, start, seq, err)
	}
	if _, _, _, err := ParseWindowKey(make([]byte, 11)); err == nil {
		t.Fatal("ParseWindowKey of 11 bytes: no error")
	}
}

func TestWindowFetch(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := openWindow(t, kind.db(t), SegmentedOptions{Retention: 10_000, SegmentInterval: 100})
			// "a" is a prefix of "ab" and of "a\x00", whose entries fall
			// inside the byte range of "a"'s windows: a scan must filter
			// them out.
			for _, w := range []struct {
				k     string
				start int64
			}{
				{"a", 250}, {"ab", 10}, {"a", 10}, {"a\x00", 15}, {"", 20}, {"a", 20},
				{"b", 20}, {"ab", 150}, {"a", 150},
			} {
				mustPutWindow(t, s, w.k, fmt.Sprintf("%s%d", w.k, w.start), w.start)
			}
			all := []string{
				win("a", 10, "a10"), win("ab", 10, "ab10"),
				win("a\x00", 15, "a\x0015"),
				win("", 20, "20"), win("a", 20, "a20"), win("b", 20, "b20"),
				win("a", 150, "a150"), win("ab", 150, "ab150"),
				win("a", 250, "a250"),
			}
			for _, c := range []struct {
				key      string
				from, to int64
				want     []string
			}{
				{"a", 0, 300, []string{win("a", 10, "a10"), win("a", 20, "a20"), win("a", 150, "a150"), win("a", 250, "a250")}},
				{"a", 15, 150, []string{win("a", 20, "a20"), win("a", 150, "a150")}},
				{"a", 20, 20, []string{win("a", 20, "a20")}},
				{"a", math.MinInt64, math.MaxInt64, []string{win("a", 10, "a10"), win("a", 20, "a20"), win("a", 150, "a150"), win("a", 250, "a250")}},
				{"ab", 0, 300, []string{win("ab", 10, "ab10"), win("ab", 150, "ab150")}},
				{"a\x00", 0, 300, []string{win("a\x00", 15, "a\x0015")}},
				{"", 0, 300, []string{win("", 20, "20")}},
				{"a", 300, 0, nil},
				{"a", 21, 149, nil},
				{"c", 0, 300, nil},
			} {
				got := drainWindows(t, func() (WindowIterator, error) { return s.FetchRange([]byte(c.key), c.from, c.to) })
				if !slices.Equal(got, c.want) {
					t.Errorf("FetchRange(%q, %d, %d) = %q\nwant %q", c.key, c.from, c.to, got, c.want)
				}
				got = drainWindows(t, func() (WindowIterator, error) { return s.BackwardFetchRange([]byte(c.key), c.from, c.to) })
				if want := reversed(c.want); !slices.Equal(got, want) {
					t.Errorf("BackwardFetchRange(%q, %d, %d) = %q\nwant %q", c.key, c.from, c.to, got, want)
				}
			}
			for _, c := range []struct {
				from, to int64
				want     []string
			}{
				{0, 300, all},
				{15, 150, all[2:8]},
				{20, 20, all[3:6]},
				{151, 249, nil},
				{300, 0, nil},
			} {
				got := drainWindows(t, func() (WindowIterator, error) { return s.FetchAll(c.from, c.to) })
				if !slices.Equal(got, c.want) {
					t.Errorf("FetchAll(%d, %d) = %q\nwant %q", c.from, c.to, got, c.want)
				}
			}
			if got := drainWindows(t, s.All); !slices.Equal(got, all) {
				t.Errorf("All() = %q\nwant %q", got, all)
			}
			for _, c := range []struct {
				key   string
				start int64
				want  string
			}{
				{"a", 10, "a10"}, {"a", 15, ""}, {"a\x00", 15, "a\x0015"}, {"ab", 150, "ab150"},
				{"", 20, "20"}, {"", 10, ""}, {"b", 10, ""},
			} {
				if got := mustFetch(t, s, c.key, c.start); string(got) != c.want || (got == nil) != (c.want == "") {
					t.Errorf("Fetch(%q, %d) = %q, want %q", c.key, c.start, got, c.want)
				}
			}

			// Overwrite, delete, and an empty value (present, not nil).
			mustPutWindow(t, s, "a", "new", 10)
			mustPutWindow(t, s, "a", "<nil>", 20)
			mustPutWindow(t, s, "e", "", 30)
			if got := mustFetch(t, s, "a", 10); string(got) != "new" {
				t.Errorf("Fetch after overwrite = %q", got)
			}
			if got := mustFetch(t, s, "a", 20); got != nil {
				t.Errorf("Fetch after delete = %q", got)
			}
			if got := mustFetch(t, s, "e", 30); got == nil || len(got) != 0 {
				t.Errorf("Fetch of empty value = %#v, want empty and not nil", got)
			}
			got := drainWindows(t, func() (WindowIterator, error) { return s.FetchRange([]byte("a"), 0, 300) })
			if want := []string{win("a", 10, "new"), win("a", 150, "a150"), win("a", 250, "a250")}; !slices.Equal(got, want) {
				t.Errorf("FetchRange after overwrite and delete = %q\nwant %q", got, want)
			}
		})
	}
}

func TestWindowRetentionDropsSegments(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			db := kind.db(t)
			s := openWindow(t, db, SegmentedOptions{Retention: 300, SegmentInterval: 100})
			var keys []string
			for i := range 20 {
				keys = append(keys, fmt.Sprintf("k%02d", i))
			}
			// Windows at 0, 50, ..., 350: segments 0 to 3. Observed time
			// 350, so 0 and 50 (start <= 350-300) are expired, though their
			// segment (last millisecond 99) is not.
			for start := int64(0); start <= 350; start += 50 {
				for _, k := range keys {
					mustPutWindow(t, s, k, strconv.FormatInt(start, 10), start)
				}
			}
			if got, want := segmentNames(t, s), []string{segName(0), segName(1), segName(2), segName(3)}; !slices.Equal(got, want) {
				t.Fatalf("segments = %q, want %q", got, want)
			}
			var want []string
			for start := int64(100); start <= 350; start += 50 {
				want = append(want, win("k07", start, strconv.FormatInt(start, 10)))
			}
			if got := drainWindows(t, func() (WindowIterator, error) { return s.FetchRange([]byte("k07"), 0, 1000) }); !slices.Equal(got, want) {
				t.Errorf("FetchRange = %q\nwant %q", got, want)
			}
			if got := mustFetch(t, s, "k07", 50); got != nil {
				t.Errorf("Fetch of expired window in a live segment = %q", got)
			}
			if got := drainWindows(t, func() (WindowIterator, error) { return s.FetchAll(0, 99) }); got != nil {
				t.Errorf("FetchAll(0, 99) = %q, want none", got)
			}
			if db != nil {
				onDisk := segmentKeys(t, db)
				want := map[string]int{segName(0): 40, segName(1): 40, segName(2): 40, segName(3): 40}
				if fmt.Sprint(onDisk) != fmt.Sprint(want) {
					t.Fatalf("keys on disk = %v, want %v", onDisk, want)
				}
			}

			// Observed 1000: everything before 700 is expired, and with it
			// segments 0 to 6 (segment 7 holds 701..799).
			mustPutWindow(t, s, "k00", "1000", 1000)
			if got, want := segmentNames(t, s), []string{segName(10)}; !slices.Equal(got, want) {
				t.Errorf("segments after expiry = %q, want %q", got, want)
			}
			if db != nil {
				if got, want := segmentKeys(t, db), map[string]int{segName(10): 1}; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("keys on disk after expiry = %v, want %v", got, want)
				}
				names, err := db.StoreNames("w.")
				if err != nil {
					t.Fatal(err)
				}
				want := []string{"w.", "w.000000000000000", segName(10)}
				if got := slices.DeleteFunc(names, func(n string) bool { return len(n) > 4 && n[:4] == "w.x." }); !slices.Equal(got, want) {
					t.Errorf("StoreNames(w.) = %q, want %q", got, want)
				}
			}
			if got, want := drainWindows(t, func() (WindowIterator, error) { return s.FetchAll(0, 2000) }), []string{win("k00", 1000, "1000")}; !slices.Equal(got, want) {
				t.Errorf("FetchAll after expiry = %q, want %q", got, want)
			}
			if got := drainWindows(t, func() (WindowIterator, error) { return s.FetchRange([]byte("k07"), 0, 2000) }); got != nil {
				t.Errorf("FetchRange after expiry = %q, want none", got)
			}

			// Puts of expired windows are skipped without an error, and
			// create no segment.
			mustPutWindow(t, s, "k01", "650", 650)
			mustPutWindow(t, s, "k01", "700", 700)
			if got := segmentNames(t, s); len(got) != 1 {
				t.Errorf("an expired Put created a segment: %q", got)
			}
			mustPutWindow(t, s, "k01", "701", 701)
			for start, want := range map[int64]string{650: "", 700: "", 701: "701"} {
				if got := mustFetch(t, s, "k01", start); string(got) != want {
					t.Errorf("Fetch(k01, %d) = %q, want %q", start, got, want)
				}
			}
			if got, want := segmentNames(t, s), []string{segName(7), segName(10)}; !slices.Equal(got, want) {
				t.Errorf("segments = %q, want %q", got, want)
			}
		})
	}
}

func TestWindowReopenPebble(t *testing.T) {
	dir := t.TempDir()
	o := SegmentedOptions{Retention: 1000, SegmentInterval: 100}
	var want, wantSegs []string
	{
		db, err := OpenPebble(dir, PebbleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := db.WindowStore("w", o)
		if err != nil {
			t.Fatal(err)
		}
		for start := int64(0); start < 1500; start += 70 {
			mustPutWindow(t, s, "k", strconv.FormatInt(start, 10), start)
			mustPutWindow(t, s, "kk", "x"+strconv.FormatInt(start, 10), start)
		}
		want = drainWindows(t, s.All)
		wantSegs = segmentNames(t, s)
		if err := errors.Join(s.Flush(), s.Close(), db.Close()); err != nil {
			t.Fatal(err)
		}
	}
	// Observed time was 1470: windows from 471 on are live, and segments
	// from 4 (400..499, holding 420 and 490) to 14.
	if len(want) != 2*15 || len(wantSegs) != 11 || wantSegs[0] != segName(4) {
		t.Fatalf("before reopen: %d windows in segments %q", len(want), wantSegs)
	}
	db := openTestPebble(t, dir, PebbleOptions{})
	s := openWindow(t, db, o)
	if got := segmentNames(t, s); !slices.Equal(got, wantSegs) {
		t.Errorf("segments after reopen = %q, want %q", got, wantSegs)
	}
	if got := drainWindows(t, s.All); !slices.Equal(got, want) {
		t.Errorf("All after reopen = %q\nwant %q", got, want)
	}
	if got := mustFetch(t, s, "kk", 1470); string(got) != "x1470" {
		t.Errorf("Fetch after reopen = %q", got)
	}
	// Observed time goes on from what the store holds.
	mustPutWindow(t, s, "k", "1750", 1750)
	if got := segmentNames(t, s); got[0] != segName(7) {
		t.Errorf("segments after a later Put = %q, want the first to be %s", got, segName(7))
	}
}

// logRecorder is a ChangeLogger that keeps what it is given.
type logRecorder struct{ records []KeyValue }

func (r *logRecorder) log(key, value []byte) error {
	r.records = append(r.records, KeyValue{Key: key, Value: cloneValue(value)})
	return nil
}

func TestLoggedWindowChangelogLayoutAndRestore(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			db := kind.db(t)
			o := SegmentedOptions{Retention: 10_000, SegmentInterval: 100}
			inner := openWindow(t, db, o)
			var rec logRecorder
			s := NewLoggedWindow(inner, rec.log)
			if InnerWindow(s) != inner || InnerWindow(inner) != nil {
				t.Fatal("InnerWindow does not unwrap the logging layer")
			}
			mustPutWindow(t, s, "a", "v1", 10)
			mustPutWindow(t, s, "ab", "v2", 10)
			mustPutWindow(t, s, "a", "v3", 0x0102)
			mustPutWindow(t, s, "a", "<nil>", 10)
			mustPutWindow(t, s, "a", "v4", 1500)
			mustPutWindow(t, s, "ab", "<nil>", 7) // absent: a tombstone all the same
			want := []KeyValue{
				{[]byte("a\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00\x00"), []byte("v1")},
				{[]byte("ab\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00\x00"), []byte("v2")},
				{[]byte("a\x00\x00\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00"), []byte("v3")},
				{[]byte("a\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00\x00"), nil},
				{[]byte("a\x00\x00\x00\x00\x00\x00\x05\xdc\x00\x00\x00\x00"), []byte("v4")},
				{[]byte("ab\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00"), nil},
			}
			if !slices.EqualFunc(rec.records, want, func(a, b KeyValue) bool {
				return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && (a.Value == nil) == (b.Value == nil)
			}) {
				t.Fatalf("changelog = %q\nwant %q", rec.records, want)
			}

			// Replaying the changelog into an empty store, in two batches
			// (the delete of a@10 in the second), gives the same contents.
			wantAll := []string{win("ab", 10, "v2"), win("a", 258, "v3"), win("a", 1500, "v4")}
			if got := drainWindows(t, inner.All); !slices.Equal(got, wantAll) {
				t.Fatalf("logged store holds %q, want %q", got, wantAll)
			}
			fresh, err := newWindowStore("w", o, memSegments{})
			if err != nil {
				t.Fatal(err)
			}
			for _, batch := range [][]KeyValue{rec.records[:3], rec.records[3:]} {
				if err := fresh.RestoreBatch(batch); err != nil {
					t.Fatal(err)
				}
			}
			if got := drainWindows(t, fresh.All); !slices.Equal(got, wantAll) {
				t.Errorf("restored store holds %q, want %q", got, wantAll)
			}
			if got, want := segmentNames(t, fresh), segmentNames(t, inner); !slices.Equal(got, want) {
				t.Errorf("restored store's segments = %q, want %q", got, want)
			}

			// An expired Put is neither stored nor logged.
			n := len(rec.records)
			mustPutWindow(t, s, "late", "x", 20_000)
			mustPutWindow(t, s, "old", "x", 10_000) // 10 000 <= 20 000 - 10 000
			if len(rec.records) != n+1 || !bytes.Equal(rec.records[n].Key, WindowKey([]byte("late"), 20_000, 0)) {
				t.Errorf("logged %q after a live and an expired Put", rec.records[n:])
			}

			// A restore through the logging layer reaches the inner store
			// and logs nothing.
			n = len(rec.records)
			if err := s.(Restorer).RestoreBatch([]KeyValue{{Key: WindowKey([]byte("r"), 19_000, 0), Value: []byte("r")}}); err != nil {
				t.Fatal(err)
			}
			if len(rec.records) != n || string(mustFetch(t, inner, "r", 19_000)) != "r" {
				t.Errorf("restore through the logging layer: %d records logged, Fetch = %q", len(rec.records)-n, mustFetch(t, inner, "r", 19_000))
			}
			if err := fresh.RestoreBatch([]KeyValue{{Key: []byte("short"), Value: []byte("x")}}); err == nil {
				t.Error("RestoreBatch of a malformed key: no error")
			}
		})
	}
}

func TestWindowRestoreExpiresAndDrops(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := openWindow(t, kind.db(t), SegmentedOptions{Retention: 300, SegmentInterval: 100}).(*windowStore)
			batch := []KeyValue{
				{Key: WindowKey([]byte("k"), 0, 0), Value: []byte("0")},
				{Key: WindowKey([]byte("k"), 100, 0), Value: []byte("100")},
				{Key: WindowKey([]byte("k"), 1000, 0), Value: []byte("1000")},
				{Key: WindowKey([]byte("gone"), 5, 0), Value: nil},
			}
			if err := s.RestoreBatch(batch); err != nil {
				t.Fatal(err)
			}
			if err := s.RestoreBatch(batch[:1]); err != nil {
				t.Fatalf("restoring an expired record: %v", err)
			}
			if got, want := drainWindows(t, s.All), []string{win("k", 1000, "1000")}; !slices.Equal(got, want) {
				t.Errorf("All = %q, want %q", got, want)
			}
			if got, want := segmentNames(t, s), []string{segName(10)}; !slices.Equal(got, want) {
				t.Errorf("segments = %q, want %q", got, want)
			}
		})
	}
}

func TestWindowClear(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			db := kind.db(t)
			s := openWindow(t, db, SegmentedOptions{Retention: 300, SegmentInterval: 100})
			for start := int64(0); start < 400; start += 30 {
				mustPutWindow(t, s, "k", "v", start)
			}
			if err := s.(Clearer).Clear(); err != nil {
				t.Fatal(err)
			}
			if got := drainWindows(t, s.All); got != nil {
				t.Errorf("All after Clear = %q", got)
			}
			if got := segmentNames(t, s); len(got) != 0 {
				t.Errorf("segments after Clear = %q", got)
			}
			if db != nil {
				if got := segmentKeys(t, db); len(got) != 0 {
					t.Errorf("keys on disk after Clear = %v", got)
				}
			}
			// Observed time is forgotten: an old window is live again.
			mustPutWindow(t, s, "k", "v0", 0)
			if got := mustFetch(t, s, "k", 0); string(got) != "v0" {
				t.Errorf("Fetch after Clear = %q", got)
			}
		})
	}
}

func TestWindowRetainDuplicates(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			o := SegmentedOptions{Retention: 1000, SegmentInterval: 100, RetainDuplicates: true}
			inner := openWindow(t, kind.db(t), o)
			var rec logRecorder
			s := NewLoggedWindow(inner, rec.log)
			mustPutWindow(t, s, "k", "x", 10)
			mustPutWindow(t, s, "k", "y", 10)
			mustPutWindow(t, s, "k", "<nil>", 10) // no delete among duplicates
			mustPutWindow(t, s, "k", "z", 20)
			mustPutWindow(t, s, "kk", "w", 10)
			want := []string{win("k", 10, "x"), win("k", 10, "y"), win("k", 20, "z")}
			if got := drainWindows(t, func() (WindowIterator, error) { return s.FetchRange([]byte("k"), 0, 100) }); !slices.Equal(got, want) {
				t.Errorf("FetchRange = %q, want %q", got, want)
			}
			if got := drainWindows(t, func() (WindowIterator, error) { return s.BackwardFetchRange([]byte("k"), 0, 100) }); !slices.Equal(got, reversed(want)) {
				t.Errorf("BackwardFetchRange = %q, want %q", got, reversed(want))
			}
			if got := mustFetch(t, s, "k", 10); string(got) != "x" {
				t.Errorf("Fetch = %q, want the first duplicate", got)
			}
			wantAll := []string{win("k", 10, "x"), win("k", 10, "y"), win("kk", 10, "w"), win("k", 20, "z")}
			if got := drainWindows(t, s.All); !slices.Equal(got, wantAll) {
				t.Errorf("All = %q, want %q", got, wantAll)
			}
			var seqs []int32
			for _, r := range rec.records {
				_, _, seq, err := ParseWindowKey(r.Key)
				if err != nil {
					t.Fatal(err)
				}
				seqs = append(seqs, seq)
			}
			if !slices.Equal(seqs, []int32{1, 2, 3, 4}) {
				t.Errorf("logged sequence numbers = %v, want 1 2 3 4", seqs)
			}
			// A restored store holds the duplicates and numbers on from the
			// last record restored.
			fresh, err := newWindowStore("w", o, memSegments{})
			if err != nil {
				t.Fatal(err)
			}
			if err := fresh.RestoreBatch(rec.records); err != nil {
				t.Fatal(err)
			}
			if got := drainWindows(t, fresh.All); !slices.Equal(got, wantAll) {
				t.Errorf("restored All = %q, want %q", got, wantAll)
			}
			var rec2 logRecorder
			if err := NewLoggedWindow(fresh, rec2.log).Put([]byte("k"), []byte("n"), 10); err != nil {
				t.Fatal(err)
			}
			if want := WindowKey([]byte("k"), 10, 5); !bytes.Equal(rec2.records[0].Key, want) {
				t.Errorf("first Put after restore logged %x, want %x", rec2.records[0].Key, want)
			}
		})
	}
}

func TestWindowClosed(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := openWindow(t, kind.db(t), SegmentedOptions{Retention: 1000})
			mustPutWindow(t, s, "k", "v", 10)
			it, err := s.FetchRange([]byte("k"), 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if it.Next() || !errors.Is(it.Err(), ErrClosed) {
				t.Errorf("iterator over a closed store: Err = %v", it.Err())
			}
			if err := it.Close(); err != nil {
				t.Error(err)
			}
			if err := s.Put([]byte("k"), []byte("v"), 20); !errors.Is(err, ErrClosed) {
				t.Errorf("Put after Close = %v", err)
			}
			if _, err := s.Fetch([]byte("k"), 10); !errors.Is(err, ErrClosed) {
				t.Errorf("Fetch after Close = %v", err)
			}
			if _, err := s.FetchAll(0, 100); !errors.Is(err, ErrClosed) {
				t.Errorf("FetchAll after Close = %v", err)
			}
		})
	}
}

func TestSegmentedOptions(t *testing.T) {
	for _, c := range []struct {
		o       SegmentedOptions
		want    int64
		wantErr bool
	}{
		{SegmentedOptions{Retention: 1000}, 60_000, false},
		{SegmentedOptions{Retention: 1_000_000}, 500_000, false},
		{SegmentedOptions{Retention: 1000, SegmentInterval: 7}, 7, false},
		{SegmentedOptions{}, 0, true},
		{SegmentedOptions{Retention: 10, SegmentInterval: -1}, 0, true},
	} {
		s, err := newWindowStore("w", c.o, memSegments{})
		if (err != nil) != c.wantErr {
			t.Errorf("%+v: err = %v", c.o, err)
			continue
		}
		if err == nil && s.seg.interval != c.want {
			t.Errorf("%+v: segment interval %d, want %d", c.o, s.seg.interval, c.want)
		}
	}
}

// TestWindowConcurrentReads has one goroutine writing, and so dropping a
// segment every few Puts, while others read; run with -race. Readers
// check that what they see is ordered and intact.
func TestWindowConcurrentReads(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := openWindow(t, kind.db(t), SegmentedOptions{Retention: 200, SegmentInterval: 50})
			var (
				stop   atomic.Bool
				wg     sync.WaitGroup
				errsMu sync.Mutex
				errs   []error
			)
			fail := func(err error) {
				errsMu.Lock()
				errs = append(errs, err)
				errsMu.Unlock()
			}
			check := func(what string, open func() (WindowIterator, error), reverse bool) {
				it, err := open()
				if err != nil {
					fail(fmt.Errorf("%s: %w", what, err))
					return
				}
				last := int64(math.MinInt64)
				if reverse {
					last = math.MaxInt64
				}
				for it.Next() {
					if v := string(it.Value()); v != string(it.Key())+strconv.FormatInt(it.Start(), 10) {
						fail(fmt.Errorf("%s: %q@%d holds %q", what, it.Key(), it.Start(), v))
					}
					if reverse && it.Start() > last || !reverse && it.Start() < last {
						fail(fmt.Errorf("%s: start %d after %d", what, it.Start(), last))
					}
					last = it.Start()
				}
				if err := errors.Join(it.Err(), it.Close()); err != nil {
					fail(fmt.Errorf("%s: %w", what, err))
				}
			}
			for range 4 {
				wg.Go(func() {
					for !stop.Load() {
						check("FetchRange", func() (WindowIterator, error) { return s.FetchRange([]byte("k"), 0, math.MaxInt64) }, false)
						check("BackwardFetchRange", func() (WindowIterator, error) { return s.BackwardFetchRange([]byte("j"), 0, math.MaxInt64) }, true)
						check("FetchAll", func() (WindowIterator, error) { return s.FetchAll(0, math.MaxInt64) }, false)
						if _, err := s.Fetch([]byte("k"), 100); err != nil {
							fail(err)
						}
					}
				})
			}
			for start := range int64(3000) {
				for _, k := range []string{"k", "j"} {
					if err := s.Put([]byte(k), []byte(k+strconv.FormatInt(start, 10)), start); err != nil {
						t.Error(err)
					}
				}
			}
			stop.Store(true)
			wg.Wait()
			for _, err := range errs {
				t.Error(err)
			}
			if got := segmentNames(t, s); len(got) > 6 {
				t.Errorf("%d segments live, want at most 6: %q", len(got), got)
			}
		})
	}
}

func benchWindowStore(b *testing.B, o SegmentedOptions) WindowStore {
	db := openTestPebble(b, b.TempDir(), PebbleOptions{})
	s, err := db.WindowStore("bench", o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkWindowPut writes 1Ki keys' windows on Pebble with the start
// advancing 1 ms per Put: with 10 s segments and a minute of retention, a
// segment is created and another dropped every 10 000 Puts.
func BenchmarkWindowPut(b *testing.B) {
	s := benchWindowStore(b, SegmentedOptions{Retention: 60_000, SegmentInterval: 10_000})
	key := make([]byte, 8)
	b.ReportAllocs()
	b.SetBytes(int64(len(key) + len(benchValue)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Put(benchKey(key, i%1024), benchValue, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWindowFetchRange fetches 10 one-minute windows of a key on
// Pebble, out of 1Ki keys with 100 windows each.
func BenchmarkWindowFetchRange(b *testing.B) {
	s := benchWindowStore(b, SegmentedOptions{Retention: 24 * 3_600_000})
	key := make([]byte, 8)
	const keys, windows, size = 1024, 100, 60_000
	for w := range int64(windows) {
		for k := range keys {
			if err := s.Put(benchKey(key, k), benchValue, w*size); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from := int64(i%(windows-10)) * size
		it, err := s.FetchRange(benchKey(key, i%keys), from, from+9*size)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for it.Next() {
			n++
		}
		if err := errors.Join(it.Err(), it.Close()); err != nil || n != 10 {
			b.Fatalf("%d windows, %v", n, err)
		}
	}
}
