package state

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// windowFlushes records what a window cache's FlushListener is told, as
// "key@start=new<-old@ts" with "<nil>" for nil.
type windowFlushes []string

func (f *windowFlushes) listen(wk, newValue, oldValue []byte, ts int64) error {
	key, start, _, err := ParseWindowKey(wk)
	if err != nil {
		return err
	}
	*f = append(*f, fmt.Sprintf("%s@%d=%s<-%s@%d", key, start, nilOr(newValue), nilOr(oldValue), ts))
	return nil
}

func nilOr(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}

func mustPutWindowAt(t testing.TB, c WindowCache, k, v string, start, ts int64) {
	t.Helper()
	var vb []byte
	if v != "<nil>" {
		vb = []byte(v)
	}
	if err := c.PutAt([]byte(k), vb, start, ts); err != nil {
		t.Fatalf("PutAt(%q, %d): %v", k, start, err)
	}
}

func mustFlush(t testing.TB, s interface{ Flush() error }) {
	t.Helper()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestWindowCacheCollapsesUpdates(t *testing.T) {
	inner := NewInMemoryWindowStore("w", SegmentedOptions{Retention: 10_000})
	mustPutWindow(t, inner, "k", "old", 100)
	var logged []string
	c := NewCachedWindow(NewLoggedWindow(inner, func(key, value []byte) error {
		k, start, _, _ := ParseWindowKey(key)
		logged = append(logged, fmt.Sprintf("%s@%d=%s", k, start, nilOr(value)))
		return nil
	}), 1<<20)
	var got windowFlushes
	c.SetFlushListener(got.listen)

	mustPutWindowAt(t, c, "k", "v1", 100, 110)
	mustPutWindowAt(t, c, "k", "v2", 100, 111)
	mustPutWindowAt(t, c, "k", "v3", 100, 112)
	mustPutWindowAt(t, c, "k", "x", 200, 201)
	if len(got) != 0 || len(logged) != 0 {
		t.Fatalf("written through before a flush: listener %q, changelog %q", got, logged)
	}
	if v := mustFetch(t, inner, "k", 100); string(v) != "old" {
		t.Fatalf("inner written before flush: %q", v)
	}
	if v := mustFetch(t, c, "k", 100); string(v) != "v3" {
		t.Fatalf("Fetch through the cache = %q, want v3", v)
	}
	mustFlush(t, c)
	if want := (windowFlushes{"k@100=v3<-old@112", "k@200=x<-<nil>@201"}); !slices.Equal(got, want) {
		t.Errorf("listener saw %q, want %q", got, want)
	}
	if want := []string{"k@100=v3", "k@200=x"}; !slices.Equal(logged, want) {
		t.Errorf("changelog got %q, want %q", logged, want)
	}
	if v := mustFetch(t, inner, "k", 100); string(v) != "v3" {
		t.Errorf("inner after flush = %q, want v3", v)
	}
	mustFlush(t, c)
	if len(got) != 2 {
		t.Errorf("second flush called the listener again: %q", got)
	}
}

func TestWindowCacheFlushOrderIsLeastRecentlyWritten(t *testing.T) {
	c := NewCachedWindow(NewInMemoryWindowStore("w", SegmentedOptions{Retention: 10_000}), 1<<20)
	var got windowFlushes
	c.SetFlushListener(got.listen)
	mustPutWindowAt(t, c, "a", "1", 0, 1)
	mustPutWindowAt(t, c, "b", "2", 0, 2)
	mustPutWindowAt(t, c, "a", "3", 10, 3) // another window of a
	mustPutWindowAt(t, c, "a", "4", 0, 4)  // rewriting moves it to the back
	_ = mustFetch(t, c, "b", 0)            // reading does not
	mustFlush(t, c)
	want := windowFlushes{"b@0=2<-<nil>@2", "a@10=3<-<nil>@3", "a@0=4<-<nil>@4"}
	if !slices.Equal(got, want) {
		t.Errorf("flush order %q, want %q", got, want)
	}
}

func TestWindowCacheEvictsOverMaxBytes(t *testing.T) {
	inner := NewInMemoryWindowStore("w", SegmentedOptions{Retention: 10_000})
	// Each window costs 1+12 (store key) + 2 (value) + segEntryOverhead
	// bytes: three fit.
	const each = 1 + windowSuffix + 2 + segEntryOverhead
	c := NewCachedWindow(inner, 3*each+10)
	var got windowFlushes
	c.SetFlushListener(got.listen)
	for i, k := range []string{"a", "b", "c"} {
		mustPutWindowAt(t, c, k, "v"+k, 0, int64(i))
	}
	if len(got) != 0 {
		t.Fatalf("evicted below the limit: %q", got)
	}
	mustPutWindowAt(t, c, "d", "vd", 0, 3)
	mustPutWindowAt(t, c, "e", "ve", 0, 4)
	if want := (windowFlushes{"a@0=va<-<nil>@0", "b@0=vb<-<nil>@1"}); !slices.Equal(got, want) {
		t.Errorf("evictions %q, want %q", got, want)
	}
	for _, k := range []string{"a", "b"} {
		if v := mustFetch(t, inner, k, 0); string(v) != "v"+k {
			t.Errorf("evicted %s not written through: inner has %q", k, v)
		}
	}
	if v := mustFetch(t, inner, "c", 0); v != nil {
		t.Errorf("c written through early: %q", v)
	}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if v := mustFetch(t, c, k, 0); string(v) != "v"+k {
			t.Errorf("Fetch(%s) through the cache = %q", k, v)
		}
	}
}

