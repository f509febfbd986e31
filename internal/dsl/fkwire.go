package dsl

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Wire formats of a foreign-key join's internal records, byte for byte as
// Kafka Streams writes them (its SubscriptionWrapperSerde,
// SubscriptionResponseWrapperSerde and CombinedKeySchema), so a Java and a
// Go application can read each other's subscription topics and
// subscription-store changelogs. Integers are big-endian, as Java's
// ByteBuffer writes them.
//
// Subscription (the registration topic's value, the subscription store's
// value), version 1:
//
//	version | 0x80 when there is no hash   1 byte
//	instruction                           1 byte
//	hash h1, h2                           16 bytes, absent when flagged
//	primary key                           the rest but the last 4 bytes
//	primary partition                     4 bytes (not in version 0)
//
// Response (the response topic's value), version 0:
//
//	version | 0x80 when there is no hash   1 byte
//	hash h1, h2                           16 bytes, absent when flagged
//	right value                           the rest; none: no right row
//
// Subscription store key: 4-byte length of the foreign key, the foreign
// key, the primary key; the first two are the prefix that finds every
// subscription to one foreign key.

// fkInstruction tells the right side what a subscription asks for
// (Kafka Streams' SubscriptionWrapper.Instruction).
type fkInstruction byte

const (
	// fkDeleteNoPropagate unsubscribes and asks for nothing back: the
	// left row moved to another foreign key, whose answer will come.
	fkDeleteNoPropagate fkInstruction = 0
	// fkDeleteAndPropagate unsubscribes and asks for a delete back: the
	// left row is gone (or references nothing) in an inner join.
	fkDeleteAndPropagate fkInstruction = 1
	// fkPropagateNullIfNoFK subscribes and asks for the right row, or for
	// "no row" when there is none: the earlier result must be replaced.
	fkPropagateNullIfNoFK fkInstruction = 2
	// fkPropagateOnlyIfFK subscribes and asks for the right row only when
	// there is one: there is no earlier result to replace.
	fkPropagateOnlyIfFK fkInstruction = 3
)

func (i fkInstruction) String() string {
	switch i {
	case fkDeleteNoPropagate:
		return "DELETE_KEY_NO_PROPAGATE"
	case fkDeleteAndPropagate:
		return "DELETE_KEY_AND_PROPAGATE"
	case fkPropagateNullIfNoFK:
		return "PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE"
	case fkPropagateOnlyIfFK:
		return "PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE"
	}
	return fmt.Sprintf("instruction(%d)", byte(i))
}

// isDelete reports whether the instruction removes the subscription.
func (i fkInstruction) isDelete() bool { return i == fkDeleteNoPropagate || i == fkDeleteAndPropagate }

const (
	// subscriptionVersion is the version we write; versions 0 (no
	// primary partition) and 1 are read.
	subscriptionVersion byte = 1
	// responseVersion is the only response version there is.
	responseVersion byte = 0
	// noHashFlag marks a record without a value hash in its first byte.
	noHashFlag byte = 0x80
)

// valueHash is the 128-bit Murmur3 hash of a serialized left value, as
// Kafka Streams computes it: it tells a response to a left row's current
// value from a stale one. The zero value with ok false is "no value" (the
// left row was deleted), which is written as a flag, not as 16 bytes.
type valueHash struct {
	h1, h2 uint64
	ok     bool
}

// hashValue hashes serialized left value bytes.
func hashValue(b []byte) valueHash {
	h1, h2 := murmur3Sum128(b, kafkaMurmur3Seed)
	return valueHash{h1: h1, h2: h2, ok: true}
}

// subscription is a left row's subscription to a foreign key (Kafka
// Streams' SubscriptionWrapper), with its primary key serialized.
type subscription struct {
	version     byte
	hash        valueHash // of the left row's new value; !ok: deleted
	instruction fkInstruction
	primaryKey  []byte
	// primaryPartition is the left row's partition, where the response
	// must go; -1 when not known (a version 0 subscription).
	primaryPartition int32
}

// appendSubscription appends the wire form of s to dst.
func appendSubscription(dst []byte, s *subscription) ([]byte, error) {
	if s.version > 1 {
		return nil, fmt.Errorf("foreign-key subscription: cannot write version %d", s.version)
	}
	first := s.version
	if !s.hash.ok {
		first |= noHashFlag
	}
	dst = append(dst, first, byte(s.instruction))
	if s.hash.ok {
		dst = binary.BigEndian.AppendUint64(dst, s.hash.h1)
		dst = binary.BigEndian.AppendUint64(dst, s.hash.h2)
	}
	dst = append(dst, s.primaryKey...)
	if s.version >= 1 {
		dst = binary.BigEndian.AppendUint32(dst, uint32(s.primaryPartition))
	}
	return dst, nil
}

