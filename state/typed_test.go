package state

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/kstreams-go/kstreams/serde"
)

func TestTypedRoundTrip(t *testing.T) {
	s := NewInMemory("counts")
	v := Typed(s, serde.String(), serde.Int64())

	for k, n := range map[string]int64{"a": 1, "b": -2, "c": 3, "d": 1 << 40} {
		if err := v.Put(k, n); err != nil {
			t.Fatal(err)
		}
	}
	if n, found, err := v.Get("b"); err != nil || !found || n != -2 {
		t.Errorf("Get(b) = %d, %v, %v; want -2", n, found, err)
	}
	if n, found, err := v.Get("zz"); err != nil || found || n != 0 {
		t.Errorf("Get(absent) = %d, %v, %v; want 0, false", n, found, err)
	}
	// The bytes underneath are the serdes' wire format.
	if raw := mustGet(t, s, "d"); !bytes.Equal(raw, []byte{0, 0, 1, 0, 0, 0, 0, 0}) {
		t.Errorf("stored bytes % x", raw)
	}
	if old, found, err := v.PutIfAbsent("a", 9); err != nil || !found || old != 1 {
		t.Errorf("PutIfAbsent(present) = %d, %v, %v", old, found, err)
	}
	if _, found, err := v.PutIfAbsent("e", 5); err != nil || found {
		t.Errorf("PutIfAbsent(absent) found=%v, %v", found, err)
	}
	if old, found, err := v.Delete("c"); err != nil || !found || old != 3 {
		t.Errorf("Delete(c) = %d, %v, %v", old, found, err)
	}
	if _, found, err := v.Delete("c"); err != nil || found {
		t.Errorf("Delete(c) again found=%v, %v", found, err)
	}

	from, to := "b", "e"
	if got := collectTyped(t, func() (*TypedIterator[string, int64], error) { return v.Range(&from, &to) }); !slices.Equal(got, []string{"b=-2", "d=1099511627776", "e=5"}) {
		t.Errorf("Range(b, e) = %q", got)
	}
	if got := collectTyped(t, func() (*TypedIterator[string, int64], error) { return v.ReverseRange(nil, &from) }); !slices.Equal(got, []string{"b=-2", "a=1"}) {
		t.Errorf("ReverseRange(nil, b) = %q", got)
	}
	if got := collectTyped(t, v.All); len(got) != 4 {
		t.Errorf("All() = %q", got)
	}
	if got := collectTyped(t, func() (*TypedIterator[string, int64], error) { return v.PrefixScan([]byte("d")) }); !slices.Equal(got, []string{"d=1099511627776"}) {
		t.Errorf("PrefixScan(d) = %q", got)
	}
	if n, err := v.ApproximateNumEntries(); err != nil || n != 4 {
		t.Errorf("ApproximateNumEntries = %d, %v", n, err)
	}
	if n := OpenIterators(s); n != 0 {
		t.Errorf("%d iterators left open", n)
	}
}

