package dsl

import (
	"encoding/binary"
	"fmt"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
)

// Change is the value table nodes forward: a row's new value and the value
// it replaces, each boxed as the table's value type, or nil when absent.
// New == nil is a delete. Old is always filled in when the node knows it
// (Kafka Streams fills it only for nodes that ask, "sendOldValues"; we
// always do, so a grouping of a table can subtract the old row).
type Change struct {
	New, Old any
}

// Wire layout of a Change on a table repartition topic, as Kafka Streams'
// ChangedSerializer (3.5 and later) writes it, so a Java application can
// read ours and the other way round. The last byte says what precedes it:
//
//	flag 0: old value bytes
//	flag 1: new value bytes
//	flag 2: zigzag varint len(new) | new value bytes | old value bytes
//
// Flags 3, 4 and 5 are 0, 1 and 2 with an "is latest" byte before the flag
// (Kafka Streams writes them for versioned tables); they are read, never
// written.
const (
	changeOld    byte = 0
	changeNew    byte = 1
	changeBoth   byte = 2
	changeLatest byte = 3 // added to a flag when an "is latest" byte precedes it
)

// AppendChange appends the wire form of newV and oldV (nil: absent) to dst.
// Both absent is an error, as in Kafka Streams: nothing is ever sent for a
// row that was and stays absent.
func AppendChange(dst, newV, oldV []byte) ([]byte, error) {
	switch {
	case newV != nil && oldV != nil:
		dst = binary.AppendVarint(dst, int64(len(newV)))
		dst = append(dst, newV...)
		dst = append(dst, oldV...)
		return append(dst, changeBoth), nil
	case newV != nil:
		return append(append(dst, newV...), changeNew), nil
	case oldV != nil:
		return append(append(dst, oldV...), changeOld), nil
	}
	return nil, fmt.Errorf("change with neither a new nor an old value")
}

// SplitChange parses the wire form of a Change into the new and old value
// bytes (nil: absent). The results alias b.
func SplitChange(b []byte) (newV, oldV []byte, err error) {
	if len(b) == 0 {
		return nil, nil, fmt.Errorf("change: empty value")
	}
	flag := b[len(b)-1]
	body := b[:len(b)-1]
	if flag >= changeLatest && flag <= changeLatest+changeBoth {
		if len(body) == 0 {
			return nil, nil, fmt.Errorf("change: flag %d without an is-latest byte", flag)
		}
		body = body[:len(body)-1]
		flag -= changeLatest
	}
	switch flag {
	case changeOld:
		return nil, body, nil
	case changeNew:
		return body, nil, nil
	case changeBoth:
		n, k := binary.Varint(body)
		if k <= 0 || n < 0 || int64(len(body)-k) < n {
			return nil, nil, fmt.Errorf("change: bad new-value length in %d bytes", len(b))
		}
		return body[k : k+int(n)], body[k+int(n):], nil
	}
	return nil, nil, fmt.Errorf("change: unknown encoding flag %d", flag)
}

// changeSerdes returns the runtime serializer and deserializer of a Change
// whose values are V, for table repartition topics.
func changeSerdes[V any](vs serde.Serde[V]) (topology.Serializer, topology.Deserializer) {
	ser := func(topic string, v any) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		ch := As[Change](v)
		var newB, oldB []byte
		var err error
		if ch.New != nil {
			if newB, err = vs.Serialize(topic, As[V](ch.New)); err != nil {
				return nil, err
			}
			if newB == nil {
				newB = []byte{}
			}
		}
		if ch.Old != nil {
			if oldB, err = vs.Serialize(topic, As[V](ch.Old)); err != nil {
				return nil, err
			}
			if oldB == nil {
				oldB = []byte{}
			}
		}
		return AppendChange(nil, newB, oldB)
	}
	de := func(topic string, b []byte) (any, error) {
		if b == nil {
			return nil, nil
		}
		newB, oldB, err := SplitChange(b)
		if err != nil {
			return nil, err
		}
		var ch Change
		if newB != nil {
			v, err := vs.Deserialize(topic, newB)
			if err != nil {
				return nil, err
			}
			ch.New = v
		}
		if oldB != nil {
			v, err := vs.Deserialize(topic, oldB)
			if err != nil {
				return nil, err
			}
			ch.Old = v
		}
		return &ch, nil
	}
	return ser, de
}
