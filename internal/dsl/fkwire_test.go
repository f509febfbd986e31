package dsl

import (
	"bytes"
	"strings"
	"testing"
)

// The 128-bit Murmur3 of the reference implementation, on the vectors
// Guava's Murmur3_128 tests use (seed, h1, h2): Kafka Streams' port
// computes the same function with its seed 104729.
func TestMurmur3Sum128(t *testing.T) {
	for _, c := range []struct {
		seed   uint32
		h1, h2 uint64
		in     string
	}{
		{0, 0x629942693e10f867, 0x92db0b82baeb5347, "hell"},
		{1, 0xa78ddff5adae8d10, 0x128900ef20900135, "hello"},
		{2, 0x8a486b23f422e826, 0xf962a2c58947765f, "hello "},
		{3, 0x2ea59f466f6bed8c, 0xc610990acc428a17, "hello w"},
		{4, 0x79f6305a386c572c, 0x46305aed3483b94e, "hello wo"},
		{5, 0xc2219d213ec1f1b5, 0xa1d8e2e0a52785bd, "hello wor"},
		{0, 0xe34bbc7bbc071b6c, 0x7a433ca9c49a9347, "The quick brown fox jumps over the lazy dog"},
		{0, 0x658ca970ff85269a, 0x43fee3eaa68e5c3e, "The quick brown fox jumps over the lazy cog"},
		{0, 0, 0, ""},
	} {
		if h1, h2 := murmur3Sum128([]byte(c.in), c.seed); h1 != c.h1 || h2 != c.h2 {
			t.Errorf("murmur3(%q, seed %d) = %#x %#x, want %#x %#x", c.in, c.seed, h1, h2, c.h1, c.h2)
		}
	}
	h := hashValue([]byte("hello"))
	if h1, h2 := murmur3Sum128([]byte("hello"), 104729); !h.ok || h.h1 != h1 || h.h2 != h2 {
		t.Errorf("hashValue does not use Kafka's seed 104729")
	}
}

var testHash = valueHash{h1: 0x0102030405060708, h2: 0x1112131415161718, ok: true}

// hashBytes is testHash as Java's ByteBuffer.putLong writes h1 then h2.
var hashBytes = []byte{1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestSubscriptionWire(t *testing.T) {
	for _, c := range []struct {
		name string
		s    subscription
		wire []byte
	}{
		{"subscribe", subscription{version: 1, hash: testHash, instruction: fkPropagateOnlyIfFK, primaryKey: []byte("o1"), primaryPartition: 3},
			cat([]byte{0x01, 0x03}, hashBytes, []byte("o1"), []byte{0, 0, 0, 3})},
		{"resubscribe", subscription{version: 1, hash: testHash, instruction: fkPropagateNullIfNoFK, primaryKey: []byte("o1"), primaryPartition: 0x01020304},
			cat([]byte{0x01, 0x02}, hashBytes, []byte("o1"), []byte{1, 2, 3, 4})},
		{"unsubscribe", subscription{version: 1, hash: testHash, instruction: fkDeleteNoPropagate, primaryKey: []byte("o1"), primaryPartition: 0},
			cat([]byte{0x01, 0x00}, hashBytes, []byte("o1"), []byte{0, 0, 0, 0})},
		// A deleted left row has no value to hash: the high bit of the
		// version byte says so and the hash is left out.
		{"delete", subscription{version: 1, instruction: fkDeleteAndPropagate, primaryKey: []byte("o1"), primaryPartition: 7},
			cat([]byte{0x81, 0x01}, []byte("o1"), []byte{0, 0, 0, 7})},
		// Version 0, as Kafka Streams before 3.4 wrote it: no partition.
		{"version 0", subscription{version: 0, hash: testHash, instruction: fkPropagateOnlyIfFK, primaryKey: []byte("o1"), primaryPartition: -1},
			cat([]byte{0x00, 0x03}, hashBytes, []byte("o1"))},
		{"empty primary key", subscription{version: 1, instruction: fkPropagateNullIfNoFK, primaryKey: []byte{}, primaryPartition: 1},
			[]byte{0x81, 0x02, 0, 0, 0, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := appendSubscription([]byte("prefix"), &c.s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, cat([]byte("prefix"), c.wire)) {
				t.Errorf("append = % x\nwant     % x", got[len("prefix"):], c.wire)
			}
			back, err := parseSubscription(c.wire)
			if err != nil {
				t.Fatal(err)
			}
			if back.version != c.s.version || back.hash != c.s.hash || back.instruction != c.s.instruction ||
				!bytes.Equal(back.primaryKey, c.s.primaryKey) || back.primaryPartition != c.s.primaryPartition {
				t.Errorf("parse = %+v, want %+v", back, c.s)
			}
		})
	}
}

func TestSubscriptionWireErrors(t *testing.T) {
	for _, c := range []struct {
		wire []byte
		want string
	}{
		{nil, "at least 2"},
		{[]byte{0x01}, "at least 2"},
		{[]byte{0x02, 0x00, 0, 0, 0, 0}, "version 2 is newer"},
		{[]byte{0x81, 0x04, 0, 0, 0, 0}, "unknown instruction 4"},
		{[]byte{0x01, 0x00, 1, 2, 3}, "too short for its hash"},
		{[]byte{0x81, 0x00, 1, 2, 3}, "too short for its primary partition"},
	} {
		if _, err := parseSubscription(c.wire); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse(% x) error %v, want %q", c.wire, err, c.want)
		}
	}
	if _, err := appendSubscription(nil, &subscription{version: 2}); err == nil {
		t.Error("writing version 2 succeeded")
	}
}

