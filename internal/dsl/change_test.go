package dsl

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/serde"
)

// TestChangeWireLayout pins the bytes to Kafka Streams' ChangedSerializer
// and checks that the deserializer reads them back, including the
// "is latest" variants (flags 3-5) Kafka Streams writes for versioned
// tables.
func TestChangeWireLayout(t *testing.T) {
	long := strings.Repeat("n", 70) // a length that needs two varint bytes
	tests := []struct {
		name     string
		newV     []byte
		oldV     []byte
		wire     []byte
		readOnly bool // a layout we read but never write
	}{
		{"new only", []byte("new"), nil, []byte("new\x01"), false},
		{"old only", nil, []byte("old"), []byte("old\x00"), false},
		{"both", []byte("ab"), []byte("xyz"), []byte("\x04abxyz\x02"), false},
		{"empty new, old", []byte{}, []byte("o"), []byte("\x00o\x02"), false},
		{"empty new only", []byte{}, nil, []byte("\x01"), false},
		{"long new", []byte(long), []byte("o"), append(append([]byte{0x8c, 0x01}, long...), 'o', 2), false},
		{"old only, latest", nil, []byte("old"), []byte("old\x01\x03"), true},
		{"new only, latest", []byte("new"), nil, []byte("new\x01\x04"), true},
		{"both, latest", []byte("ab"), []byte("xyz"), []byte("\x04abxyz\x00\x05"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.readOnly {
				got, err := AppendChange(nil, tt.newV, tt.oldV)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tt.wire) {
					t.Errorf("AppendChange = %q, want %q", got, tt.wire)
				}
			}
			newV, oldV, err := SplitChange(tt.wire)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(newV, tt.newV) || (newV == nil) != (tt.newV == nil) {
				t.Errorf("new = %q, want %q", newV, tt.newV)
			}
			if !bytes.Equal(oldV, tt.oldV) || (oldV == nil) != (tt.oldV == nil) {
				t.Errorf("old = %q, want %q", oldV, tt.oldV)
			}
		})
	}
}

func TestChangeWireErrors(t *testing.T) {
	if _, err := AppendChange(nil, nil, nil); err == nil {
		t.Error("AppendChange(nil, nil): want an error")
	}
	for _, b := range [][]byte{{}, {9}, []byte("\x0aab\x02"), {3}} {
		if _, _, err := SplitChange(b); err == nil {
			t.Errorf("SplitChange(%q): want an error", b)
		}
	}
}

func TestChangeSerdesRoundTrip(t *testing.T) {
	ser, de := changeSerdes(serde.Int64())
	for _, ch := range []Change{{New: int64(7)}, {Old: int64(-1)}, {New: int64(2), Old: int64(1)}} {
		b, err := ser("t", &ch)
		if err != nil {
			t.Fatal(err)
		}
		got, err := de("t", b)
		if err != nil {
			t.Fatal(err)
		}
		if g := As[Change](got); g != ch {
			t.Errorf("round trip of %+v = %+v", ch, g)
		}
	}
}
