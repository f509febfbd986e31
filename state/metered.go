package state

import (
	"sync/atomic"
	"time"
)

// MeterSample is how often a metered store times an operation: one call
// in MeterSample. Timing every call would cost more than many of the
// operations themselves (a cached Get is tens of nanoseconds).
const MeterSample = 16

// NewMetered wraps s so that one in MeterSample calls of Get, Put,
// PutIfAbsent, Delete and the range reads is timed and handed to observe
// with the operation's name ("get", "put", "delete", "range"). A Cache
// stays a Cache. Range latency is the time to open the iterator.
func NewMetered(s KeyValueStore, observe func(op string, d time.Duration)) KeyValueStore {
	m := &metered{in: s, observe: observe}
	if c, ok := s.(Cache); ok {
		return &meteredCache{metered: m, c: c}
	}
	return m
}

type metered struct {
	in      KeyValueStore
	observe func(op string, d time.Duration)
	calls   atomic.Uint32
}

func (m *metered) inner() KeyValueStore { return m.in }

// start returns the time to measure from, or the zero time when this call
// is not sampled.
func (m *metered) start() time.Time {
	if m.calls.Add(1)%MeterSample != 0 {
		return time.Time{}
	}
	return time.Now()
}

func (m *metered) done(op string, t time.Time) {
	if !t.IsZero() {
		m.observe(op, time.Since(t))
	}
}

func (m *metered) Name() string { return m.in.Name() }

func (m *metered) Get(key []byte) ([]byte, error) {
	t := m.start()
	v, err := m.in.Get(key)
	m.done("get", t)
	return v, err
}

func (m *metered) Put(key, value []byte) error {
	t := m.start()
	err := m.in.Put(key, value)
	m.done("put", t)
	return err
}

func (m *metered) PutIfAbsent(key, value []byte) ([]byte, error) {
	t := m.start()
	v, err := m.in.PutIfAbsent(key, value)
	m.done("put", t)
	return v, err
}

func (m *metered) Delete(key []byte) ([]byte, error) {
	t := m.start()
	v, err := m.in.Delete(key)
	m.done("delete", t)
	return v, err
}

func (m *metered) Range(from, to []byte) (Iterator, error) {
	t := m.start()
	it, err := m.in.Range(from, to)
	m.done("range", t)
	return it, err
}

func (m *metered) ReverseRange(from, to []byte) (Iterator, error) {
	t := m.start()
	it, err := m.in.ReverseRange(from, to)
	m.done("range", t)
	return it, err
}

func (m *metered) All() (Iterator, error) {
	t := m.start()
	it, err := m.in.All()
	m.done("range", t)
	return it, err
}

func (m *metered) PrefixScan(prefix []byte) (Iterator, error) {
	t := m.start()
	it, err := m.in.PrefixScan(prefix)
	m.done("range", t)
	return it, err
}

func (m *metered) ApproximateNumEntries() (int64, error) { return m.in.ApproximateNumEntries() }
func (m *metered) Flush() error                          { return m.in.Flush() }
func (m *metered) Close() error                          { return m.in.Close() }

type meteredCache struct {
	*metered
	c Cache
}

func (m *meteredCache) SetFlushListener(l FlushListener) { m.c.SetFlushListener(l) }

func (m *meteredCache) PutAt(key, value []byte, ts int64) error {
	t := m.start()
	err := m.c.PutAt(key, value, ts)
	m.done("put", t)
	return err
}
