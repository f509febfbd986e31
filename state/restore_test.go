package state

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand"
	"path/filepath"
	"slices"
	"sort"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// runBulkRestore runs batches through BeginRestore ... EndRestore, with
// chunks of chunkBytes so that small tests still write several tables,
// and chunks written a few entries at a time.
func runBulkRestore(t *testing.T, db *PebbleDB, chunkBytes int, batches func()) {
	t.Helper()
	if err := db.BeginRestore(); err != nil {
		t.Fatal(err)
	}
	db.bulk.chunkBytes = chunkBytes
	db.bulk.gatherBytes = 64
	batches()
	if err := db.EndRestore(); err != nil {
		t.Fatal(err)
	}
}

func mustRestore(t *testing.T, r Restorer, batch []KeyValue) {
	t.Helper()
	if err := r.RestoreBatch(batch); err != nil {
		t.Fatal(err)
	}
}

// A bulk restore leaves the stores as the same batches written through
// Pebble batches do, whatever the chunking: a later write of a key wins,
// within a batch, a chunk or across them, a nil value deletes (also a key
// that was there before the restore), and stores sharing the db keep to
// their own keys.
func TestBulkRestoreMatchesBatches(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	stores := []string{"a", "ab", "b"}
	var batches [][]KeyValue
	var owners []string
	for range 60 {
		batch := make([]KeyValue, 1+r.Intn(40))
		for i := range batch {
			// Few keys, so that most are written many times; long ones
			// share their first 8 bytes past the common prefix.
			key := fmt.Sprintf("k%d", r.Intn(50))
			if r.Intn(3) == 0 {
				key = fmt.Sprintf("long-key-%08d-%d", r.Intn(4), r.Intn(5))
			}
			var value []byte
			if r.Intn(4) != 0 {
				value = fmt.Appendf(nil, "v%d", r.Int())
			}
			batch[i] = KeyValue{Key: []byte(key), Value: value}
		}
		batches = append(batches, batch)
		owners = append(owners, stores[r.Intn(len(stores))])
	}
	restore := func(db *PebbleDB) {
		for i, batch := range batches {
			mustRestore(t, db.Store(owners[i]).(Restorer), batch)
		}
	}
	seed := func(db *PebbleDB) {
		for _, name := range stores {
			for i := range 50 {
				mustPut(t, db.Store(name), fmt.Sprintf("k%d", i), "before")
			}
		}
	}
	want := openTestPebble(t, "want", PebbleOptions{FS: vfs.NewMem()})
	seed(want)
	restore(want)
	for _, chunk := range []int{1, 64, 1 << 10, 1 << 20} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			db := openTestPebble(t, "db", PebbleOptions{FS: vfs.NewMem()})
			seed(db)
			runBulkRestore(t, db, chunk, func() { restore(db) })
			for _, name := range stores {
				if got, want := drain(t, db.Store(name).All), drain(t, want.Store(name).All); !slices.Equal(got, want) {
					t.Errorf("store %q: All() = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// The sort orders keys as Pebble does, also keys that run past the 8 bytes
// it compares first, share them, or are prefixes of one another.
func TestBulkRestoreSortsLikePebble(t *testing.T) {
	keys := []string{"", "\x00", "\x00\x00", "a", "ab", "abcdefgh", "abcdefgh\x00", "abcdefghi", "abcdefgi",
		"abcdefgh\xff", "\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\xff", "abcdefg"}
	r := rand.New(rand.NewSource(2))
	var batch []KeyValue
	for range 4 {
		for _, i := range r.Perm(len(keys)) {
			batch = append(batch, KeyValue{Key: []byte(keys[i]), Value: fmt.Appendf(nil, "%q", keys[i])})
		}
	}
	db := openTestPebble(t, "db", PebbleOptions{FS: vfs.NewMem()})
	s := db.Store("s")
	runBulkRestore(t, db, 1<<20, func() { mustRestore(t, s.(Restorer), batch) })
	sorted := slices.Clone(keys)
	sort.Strings(sorted)
	var want []string
	for _, k := range sorted {
		want = append(want, k+"="+fmt.Sprintf("%q", k))
	}
	if got := drain(t, s.All); !slices.Equal(got, want) {
		t.Errorf("All() = %q, want %q", got, want)
	}
}

// What a restore ingested is on disk without a Commit, also with the WAL
// off (a memtable write would be lost at Close); the unplanned-flush
// callback hears of it first, since no checkpoint covers it.
func TestBulkRestoreDurableWithoutWAL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "task-0_0")
	var unplanned atomic.Int64
	db := openTestPebble(t, dir, PebbleOptions{DisableWAL: true, OnUnplannedFlush: func() { unplanned.Add(1) }})
	s := db.Store("counts")
	runBulkRestore(t, db, 1<<20, func() {
		mustRestore(t, s.(Restorer), []KeyValue{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}})
	})
	if unplanned.Load() == 0 {
		t.Error("ingesting a restore's table was not reported as an unplanned flush")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestPebble(t, dir, PebbleOptions{DisableWAL: true})
	if got, want := drain(t, db.Store("counts").All), []string{"a=1", "b=2"}; !slices.Equal(got, want) {
		t.Fatalf("after reopen All() = %q, want %q", got, want)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, restoreTempPrefix+"*")); len(tmp) > 0 {
		t.Errorf("temporary tables left behind: %q", tmp)
	}
}

// AbortRestore and Close drop what is buffered and keep what was ingested;
// a table a crash left before its ingestion is removed at the next open.
func TestBulkRestoreAbortAndClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "task-0_0")
	db := openTestPebble(t, dir, PebbleOptions{DisableWAL: true})
	s := db.Store("s").(Restorer)
	if err := db.BeginRestore(); err != nil {
		t.Fatal(err)
	}
	db.bulk.chunkBytes = 1
	// Each write fills a chunk: the first two are ingested by the time
	// the third is added, the third is still being written or waiting.
	mustRestore(t, s, []KeyValue{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}})
	mustRestore(t, s, []KeyValue{{Key: []byte("c"), Value: []byte("3")}})
	db.AbortRestore()
	if err := db.EndRestore(); err != nil {
		t.Fatalf("EndRestore after AbortRestore: %v", err)
	}
	got := drain(t, db.Store("s").All)
	if !slices.Contains(got, "a=1") || slices.Contains(got, "c=3") {
		t.Errorf("after AbortRestore All() = %q, want a=1 and never the buffered c=3", got)
	}

	if err := db.BeginRestore(); err != nil {
		t.Fatal(err)
	}
	mustRestore(t, s, []KeyValue{{Key: []byte("d"), Value: []byte("4")}})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := vfs.Default.Create(filepath.Join(dir, restoreTempPrefix+"000007.sst"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	db = openTestPebble(t, dir, PebbleOptions{DisableWAL: true})
	if got := drain(t, db.Store("s").All); slices.Contains(got, "d=4") {
		t.Errorf("a write buffered at Close was kept: %q", got)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, restoreTempPrefix+"*")); len(tmp) > 0 {
		t.Errorf("OpenPebble left a crashed restore's table: %q", tmp)
	}
	if err := db.BeginRestore(); err != nil {
		t.Fatal(err)
	}
	if err := db.BeginRestore(); err == nil {
		t.Error("a second BeginRestore did not fail")
	}
	db.AbortRestore()
}

