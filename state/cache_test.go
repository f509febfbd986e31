package state

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// flushes records what a cache's FlushListener is told, as
// "key=new<-old@ts" with "<nil>" for nil.
type flushes []string

func (f *flushes) listen(key, newValue, oldValue []byte, ts int64) error {
	*f = append(*f, fmt.Sprintf("%s=%s<-%s@%d", key, orNil(newValue), orNil(oldValue), ts))
	return nil
}

func orNil(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}

func mustPutAt(t *testing.T, c Cache, k, v string, ts int64) {
	t.Helper()
	var vb []byte
	if v != "<nil>" {
		vb = []byte(v)
	}
	if err := c.PutAt([]byte(k), vb, ts); err != nil {
		t.Fatalf("PutAt(%q): %v", k, err)
	}
}

func TestCacheCollapsesUpdates(t *testing.T) {
	inner := NewInMemory("s")
	mustPut(t, inner, "k", "old")
	c := NewCached(inner, 1<<20)
	var got flushes
	c.SetFlushListener(got.listen)

	mustPutAt(t, c, "k", "v1", 10)
	mustPutAt(t, c, "k", "v2", 11)
	mustPutAt(t, c, "k", "v3", 12)
	if len(got) != 0 {
		t.Fatalf("listener called before flush: %q", got)
	}
	if v := mustGet(t, inner, "k"); string(v) != "old" {
		t.Fatalf("inner written before flush: %q", v)
	}
	if v := mustGet(t, c, "k"); string(v) != "v3" {
		t.Fatalf("Get through the cache = %q, want v3", v)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := (flushes{"k=v3<-old@12"}); !slices.Equal(got, want) {
		t.Errorf("listener saw %q, want %q", got, want)
	}
	if v := mustGet(t, inner, "k"); string(v) != "v3" {
		t.Errorf("inner after flush = %q, want v3", v)
	}
	// A second flush has nothing to write.
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Errorf("second flush called the listener again: %q", got)
	}
}

func TestCacheFlushOrderIsLeastRecentlyWritten(t *testing.T) {
	inner := NewInMemory("s")
	c := NewCached(inner, 1<<20)
	var got flushes
	c.SetFlushListener(got.listen)
	mustPutAt(t, c, "a", "1", 1)
	mustPutAt(t, c, "b", "2", 2)
	mustPutAt(t, c, "c", "3", 3)
	mustPutAt(t, c, "a", "4", 4) // rewriting a moves it to the back
	_ = mustGet(t, c, "b")       // reading does not
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	want := flushes{"b=2<-<nil>@2", "c=3<-<nil>@3", "a=4<-<nil>@4"}
	if !slices.Equal(got, want) {
		t.Errorf("flush order %q, want %q", got, want)
	}
}

func TestCacheEvictsOverMaxBytes(t *testing.T) {
	inner := NewInMemory("s")
	// Each entry costs 1+2+cacheEntryOverhead bytes: three fit.
	c := NewCached(inner, 3*(3+cacheEntryOverhead)+10)
	var got flushes
	c.SetFlushListener(got.listen)
	for i, k := range []string{"a", "b", "c"} {
		mustPutAt(t, c, k, "v"+k, int64(i))
	}
	if len(got) != 0 {
		t.Fatalf("evicted below the limit: %q", got)
	}
	mustPutAt(t, c, "d", "vd", 3)
	mustPutAt(t, c, "e", "ve", 4)
	want := flushes{"a=va<-<nil>@0", "b=vb<-<nil>@1"}
	if !slices.Equal(got, want) {
		t.Errorf("evictions %q, want %q", got, want)
	}
	for _, k := range []string{"a", "b"} {
		if v := mustGet(t, inner, k); string(v) != "v"+k {
			t.Errorf("evicted %s not written through: inner has %q", k, v)
		}
	}
	if v := mustGet(t, inner, "c"); v != nil {
		t.Errorf("c written through early: %q", v)
	}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if v := mustGet(t, c, k); string(v) != "v"+k {
			t.Errorf("Get(%s) through the cache = %q", k, v)
		}
	}
	// An entry bigger than the whole cache goes straight through.
	big := string(make([]byte, 4*cacheEntryOverhead))
	mustPutAt(t, c, "f", big, 5)
	if v := mustGet(t, inner, "f"); string(v) != big {
		t.Error("oversized entry not written through")
	}
}