func TestWindowCacheDeletes(t *testing.T) {
	inner := NewInMemoryWindowStore("w", SegmentedOptions{Retention: 10_000})
	mustPutWindow(t, inner, "k", "old", 0)
	c := NewCachedWindow(inner, 1<<20)
	var got windowFlushes
	c.SetFlushListener(got.listen)
	mustPutWindowAt(t, c, "k", "<nil>", 0, 5)
	mustPutWindowAt(t, c, "new", "v", 0, 6)
	mustPutWindowAt(t, c, "new", "<nil>", 0, 7) // never reached inner
	for _, k := range []string{"k", "new"} {
		if v := mustFetch(t, c, k, 0); v != nil {
			t.Errorf("Fetch(%s) after a cached delete = %q", k, v)
		}
	}
	if got := drainWindows(t, c.All); len(got) != 0 {
		t.Errorf("All() after cached deletes = %q", got)
	}
	mustFlush(t, c)
	if want := (windowFlushes{"k@0=<nil><-old@5"}); !slices.Equal(got, want) {
		t.Errorf("listener saw %q, want %q", got, want)
	}
	if v := mustFetch(t, inner, "k", 0); v != nil {
		t.Errorf("inner still has the deleted window: %q", v)
	}
}

// TestWindowCacheReadsMatchUncached writes the same random windows to a
// cached store (small enough to evict, flushed now and then) and to a
// plain one, and after every write compares what each read returns. Keys
// include prefixes of each other, whose entries interleave in the inner
// store's key order.
func TestWindowCacheReadsMatchUncached(t *testing.T) {
	keys := []string{"", "a", "a\x00", "ab", "b"}
	for _, kind := range segmentedKinds {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/seed%d", kind.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 3))
				o := SegmentedOptions{Retention: 150, SegmentInterval: 50}
				plain := NewInMemoryWindowStore("plain", o)
				c := NewCachedWindow(openWindow(t, kind.db(t), o), int64(rng.IntN(20)+1)*(segEntryOverhead+16))
				c.SetFlushListener(func(wk, _, _ []byte, _ int64) error {
					if _, _, _, err := ParseWindowKey(wk); err != nil {
						return err
					}
					return nil
				})
				for i := range 300 {
					k := keys[rng.IntN(len(keys))]
					// Starts mostly advance, some behind (some expired).
					start := int64(i) + rng.Int64N(100) - 60
					v := fmt.Sprintf("%s%d", k, i)
					if rng.IntN(8) == 0 {
						v = "<nil>"
					}
					mustPutWindow(t, plain, k, v, start)
					mustPutWindow(t, c, k, v, start)
					if rng.IntN(50) == 0 {
						mustFlush(t, c)
					}
					compareWindowReads(t, fmt.Sprintf("after write %d", i), c, plain, keys, int64(i), rng)
				}
			})
		}
	}
}

