package state

import "fmt"

// ReadOnly returns a view of s that reads through to s and refuses writes:
// Put, PutIfAbsent and Delete return ErrReadOnly, Flush and Close do
// nothing. A global store is handed to stream tasks this way (Kafka
// Streams' ReadOnlyDecorator): only the global store's own updater writes
// it, and its owner, not every task that reads it, flushes and closes it.
func ReadOnly(s KeyValueStore) KeyValueStore { return readOnlyStore{s} }

type readOnlyStore struct{ KeyValueStore }

func (r readOnlyStore) err(op string) error {
	return fmt.Errorf("store %s: %s: %w", r.Name(), op, ErrReadOnly)
}

func (r readOnlyStore) Put(key, value []byte) error                   { return r.err("put") }
func (r readOnlyStore) PutIfAbsent(key, value []byte) ([]byte, error) { return nil, r.err("put") }
func (r readOnlyStore) Delete(key []byte) ([]byte, error)             { return nil, r.err("delete") }
func (r readOnlyStore) Flush() error                                  { return nil }
func (r readOnlyStore) Close() error                                  { return nil }