func TestCacheDeletes(t *testing.T) {
	inner := NewInMemory("s")
	mustPut(t, inner, "k", "old")
	c := NewCached(inner, 1<<20)
	var got flushes
	c.SetFlushListener(got.listen)

	old, err := c.Delete([]byte("k"))
	if err != nil || string(old) != "old" {
		t.Fatalf("Delete = %q, %v; want old from inner", old, err)
	}
	if v := mustGet(t, c, "k"); v != nil {
		t.Errorf("Get of a cached delete = %q, want nil", v)
	}
	if v := mustGet(t, inner, "k"); string(v) != "old" {
		t.Errorf("delete reached inner before flush")
	}
	if got := drain(t, c.All); len(got) != 0 {
		t.Errorf("All() shows a cached delete: %q", got)
	}
	// A key written and deleted while cached, which inner never had, makes
	// no listener call (both values nil) but still reaches inner.
	mustPutAt(t, c, "tmp", "x", 1)
	mustPutAt(t, c, "tmp", "<nil>", 2)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := (flushes{"k=<nil><-old@0"}); !slices.Equal(got, want) {
		t.Errorf("listener saw %q, want %q", got, want)
	}
	if v := mustGet(t, inner, "k"); v != nil {
		t.Errorf("inner after flush = %q, want nil", v)
	}
}

func TestCacheDisabledWritesThrough(t *testing.T) {
	var log changelog
	inner := NewLogged(NewInMemory("s"), log.log)
	c := NewCached(inner, 0)
	var got flushes
	c.SetFlushListener(got.listen)
	mustPutAt(t, c, "k", "1", 1)
	mustPutAt(t, c, "k", "2", 2)
	if old, err := c.Delete([]byte("k")); err != nil || string(old) != "2" {
		t.Fatalf("Delete = %q, %v", old, err)
	}
	want := flushes{"k=1<-<nil>@1", "k=2<-1@2", "k=<nil><-2@0"}
	if !slices.Equal(got, want) {
		t.Errorf("listener saw %q, want %q", got, want)
	}
	if want := (changelog{"k=1", "k=2", "k=<nil>"}); !slices.Equal(log, want) {
		t.Errorf("changelog %q, want %q", log, want)
	}
	if Inner(c) != inner {
		t.Error("Inner(cache) is not the inner store")
	}
}

func TestCacheListenerErrors(t *testing.T) {
	boom := errors.New("downstream failed")
	fail := func([]byte, []byte, []byte, int64) error { return boom }

	c := NewCached(NewInMemory("s"), 1<<20)
	c.SetFlushListener(fail)
	mustPutAt(t, c, "k", "v", 1)
	if err := c.Flush(); !errors.Is(err, boom) {
		t.Errorf("Flush = %v, want the listener's error", err)
	}

	c = NewCached(NewInMemory("s"), cacheEntryOverhead+10) // one entry fits, two do not
	c.SetFlushListener(fail)
	mustPutAt(t, c, "a", "v", 1)
	if err := c.PutAt([]byte("b"), []byte("v"), 2); !errors.Is(err, boom) {
		t.Errorf("PutAt that evicts = %v, want the listener's error", err)
	}

	c = NewCached(NewInMemory("s"), 0)
	c.SetFlushListener(fail)
	if err := c.PutAt([]byte("b"), []byte("v"), 2); !errors.Is(err, boom) {
		t.Errorf("uncached PutAt = %v, want the listener's error", err)
	}
}

