package state

import (
	"errors"
	"slices"
	"testing"
)

// changelog records what a logging store sends, as "key=value" ("key=<nil>"
// for a tombstone).
type changelog []string

func (c *changelog) log(key, value []byte) error {
	v := "<nil>"
	if value != nil {
		v = string(value)
	}
	*c = append(*c, string(key)+"="+v)
	return nil
}

func TestLoggedLogsEveryWrite(t *testing.T) {
	var log changelog
	inner := NewInMemory("s")
	s := NewLogged(inner, log.log)

	mustPut(t, s, "a", "1")
	mustPut(t, s, "a", "2")
	if _, err := s.PutIfAbsent([]byte("a"), []byte("ignored")); err != nil { // present: no write, no log
		t.Fatal(err)
	}
	if _, err := s.PutIfAbsent([]byte("b"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put([]byte("b"), nil); err != nil {
		t.Fatal(err)
	}
	if old, err := s.Delete([]byte("a")); err != nil || string(old) != "2" {
		t.Fatalf("Delete = %q, %v", old, err)
	}
	// Reads neither log nor bypass the inner store.
	if v := mustGet(t, s, "a"); v != nil {
		t.Errorf("Get after Delete = %q", v)
	}
	if got := drain(t, s.All); len(got) != 0 {
		t.Errorf("All() = %q", got)
	}

	want := changelog{"a=1", "a=2", "b=3", "b=<nil>", "a=<nil>"}
	if !slices.Equal(log, want) {
		t.Errorf("changelog = %q\nwant %q", log, want)
	}
	if Inner(s) != inner {
		t.Error("Inner(logged) is not the inner store")
	}
	if Inner(inner) != nil {
		t.Error("Inner(memory store) is not nil")
	}
}

func TestLoggedRestoreIsNotLogged(t *testing.T) {
	var log changelog
	s := NewLogged(NewInMemory("s"), log.log)
	r, ok := s.(Restorer)
	if !ok {
		t.Fatal("logged store over a Restorer is not a Restorer")
	}
	if err := r.RestoreBatch([]KeyValue{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	if v := mustGet(t, s, "a"); string(v) != "1" {
		t.Errorf("restored value = %q", v)
	}
	if len(log) != 0 {
		t.Errorf("restore was logged: %q", log)
	}
}

// plainStore hides every method but KeyValueStore's.
type plainStore struct{ KeyValueStore }

func TestLoggedOverNonRestorer(t *testing.T) {
	s := NewLogged(plainStore{NewInMemory("s")}, noLog)
	if _, ok := s.(Restorer); ok {
		t.Error("logged store over a non-Restorer claims to be a Restorer")
	}
}

func TestLoggedReturnsLogErrors(t *testing.T) {
	boom := errors.New("produce failed")
	s := NewLogged(NewInMemory("s"), func([]byte, []byte) error { return boom })
	if err := s.Put([]byte("k"), []byte("v")); !errors.Is(err, boom) {
		t.Errorf("Put = %v, want the logger's error", err)
	}
	if _, err := s.Delete([]byte("k")); !errors.Is(err, boom) {
		t.Errorf("Delete = %v, want the logger's error", err)
	}
	if _, err := s.PutIfAbsent([]byte("n"), []byte("v")); !errors.Is(err, boom) {
		t.Errorf("PutIfAbsent = %v, want the logger's error", err)
	}
}

func TestLoggedDoesNotLogFailedWrites(t *testing.T) {
	var log changelog
	inner := NewInMemory("s")
	s := NewLogged(inner, log.log)
	if err := inner.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put([]byte("k"), []byte("v")); !errors.Is(err, ErrClosed) {
		t.Errorf("Put = %v, want ErrClosed", err)
	}
	if _, err := s.Delete([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete = %v, want ErrClosed", err)
	}
	if len(log) != 0 {
		t.Errorf("failed writes were logged: %q", log)
	}
}
