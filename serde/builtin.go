package serde

import (
	"encoding/binary"
	"fmt"
	"math"
)

// LengthError is returned when a fixed-width serde is asked to deserialize
// bytes of the wrong length, which usually means the topic was written with a
// different serde.
type LengthError struct {
	Topic string // topic the bytes were read from
	Type  string // name of the type being deserialized, e.g. "int64"
	Want  int    // length the serde requires
	Got   int    // length it was given
}

func (e *LengthError) Error() string {
	return fmt.Sprintf("serde: deserialize %s from topic %q: expected %d bytes, got %d", e.Type, e.Topic, e.Want, e.Got)
}

// String returns a serde that writes a string's UTF-8 bytes as they are, like
// Kafka's StringSerializer with its default UTF-8 encoding. An empty string
// serializes to an empty, non-nil slice, so it is not a tombstone.
func String() Serde[string] { return stringSerde{} }

type stringSerde struct{}

func (stringSerde) Serialize(_ string, v string) ([]byte, error) {
	// []byte(v) of an empty string is non-nil, which keeps "" distinct from
	// a tombstone on the wire.
	return []byte(v), nil
}

func (stringSerde) Deserialize(_ string, b []byte) (string, error) {
	return string(b), nil
}

// Bytes returns a serde that passes byte slices through unchanged, like
// Kafka's ByteArraySerializer. It neither copies nor allocates: the caller
// owns the slice it passes in and the slice it gets back. A nil slice stays
// nil, so it serializes as a tombstone.
func Bytes() Serde[[]byte] { return bytesSerde{} }

type bytesSerde struct{}

func (bytesSerde) Serialize(_ string, v []byte) ([]byte, error)   { return v, nil }
func (bytesSerde) Deserialize(_ string, b []byte) ([]byte, error) { return b, nil }

// Int32 returns a serde for int32 as 4 big-endian bytes in two's complement,
// the wire format of Kafka's IntegerSerializer.
func Int32() Serde[int32] { return int32Serde{} }

type int32Serde struct{}

func (int32Serde) Serialize(_ string, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(v)), nil
}

func (int32Serde) Deserialize(topic string, b []byte) (int32, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 4 {
		return 0, &LengthError{Topic: topic, Type: "int32", Want: 4, Got: len(b)}
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}

// Int64 returns a serde for int64 as 8 big-endian bytes in two's complement,
// the wire format of Kafka's LongSerializer.
func Int64() Serde[int64] { return int64Serde{} }

type int64Serde struct{}

func (int64Serde) Serialize(_ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)), nil
}

func (int64Serde) Deserialize(topic string, b []byte) (int64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, &LengthError{Topic: topic, Type: "int64", Want: 8, Got: len(b)}
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// Float64 returns a serde for float64 as its 8 IEEE 754 bits in big-endian
// order, the wire format of Kafka's DoubleSerializer (Java's
// Double.doubleToLongBits). NaN payloads pass through unchanged.
func Float64() Serde[float64] { return float64Serde{} }

type float64Serde struct{}

func (float64Serde) Serialize(_ string, v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), math.Float64bits(v)), nil
}

func (float64Serde) Deserialize(topic string, b []byte) (float64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, &LengthError{Topic: topic, Type: "float64", Want: 8, Got: len(b)}
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// PassThrough marks a serde whose Deserialize returns its input bytes
// unchanged. The runtime then hands a record's own key or value bytes
// downstream without boxing a copy, which saves an allocation per record.
type PassThrough interface{ PassThrough() }

func (bytesSerde) PassThrough() {}