// Window and session stores restore through the db's bulk restore as
// through Pebble batches, including the segments a restore drops once the
// records' times move past retention: the drop lands after what was
// buffered for the segment, so nothing of it survives.
func TestBulkRestoreSegmented(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	o := SegmentedOptions{Retention: 300, SegmentInterval: 100}
	var windows, sessions [][]KeyValue
	t0 := int64(0)
	for range 40 {
		var wb, sb []KeyValue
		for range 1 + r.Intn(30) {
			k := []byte(fmt.Sprintf("k%d", r.Intn(8)))
			start := t0 + int64(r.Intn(200)) - 100
			var v []byte
			if r.Intn(5) != 0 {
				v = fmt.Appendf(nil, "%d", r.Int())
			}
			wb = append(wb, KeyValue{Key: WindowKey(k, start, 0), Value: v})
			sb = append(sb, KeyValue{Key: SessionKey(k, start, start+int64(r.Intn(50))), Value: v})
		}
		windows, sessions = append(windows, wb), append(sessions, sb)
		t0 += int64(r.Intn(60))
	}
	for _, tc := range []struct {
		name    string
		batches [][]KeyValue
		open    func(*testing.T, *PebbleDB) (Restorer, func() []string)
	}{
		{"window", windows, func(t *testing.T, db *PebbleDB) (Restorer, func() []string) {
			w := openWindow(t, db, o)
			return w.(Restorer), func() []string { return drainWindows(t, w.All) }
		}},
		{"session", sessions, func(t *testing.T, db *PebbleDB) (Restorer, func() []string) {
			s := openSession(t, db, o)
			return s.(Restorer), func() []string {
				var all []string
				for k := range 8 {
					all = append(all, drainSessions(t, func() (SessionIterator, error) {
						return s.Fetch(fmt.Appendf(nil, "k%d", k))
					})...)
				}
				return all
			}
		}},
	} {
		for _, chunk := range []int{256, 1 << 20} {
			t.Run(fmt.Sprintf("%s/chunk=%d", tc.name, chunk), func(t *testing.T) {
				wantDB := openTestPebble(t, "want", PebbleOptions{FS: vfs.NewMem()})
				want, wantAll := tc.open(t, wantDB)
				for _, b := range tc.batches {
					mustRestore(t, want, b)
				}
				db := openTestPebble(t, "db", PebbleOptions{FS: vfs.NewMem()})
				got, gotAll := tc.open(t, db)
				runBulkRestore(t, db, chunk, func() {
					for _, b := range tc.batches {
						mustRestore(t, got, b)
					}
				})
				if g, w := gotAll(), wantAll(); !slices.Equal(g, w) || len(w) == 0 {
					t.Errorf("after restore: %q, want %q", g, w)
				}
				if g, w := segmentKeys(t, db), segmentKeys(t, wantDB); !maps.Equal(g, w) {
					t.Errorf("keys per segment = %v, want %v", g, w)
				}
			})
		}
	}
}