func TestResponseWire(t *testing.T) {
	for _, c := range []struct {
		name string
		r    response
		wire []byte
	}{
		{"right row", response{hash: testHash, foreignValue: []byte("Ann")}, cat([]byte{0x00}, hashBytes, []byte("Ann"))},
		{"no right row", response{hash: testHash}, cat([]byte{0x00}, hashBytes)},
		{"deleted left row", response{}, []byte{0x80}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.r.primaryPartition = 5 // travels beside the record, never on the wire
			if got := appendResponse(nil, &c.r); !bytes.Equal(got, c.wire) {
				t.Errorf("append = % x, want % x", got, c.wire)
			}
			back, err := parseResponse(c.wire)
			if err != nil {
				t.Fatal(err)
			}
			if back.hash != c.r.hash || !bytes.Equal(back.foreignValue, c.r.foreignValue) || (back.foreignValue == nil) != (c.r.foreignValue == nil) || back.primaryPartition != -1 {
				t.Errorf("parse = %+v, want %+v without partition", back, c.r)
			}
		})
	}
	// As Kafka Streams: a right value of no bytes reads as no row.
	if back, err := parseResponse(appendResponse(nil, &response{hash: testHash, foreignValue: []byte{}})); err != nil || back.foreignValue != nil {
		t.Errorf("empty right value parsed as %q, %v; want no row", back.foreignValue, err)
	}
	for _, c := range []struct {
		wire []byte
		want string
	}{
		{nil, "empty"},
		{[]byte{0x01}, "version 1"},
		{[]byte{0x00, 1, 2}, "too short for its hash"},
	} {
		if _, err := parseResponse(c.wire); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse(% x) error %v, want %q", c.wire, err, c.want)
		}
	}
}

func TestCombinedKey(t *testing.T) {
	key := appendCombinedKey(nil, []byte("c1"), []byte("o1"))
	if want := []byte{0, 0, 0, 2, 'c', '1', 'o', '1'}; !bytes.Equal(key, want) {
		t.Errorf("combined key % x, want % x", key, want)
	}
	if p := appendCombinedKeyPrefix(nil, []byte("c1")); !bytes.HasPrefix(key, p) || len(p) != 6 {
		t.Errorf("prefix % x of % x", p, key)
	}
	// The length in the prefix keeps c1's scan from finding c10's
	// subscriptions.
	if bytes.HasPrefix(appendCombinedKey(nil, []byte("c10"), []byte("o1")), appendCombinedKeyPrefix(nil, []byte("c1"))) {
		t.Error("c1's prefix matches a key of c10")
	}
	fk, pk, err := splitCombinedKey(key)
	if err != nil || string(fk) != "c1" || string(pk) != "o1" {
		t.Errorf("split = %q %q %v", fk, pk, err)
	}
	for _, bad := range [][]byte{{0, 0, 1}, {0, 0, 0, 9, 'c'}} {
		if _, _, err := splitCombinedKey(bad); err == nil {
			t.Errorf("split(% x) succeeded", bad)
		}
	}
}
