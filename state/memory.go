package state

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/google/btree"
)

// memDegree is the B-tree's degree: nodes hold up to 2*degree-1 entries.
// 32 keeps nodes a few cache lines wide, as google/btree recommends.
const memDegree = 32

// memIterBatch is how many entries an in-memory iterator copies out of its
// snapshot per refill: B-tree walks are callback-driven, so a pull iterator
// collects a small batch and resumes after the last key it saw.
const memIterBatch = 64

type memItem struct {
	key, value []byte
}

func memLess(a, b memItem) bool { return bytes.Compare(a.key, b.key) < 0 }

// memStore is a sorted in-memory store on a copy-on-write B-tree.
//
// One task goroutine writes; interactive queries may read concurrently,
// so the tree is guarded by an RWMutex. Iterators read a frozen clone of
// the tree (btree.Clone is O(1): both trees then copy a node before
// changing it), so writes after an iterator was opened neither race with
// it nor show through it. The clone is shared by every iterator opened
// between two writes.
type memStore struct {
	name string

	mu   sync.RWMutex
	tree *btree.BTreeG[memItem]
	snap *btree.BTreeG[memItem] // frozen clone for iterators; nil after a write

	closed atomic.Bool
	iters  atomic.Int64
}

// NewInMemory returns an empty sorted in-memory store, which also
// implements Restorer. Its data lives only as long as the store: after a
// restart it is restored from the changelog, as Kafka Streams' in-memory
// stores are. Get returns a copy the caller owns.
func NewInMemory(name string) KeyValueStore {
	return &memStore{name: name, tree: btree.NewG(memDegree, memLess)}
}

func (s *memStore) Name() string { return s.name }

func (s *memStore) openIterators() int { return int(s.iters.Load()) }

func (s *memStore) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	it, ok := s.tree.Get(memItem{key: key})
	if !ok {
		return nil, nil
	}
	return cloneValue(it.value), nil
}

// newItem copies key and value into one allocation: the caller may reuse
// its buffers after Put returns.
func newItem(key, value []byte) memItem {
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	return memItem{key: buf[:len(key):len(key)], value: buf[len(key):]}
}

func (s *memStore) Put(key, value []byte) error {
	if value == nil {
		_, err := s.Delete(key)
		return err
	}
	item := newItem(key, value)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	s.tree.ReplaceOrInsert(item)
	s.snap = nil
	return nil
}

func (s *memStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if old, ok := s.tree.Get(memItem{key: key}); ok {
		return cloneValue(old.value), nil
	}
	if value != nil {
		s.tree.ReplaceOrInsert(newItem(key, value))
		s.snap = nil
	}
	return nil, nil
}

func (s *memStore) Delete(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	old, ok := s.tree.Delete(memItem{key: key})
	if !ok {
		return nil, nil
	}
	s.snap = nil
	// Copied: an older snapshot may still hand these bytes to an iterator.
	return cloneValue(old.value), nil
}

// RestoreBatch applies the batch under one lock, so readers see all of it
// or none of it.
func (s *memStore) RestoreBatch(batch []KeyValue) error {
	items := make([]memItem, len(batch))
	for i, kv := range batch {
		if kv.Value != nil {
			items[i] = newItem(kv.Key, kv.Value)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	for i, kv := range batch {
		if kv.Value == nil {
			s.tree.Delete(memItem{key: kv.Key})
		} else {
			s.tree.ReplaceOrInsert(items[i])
		}
	}
	s.snap = nil
	return nil
}

func (s *memStore) ApproximateNumEntries() (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	return int64(s.tree.Len()), nil
}

// Flush has nothing to do: the store holds no buffered writes and is not
// durable anyway.
func (s *memStore) Flush() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Close drops the data. Iterators still open then stop with ErrClosed;
// Close reports them as leaked.
func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	s.tree, s.snap = nil, nil
	if n := s.iters.Load(); n > 0 {
		return fmt.Errorf("state: store %q closed with %d iterators still open", s.name, n)
	}
	return nil
}

// snapshot returns the frozen clone iterators read, cloning only when a
// write happened since the last clone.
func (s *memStore) snapshot() (*btree.BTreeG[memItem], error) {
	s.mu.RLock()
	snap, closed := s.snap, s.closed.Load()
	s.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if snap != nil {
		return snap, nil
	}
	// Clone writes to the tree's copy-on-write context, so it needs the
	// write lock.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if s.snap == nil {
		s.snap = s.tree.Clone()
	}
	return s.snap, nil
}

