package serde_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/serde"
)

const topic = "t"

func hex(b []byte) string { return fmt.Sprintf("% x", b) }

// TestKnownBytes pins the wire format to the bytes Kafka's Java serdes write,
// so topics stay readable by any client.
func TestKnownBytes(t *testing.T) {
	tests := []struct {
		name string
		ser  func() ([]byte, error)
		want string
	}{
		{"Int32(0)", func() ([]byte, error) { return serde.Int32().Serialize(topic, 0) }, "00 00 00 00"},
		{"Int32(1)", func() ([]byte, error) { return serde.Int32().Serialize(topic, 1) }, "00 00 00 01"},
		{"Int32(-1)", func() ([]byte, error) { return serde.Int32().Serialize(topic, -1) }, "ff ff ff ff"},
		{"Int32(256)", func() ([]byte, error) { return serde.Int32().Serialize(topic, 256) }, "00 00 01 00"},
		{"Int32(min)", func() ([]byte, error) { return serde.Int32().Serialize(topic, math.MinInt32) }, "80 00 00 00"},
		{"Int64(1)", func() ([]byte, error) { return serde.Int64().Serialize(topic, 1) }, "00 00 00 00 00 00 00 01"},
		{"Int64(-1)", func() ([]byte, error) { return serde.Int64().Serialize(topic, -1) }, "ff ff ff ff ff ff ff ff"},
		{"Int64(0x0102030405060708)", func() ([]byte, error) { return serde.Int64().Serialize(topic, 0x0102030405060708) }, "01 02 03 04 05 06 07 08"},
		{"Float64(1.5)", func() ([]byte, error) { return serde.Float64().Serialize(topic, 1.5) }, "3f f8 00 00 00 00 00 00"},
		{"Float64(-2)", func() ([]byte, error) { return serde.Float64().Serialize(topic, -2) }, "c0 00 00 00 00 00 00 00"},
		{"Float64(+Inf)", func() ([]byte, error) { return serde.Float64().Serialize(topic, math.Inf(1)) }, "7f f0 00 00 00 00 00 00"},
		{"String(héllo)", func() ([]byte, error) { return serde.String().Serialize(topic, "héllo") }, "68 c3 a9 6c 6c 6f"},
		{"JSON(map)", func() ([]byte, error) { return serde.JSON[map[string]int]().Serialize(topic, map[string]int{"a": 1}) }, hex([]byte(`{"a":1}`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ser()
			if err != nil {
				t.Fatal(err)
			}
			if hex(got) != tt.want {
				t.Errorf("got %s, want %s", hex(got), tt.want)
			}
		})
	}
}

func roundTrip[T any](t *testing.T, s serde.Serde[T], v T, eq func(a, b T) bool) {
	t.Helper()
	b, err := s.Serialize(topic, v)
	if err != nil {
		t.Fatalf("serialize %v: %v", v, err)
	}
	got, err := s.Deserialize(topic, b)
	if err != nil {
		t.Fatalf("deserialize %v: %v", v, err)
	}
	if !eq(got, v) {
		t.Errorf("round trip: got %v, want %v", got, v)
	}
}

func eq[T comparable](a, b T) bool { return a == b }

type point struct {
	X, Y int
	Tag  string `json:"tag,omitempty"`
}

func TestRoundTrip(t *testing.T) {
	t.Run("String", func(t *testing.T) {
		for _, v := range []string{"", "a", "héllo", strings.Repeat("x", 1000), "\x00\xff"} {
			roundTrip(t, serde.String(), v, eq)
		}
	})
	t.Run("Bytes", func(t *testing.T) {
		for _, v := range [][]byte{{}, {0}, []byte("abc")} {
			roundTrip(t, serde.Bytes(), v, bytes.Equal)
		}
	})
	t.Run("Int32", func(t *testing.T) {
		for _, v := range []int32{0, 1, -1, 42, math.MaxInt32, math.MinInt32} {
			roundTrip(t, serde.Int32(), v, eq)
		}
	})
	t.Run("Int64", func(t *testing.T) {
		for _, v := range []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64} {
			roundTrip(t, serde.Int64(), v, eq)
		}
	})
	t.Run("Float64", func(t *testing.T) {
		for _, v := range []float64{0, 1.5, -2.25, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(-1)} {
			roundTrip(t, serde.Float64(), v, eq)
		}
		// NaN != NaN, so compare bits: the payload must survive.
		roundTrip(t, serde.Float64(), math.NaN(), func(a, b float64) bool {
			return math.Float64bits(a) == math.Float64bits(b)
		})
	})
	t.Run("JSON", func(t *testing.T) {
		roundTrip(t, serde.JSON[point](), point{X: 1, Y: -2, Tag: "p"}, eq)
		roundTrip(t, serde.JSON[string](), "quote\"d", eq)
		roundTrip(t, serde.JSON[*point](), &point{X: 3}, func(a, b *point) bool { return *a == *b })
	})
	t.Run("Func", func(t *testing.T) {
		upper := serde.Func(
			func(_ string, v string) ([]byte, error) { return []byte(strings.ToUpper(v)), nil },
			func(_ string, b []byte) (string, error) { return strings.ToLower(string(b)), nil },
		)
		roundTrip(t, upper, "abc", eq)
		b, _ := upper.Serialize(topic, "abc")
		if string(b) != "ABC" {
			t.Errorf("Func serialize: got %q, want %q", b, "ABC")
		}
	})
}