func compareWindowReads(t *testing.T, when string, got, want WindowStore, keys []string, now int64, rng *rand.Rand) {
	t.Helper()
	same := func(what string, open func(s WindowStore) (WindowIterator, error)) {
		t.Helper()
		g := drainWindows(t, func() (WindowIterator, error) { return open(got) })
		w := drainWindows(t, func() (WindowIterator, error) { return open(want) })
		if !slices.Equal(g, w) {
			t.Fatalf("%s: %s = %q\nuncached %q", when, what, g, w)
		}
	}
	from, to := now-rng.Int64N(250), now-rng.Int64N(100)+80
	same("All", func(s WindowStore) (WindowIterator, error) { return s.All() })
	same(fmt.Sprintf("FetchAll(%d, %d)", from, to), func(s WindowStore) (WindowIterator, error) { return s.FetchAll(from, to) })
	for _, k := range keys {
		same(fmt.Sprintf("FetchRange(%q, %d, %d)", k, from, to), func(s WindowStore) (WindowIterator, error) {
			return s.FetchRange([]byte(k), from, to)
		})
		same(fmt.Sprintf("BackwardFetchRange(%q, %d, %d)", k, from, to), func(s WindowStore) (WindowIterator, error) {
			return s.BackwardFetchRange([]byte(k), from, to)
		})
		start := now - rng.Int64N(100)
		if g, w := mustFetch(t, got, k, start), mustFetch(t, want, k, start); string(g) != string(w) || (g == nil) != (w == nil) {
			t.Fatalf("%s: Fetch(%q, %d) = %q, uncached %q", when, k, start, g, w)
		}
	}
}

// TestWindowCacheRetention: a cached window older than the retention is
// not read from the cache, by the time the cache has seen, though inner
// has not; it is still written through and reported at the flush, since it
// was live when written.
func TestWindowCacheRetention(t *testing.T) {
	inner := NewInMemoryWindowStore("w", SegmentedOptions{Retention: 100, SegmentInterval: 50})
	c := NewCachedWindow(inner, 1<<20)
	var got windowFlushes
	c.SetFlushListener(got.listen)
	mustPutWindowAt(t, c, "k", "old", 0, 1)
	mustPutWindowAt(t, c, "k", "live", 1, 2)
	mustPutWindowAt(t, c, "k", "new", 100, 3) // 0 is expired now: 0 <= 100-100
	if v := mustFetch(t, c, "k", 0); v != nil {
		t.Errorf("Fetch of an expired cached window = %q", v)
	}
	want := []string{win("k", 1, "live"), win("k", 100, "new")}
	for what, open := range map[string]func() (WindowIterator, error){
		"All":        c.All,
		"FetchAll":   func() (WindowIterator, error) { return c.FetchAll(0, 200) },
		"FetchRange": func() (WindowIterator, error) { return c.FetchRange([]byte("k"), 0, 200) },
	} {
		if g := drainWindows(t, open); !slices.Equal(g, want) {
			t.Errorf("%s = %q, want %q", what, g, want)
		}
	}
	mustPutWindowAt(t, c, "k", "late", 0, 4) // dropped, as inner drops it
	mustFlush(t, c)
	if want := (windowFlushes{"k@0=old<-<nil>@1", "k@1=live<-<nil>@2", "k@100=new<-<nil>@3"}); !slices.Equal(got, want) {
		t.Errorf("listener saw %q, want %q", got, want)
	}
	if g := drainWindows(t, inner.All); !slices.Equal(g, want) {
		t.Errorf("inner holds %q, want %q", g, want)
	}
}

func TestWindowCacheDisabledWritesThrough(t *testing.T) {
	for _, c := range []struct {
		name  string
		inner WindowStore
		max   int64
	}{
		{"size 0", NewInMemoryWindowStore("w", SegmentedOptions{Retention: 1000}), 0},
		{"duplicates", NewInMemoryWindowStore("w", SegmentedOptions{Retention: 1000, RetainDuplicates: true}), 1 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			cache := NewCachedWindow(c.inner, c.max)
			var got windowFlushes
			cache.SetFlushListener(got.listen)
			mustPutWindowAt(t, cache, "k", "1", 0, 1)
			mustPutWindowAt(t, cache, "k", "2", 0, 2)
			if len(got) != 2 {
				t.Errorf("listener saw %q, want both writes at once", got)
			}
			if g := drainWindows(t, c.inner.All); len(g) == 0 {
				t.Errorf("inner holds nothing")
			}
		})
	}
}

