// Package state holds the stores processors keep state in: byte-level
// key-value stores on Pebble (default, on disk) or in memory, the layers that
// log every write to a changelog topic and cache repeated updates, and typed
// views over them through serdes.
//
// Layers stack as in Kafka Streams: a processor sees a cached store, whose
// flush writes through a logging store (every write also goes to the
// changelog) into the inner Pebble or in-memory store. Restore writes
// straight into the inner store in batches.
package state

import "errors"

// ErrClosed is returned by a store or iterator used after Close.
var ErrClosed = errors.New("state: store closed")

// KeyValue is one entry; a nil Value in a batch means delete.
type KeyValue struct {
	Key   []byte
	Value []byte
}

// Iterator walks entries in key order (or reverse order for reverse
// ranges). It must be closed; tests check that none is leaked.
//
//	it, err := s.Range(from, to)
//	...
//	defer it.Close()
//	for it.Next() { use(it.Key(), it.Value()) }
//	if err := it.Err(); err != nil { ... }
//
// Key and Value are valid until the next call to Next; copy to keep them.
type Iterator interface {
	Next() bool
	Key() []byte
	Value() []byte
	Err() error
	Close() error
}

// ReadOnlyKeyValueStore is what interactive queries see.
type ReadOnlyKeyValueStore interface {
	// Get returns the value, or nil when the key is absent.
	Get(key []byte) ([]byte, error)
	// Range iterates keys in [from, to], both inclusive as in Kafka
	// Streams; a nil bound is open.
	Range(from, to []byte) (Iterator, error)
	// ReverseRange is Range in descending key order.
	ReverseRange(from, to []byte) (Iterator, error)
	// All iterates every entry in key order.
	All() (Iterator, error)
	// PrefixScan iterates the keys that start with prefix.
	PrefixScan(prefix []byte) (Iterator, error)
	// ApproximateNumEntries estimates the number of entries.
	ApproximateNumEntries() (int64, error)
}

// KeyValueStore is a named, writable, byte-level store. Keys order
// bytewise. It is used by one task goroutine at a time; stores that are also
// read by interactive queries are safe for concurrent reads.
type KeyValueStore interface {
	ReadOnlyKeyValueStore
	Name() string
	// Put writes value under key; a nil value deletes the key.
	Put(key, value []byte) error
	// PutIfAbsent writes only when the key is absent and returns the value
	// that was there (nil if none).
	PutIfAbsent(key, value []byte) ([]byte, error)
	// Delete removes key and returns the value it had (nil if none).
	Delete(key []byte) ([]byte, error)
	// Flush makes buffered writes durable (and, for a cache, writes them
	// through to the layer below).
	Flush() error
	// Close releases the store; it does not delete its data.
	Close() error
}

// Restorer is implemented by inner stores: restore from a changelog writes
// whole batches, skipping the logging and caching layers.
type Restorer interface {
	// RestoreBatch applies puts (nil Value: delete) atomically.
	RestoreBatch(batch []KeyValue) error
}

// ChangeLogger receives every write of a logging store: the key and the new
// value (nil for a delete). The runtime produces it to the store's changelog
// partition.
type ChangeLogger func(key, value []byte) error

// FlushListener is told about each entry a cache writes through, with the
// value it replaces (nil if none) and the timestamp of the record that last
// wrote it. Aggregations forward these downstream, which is how the cache
// collapses repeated updates before they reach the next node.
type FlushListener func(key, newValue, oldValue []byte, timestamp int64) error

// Cache is implemented by caching stores.
type Cache interface {
	KeyValueStore
	// SetFlushListener sets the listener; nil means none.
	SetFlushListener(FlushListener)
	// PutAt is Put recording the timestamp of the record that caused it.
	PutAt(key, value []byte, timestamp int64) error
}
