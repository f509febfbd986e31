package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestPebbleStoresDoNotOverlap(t *testing.T) {
	db := openTestPebble(t, "db", PebbleOptions{FS: vfs.NewMem()})
	// Names chosen so that, without the length in front, one store's
	// prefix would be a prefix of another's keys ("a"+"b..." vs "ab"+...),
	// plus the empty name, 0xff bytes and a name long enough for a
	// two-byte length.
	names := []string{"", "a", "ab", "b", "a\xff", "\xff", strings.Repeat("n", 200), strings.Repeat("n", 201)}
	userKeys := []string{"", "b", "bc", "\x00", "\xff", "\xff\xff"}
	for _, n := range names {
		s := db.Store(n)
		for _, k := range userKeys {
			mustPut(t, s, k, n+"/"+k)
		}
	}
	for _, n := range names {
		s := db.Store(n)
		var want []string
		for _, k := range []string{"", "\x00", "b", "bc", "\xff", "\xff\xff"} {
			want = append(want, k+"="+n+"/"+k)
		}
		if got := drain(t, s.All); !slices.Equal(got, want) {
			t.Errorf("store %q: All() = %q, want %q", n, got, want)
		}
		if got := drain(t, func() (Iterator, error) { return s.Range(nil, nil) }); !slices.Equal(got, want) {
			t.Errorf("store %q: Range(nil, nil) = %q", n, got)
		}
		rev := slices.Clone(want)
		slices.Reverse(rev)
		if got := drain(t, func() (Iterator, error) { return s.ReverseRange(nil, nil) }); !slices.Equal(got, rev) {
			t.Errorf("store %q: ReverseRange(nil, nil) = %q", n, got)
		}
		if got := drain(t, func() (Iterator, error) { return s.PrefixScan([]byte("\xff")) }); !slices.Equal(got, want[4:]) {
			t.Errorf("store %q: PrefixScan(ff) = %q", n, got)
		}
		if got := drain(t, func() (Iterator, error) { return s.PrefixScan(nil) }); !slices.Equal(got, want) {
			t.Errorf("store %q: PrefixScan(nil) = %q", n, got)
		}
		if cnt, err := s.ApproximateNumEntries(); err != nil || cnt != int64(len(userKeys)) {
			t.Errorf("store %q: ApproximateNumEntries = %d, %v", s.Name(), cnt, err)
		}
	}
	// Deleting every key of one store leaves its neighbours alone.
	a := db.Store("a")
	for _, k := range userKeys {
		if _, err := a.Delete([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if got := drain(t, a.All); len(got) != 0 {
		t.Errorf("store a after deletes: %q", got)
	}
	if n, _ := db.Store("ab").ApproximateNumEntries(); n != int64(len(userKeys)) {
		t.Errorf("store ab lost entries: %d left", n)
	}
}

func TestPebbleStoreSameNameSameStore(t *testing.T) {
	db := openTestPebble(t, "db", PebbleOptions{FS: vfs.NewMem()})
	s := db.Store("x")
	if db.Store("x") != s {
		t.Error("Store(x) twice gave two stores")
	}
	mustPut(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing a store keeps its data; asking again opens it anew.
	s2 := db.Store("x")
	if s2 == s {
		t.Error("Store(x) after Close returned the closed store")
	}
	if v := mustGet(t, s2, "k"); string(v) != "v" {
		t.Errorf("Get after reopening the store = %q", v)
	}
}

func TestPebbleSurvivesReopen(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   PebbleOptions
		commit bool // db.Commit instead of the store's Flush
	}{
		{"wal", PebbleOptions{}, false},
		{"no wal commit", PebbleOptions{DisableWAL: true}, true},
		{"memfs", PebbleOptions{FS: vfs.NewMem()}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "task-0_1")
			db, err := OpenPebble(dir, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			s := db.Store("counts")
			mustPut(t, s, "a", "1")
			mustPut(t, s, "b", "2")
			if err := s.(Restorer).RestoreBatch([]KeyValue{{Key: []byte("c"), Value: []byte("3")}, {Key: []byte("a")}}); err != nil {
				t.Fatal(err)
			}
			// Flush or Commit is what makes writes durable (with the WAL
			// off, the only thing that does).
			durable := s.Flush
			if c.commit {
				durable = db.Commit
			}
			if err := durable(); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Errorf("second Close = %v, want nil", err)
			}
			if _, err := s.Get([]byte("b")); !errors.Is(err, ErrClosed) {
				t.Errorf("Get on a store of a closed db = %v, want ErrClosed", err)
			}
			if err := db.Flush(); !errors.Is(err, ErrClosed) {
				t.Errorf("Flush on a closed db = %v, want ErrClosed", err)
			}
			if err := db.Commit(); !errors.Is(err, ErrClosed) {
				t.Errorf("Commit on a closed db = %v, want ErrClosed", err)
			}
			if _, err := db.Store("new").Get([]byte("b")); !errors.Is(err, ErrClosed) {
				t.Errorf("Get on a store opened on a closed db = %v, want ErrClosed", err)
			}

			db = openTestPebble(t, dir, c.opts)
			if got := drain(t, db.Store("counts").All); !slices.Equal(got, []string{"b=2", "c=3"}) {
				t.Errorf("after reopen All() = %q", got)
			}
			if err := db.Flush(); err != nil {
				t.Errorf("db.Flush: %v", err)
			}
		})
	}
}

func TestPebbleCloseReportsLeakedIterators(t *testing.T) {
	db, err := OpenPebble("db", PebbleOptions{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	s := db.Store("s")
	mustPut(t, s, "k", "v")
	it, err := s.All()
	if err != nil {
		t.Fatal(err)
	}
	// The db closes the iterator (Pebble itself would refuse to close with
	// one open) and says so.
	if err := db.Close(); err == nil || !strings.Contains(err.Error(), "iterators still open") {
		t.Errorf("Close with a leaked iterator = %v", err)
	}
	if it.Next() || !errors.Is(it.Err(), ErrClosed) {
		t.Errorf("leaked iterator after Close: Err = %v", it.Err())
	}
	if err := it.Close(); err != nil {
		t.Errorf("closing the leaked iterator: %v", err)
	}
}

func TestPebbleCorruptDirectory(t *testing.T) {
	for _, c := range []struct {
		name    string
		corrupt func(t *testing.T, dir string)
	}{
		{"garbage MANIFEST", func(t *testing.T, dir string) {
			overwrite(t, dir, "MANIFEST-*", "not a manifest at all, just garbage bytes")
		}},
		{"truncated MANIFEST", func(t *testing.T, dir string) { overwrite(t, dir, "MANIFEST-*", "\x00\x01") }},
		{"garbage OPTIONS", func(t *testing.T, dir string) {
			overwrite(t, dir, "OPTIONS-*", "[Version]\n  pebble_version=99.9\n[Options]\n  comparer=no-such-comparer\n")
		}},
		{"MANIFEST missing", func(t *testing.T, dir string) {
			for _, f := range glob(t, dir, "MANIFEST-*") {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"not a directory", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, []byte("a file"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "task")
			db, err := OpenPebble(dir, PebbleOptions{})
			if err != nil {
				t.Fatal(err)
			}
			mustPut(t, db.Store("s"), "k", "v")
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			c.corrupt(t, dir)

			db, err = OpenPebble(dir, PebbleOptions{})
			if err == nil {
				_ = db.Close()
				t.Fatal("OpenPebble on a corrupt directory succeeded")
			}
			t.Logf("OpenPebble: %v", err)
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the directory", err)
			}
			if err := WipePebble(dir); err != nil {
				t.Fatal(err)
			}
			db = openTestPebble(t, dir, PebbleOptions{})
			if got := drain(t, db.Store("s").All); len(got) != 0 {
				t.Errorf("wiped store has %q", got)
			}
		})
	}
}

func glob(t *testing.T, dir, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s in %s (%v)", pattern, dir, err)
	}
	return files
}

func overwrite(t *testing.T, dir, pattern, garbage string) {
	t.Helper()
	for _, f := range glob(t, dir, pattern) {
		if err := os.WriteFile(f, []byte(garbage), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWipePebbleMissingDir(t *testing.T) {
	if err := WipePebble(filepath.Join(t.TempDir(), "never-created")); err != nil {
		t.Errorf("WipePebble of a missing dir = %v, want nil", err)
	}
}

// Without a WAL only Commit makes writes durable: a store's Flush (which
// the cache calls when it writes through at a task commit, before the
// changelog is acknowledged) must not.
func TestNoWALDurableOnlyAtCommit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "task-0_0")
	db := openTestPebble(t, dir, PebbleOptions{DisableWAL: true})
	s := db.Store("counts")
	mustPut(t, s, "a", "1")
	if err := db.Commit(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "b", "2")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestPebble(t, dir, PebbleOptions{DisableWAL: true})
	if got := drain(t, db.Store("counts").All); !slices.Equal(got, []string{"a=1"}) {
		t.Fatalf("after reopen All() = %q, want only the committed a=1", got)
	}
}

// Pebble flushing a full memtable on its own is reported; Commit's flush
// is not.
func TestUnplannedFlushReported(t *testing.T) {
	var unplanned atomic.Int64
	dir := filepath.Join(t.TempDir(), "task-0_0")
	db := openTestPebble(t, dir, PebbleOptions{DisableWAL: true, MemTableSize: 1 << 20,
		OnUnplannedFlush: func() { unplanned.Add(1) }})
	s := db.Store("big")
	mustPut(t, s, "k", "v")
	if err := db.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := unplanned.Load(); n != 0 {
		t.Fatalf("Commit's flush reported as unplanned (%d)", n)
	}
	value := bytes.Repeat([]byte("x"), 4096)
	for i := 0; i < 2000 && unplanned.Load() == 0; i++ {
		if err := s.Put([]byte(fmt.Sprintf("key-%06d", i)), value); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for unplanned.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if unplanned.Load() == 0 {
		t.Fatal("8 MB of writes into 1 MB memtables never reported an unplanned flush")
	}
}