func TestWindowCacheListenerMayUseTheCache(t *testing.T) {
	c := NewCachedWindow(NewInMemoryWindowStore("w", SegmentedOptions{Retention: 1000}), 1<<20)
	var seen []string
	c.SetFlushListener(func(wk, newValue, _ []byte, ts int64) error {
		key, start, _, err := ParseWindowKey(wk)
		if err != nil {
			return err
		}
		v, err := c.Fetch(key, start)
		if err != nil {
			return err
		}
		seen = append(seen, fmt.Sprintf("%s@%d=%s", key, start, v))
		if string(key) == "a" {
			return c.PutAt([]byte("derived"), newValue, start, ts)
		}
		return nil
	})
	mustPutWindowAt(t, c, "a", "1", 5, 1)
	mustFlush(t, c)
	if want := []string{"a@5=1", "derived@5=1"}; !slices.Equal(seen, want) {
		t.Errorf("listener saw %q, want %q", seen, want)
	}
}

func TestWindowCacheCloseDropsUnflushed(t *testing.T) {
	inner := NewInMemoryWindowStore("w", SegmentedOptions{Retention: 1000})
	logged := NewLoggedWindow(inner, noLog)
	c := NewCachedWindow(logged, 1<<20)
	if InnerWindow(c) != logged {
		t.Errorf("InnerWindow(cache) = %T, want the logging layer", InnerWindow(c))
	}
	mustPutWindowAt(t, c, "flushed", "v", 0, 1)
	mustFlush(t, c)
	mustPutWindowAt(t, c, "k", "v", 0, 2)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := c.Fetch([]byte("k"), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Fetch after Close = %v, want ErrClosed", err)
	}
	if err := c.Put([]byte("k"), []byte("v"), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if _, err := c.All(); !errors.Is(err, ErrClosed) {
		t.Errorf("All after Close = %v, want ErrClosed", err)
	}
}

// TestWindowCacheConcurrentReads has the writer putting, evicting and
// flushing while other goroutines read; run with -race. Readers check that
// what they see is ordered and intact.
func TestWindowCacheConcurrentReads(t *testing.T) {
	for _, kind := range segmentedKinds {
		t.Run(kind.name, func(t *testing.T) {
			c := NewCachedWindow(openWindow(t, kind.db(t), SegmentedOptions{Retention: 200, SegmentInterval: 50}), 40*(segEntryOverhead+20))
			c.SetFlushListener(func([]byte, []byte, []byte, int64) error { return nil })
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
				last, lastKey := int64(math.MinInt64), ""
				if reverse {
					last = math.MaxInt64
				}
				for it.Next() {
					// A window's value is its key, start and a version.
					v := string(it.Value())
					if prefix := string(it.Key()) + strconv.FormatInt(it.Start(), 10) + "."; len(v) < len(prefix) || v[:len(prefix)] != prefix {
						fail(fmt.Errorf("%s: %q@%d holds %q", what, it.Key(), it.Start(), v))
					}
					if reverse && it.Start() >= last || !reverse && (it.Start() < last || it.Start() == last && string(it.Key()) <= lastKey) {
						fail(fmt.Errorf("%s: %q@%d after %q@%d", what, it.Key(), it.Start(), lastKey, last))
					}
					last, lastKey = it.Start(), string(it.Key())
				}
				if err := errors.Join(it.Err(), it.Close()); err != nil {
					fail(fmt.Errorf("%s: %w", what, err))
				}
			}
			for range 4 {
				wg.Go(func() {
					for !stop.Load() {
						check("FetchRange", func() (WindowIterator, error) { return c.FetchRange([]byte("k"), 0, math.MaxInt64) }, false)
						check("BackwardFetchRange", func() (WindowIterator, error) { return c.BackwardFetchRange([]byte("j"), 0, math.MaxInt64) }, true)
						check("FetchAll", func() (WindowIterator, error) { return c.FetchAll(0, math.MaxInt64) }, false)
						if _, err := c.Fetch([]byte("k"), 100); err != nil {
							fail(err)
						}
					}
				})
			}
			for start := range int64(2000) {
				for version := range 3 { // collapse in the cache
					for _, k := range []string{"k", "j"} {
						v := k + strconv.FormatInt(start, 10) + "." + strconv.Itoa(version)
						if err := c.PutAt([]byte(k), []byte(v), start, start); err != nil {
							t.Error(err)
						}
					}
				}
				if start%300 == 0 {
					mustFlush(t, c)
				}
			}
			stop.Store(true)
			wg.Wait()
			for _, err := range errs {
				t.Error(err)
			}
		})
	}
}