// TestTombstone checks that a nil value (Kafka's null) deserializes to the
// zero value with no error in every built-in serde.
func TestTombstone(t *testing.T) {
	check := func(t *testing.T, got any, err error, want any) {
		t.Helper()
		if err != nil {
			t.Fatalf("deserialize nil: %v", err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("deserialize nil: got %v, want %v", got, want)
		}
	}
	t.Run("String", func(t *testing.T) { v, err := serde.String().Deserialize(topic, nil); check(t, v, err, "") })
	t.Run("Int32", func(t *testing.T) { v, err := serde.Int32().Deserialize(topic, nil); check(t, v, err, int32(0)) })
	t.Run("Int64", func(t *testing.T) { v, err := serde.Int64().Deserialize(topic, nil); check(t, v, err, int64(0)) })
	t.Run("Float64", func(t *testing.T) { v, err := serde.Float64().Deserialize(topic, nil); check(t, v, err, 0.0) })
	t.Run("JSON", func(t *testing.T) { v, err := serde.JSON[point]().Deserialize(topic, nil); check(t, v, err, point{}) })
	t.Run("Bytes", func(t *testing.T) {
		v, err := serde.Bytes().Deserialize(topic, nil)
		if err != nil || v != nil {
			t.Errorf("deserialize nil: got %v, %v; want nil, nil", v, err)
		}
	})
}

// TestEmptyStringIsNotTombstone guards against "" serializing to nil, which
// Kafka would read as a delete.
func TestEmptyStringIsNotTombstone(t *testing.T) {
	b, err := serde.String().Serialize(topic, "")
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		t.Error(`String().Serialize("") = nil; want an empty non-nil slice`)
	}
}

func TestBadLength(t *testing.T) {
	tests := []struct {
		name      string
		de        func([]byte) error
		in        []byte
		want, got int
	}{
		{"Int32 short", func(b []byte) error { _, err := serde.Int32().Deserialize("orders", b); return err }, []byte{1, 2, 3}, 4, 3},
		{"Int32 long", func(b []byte) error { _, err := serde.Int32().Deserialize("orders", b); return err }, make([]byte, 8), 4, 8},
		{"Int32 empty", func(b []byte) error { _, err := serde.Int32().Deserialize("orders", b); return err }, []byte{}, 4, 0},
		{"Int64 short", func(b []byte) error { _, err := serde.Int64().Deserialize("orders", b); return err }, make([]byte, 4), 8, 4},
		{"Float64 long", func(b []byte) error { _, err := serde.Float64().Deserialize("orders", b); return err }, make([]byte, 9), 8, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.de(tt.in)
			if err == nil {
				t.Fatal("want error, got nil")
			}
			var le *serde.LengthError
			if !errors.As(err, &le) {
				t.Fatalf("error %v (%T) is not a *LengthError", err, err)
			}
			if le.Topic != "orders" || le.Want != tt.want || le.Got != tt.got {
				t.Errorf("got %+v, want topic orders, want %d, got %d", le, tt.want, tt.got)
			}
			msg := err.Error()
			for _, s := range []string{"orders", fmt.Sprintf("expected %d", tt.want), fmt.Sprintf("got %d", tt.got)} {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not mention %q", msg, s)
				}
			}
		})
	}
}

