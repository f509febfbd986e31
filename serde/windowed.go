package serde

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Windowed is a key of a windowed aggregation: the record key and the
// window it was aggregated in, as Kafka Streams' Windowed<K>. Start and End
// are epoch milliseconds; a time window is [Start, End), a session window
// [Start, End].
type Windowed[K any] struct {
	Key   K
	Start int64
	End   int64
}

// StartTime and EndTime are Start and End as times.
func (w Windowed[K]) StartTime() time.Time { return time.UnixMilli(w.Start) }
func (w Windowed[K]) EndTime() time.Time   { return time.UnixMilli(w.End) }

// WindowEnd returns End; suppression finds a key's window through it.
func (w Windowed[K]) WindowEnd() int64 { return w.End }

func (w Windowed[K]) String() string {
	return fmt.Sprintf("%v@%d/%d", w.Key, w.Start, w.End)
}

// TimeWindowed returns a serde for time-windowed keys in Kafka Streams'
// TimeWindowedSerializer layout: the inner key's bytes, then the window
// start as 8 big-endian bytes. The end is not on the wire; the
// deserializer sets it to start + size, as Java's TimeWindowedDeserializer
// does with its window size.
func TimeWindowed[K any](inner Serde[K], size time.Duration) Serde[Windowed[K]] {
	return timeWindowed[K]{inner: inner, size: size.Milliseconds()}
}

type timeWindowed[K any] struct {
	inner Serde[K]
	size  int64
}

func (s timeWindowed[K]) Serialize(topic string, w Windowed[K]) ([]byte, error) {
	kb, err := s.inner.Serialize(topic, w.Key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(kb)+8)
	out = append(out, kb...)
	return binary.BigEndian.AppendUint64(out, uint64(w.Start)), nil
}

func (s timeWindowed[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if b == nil {
		return w, nil
	}
	if len(b) < 8 {
		return w, &LengthError{Topic: topic, Type: "time-windowed key", Want: 8, Got: len(b)}
	}
	n := len(b) - 8
	k, err := s.inner.Deserialize(topic, b[:n:n])
	if err != nil {
		return w, err
	}
	w.Key = k
	w.Start = int64(binary.BigEndian.Uint64(b[n:]))
	w.End = w.Start + s.size
	return w, nil
}

// SessionWindowed returns a serde for session-windowed keys in Kafka
// Streams' SessionKeySchema layout: the inner key's bytes, the session end,
// then its start, each as 8 big-endian bytes.
func SessionWindowed[K any](inner Serde[K]) Serde[Windowed[K]] {
	return sessionWindowed[K]{inner: inner}
}

type sessionWindowed[K any] struct{ inner Serde[K] }

func (s sessionWindowed[K]) Serialize(topic string, w Windowed[K]) ([]byte, error) {
	kb, err := s.inner.Serialize(topic, w.Key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(kb)+16)
	out = append(out, kb...)
	out = binary.BigEndian.AppendUint64(out, uint64(w.End))
	return binary.BigEndian.AppendUint64(out, uint64(w.Start)), nil
}

func (s sessionWindowed[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if b == nil {
		return w, nil
	}
	if len(b) < 16 {
		return w, &LengthError{Topic: topic, Type: "session-windowed key", Want: 16, Got: len(b)}
	}
	n := len(b) - 16
	k, err := s.inner.Deserialize(topic, b[:n:n])
	if err != nil {
		return w, err
	}
	w.Key = k
	w.End = int64(binary.BigEndian.Uint64(b[n:]))
	w.Start = int64(binary.BigEndian.Uint64(b[n+8:]))
	return w, nil
}
