package dsl

import (
	"bytes"
	"strings"
	"testing"
)

// TestJoinListLayout: the shared store's values are what Kafka Streams'
// ListSerde of byte arrays writes for a list of LeftOrRightValue, so a
// changelog written here reads back in Java and the other way round.
func TestJoinListLayout(t *testing.T) {
	list, err := appendJoinList(nil, joinSideLeft, []byte("ab"))
	if err != nil {
		t.Fatal(err)
	}
	if list, err = appendJoinList(list, joinSideRight, []byte{}); err != nil {
		t.Fatal(err)
	}
	want := []byte{
		1,          // each entry prefixed by its length
		0, 0, 0, 2, // two entries
		0, 0, 0, 3, 1, 'a', 'b', // left value "ab"
		0, 0, 0, 1, 0, // right value, empty
	}
	if !bytes.Equal(list, want) {
		t.Fatalf("list %v, want %v", list, want)
	}
	var got []string
	err = eachJoinListValue(list, func(side byte, value []byte) error {
		got = append(got, string(rune('0'+side))+":"+string(value))
		return nil
	})
	if err != nil || strings.Join(got, ",") != "1:ab,0:" {
		t.Fatalf("entries %q, %v; want 1:ab and 0:", got, err)
	}
}

func TestJoinListRejectsMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":          {},
		"fixed-size":     {0, 0, 0, 0, 1, 'x'},
		"short count":    {1, 0, 0, 0, 1},
		"long entry":     {1, 0, 0, 0, 1, 0, 0, 0, 9, 1, 'x'},
		"entry sideless": {1, 0, 0, 0, 1, 0, 0, 0, 0},
	} {
		err := eachJoinListValue(b, func(byte, []byte) error { return nil })
		if err == nil {
			t.Errorf("%s: %v read without error", name, b)
		}
	}
	if _, err := appendJoinList([]byte{0, 0}, joinSideLeft, []byte("x")); err == nil {
		t.Error("appended to a value that is not a list")
	}
}