// iter opens an iterator over [lower, upper); nil bounds are open.
func (s *memStore) iter(lower, upper []byte, reverse bool) (Iterator, error) {
	snap, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	s.iters.Add(1)
	return &memIter{s: s, tree: snap, lower: lower, upper: upper, reverse: reverse}, nil
}

func (s *memStore) Range(from, to []byte) (Iterator, error) {
	if from != nil && to != nil && bytes.Compare(from, to) > 0 {
		if s.closed.Load() {
			return nil, ErrClosed
		}
		return &emptyIterator{}, nil
	}
	var upper []byte
	if to != nil {
		upper = keySuccessor(to)
	}
	return s.iter(from, upper, false)
}

func (s *memStore) ReverseRange(from, to []byte) (Iterator, error) {
	if from != nil && to != nil && bytes.Compare(from, to) > 0 {
		if s.closed.Load() {
			return nil, ErrClosed
		}
		return &emptyIterator{}, nil
	}
	var upper []byte
	if to != nil {
		upper = keySuccessor(to)
	}
	return s.iter(from, upper, true)
}

func (s *memStore) All() (Iterator, error) { return s.iter(nil, nil, false) }

func (s *memStore) PrefixScan(prefix []byte) (Iterator, error) {
	return s.iter(prefix, prefixSuccessor(prefix), false)
}

// memIter pulls entries of a frozen tree in batches.
type memIter struct {
	s            *memStore
	tree         *btree.BTreeG[memItem]
	lower, upper []byte // [lower, upper); nil is open
	reverse      bool

	buf     []memItem
	pos     int
	last    []byte // key of the last entry buffered, where the next refill resumes
	started bool   // a refill happened, so the next one resumes after last
	done    bool   // the tree has no more entries in range
	cur     memItem

	err    error
	closed bool
}

func (it *memIter) Next() bool {
	if it.closed || it.err != nil {
		return false
	}
	if it.s.closed.Load() {
		it.err = ErrClosed
		return false
	}
	if it.pos >= len(it.buf) {
		if it.done {
			return false
		}
		it.refill()
		if len(it.buf) == 0 {
			return false
		}
	}
	it.cur = it.buf[it.pos]
	it.pos++
	return true
}

func (it *memIter) refill() {
	it.buf, it.pos = it.buf[:0], 0
	resume := it.started
	it.started = true
	collect := func(item memItem) bool {
		if resume && bytes.Equal(item.key, it.last) {
			return true // the entry the previous batch ended on
		}
		if it.reverse {
			if it.lower != nil && bytes.Compare(item.key, it.lower) < 0 {
				it.done = true
				return false
			}
			if it.upper != nil && bytes.Compare(item.key, it.upper) >= 0 {
				return true // only the upper bound itself can be visited
			}
		} else if it.upper != nil && bytes.Compare(item.key, it.upper) >= 0 {
			it.done = true
			return false
		}
		it.buf = append(it.buf, item)
		return len(it.buf) < memIterBatch
	}
	switch {
	case it.reverse && resume:
		it.tree.DescendLessOrEqual(memItem{key: it.last}, collect)
	case it.reverse && it.upper != nil:
		it.tree.DescendLessOrEqual(memItem{key: it.upper}, collect)
	case it.reverse:
		it.tree.Descend(collect)
	case resume:
		it.tree.AscendGreaterOrEqual(memItem{key: it.last}, collect)
	case it.lower != nil:
		it.tree.AscendGreaterOrEqual(memItem{key: it.lower}, collect)
	default:
		it.tree.Ascend(collect)
	}
	if len(it.buf) < memIterBatch {
		it.done = true
	}
	if n := len(it.buf); n > 0 {
		it.last = it.buf[n-1].key
	}
}

func (it *memIter) Key() []byte   { return it.cur.key }
func (it *memIter) Value() []byte { return it.cur.value }
func (it *memIter) Err() error    { return it.err }

func (it *memIter) Close() error {
	if it.closed {
		return nil
	}
	it.closed = true
	it.buf, it.tree = nil, nil
	it.s.iters.Add(-1)
	return nil
}