// BenchmarkCachedWindowPut updates windows through a 1 MiB cache over a
// logged Pebble window store, the default stack of a windowed
// aggregation: "hot" updates 1Ki keys' current window (collapsing in the
// cache), "cold" 64Ki keys', so nearly every Put evicts a window, which
// costs an inner Fetch (the old value for the listener) and an inner Put.
// Both Fetch the window first, as an aggregation does.
func BenchmarkCachedWindowPut(b *testing.B) {
	for _, c := range []struct {
		name string
		keys int
	}{{"hot", 1 << 10}, {"cold", 1 << 16}} {
		b.Run(c.name, func(b *testing.B) {
			cache := NewCachedWindow(NewLoggedWindow(benchWindowStore(b, SegmentedOptions{Retention: 600_000}), noLog), 1<<20)
			cache.SetFlushListener(func([]byte, []byte, []byte, int64) error { return nil })
			key := make([]byte, 8)
			b.ReportAllocs()
			b.SetBytes(int64(len(key) + len(benchValue)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := benchKey(key, i%c.keys)
				start := int64(i/(1<<20)) * 60_000 // a new window every 1Mi Puts
				if _, err := cache.Fetch(k, start); err != nil {
					b.Fatal(err)
				}
				if err := cache.PutAt(k, benchValue, start, start); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWindowCacheListenerOldValues checks the listener's old value against
// a model of inner through random fetches, writes (some without a fetch
// first), evictions and flushes: whether the cache remembers inner's value
// from the fetch before a write or reads it at the write-through, it is
// what inner held.
func TestWindowCacheListenerOldValues(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 5))
		inner := NewInMemoryWindowStore("w", SegmentedOptions{Retention: 1 << 40})
		c := NewCachedWindow(inner, 4*(segEntryOverhead+20))
		model := map[string]string{} // inner's windows, as the listener is told
		calls := 0
		c.SetFlushListener(func(wk, newValue, oldValue []byte, _ int64) error {
			calls++
			want, had := model[string(wk)]
			if (oldValue != nil) != had || string(oldValue) != want {
				t.Fatalf("seed %d: window %q: listener's old value %q, inner had %q (%v)", seed, wk, nilOr(oldValue), want, had)
			}
			if newValue == nil {
				delete(model, string(wk))
			} else {
				model[string(wk)] = string(newValue)
			}
			return nil
		})
		for i := range 2000 {
			k, start := []byte{byte('a' + rng.IntN(3))}, int64(rng.IntN(3))
			if rng.IntN(4) != 0 {
				if _, err := c.Fetch(k, start); err != nil {
					t.Fatal(err)
				}
			}
			v := "v" + strconv.Itoa(i)
			if rng.IntN(6) == 0 {
				v = "<nil>"
			}
			mustPutWindowAt(t, c, string(k), v, start, int64(i))
			if rng.IntN(20) == 0 {
				mustFlush(t, c)
			}
		}
		mustFlush(t, c)
		if calls < 100 {
			t.Fatalf("seed %d: only %d write-throughs", seed, calls)
		}
	}
}

type sessionFlushes []string

func (f *sessionFlushes) listen(sk, newValue, oldValue []byte, ts int64) error {
	key, start, end, err := ParseSessionKey(sk)
	if err != nil {
		return err
	}
	*f = append(*f, fmt.Sprintf("%s[%d,%d]=%s<-%s@%d", key, start, end, nilOr(newValue), nilOr(oldValue), ts))
	return nil
}

func mustPutSessionAt(t testing.TB, c SessionCache, k string, start, end int64, v string, ts int64) {
	t.Helper()
	var vb []byte
	if v != "<nil>" {
		vb = []byte(v)
	}
	if err := c.PutAt([]byte(k), start, end, vb, ts); err != nil {
		t.Fatalf("PutAt(%q, %d, %d): %v", k, start, end, err)
	}
}

// TestSessionCacheMergesAndRemovals follows a session aggregation: a
// session grows by being removed and put again with a wider range. One
// that inner never had is never written through; the removal of one it
// has is, with its old value.
func TestSessionCacheMergesAndRemovals(t *testing.T) {
	inner := NewInMemorySessionStore("s", SegmentedOptions{Retention: 10_000})
	mustPutSession(t, inner, "k", 0, 10, "flushed")
	var logged []string
	c := NewCachedSession(NewLoggedSession(inner, func(key, value []byte) error {
		k, start, end, _ := ParseSessionKey(key)
		logged = append(logged, fmt.Sprintf("%s[%d,%d]=%s", k, start, end, nilOr(value)))
		return nil
	}), 1<<20)
	if InnerSession(c) == nil {
		t.Error("InnerSession(cache) = nil, want the logging layer")
	}
	var got sessionFlushes
	c.SetFlushListener(got.listen)
	mustPutSessionAt(t, c, "k", 100, 100, "1", 100)
	if err := c.Remove([]byte("k"), 100, 100); err != nil {
		t.Fatal(err)
	}
	mustPutSessionAt(t, c, "k", 100, 105, "2", 105)
	if err := c.Remove([]byte("k"), 0, 10); err != nil {
		t.Fatal(err)
	}
	mustPutSessionAt(t, c, "k", 0, 105, "3", 106)
	if v, err := c.FetchSession([]byte("k"), 0, 10); err != nil || v != nil {
		t.Errorf("FetchSession of a removed session = %q, %v", v, err)
	}
	if got := drainSessions(t, func() (SessionIterator, error) { return c.FindSessions([]byte("k"), 0, 200) }); !slices.Equal(got, []string{
		sess("k", 0, 105, "3"), sess("k", 100, 105, "2"),
	}) {
		t.Errorf("FindSessions before the flush = %q", got)
	}
	if len(got) != 0 || len(logged) != 0 {
		t.Fatalf("written through before a flush: %q, %q", got, logged)
	}
	mustFlush(t, c)
	want := sessionFlushes{"k[100,105]=2<-<nil>@105", "k[0,10]=<nil><-flushed@0", "k[0,105]=3<-<nil>@106"}
	if !slices.Equal(got, want) {
		t.Errorf("listener saw %q, want %q", got, want)
	}
	// [100,100], which inner never had, is not written through at all.
	if want := []string{"k[100,105]=2", "k[0,10]=<nil>", "k[0,105]=3"}; !slices.Equal(logged, want) {
		t.Errorf("changelog got %q, want %q", logged, want)
	}
}

// TestSessionCacheReadsMatchUncached is TestWindowCacheReadsMatchUncached
// for sessions.
func TestSessionCacheReadsMatchUncached(t *testing.T) {
	keys := []string{"", "a", "a\x00", "ab"}
	for _, kind := range segmentedKinds {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/seed%d", kind.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 9))
				o := SegmentedOptions{Retention: 150, SegmentInterval: 50}
				plain := NewInMemorySessionStore("plain", o)
				var inner SessionStore
				if db := kind.db(t); db == nil {
					inner = NewInMemorySessionStore("w", o)
				} else {
					var err error
					if inner, err = db.SessionStore("w", o); err != nil {
						t.Fatal(err)
					}
				}
				c := NewCachedSession(inner, int64(rng.IntN(20)+1)*(segEntryOverhead+16))
				t.Cleanup(func() {
					if err := c.Close(); err != nil {
						t.Error(err)
					}
				})
				for i := range 300 {
					k := keys[rng.IntN(len(keys))]
					end := int64(i) + rng.Int64N(100) - 60
					start := end - rng.Int64N(30)
					v := fmt.Sprintf("%s%d", k, i)
					var vb []byte
					if rng.IntN(6) != 0 {
						vb = []byte(v)
					}
					for _, s := range []SessionStore{plain, c} {
						if err := s.Put([]byte(k), start, end, vb); err != nil {
							t.Fatal(err)
						}
					}
					if rng.IntN(50) == 0 {
						mustFlush(t, c)
					}
					earliest, latest := int64(i)-rng.Int64N(250), int64(i)-rng.Int64N(100)+80
					for _, k := range keys {
						for what, open := range map[string]func(s SessionStore) (SessionIterator, error){
							fmt.Sprintf("FindSessions(%q, %d, %d)", k, earliest, latest): func(s SessionStore) (SessionIterator, error) {
								return s.FindSessions([]byte(k), earliest, latest)
							},
							fmt.Sprintf("Fetch(%q)", k): func(s SessionStore) (SessionIterator, error) { return s.Fetch([]byte(k)) },
						} {
							g := drainSessions(t, func() (SessionIterator, error) { return open(c) })
							w := drainSessions(t, func() (SessionIterator, error) { return open(plain) })
							if !slices.Equal(g, w) {
								t.Fatalf("after write %d: %s = %q\nuncached %q", i, what, g, w)
							}
						}
					}
					g, err1 := c.FetchSession([]byte(k), start, end)
					w, err2 := plain.FetchSession([]byte(k), start, end)
					if err := errors.Join(err1, err2); err != nil || string(g) != string(w) || (g == nil) != (w == nil) {
						t.Fatalf("after write %d: FetchSession(%q, %d, %d) = %q, uncached %q (%v)", i, k, start, end, g, w, err)
					}
				}
			})
		}
	}
}

