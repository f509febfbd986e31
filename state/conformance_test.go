package state

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// storeKind opens a fresh, empty store of one kind, named "s"; the test's
// cleanup closes what it opened underneath.
type storeKind struct {
	name string
	open func(t *testing.T) KeyValueStore
}

func openTestPebble(t testing.TB, dir string, opts PebbleOptions) *PebbleDB {
	t.Helper()
	db, err := OpenPebble(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close pebble: %v", err)
		}
	})
	return db
}

func pebbleDisk(t *testing.T) KeyValueStore {
	return openTestPebble(t, t.TempDir(), PebbleOptions{}).Store("s")
}

func pebbleMem(t *testing.T) KeyValueStore {
	db := openTestPebble(t, "db", PebbleOptions{FS: vfs.NewMem()})
	// Neighbours on both sides of "s" in key order, which the store must
	// never show.
	for _, name := range []string{"", "r", "sa", "s\xff", "t"} {
		o := db.Store(name)
		for _, k := range []string{"", "a", "m", "\xff"} {
			if err := o.Put([]byte(k), []byte("other store "+name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return db.Store("s")
}

func noLog([]byte, []byte) error { return nil }

func storeKinds() []storeKind {
	return []storeKind{
		{"memory", func(*testing.T) KeyValueStore { return NewInMemory("s") }},
		{"pebble-disk", pebbleDisk},
		{"pebble-memfs", pebbleMem},
		{"logged-memory", func(*testing.T) KeyValueStore { return NewLogged(NewInMemory("s"), noLog) }},
		{"logged-pebble", func(t *testing.T) KeyValueStore { return NewLogged(pebbleMem(t), noLog) }},
		{"cached-memory-1MiB", func(*testing.T) KeyValueStore { return NewCached(NewInMemory("s"), 1<<20) }},
		{"cached-pebble-1MiB", func(t *testing.T) KeyValueStore { return NewCached(NewLogged(pebbleMem(t), noLog), 1<<20) }},
		{"cached-memory-0", func(*testing.T) KeyValueStore { return NewCached(NewInMemory("s"), 0) }},
		{"cached-pebble-0", func(t *testing.T) KeyValueStore { return NewCached(pebbleDisk(t), 0) }},
		// About three entries fit: most writes evict, so reads and
		// iterators mix cached and written-through entries.
		{"cached-pebble-tiny", func(t *testing.T) KeyValueStore { return NewCached(pebbleMem(t), 200) }},
	}
}

// TestConformance runs one suite against every store kind: they must be
// indistinguishable through the KeyValueStore interface.
func TestConformance(t *testing.T) {
	for _, kind := range storeKinds() {
		t.Run(kind.name, func(t *testing.T) { testStore(t, kind.open) })
	}
}

func testStore(t *testing.T, open func(t *testing.T) KeyValueStore) {
	// fresh opens a store filled with entries and checks, when the test
	// ends, that no iterator was left open.
	fresh := func(t *testing.T, entries ...string) KeyValueStore {
		s := open(t)
		for _, k := range entries {
			mustPut(t, s, k, "v"+k)
		}
		t.Cleanup(func() {
			if n := OpenIterators(s); n != 0 {
				t.Errorf("%d iterators left open", n)
			}
		})
		return s
	}
	keys := []string{"", "a", "ab", "abc", "abd", "b", "ba", "c", "\xff", "\xff\xff"}
	shuffled := slices.Clone(keys)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})

	t.Run("Name", func(t *testing.T) {
		if got := fresh(t).Name(); got != "s" {
			t.Errorf("Name() = %q, want %q", got, "s")
		}
	})

	t.Run("AllInKeyOrder", func(t *testing.T) {
		s := fresh(t, shuffled...)
		got := drain(t, s.All)
		want := make([]string, len(keys))
		for i, k := range keys {
			want[i] = k + "=v" + k
		}
		if !slices.Equal(got, want) {
			t.Errorf("All() = %q\nwant %q", got, want)
		}
	})

	rangeCases := []struct {
		name     string
		from, to []byte
		want     []string
	}{
		{"both bounds inclusive", []byte("ab"), []byte("b"), []string{"ab", "abc", "abd", "b"}},
		{"bounds between keys", []byte("aa"), []byte("abz"), []string{"ab", "abc", "abd"}},
		{"from equals to", []byte("b"), []byte("b"), []string{"b"}},
		{"absent single key", []byte("bb"), []byte("bb"), nil},
		{"nil from", nil, []byte("a"), []string{"", "a"}},
		{"nil to", []byte("c"), nil, []string{"c", "\xff", "\xff\xff"}},
		{"both nil", nil, nil, keys},
		{"empty from is the smallest key", []byte{}, []byte{}, []string{""}},
		{"to past every key", []byte("\xff"), []byte("\xff\xff\xff"), []string{"\xff", "\xff\xff"}},
		{"from after to is empty", []byte("c"), []byte("a"), nil},
	}
	t.Run("Range", func(t *testing.T) {
		s := fresh(t, shuffled...)
		for _, c := range rangeCases {
			got := drainKeys(t, func() (Iterator, error) { return s.Range(c.from, c.to) })
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: Range(%q, %q) = %q, want %q", c.name, c.from, c.to, got, c.want)
			}
		}
	})
	t.Run("ReverseRange", func(t *testing.T) {
		s := fresh(t, shuffled...)
		for _, c := range rangeCases {
			got := drainKeys(t, func() (Iterator, error) { return s.ReverseRange(c.from, c.to) })
			want := slices.Clone(c.want)
			slices.Reverse(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: ReverseRange(%q, %q) = %q, want %q", c.name, c.from, c.to, got, want)
			}
		}
	})

	t.Run("PrefixScan", func(t *testing.T) {
		s := fresh(t, append(shuffled, "ab\xff", "ab\xff\xff", "ac")...)
		for _, c := range []struct {
			prefix string
			want   []string
		}{
			{"ab", []string{"ab", "abc", "abd", "ab\xff", "ab\xff\xff"}},
			{"ab\xff", []string{"ab\xff", "ab\xff\xff"}},
			{"abc", []string{"abc"}},
			{"\xff", []string{"\xff", "\xff\xff"}},
			{"\xff\xff", []string{"\xff\xff"}},
			{"zz", nil},
			{"", append(slices.Clone(keys[:5]), "ab\xff", "ab\xff\xff", "ac", "b", "ba", "c", "\xff", "\xff\xff")},
		} {
			got := drainKeys(t, func() (Iterator, error) { return s.PrefixScan([]byte(c.prefix)) })
			if !slices.Equal(got, c.want) {
				t.Errorf("PrefixScan(%q) = %q, want %q", c.prefix, got, c.want)
			}
		}
	})

	t.Run("ManyEntries", func(t *testing.T) {
		// Enough entries to cross the in-memory iterator's refill batches and
		// the tiny cache's evictions.
		s := fresh(t)
		var want []string
		for i := 0; i < 1000; i++ {
			k := fmt.Sprintf("k%04d", i)
			want = append(want, k+"=v"+k)
		}
		for _, i := range rand.New(rand.NewPCG(3, 4)).Perm(1000) {
			k := fmt.Sprintf("k%04d", i)
			mustPut(t, s, k, "v"+k)
		}
		if got := drain(t, s.All); !slices.Equal(got, want) {
			t.Errorf("All() returned %d entries, want %d in order", len(got), len(want))
		}
		sub := slices.Clone(want[100:901])
		if got := drain(t, func() (Iterator, error) { return s.Range([]byte("k0100"), []byte("k0900")) }); !slices.Equal(got, sub) {
			t.Errorf("Range returned %d entries, want %d in order", len(got), len(sub))
		}
		slices.Reverse(sub)
		if got := drain(t, func() (Iterator, error) { return s.ReverseRange([]byte("k0100"), []byte("k0900")) }); !slices.Equal(got, sub) {
			t.Errorf("ReverseRange returned %d entries, want %d in order", len(got), len(sub))
		}
		if got := drain(t, func() (Iterator, error) { return s.PrefixScan([]byte("k05")) }); !slices.Equal(got, want[500:600]) {
			t.Errorf("PrefixScan returned %d entries, want 100 in order", len(got))
		}
		if n, err := s.ApproximateNumEntries(); err != nil || n != 1000 {
			t.Errorf("ApproximateNumEntries = %d, %v; want 1000", n, err)
		}
	})

	t.Run("GetAbsentIsNil", func(t *testing.T) {
		s := fresh(t, "a")
		if v := mustGet(t, s, "b"); v != nil {
			t.Errorf("Get(absent) = %q, want nil", v)
		}
	})

	t.Run("EmptyValueIsNotAbsent", func(t *testing.T) {
		s := fresh(t)
		if err := s.Put([]byte("k"), []byte{}); err != nil {
			t.Fatal(err)
		}
		if v := mustGet(t, s, "k"); v == nil || len(v) != 0 {
			t.Errorf("Get = %#v, want empty non-nil", v)
		}
		if got := drain(t, s.All); !slices.Equal(got, []string{"k="}) {
			t.Errorf("All() = %q", got)
		}
	})

	t.Run("GetReturnsACopy", func(t *testing.T) {
		s := fresh(t)
		key, val := []byte("k"), []byte("value")
		if err := s.Put(key, val); err != nil {
			t.Fatal(err)
		}
		key[0], val[0] = 'x', 'x' // the caller reuses its buffers
		v := mustGet(t, s, "k")
		if string(v) != "value" {
			t.Fatalf("Get = %q after the caller changed its buffers", v)
		}
		v[0] = 'x'
		if v := mustGet(t, s, "k"); string(v) != "value" {
			t.Errorf("Get = %q after the caller changed a returned value", v)
		}
	})

	t.Run("PutOverwrites", func(t *testing.T) {
		s := fresh(t, "k")
		mustPut(t, s, "k", "new")
		if v := mustGet(t, s, "k"); string(v) != "new" {
			t.Errorf("Get = %q, want new", v)
		}
	})

	t.Run("PutNilDeletes", func(t *testing.T) {
		s := fresh(t, "a", "k", "z")
		if err := s.Put([]byte("k"), nil); err != nil {
			t.Fatal(err)
		}
		if v := mustGet(t, s, "k"); v != nil {
			t.Errorf("Get after Put(nil) = %q, want nil", v)
		}
		if got := drainKeys(t, s.All); !slices.Equal(got, []string{"a", "z"}) {
			t.Errorf("All() = %q", got)
		}
	})

	t.Run("DeleteReturnsOld", func(t *testing.T) {
		s := fresh(t, "k")
		old, err := s.Delete([]byte("k"))
		if err != nil || string(old) != "vk" {
			t.Errorf("Delete = %q, %v; want vk", old, err)
		}
		old, err = s.Delete([]byte("k"))
		if err != nil || old != nil {
			t.Errorf("second Delete = %q, %v; want nil", old, err)
		}
		if v := mustGet(t, s, "k"); v != nil {
			t.Errorf("Get after Delete = %q", v)
		}
	})

	t.Run("PutIfAbsent", func(t *testing.T) {
		s := fresh(t, "k")
		old, err := s.PutIfAbsent([]byte("k"), []byte("x"))
		if err != nil || string(old) != "vk" {
			t.Errorf("PutIfAbsent(present) = %q, %v; want vk", old, err)
		}
		if v := mustGet(t, s, "k"); string(v) != "vk" {
			t.Errorf("PutIfAbsent(present) overwrote: %q", v)
		}
		old, err = s.PutIfAbsent([]byte("n"), []byte("x"))
		if err != nil || old != nil {
			t.Errorf("PutIfAbsent(absent) = %q, %v; want nil", old, err)
		}
		if v := mustGet(t, s, "n"); string(v) != "x" {
			t.Errorf("PutIfAbsent(absent) wrote %q, want x", v)
		}
	})

	t.Run("ApproximateNumEntries", func(t *testing.T) {
		s := fresh(t, keys...)
		mustPut(t, s, "a", "again")
		if _, err := s.Delete([]byte("b")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Delete([]byte("absent")); err != nil {
			t.Fatal(err)
		}
		n, err := s.ApproximateNumEntries()
		if err != nil || n != int64(len(keys)-1) {
			t.Errorf("ApproximateNumEntries = %d, %v; want %d", n, err, len(keys)-1)
		}
	})

	t.Run("Flush", func(t *testing.T) {
		s := fresh(t, keys...)
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := drainKeys(t, s.All); !slices.Equal(got, keys) {
			t.Errorf("All() after Flush = %q", got)
		}
	})

	t.Run("IteratorsCounted", func(t *testing.T) {
		s := fresh(t, "a", "b")
		it1, err := s.All()
		if err != nil {
			t.Fatal(err)
		}
		it2, err := s.PrefixScan([]byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		if n := OpenIterators(s); n != 2 {
			t.Errorf("OpenIterators = %d with two open, want 2", n)
		}
		for it1.Next() {
		}
		mustClose(t, it1)
		mustClose(t, it1) // Close is idempotent
		mustClose(t, it2) // closing before the end is fine
		if n := OpenIterators(s); n != 0 {
			t.Errorf("OpenIterators = %d after closing, want 0", n)
		}
		if it1.Next() {
			t.Error("Next after Close = true")
		}
	})

	t.Run("IteratorIsASnapshot", func(t *testing.T) {
		s := fresh(t, "a", "b", "c", "d")
		it, err := s.All()
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var got []string
		for i := 0; it.Next(); i++ {
			got = append(got, string(it.Key())+"="+string(it.Value()))
			if i == 0 {
				// Writes while the iterator is open must not show through it.
				mustPut(t, s, "bb", "new")
				mustPut(t, s, "c", "changed")
				if _, err := s.Delete([]byte("d")); err != nil {
					t.Fatal(err)
				}
				for _, k := range []string{"e", "f", "g", "h"} {
					mustPut(t, s, k, "new")
				}
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{"a=va", "b=vb", "c=vc", "d=vd"}
		if !slices.Equal(got, want) {
			t.Errorf("iterator saw %q, want %q", got, want)
		}
	})

	t.Run("RestoreBatch", func(t *testing.T) {
		s := fresh(t, "a", "b")
		r, ok := s.(Restorer)
		if !ok {
			t.Fatalf("%T does not implement Restorer", s)
		}
		err := r.RestoreBatch([]KeyValue{
			{Key: []byte("a"), Value: nil},             // delete
			{Key: []byte("c"), Value: []byte("1")},     // insert
			{Key: []byte("b"), Value: []byte("2")},     // overwrite
			{Key: []byte("d"), Value: []byte("3")},     //
			{Key: []byte("d"), Value: nil},             // later entries win
			{Key: []byte("e"), Value: []byte("gone")},  //
			{Key: []byte("e"), Value: []byte("final")}, //
		})
		if err != nil {
			t.Fatal(err)
		}
		got := drain(t, s.All)
		want := []string{"b=2", "c=1", "e=final"}
		if !slices.Equal(got, want) {
			t.Errorf("after restore All() = %q, want %q", got, want)
		}
	})

	t.Run("UseAfterClose", func(t *testing.T) {
		s := fresh(t, "a", "b")
		it, err := s.All()
		if err != nil {
			t.Fatal(err)
		}
		if !it.Next() {
			t.Fatal("no first entry")
		}
		// Closing with an iterator open reports the leak, and the
		// iterator stops.
		if err := s.Close(); err == nil || !strings.Contains(err.Error(), "iterator") {
			t.Errorf("Close with an open iterator = %v, want an error about it", err)
		}
		if it.Next() {
			t.Error("iterator Next after store Close = true")
		}
		if !errors.Is(it.Err(), ErrClosed) {
			t.Errorf("iterator Err after store Close = %v, want ErrClosed", it.Err())
		}
		mustClose(t, it)
		if err := s.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		k, v := []byte("a"), []byte("x")
		ops := map[string]func() error{
			"Get":                   func() error { _, err := s.Get(k); return err },
			"Put":                   func() error { return s.Put(k, v) },
			"Put(nil)":              func() error { return s.Put(k, nil) },
			"PutIfAbsent":           func() error { _, err := s.PutIfAbsent(k, v); return err },
			"Delete":                func() error { _, err := s.Delete(k); return err },
			"Range":                 func() error { _, err := s.Range(k, k); return err },
			"Range(empty)":          func() error { _, err := s.Range(v, k); return err },
			"ReverseRange":          func() error { _, err := s.ReverseRange(nil, nil); return err },
			"All":                   func() error { _, err := s.All(); return err },
			"PrefixScan":            func() error { _, err := s.PrefixScan(k); return err },
			"ApproximateNumEntries": func() error { _, err := s.ApproximateNumEntries(); return err },
			"Flush":                 func() error { return s.Flush() },
			"RestoreBatch":          func() error { return s.(Restorer).RestoreBatch([]KeyValue{{Key: k, Value: v}}) },
		}
		for name, op := range ops {
			if err := op(); !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		}
		if c, ok := s.(Cache); ok {
			if err := c.PutAt(k, v, 1); !errors.Is(err, ErrClosed) {
				t.Errorf("PutAt after Close = %v, want ErrClosed", err)
			}
		}
	})

	t.Run("ConcurrentReads", func(t *testing.T) {
		// One writer and interactive-query readers; run with -race.
		s := fresh(t)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for r := 0; r < 2; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := s.Get([]byte("k050")); err != nil {
						t.Error(err)
						return
					}
					it, err := s.Range([]byte("k010"), []byte("k020"))
					if err != nil {
						t.Error(err)
						return
					}
					prev := ""
					for it.Next() {
						if k := string(it.Key()); k <= prev {
							t.Errorf("keys out of order: %q after %q", k, prev)
						} else {
							prev = k
						}
					}
					if err := errors.Join(it.Err(), it.Close()); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		for i := 0; i < 500; i++ {
			mustPut(t, s, fmt.Sprintf("k%03d", i%100), fmt.Sprint(i))
			if i%7 == 0 {
				if _, err := s.Delete([]byte(fmt.Sprintf("k%03d", (i*3)%100))); err != nil {
					t.Fatal(err)
				}
			}
		}
		close(stop)
		wg.Wait()
	})

	t.Run("MatchesAModel", func(t *testing.T) {
		// Random operations against a map; every read must agree.
		s := fresh(t)
		model := map[string]string{}
		rng := rand.New(rand.NewPCG(7, 8))
		key := func() []byte {
			// Short keys from a small alphabet collide and nest often.
			b := make([]byte, rng.IntN(3))
			for i := range b {
				b[i] = "ab\xff"[rng.IntN(3)]
			}
			return b
		}
		for i := 0; i < 1500; i++ {
			k := key()
			switch op := rng.IntN(10); {
			case op < 4:
				v := fmt.Sprint(i)
				mustPut(t, s, string(k), v)
				model[string(k)] = v
			case op < 5:
				old, err := s.Delete(k)
				if err != nil {
					t.Fatal(err)
				}
				checkOld(t, "Delete", k, old, model)
				delete(model, string(k))
			case op < 6:
				v := fmt.Sprint(i)
				old, err := s.PutIfAbsent(k, []byte(v))
				if err != nil {
					t.Fatal(err)
				}
				checkOld(t, "PutIfAbsent", k, old, model)
				if _, ok := model[string(k)]; !ok {
					model[string(k)] = v
				}
			case op < 7:
				checkOld(t, "Get", k, mustGet(t, s, string(k)), model)
			case op < 8:
				from, to := key(), key()
				if rng.IntN(4) == 0 {
					from = nil
				}
				if rng.IntN(4) == 0 {
					to = nil
				}
				want := modelRange(model, from, to)
				if got := drain(t, func() (Iterator, error) { return s.Range(from, to) }); !slices.Equal(got, want) {
					t.Fatalf("op %d: Range(%q, %q) = %q, want %q", i, from, to, got, want)
				}
				slices.Reverse(want)
				if got := drain(t, func() (Iterator, error) { return s.ReverseRange(from, to) }); !slices.Equal(got, want) {
					t.Fatalf("op %d: ReverseRange(%q, %q) = %q, want %q", i, from, to, got, want)
				}
			case op < 9:
				p := key()
				var want []string
				for _, kv := range modelRange(model, nil, nil) {
					if strings.HasPrefix(kv, string(p)) {
						want = append(want, kv)
					}
				}
				if got := drain(t, func() (Iterator, error) { return s.PrefixScan(p) }); !slices.Equal(got, want) {
					t.Fatalf("op %d: PrefixScan(%q) = %q, want %q", i, p, got, want)
				}
			default:
				if rng.IntN(5) == 0 {
					if err := s.Flush(); err != nil {
						t.Fatal(err)
					}
				}
				n, err := s.ApproximateNumEntries()
				if err != nil || n != int64(len(model)) {
					t.Fatalf("op %d: ApproximateNumEntries = %d, %v; want %d", i, n, err, len(model))
				}
			}
		}
	})
}

func checkOld(t *testing.T, op string, k, got []byte, model map[string]string) {
	t.Helper()
	want, ok := model[string(k)]
	if ok != (got != nil) || string(got) != want {
		t.Fatalf("%s(%q) = %q, want %q (present %v)", op, k, got, want, ok)
	}
}

// modelRange lists "key=value" of the model's keys in [from, to] (nil: open).
func modelRange(model map[string]string, from, to []byte) []string {
	var keys []string
	for k := range model {
		if from != nil && k < string(from) || to != nil && k > string(to) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + model[k]
	}
	return out
}

func mustPut(t testing.TB, s KeyValueStore, k, v string) {
	t.Helper()
	if err := s.Put([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}

func mustGet(t testing.TB, s ReadOnlyKeyValueStore, k string) []byte {
	t.Helper()
	v, err := s.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return v
}

func mustClose(t testing.TB, it Iterator) {
	t.Helper()
	if err := it.Close(); err != nil {
		t.Errorf("iterator Close: %v", err)
	}
}

// drain opens an iterator, reads it to the end as "key=value" strings and
// closes it.
func drain(t testing.TB, open func() (Iterator, error)) []string {
	t.Helper()
	it, err := open()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	if err := errors.Join(it.Err(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return out
}

// drainKeys is drain keeping only the keys.
func drainKeys(t testing.TB, open func() (Iterator, error)) []string {
	t.Helper()
	kvs := drain(t, open)
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		k, _, _ := strings.Cut(kv, "=")
		out[i] = k
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
