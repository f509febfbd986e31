package state

// This file holds what every store kind in the package shares: key-bound
// arithmetic, unwrapping of layers and the iterator count tests check.

// keySuccessor returns the smallest key greater than k: k with 0x00
// appended. It turns Range's inclusive upper bound into the exclusive one
// that Pebble and the in-memory store use.
func keySuccessor(k []byte) []byte {
	out := make([]byte, len(k)+1)
	copy(out, k)
	return out
}

// prefixSuccessor returns the smallest key greater than every key that
// starts with p, or nil when there is none (p is empty or all 0xff), which
// means the range is open above.
func prefixSuccessor(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			out := make([]byte, i+1)
			copy(out, p[:i+1])
			out[i]++
			return out
		}
	}
	return nil
}

// cloneValue copies v into a slice the caller owns, keeping nil (absent)
// distinct from an empty value.
func cloneValue(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

// wrapper is implemented by the layers (logging, caching) that sit on
// another store.
type wrapper interface {
	inner() KeyValueStore
}

// Inner unwraps one layer: it returns the store a logging or caching store
// writes to, or nil when s is an inner store (Pebble or in-memory) or not of
// this package. The runtime walks down with it to reach the Restorer and to
// close or wipe the bottom store.
func Inner(s KeyValueStore) KeyValueStore {
	if w, ok := s.(wrapper); ok {
		return w.inner()
	}
	return nil
}

// iterCounter is implemented by the inner stores, which own iterators.
type iterCounter interface {
	openIterators() int
}

// OpenIterators returns how many iterators of s (or of the store it wraps)
// are open: created and not yet closed. Tests use it to catch leaks, as
// Pebble's own tests do. It returns 0 for a store not of this package.
func OpenIterators(s KeyValueStore) int {
	for s != nil {
		if c, ok := s.(iterCounter); ok {
			return c.openIterators()
		}
		s = Inner(s)
	}
	return 0
}

// emptyIterator is what a Range with from > to returns: Kafka Streams
// answers such a range with no entries rather than an error.
type emptyIterator struct{ closed bool }

func (*emptyIterator) Next() bool      { return false }
func (*emptyIterator) Key() []byte     { return nil }
func (*emptyIterator) Value() []byte   { return nil }
func (*emptyIterator) Err() error      { return nil }
func (it *emptyIterator) Close() error { it.closed = true; return nil }