// TestSessionCacheListenerOldValues is TestWindowCacheListenerOldValues for
// sessions.
func TestSessionCacheListenerOldValues(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 6))
		c := NewCachedSession(NewInMemorySessionStore("s", SegmentedOptions{Retention: 1 << 40}), 4*(segEntryOverhead+24))
		model := map[string]string{}
		calls := 0
		c.SetFlushListener(func(sk, newValue, oldValue []byte, _ int64) error {
			calls++
			want, had := model[string(sk)]
			if (oldValue != nil) != had || string(oldValue) != want {
				t.Fatalf("seed %d: session %q: listener's old value %q, inner had %q (%v)", seed, sk, nilOr(oldValue), want, had)
			}
			if newValue == nil {
				delete(model, string(sk))
			} else {
				model[string(sk)] = string(newValue)
			}
			return nil
		})
		for i := range 2000 {
			k, start := []byte{byte('a' + rng.IntN(3))}, int64(rng.IntN(3))
			end := start + int64(rng.IntN(2))
			if rng.IntN(4) != 0 {
				if _, err := c.FetchSession(k, start, end); err != nil {
					t.Fatal(err)
				}
			}
			v := "v" + strconv.Itoa(i)
			if rng.IntN(6) == 0 {
				v = "<nil>"
			}
			mustPutSessionAt(t, c, string(k), start, end, v, int64(i))
			if rng.IntN(20) == 0 {
				mustFlush(t, c)
			}
		}
		mustFlush(t, c)
		if calls < 100 {
			t.Fatalf("seed %d: only %d write-throughs", seed, calls)
		}
	}
}