func collectTyped[K, V any](t *testing.T, open func() (*TypedIterator[K, V], error)) []string {
	t.Helper()
	it, err := open()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for it.Next() {
		out = append(out, fmtKV(it.Key(), it.Value()))
	}
	if err := errors.Join(it.Err(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return out
}

func fmtKV(k, v any) string { return fmt.Sprintf("%v=%v", k, v) }

func TestTypedReadOnly(t *testing.T) {
	s := NewInMemory("s")
	mustPut(t, s, "k", "v")
	var ro ReadOnlyKeyValueStore = readOnly{s}
	v := Typed(ro, serde.String(), serde.String())
	if got, found, err := v.Get("k"); err != nil || !found || got != "v" {
		t.Errorf("Get = %q, %v, %v", got, found, err)
	}
	if err := v.Put("k", "x"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Put on a read-only store = %v, want ErrReadOnly", err)
	}
	if _, _, err := v.Delete("k"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Delete on a read-only store = %v, want ErrReadOnly", err)
	}
	if _, _, err := v.PutIfAbsent("n", "x"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("PutIfAbsent on a read-only store = %v, want ErrReadOnly", err)
	}
}

// readOnly hides the writes of a store.
type readOnly struct{ ReadOnlyKeyValueStore }

func TestTypedDeserializationErrorStopsIteration(t *testing.T) {
	s := NewInMemory("s")
	mustPut(t, s, "a", "12345678") // 8 bytes: a valid int64
	mustPut(t, s, "b", "short")    // not an int64
	mustPut(t, s, "c", "12345678")
	v := Typed(s, serde.String(), serde.Int64())
	it, err := v.All()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.Next() {
		n++
	}
	var lerr *serde.LengthError
	if n != 1 || !errors.As(it.Err(), &lerr) {
		t.Errorf("read %d entries, Err = %v; want 1 and a LengthError", n, it.Err())
	}
	if it.Next() {
		t.Error("Next after an error = true")
	}
	if _, _, err := v.Get("b"); !errors.As(err, &lerr) {
		t.Errorf("Get of bad bytes = %v, want a LengthError", err)
	}
}

func TestTimestampedSerdeLayout(t *testing.T) {
	sd := TimestampedSerde(serde.String())
	b, err := sd.Serialize("", ValueAndTimestamp[string]{Value: "hi", Timestamp: 0x0102030405060708})
	if err != nil {
		t.Fatal(err)
	}
	// Kafka Streams' ValueAndTimestampSerializer: 8-byte big-endian
	// timestamp, then the value.
	if want := []byte{1, 2, 3, 4, 5, 6, 7, 8, 'h', 'i'}; !bytes.Equal(b, want) {
		t.Errorf("Serialize = % x, want % x", b, want)
	}
	x, err := sd.Deserialize("", b)
	if err != nil || x.Value != "hi" || x.Timestamp != 0x0102030405060708 {
		t.Errorf("Deserialize = %+v, %v", x, err)
	}
	// A negative timestamp survives, and an empty value is not a tombstone.
	b, _ = sd.Serialize("", ValueAndTimestamp[string]{Value: "", Timestamp: -1})
	if want := bytes.Repeat([]byte{0xff}, 8); !bytes.Equal(b, want) {
		t.Errorf("Serialize(empty, -1) = % x", b)
	}
	if x, err := sd.Deserialize("", b); err != nil || x.Timestamp != -1 || x.Value != "" {
		t.Errorf("Deserialize = %+v, %v", x, err)
	}
	// nil <-> tombstone.
	if x, err := sd.Deserialize("", nil); err != nil || x != (ValueAndTimestamp[string]{}) {
		t.Errorf("Deserialize(nil) = %+v, %v", x, err)
	}
	if b, err := TimestampedSerde(serde.Bytes()).Serialize("", ValueAndTimestamp[[]byte]{Value: nil, Timestamp: 5}); err != nil || b != nil {
		t.Errorf("Serialize(tombstone) = % x, %v; want nil", b, err)
	}
	if _, err := sd.Deserialize("t", []byte{1, 2, 3}); err == nil {
		t.Error("Deserialize of 3 bytes succeeded")
	}
}

func TestTypedTimestamped(t *testing.T) {
	s := NewInMemory("s")
	v := TypedTimestamped(s, serde.String(), serde.Int64())
	if err := v.Put("k", ValueAndTimestamp[int64]{Value: 7, Timestamp: 1000}); err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 7}
	if raw := mustGet(t, s, "k"); !bytes.Equal(raw, want) {
		t.Errorf("stored % x, want % x", raw, want)
	}
	if x, found, err := v.Get("k"); err != nil || !found || x.Value != 7 || x.Timestamp != 1000 {
		t.Errorf("Get = %+v, %v, %v", x, found, err)
	}
}