// The sort is the restore's own work between fetch and sstable writer:
// keep it linear in the chunk.
func BenchmarkRestoreChunkSort(b *testing.B) {
	r := rand.New(rand.NewSource(4))
	var c restoreChunk
	prefix := storePrefix("latest")
	value := bytes.Repeat([]byte("x"), 100)
	for len(c.arena) < restoreChunkBytes {
		c.add(prefix, fmt.Appendf(nil, "key-%d", r.Intn(10_000_000)), value, restoreChunkBytes)
	}
	arrival := slices.Clone(c.order)
	b.ResetTimer()
	for range b.N {
		copy(c.order, arrival)
		c.sort()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(c.order)), "ns/entry")
}

// A restore of 250 000 records of the bench's shape (keys of 10 to 12
// bytes in no order, 100-byte values) into an empty store, until durable:
// through Pebble batches and a final Commit, and through ingested tables.
// cpu-ns/record counts every goroutine of the process until then, Pebble's
// flushes and compactions included; settled-cpu-ns/record goes on until
// Pebble has no compaction left to run (the LSM the restore leaves costs
// compactions later: memtable flushes pile up in L0, ingested chunks
// stack up in levels).
func BenchmarkPebbleRestore(b *testing.B) {
	const n = 250_000
	r := rand.New(rand.NewSource(5))
	pad := bytes.Repeat([]byte("x"), 90)
	batch := make([]KeyValue, n)
	for i := range batch {
		batch[i] = KeyValue{Key: fmt.Appendf(nil, "key-%d", r.Intn(4*n)), Value: fmt.Appendf(nil, "%d|%s", i, pad)}
	}
	for _, bulk := range []bool{false, true} {
		b.Run(map[bool]string{false: "batches", true: "ingest"}[bulk], func(b *testing.B) {
			var cpu, settled time.Duration
			for range b.N {
				b.StopTimer()
				db, err := OpenPebble(b.TempDir(), PebbleOptions{DisableWAL: true})
				if err != nil {
					b.Fatal(err)
				}
				s := db.Store("latest").(Restorer)
				b.StartTimer()
				before := processCPU()
				if bulk {
					if err := db.BeginRestore(); err != nil {
						b.Fatal(err)
					}
				}
				for i := 0; i < n; i += 10_000 {
					if err := s.RestoreBatch(batch[i:min(n, i+10_000)]); err != nil {
						b.Fatal(err)
					}
				}
				if bulk {
					if err := db.EndRestore(); err != nil {
						b.Fatal(err)
					}
				}
				if err := db.Commit(); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU() - before
				b.StopTimer()
				waitForCompactions(b, db)
				settled += processCPU() - before
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/record")
			b.ReportMetric(float64(settled.Nanoseconds())/float64(b.N*n), "settled-cpu-ns/record")
		})
	}
}

// waitForCompactions waits until Pebble has run no compaction for 300 ms.
func waitForCompactions(b *testing.B, db *PebbleDB) {
	last, quiet := int64(-1), time.Now()
	for deadline := time.Now().Add(time.Minute); time.Since(quiet) < 300*time.Millisecond; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("compactions did not stop in a minute")
		}
		m := db.db.Metrics()
		if n := m.Compact.Count; n != last || m.Compact.NumInProgress > 0 {
			last, quiet = n, time.Now()
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