func TestCacheKeepsEntryWhenInnerFails(t *testing.T) {
	inner := NewInMemory("s")
	c := NewCached(inner, 1<<20)
	mustPutAt(t, c, "k", "v", 1)
	if err := inner.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush into a closed inner = %v", err)
	}
	// The write did not happen, so the entry is still dirty and readable.
	if v := mustGet(t, c, "k"); string(v) != "v" {
		t.Errorf("Get after a failed flush = %q", v)
	}
}

func TestCacheListenerMayUseTheCache(t *testing.T) {
	// The listener forwards downstream, where a processor may read this
	// store or write another key of it: no deadlock, and it sees the
	// flushed value.
	inner := NewInMemory("s")
	c := NewCached(inner, 1<<20)
	var seen []string
	c.SetFlushListener(func(key, newValue, _ []byte, ts int64) error {
		v, err := c.Get(key)
		if err != nil {
			return err
		}
		seen = append(seen, string(key)+"="+string(v))
		if string(key) == "a" {
			return c.PutAt([]byte("derived"), newValue, ts)
		}
		return nil
	})
	mustPutAt(t, c, "a", "1", 1)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=1", "derived=1"}; !slices.Equal(seen, want) {
		t.Errorf("listener saw %q, want %q", seen, want)
	}
	if v := mustGet(t, inner, "derived"); string(v) != "1" {
		t.Errorf("entry written by the listener not flushed: %q", v)
	}
}

func TestCacheIteratorsMergeWithoutFlushing(t *testing.T) {
	inner := NewInMemory("s")
	for _, k := range []string{"a", "b", "c", "d"} {
		mustPut(t, inner, k, "inner")
	}
	c := NewCached(inner, 1<<20)
	var got flushes
	c.SetFlushListener(got.listen)
	mustPutAt(t, c, "b", "cached", 1)
	mustPutAt(t, c, "bb", "new", 1)
	mustPutAt(t, c, "c", "<nil>", 1)
	mustPutAt(t, c, "e", "new", 1)

	want := []string{"a=inner", "b=cached", "bb=new", "d=inner", "e=new"}
	if all := drain(t, c.All); !slices.Equal(all, want) {
		t.Errorf("All() = %q, want %q", all, want)
	}
	if r := drain(t, func() (Iterator, error) { return c.ReverseRange([]byte("b"), []byte("d")) }); !slices.Equal(r, []string{"d=inner", "bb=new", "b=cached"}) {
		t.Errorf("ReverseRange(b, d) = %q", r)
	}
	if p := drain(t, func() (Iterator, error) { return c.PrefixScan([]byte("b")) }); !slices.Equal(p, []string{"b=cached", "bb=new"}) {
		t.Errorf("PrefixScan(b) = %q", p)
	}
	if n, err := c.ApproximateNumEntries(); err != nil || n != 5 {
		t.Errorf("ApproximateNumEntries = %d, %v; want 5", n, err)
	}
	if len(got) != 0 {
		t.Errorf("reading flushed the cache: %q", got)
	}
}

func TestCacheCloseDropsUnflushed(t *testing.T) {
	db := openTestPebble(t, "db", PebbleOptions{FS: vfs.NewMem()})
	c := NewCached(db.Store("s"), 1<<20)
	mustPutAt(t, c, "flushed", "v", 1)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	mustPutAt(t, c, "k", "v", 2)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	// Writes after the last flush belong to input not yet committed: they
	// are dropped, and come back when that input is processed again.
	if got := drain(t, db.Store("s").All); !slices.Equal(got, []string{"flushed=v"}) {
		t.Errorf("after Close the store holds %q", got)
	}
}

func TestCacheOverNonRestorer(t *testing.T) {
	c := NewCached(plainStore{NewInMemory("s")}, 1<<20)
	if _, ok := c.(Restorer); ok {
		t.Error("cache over a non-Restorer claims to be a Restorer")
	}
}