// TestSessionCacheConcurrentReads: FindSessions on other goroutines while
// the writer grows sessions, evicting and flushing; run with -race.
func TestSessionCacheConcurrentReads(t *testing.T) {
	c := NewCachedSession(NewInMemorySessionStore("s", SegmentedOptions{Retention: 200, SegmentInterval: 50}), 20*(segEntryOverhead+20))
	c.SetFlushListener(func([]byte, []byte, []byte, int64) error { return nil })
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		bad  atomic.Value
	)
	for range 3 {
		wg.Go(func() {
			for !stop.Load() {
				it, err := c.FindSessions([]byte("k"), 0, math.MaxInt64)
				if err != nil {
					bad.Store(err)
					return
				}
				last := int64(math.MinInt64)
				for it.Next() {
					if v := string(it.Value()); v != strconv.FormatInt(it.Start(), 10)+"-"+strconv.FormatInt(it.End(), 10) {
						bad.Store(fmt.Errorf("[%d,%d] holds %q", it.Start(), it.End(), v))
					}
					if it.Start() < last {
						bad.Store(fmt.Errorf("start %d after %d", it.Start(), last))
					}
					last = it.Start()
				}
				if err := errors.Join(it.Err(), it.Close()); err != nil {
					bad.Store(err)
				}
			}
		})
	}
	for i := range int64(3000) {
		start := i - i%5 // sessions of 5 records each, growing
		if i != start {
			if err := c.Remove([]byte("k"), start, i-1); err != nil {
				t.Fatal(err)
			}
		}
		mustPutSessionAt(t, c, "k", start, i, strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(i, 10), i)
		if i%200 == 0 {
			mustFlush(t, c)
		}
	}
	stop.Store(true)
	wg.Wait()
	if err, _ := bad.Load().(error); err != nil {
		t.Error(err)
	}
}
