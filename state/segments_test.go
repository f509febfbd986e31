package state

import (
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestPebbleDropStoreAndStoreNames(t *testing.T) {
	db := openTestPebble(t, "db", PebbleOptions{FS: vfs.NewMem()})
	long := strings.Repeat("a", 200) // a two-byte length in front
	names := []string{"", "a", "ab", "a\xff", "b", long}
	for _, n := range names {
		for _, k := range []string{"", "k", "\xff"} {
			mustPut(t, db.Store(n), k, n)
		}
	}
	list := func(prefix string) []string {
		t.Helper()
		got, err := db.StoreNames(prefix)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := list(""), []string{"", "a", "b", "ab", "a\xff", long}; !slices.Equal(got, want) {
		t.Errorf("StoreNames(\"\") = %q, want %q", got, want)
	}
	if got, want := list("a"), []string{"a", "ab", "a\xff", long}; !slices.Equal(got, want) {
		t.Errorf("StoreNames(a) = %q, want %q", got, want)
	}
	if err := db.DropStore("a"); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, db.Store("a").All); got != nil {
		t.Errorf("dropped store holds %q", got)
	}
	for _, n := range []string{"", "ab", "a\xff", "b", long} {
		if got := drain(t, db.Store(n).All); len(got) != 3 {
			t.Errorf("store %q next to a dropped one holds %q", n, got)
		}
	}
	if got, want := list("a"), []string{"ab", "a\xff", long}; !slices.Equal(got, want) {
		t.Errorf("StoreNames(a) after DropStore(a) = %q, want %q", got, want)
	}
	// The dropped store stays usable.
	mustPut(t, db.Store("a"), "k", "again")
	if got := string(mustGet(t, db.Store("a"), "k")); got != "again" {
		t.Errorf("Get after DropStore and Put = %q", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.DropStore("a"); err != ErrClosed {
		t.Errorf("DropStore on a closed db = %v", err)
	}
	if _, err := db.StoreNames(""); err != ErrClosed {
		t.Errorf("StoreNames on a closed db = %v", err)
	}
}