func TestMeteredSamplesAndKeepsTheCache(t *testing.T) {
	var ops []string
	s := NewMetered(NewCached(NewInMemory("m"), 1<<20), func(op string, _ time.Duration) { ops = append(ops, op) })
	c, ok := s.(Cache)
	if !ok {
		t.Fatal("a metered cache is not a Cache")
	}
	for i := range 2 * MeterSample {
		if err := c.PutAt([]byte{byte(i)}, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(ops) != 2 || ops[0] != "put" {
		t.Fatalf("observed %v, want 2 sampled puts", ops)
	}
	if v, err := s.Get([]byte{3}); err != nil || string(v) != "v" {
		t.Fatalf("Get through the meter: %q %v", v, err)
	}
	if Inner(s) == nil {
		t.Fatal("Inner does not unwrap the meter")
	}
}

// countingStore counts the reads that reach the store under a cache.
type countingStore struct {
	KeyValueStore
	gets int
}

func (s *countingStore) Get(key []byte) ([]byte, error) {
	s.gets++
	return s.KeyValueStore.Get(key)
}

func TestCacheKeepsFlushedEntriesClean(t *testing.T) {
	inner := &countingStore{KeyValueStore: NewInMemory("s")}
	c := NewCached(inner, 1<<20)
	var got flushes
	c.SetFlushListener(got.listen)
	mustPutAt(t, c, "a", "1", 1)
	mustPutAt(t, c, "b", "2", 2)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	readsAtFlush := inner.gets // the write-throughs of new keys read inner once each
	if readsAtFlush != 2 {
		t.Errorf("first flush read inner %d times, want 2", readsAtFlush)
	}
	// Flushed entries are clean: reads and the next write-through find
	// them in memory, and a second flush writes nothing.
	if v := string(mustGet(t, c, "a")); v != "1" {
		t.Errorf("Get(a) = %q after flush", v)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	mustPutAt(t, c, "a", "3", 3)
	mustPutAt(t, c, "a", "4", 4)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if inner.gets != readsAtFlush {
		t.Errorf("inner read %d more times after the first flush, want 0", inner.gets-readsAtFlush)
	}
	want := flushes{"a=1<-<nil>@1", "b=2<-<nil>@2", "a=4<-1@4"}
	if !slices.Equal(got, want) {
		t.Errorf("flushes %q, want %q", got, want)
	}
	// A delete of a clean entry is written through with its old value.
	if _, err := c.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := (flushes{"a=1<-<nil>@1", "b=2<-<nil>@2", "a=4<-1@4", "b=<nil><-2@0"}); !slices.Equal(got, want) {
		t.Errorf("flushes %q, want %q", got, want)
	}
	if v, _ := inner.KeyValueStore.Get([]byte("b")); v != nil {
		t.Errorf("inner still has b = %q", v)
	}
	if v := mustGet(t, c, "b"); v != nil {
		t.Errorf("Get(b) = %q after delete", v)
	}
	n, err := c.ApproximateNumEntries()
	if err != nil || n != 1 {
		t.Errorf("ApproximateNumEntries = %d, %v; want 1", n, err)
	}
	it, err := c.All()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key())+"="+string(it.Value()))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"a=4"}) {
		t.Errorf("All = %q, want [a=4]", keys)
	}
}

func TestCacheDropsCleanEntriesFirst(t *testing.T) {
	inner := NewInMemory("s")
	c := NewCached(inner, 3*(3+cacheEntryOverhead)+10) // three entries fit
	var got flushes
	c.SetFlushListener(got.listen)
	mustPutAt(t, c, "a", "va", 1)
	mustPutAt(t, c, "b", "vb", 2)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got = nil
	mustPutAt(t, c, "c", "vc", 3)
	// Over size: the oldest clean entry (a) goes, without a write; the
	// dirty c stays.
	mustPutAt(t, c, "d", "vd", 4)
	if len(got) != 0 {
		t.Errorf("evicting clean entries wrote through %q", got)
	}
	if v := string(mustGet(t, c, "a")); v != "va" {
		t.Errorf("Get(a) = %q after its clean entry was dropped, want it from inner", v)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := (flushes{"c=vc<-<nil>@3", "d=vd<-<nil>@4"}); !slices.Equal(got, want) {
		t.Errorf("flushes %q, want %q", got, want)
	}
}