func TestJSONErrors(t *testing.T) {
	t.Run("deserialize syntax", func(t *testing.T) {
		_, err := serde.JSON[point]().Deserialize("points", []byte("{not json"))
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("got %v, want a wrapped *json.SyntaxError", err)
		}
		if !strings.Contains(err.Error(), "points") {
			t.Errorf("error %q does not name the topic", err)
		}
	})
	t.Run("deserialize type", func(t *testing.T) {
		v, err := serde.JSON[point]().Deserialize("points", []byte(`{"X":"one","Y":2}`))
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			t.Fatalf("got %v, want a wrapped *json.UnmarshalTypeError", err)
		}
		if v != (point{}) {
			t.Errorf("on error got %+v, want the zero value", v)
		}
	})
	t.Run("deserialize empty", func(t *testing.T) {
		if _, err := serde.JSON[point]().Deserialize("points", []byte{}); err == nil {
			t.Error("empty non-nil input: want error, got nil")
		}
	})
	t.Run("serialize", func(t *testing.T) {
		_, err := serde.JSON[func()]().Serialize("funcs", func() {})
		var ue *json.UnsupportedTypeError
		if !errors.As(err, &ue) {
			t.Fatalf("got %v, want a wrapped *json.UnsupportedTypeError", err)
		}
		if !strings.Contains(err.Error(), "funcs") {
			t.Errorf("error %q does not name the topic", err)
		}
	})
}

// TestAllocs holds the fixed-width and string serdes to one allocation: the
// output slice (or string) and nothing else.
func TestAllocs(t *testing.T) {
	// Inputs live outside the closures so building them is not counted.
	int64Bytes := []byte{0, 0, 0, 0, 0, 0, 0, 7}
	strBytes := []byte("hello, world, this escapes")
	raw := []byte("x")
	tests := []struct {
		name string
		fn   func()
		max  float64
	}{
		{"Int32 serialize", func() { _, _ = serde.Int32().Serialize(topic, 7) }, 1},
		{"Int64 serialize", func() { _, _ = serde.Int64().Serialize(topic, 7) }, 1},
		{"Float64 serialize", func() { _, _ = serde.Float64().Serialize(topic, 7) }, 1},
		{"Int64 deserialize", func() { _, _ = serde.Int64().Deserialize(topic, int64Bytes) }, 0},
		{"String serialize", func() { _, _ = serde.String().Serialize(topic, "hello, world, this escapes") }, 1},
		{"String deserialize", func() { _, _ = serde.String().Deserialize(topic, strBytes) }, 1},
		{"Bytes", func() { _, _ = serde.Bytes().Serialize(topic, raw) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.fn); got > tt.max {
				t.Errorf("%v allocs per run, want at most %v", got, tt.max)
			}
		})
	}
}

var (
	sinkBytes []byte
	sinkStr   string
	sinkInt   int64
	sinkPoint point
)

func BenchmarkString(b *testing.B) {
	s := serde.String()
	v := "the quick brown fox jumps over the lazy dog"
	b.ReportAllocs()
	for b.Loop() {
		buf, _ := s.Serialize(topic, v)
		sinkStr, _ = s.Deserialize(topic, buf)
	}
}

func BenchmarkInt64(b *testing.B) {
	s := serde.Int64()
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		sinkBytes, _ = s.Serialize(topic, i)
		sinkInt, _ = s.Deserialize(topic, sinkBytes)
		i++
	}
}

func BenchmarkJSON(b *testing.B) {
	s := serde.JSON[point]()
	v := point{X: 1, Y: 2, Tag: "bench"}
	b.ReportAllocs()
	for b.Loop() {
		buf, _ := s.Serialize(topic, v)
		sinkPoint, _ = s.Deserialize(topic, buf)
	}
}

func TestTimeWindowedLayout(t *testing.T) {
	s := serde.TimeWindowed(serde.String(), time.Minute)
	b, err := s.Serialize("t", serde.Windowed[string]{Key: "ab", Start: 60_000, End: 120_000})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{'a', 'b', 0, 0, 0, 0, 0, 0, 0xea, 0x60}
	if !bytes.Equal(b, want) {
		t.Fatalf("layout %x, want %x", b, want)
	}
	w, err := s.Deserialize("t", b)
	if err != nil || w != (serde.Windowed[string]{Key: "ab", Start: 60_000, End: 120_000}) {
		t.Fatalf("round trip: %+v %v", w, err)
	}
	if _, err := s.Deserialize("t", []byte{1, 2}); err == nil {
		t.Fatal("short input: no error")
	}
}

func TestSessionWindowedLayout(t *testing.T) {
	s := serde.SessionWindowed(serde.String())
	b, err := s.Serialize("t", serde.Windowed[string]{Key: "k", Start: 1, End: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{'k', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}
	if !bytes.Equal(b, want) {
		t.Fatalf("layout %x, want %x", b, want)
	}
	w, err := s.Deserialize("t", b)
	if err != nil || w != (serde.Windowed[string]{Key: "k", Start: 1, End: 2}) {
		t.Fatalf("round trip: %+v %v", w, err)
	}
}