// parseSubscription reads the wire form of a subscription; its primary
// key aliases b.
func parseSubscription(b []byte) (subscription, error) {
	var s subscription
	if len(b) < 2 {
		return s, fmt.Errorf("foreign-key subscription: %d bytes, want at least 2", len(b))
	}
	s.version = b[0] &^ noHashFlag
	if s.version > subscriptionVersion {
		return s, fmt.Errorf("foreign-key subscription: version %d is newer than the %d this library reads", s.version, subscriptionVersion)
	}
	s.instruction = fkInstruction(b[1])
	if s.instruction > fkPropagateOnlyIfFK {
		return s, fmt.Errorf("foreign-key subscription: unknown instruction %d", b[1])
	}
	rest := b[2:]
	if b[0]&noHashFlag == 0 {
		if len(rest) < 16 {
			return s, fmt.Errorf("foreign-key subscription: %d bytes, too short for its hash", len(b))
		}
		s.hash = valueHash{h1: binary.BigEndian.Uint64(rest), h2: binary.BigEndian.Uint64(rest[8:]), ok: true}
		rest = rest[16:]
	}
	s.primaryPartition = -1
	if s.version >= 1 {
		if len(rest) < 4 {
			return s, fmt.Errorf("foreign-key subscription: %d bytes, too short for its primary partition", len(b))
		}
		s.primaryPartition = int32(binary.BigEndian.Uint32(rest[len(rest)-4:]))
		rest = rest[:len(rest)-4]
	}
	s.primaryKey = rest
	return s, nil
}

// response is the right side's answer to a subscription (Kafka Streams'
// SubscriptionResponseWrapper): the right row, serialized, for the left
// value whose hash it carries.
type response struct {
	hash         valueHash
	foreignValue []byte // nil: no right row
	// primaryPartition is where the response goes (the subscribing left
	// row's partition), -1: by its key. It is not written: it only travels
	// from the node that answers to the sink.
	primaryPartition int32
}

// appendResponse appends the wire form of r to dst. A right value that
// serializes to no bytes reads back as no row, as in Kafka Streams.
func appendResponse(dst []byte, r *response) []byte {
	first := responseVersion
	if !r.hash.ok {
		first |= noHashFlag
	}
	dst = append(dst, first)
	if r.hash.ok {
		dst = binary.BigEndian.AppendUint64(dst, r.hash.h1)
		dst = binary.BigEndian.AppendUint64(dst, r.hash.h2)
	}
	return append(dst, r.foreignValue...)
}

// parseResponse reads the wire form of a response; its value aliases b.
func parseResponse(b []byte) (response, error) {
	r := response{primaryPartition: -1}
	if len(b) < 1 {
		return r, fmt.Errorf("foreign-key response: empty")
	}
	if v := b[0] &^ noHashFlag; v != responseVersion {
		return r, fmt.Errorf("foreign-key response: version %d, this library reads %d", v, responseVersion)
	}
	rest := b[1:]
	if b[0]&noHashFlag == 0 {
		if len(rest) < 16 {
			return r, fmt.Errorf("foreign-key response: %d bytes, too short for its hash", len(b))
		}
		r.hash = valueHash{h1: binary.BigEndian.Uint64(rest), h2: binary.BigEndian.Uint64(rest[8:]), ok: true}
		rest = rest[16:]
	}
	if len(rest) > 0 {
		r.foreignValue = rest
	}
	return r, nil
}

// appendCombinedKeyPrefix appends the subscription store's key prefix of
// a foreign key: its 4-byte length and its bytes.
func appendCombinedKeyPrefix(dst, foreignKey []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(foreignKey)))
	return append(dst, foreignKey...)
}

// appendCombinedKey appends the subscription store's key of a foreign key
// and a primary key.
func appendCombinedKey(dst, foreignKey, primaryKey []byte) []byte {
	return append(appendCombinedKeyPrefix(dst, foreignKey), primaryKey...)
}

// splitCombinedKey splits a subscription store key; the parts alias b.
func splitCombinedKey(b []byte) (foreignKey, primaryKey []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("foreign-key subscription key: %d bytes, want at least 4", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("foreign-key subscription key: foreign key of %d bytes in %d", n, len(b))
	}
	return b[4 : 4+n], b[4+n:], nil
}

// kafkaMurmur3Seed is the seed of Kafka Streams' Murmur3.hash128.
const kafkaMurmur3Seed = 104729

// murmur3Sum128 is MurmurHash3_x64_128 (Austin Appleby's reference, which
// Kafka Streams' Murmur3.hash128 ports) of data with seed; it returns the
// two 64-bit halves in the order Kafka writes them.
func murmur3Sum128(data []byte, seed uint32) (h1, h2 uint64) {
	const (
		c1 = 0x87c37b91114253d5
		c2 = 0x4cf5ad432745937f
	)
	h1, h2 = uint64(seed), uint64(seed)
	n := len(data)
	for len(data) >= 16 {
		k1 := binary.LittleEndian.Uint64(data)
		k2 := binary.LittleEndian.Uint64(data[8:])
		data = data[16:]

		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
		h1 = bits.RotateLeft64(h1, 27)
		h1 += h2
		h1 = h1*5 + 0x52dce729

		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
		h2 = bits.RotateLeft64(h2, 31)
		h2 += h1
		h2 = h2*5 + 0x38495ab5
	}
	var k1, k2 uint64
	for i := len(data) - 1; i >= 8; i-- {
		k2 ^= uint64(data[i]) << (8 * (i - 8))
	}
	if len(data) > 8 {
		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
	}
	for i := min(len(data), 8) - 1; i >= 0; i-- {
		k1 ^= uint64(data[i]) << (8 * i)
	}
	if len(data) > 0 {
		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
	}
	h1 ^= uint64(n)
	h2 ^= uint64(n)
	h1 += h2
	h2 += h1
	h1, h2 = fmix64(h1), fmix64(h2)
	h1 += h2
	h2 += h1
	return h1, h2
}

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
