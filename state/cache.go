package state

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// cacheEntryOverhead approximates what one cache entry costs beyond its key
// and value bytes (the entry struct, its map slot, list links), so that a
// cache of many tiny entries is not undercounted.
const cacheEntryOverhead = 64

// cacheEntry is one dirty key: its latest value (nil: a cached delete) and
// the timestamp of the record that wrote it.
type cacheEntry struct {
	key   []byte
	value []byte
	ts    int64
	size  int64
	// gen counts writes, so a write-through can tell whether the entry was
	// written again (by the listener's downstream) while it was away.
	gen        uint64
	prev, next *cacheEntry
	linked     bool // in the LRU list; false while being written through
}

// cachedStore is a write cache in the manner of Kafka Streams'
// CachingKeyValueStore over a NamedCache: writes stay in memory as dirty
// entries, repeated writes of a key collapse into one, and an entry reaches
// the inner store and the FlushListener only when evicted or flushed.
//
// Entries are kept in least-recently-written order (reads do not reorder
// them: what matters is how long an update has been held back). The task
// goroutine writes; interactive queries may read concurrently, so the map
// and list are guarded by an RWMutex, which is never held while calling the
// inner store or the listener: the listener forwards downstream, where a
// processor may read this same store.
type cachedStore struct {
	in       KeyValueStore
	maxBytes int64

	mu         sync.RWMutex
	entries    map[string]*cacheEntry // keys alias entry.key's bytes
	head, tail *cacheEntry            // head: least recently written
	size       int64
	listener   FlushListener
	closed     atomic.Bool
}

type cachedRestorer struct {
	*cachedStore
	r Restorer
}

// NewCached wraps inner in a write cache of about maxBytes (each entry
// counts len(key)+len(value)+64).
//
// Put, PutAt and Delete write only to the cache. Get reads the cache and
// then inner; a cached delete reads as absent. When the cache grows past
// maxBytes, the least recently written entries are written through to
// inner, each followed by a call to the FlushListener with the new value,
// the value inner had before (read just before the write) and the
// timestamp; Flush writes every entry through, oldest first, and then
// flushes inner. Several writes of a key between two write-throughs reach
// inner and the listener once, with the latest value. The listener is not
// called when both values are nil (a key written and deleted while cached
// that inner never had).
//
// Range, ReverseRange, All and PrefixScan merge the cached entries over
// inner's iterator, without flushing: reads have no side effects, and an
// interactive query never makes the cache forward on its goroutine.
//
// With maxBytes <= 0 there is no caching: every write goes straight to
// inner and the listener is called at once, so downstream sees the same
// updates, only not collapsed.
//
// When inner implements Restorer, so does the cache: restore writes to
// inner, and a restored key's cached entry is dropped.
func NewCached(inner KeyValueStore, maxBytes int64) Cache {
	c := &cachedStore{in: inner, maxBytes: maxBytes, entries: make(map[string]*cacheEntry)}
	if r, ok := inner.(Restorer); ok {
		return &cachedRestorer{cachedStore: c, r: r}
	}
	return c
}

// RestoreBatch restores into inner and drops any cached entry of a
// restored key, so the restored value is what reads see. (The runtime
// restores before processing, while the cache is empty.)
func (c *cachedRestorer) RestoreBatch(batch []KeyValue) error {
	if err := c.r.RestoreBatch(batch); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) == 0 {
		return nil
	}
	for _, kv := range batch {
		if e, ok := c.entries[string(kv.Key)]; ok {
			delete(c.entries, string(kv.Key))
			c.size -= e.size
			if e.linked {
				c.unlink(e)
			}
			e.gen++ // a write-through in flight must not delete a newer entry
		}
	}
	return nil
}

func (c *cachedStore) inner() KeyValueStore { return c.in }
func (c *cachedStore) Name() string         { return c.in.Name() }

func (c *cachedStore) SetFlushListener(l FlushListener) {
	c.mu.Lock()
	c.listener = l
	c.mu.Unlock()
}

func (c *cachedStore) Get(key []byte) ([]byte, error) {
	c.mu.RLock()
	if c.closed.Load() {
		c.mu.RUnlock()
		return nil, ErrClosed
	}
	if e, ok := c.entries[string(key)]; ok {
		v := cloneValue(e.value)
		c.mu.RUnlock()
		return v, nil
	}
	c.mu.RUnlock()
	// An entry evicted meanwhile was written to inner before it left the
	// map, so inner has it now.
	return c.in.Get(key)
}

// Put is PutAt with timestamp 0; processors that know their record's
// timestamp use PutAt.
func (c *cachedStore) Put(key, value []byte) error { return c.PutAt(key, value, 0) }

// PutAt writes value (nil: delete) under key in the cache, recording ts for
// the listener, and evicts the oldest entries if the cache is over size.
func (c *cachedStore) PutAt(key, value []byte, ts int64) error {
	if c.maxBytes <= 0 {
		if c.closed.Load() {
			return ErrClosed
		}
		_, _, err := c.writeThrough(key, value, ts)
		return err
	}
	v := cloneValue(value) // never reused: a write-through may be reading the old one
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return ErrClosed
	}
	e, ok := c.entries[string(key)]
	if ok {
		c.size -= e.size
		if e.linked {
			c.unlink(e)
		}
	} else {
		k := bytes.Clone(key)
		if k == nil {
			k = []byte{}
		}
		e = &cacheEntry{key: k}
		// The key bytes are never written again, so the map key can share
		// them instead of copying.
		c.entries[unsafe.String(unsafe.SliceData(k), len(k))] = e
	}
	e.value, e.ts = v, ts
	e.gen++
	e.size = int64(len(key)+len(value)) + cacheEntryOverhead
	c.size += e.size
	c.pushBack(e)
	over := c.size > c.maxBytes
	c.mu.Unlock()
	if over {
		return c.writeOldest(true)
	}
	return nil
}

func (c *cachedStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	old, err := c.Get(key)
	if err != nil || old != nil {
		return old, err
	}
	return nil, c.PutAt(key, value, 0)
}

// Delete caches a delete (timestamp 0) and returns the value the key had,
// from the cache or inner.
func (c *cachedStore) Delete(key []byte) ([]byte, error) {
	if c.maxBytes <= 0 {
		if c.closed.Load() {
			return nil, ErrClosed
		}
		old, _, err := c.writeThrough(key, nil, 0)
		return old, err
	}
	old, err := c.Get(key)
	if err != nil {
		return nil, err
	}
	return old, c.PutAt(key, nil, 0)
}

// Flush writes every dirty entry through to inner, oldest first, telling
// the listener about each, then flushes inner.
func (c *cachedStore) Flush() error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.writeOldest(false); err != nil {
		return err
	}
	return c.in.Flush()
}

// writeOldest writes entries through from the head of the list: while the
// cache is over size when untilFits, else until no dirty entry is left.
func (c *cachedStore) writeOldest(untilFits bool) error {
	for {
		c.mu.Lock()
		e := c.head
		if e == nil || (untilFits && c.size <= c.maxBytes) {
			c.mu.Unlock()
			return nil
		}
		// The entry stays in the map while it is away, so Get still finds
		// it: inner may not have the new value yet.
		c.unlink(e)
		key, value, ts, gen := e.key, e.value, e.ts, e.gen
		c.mu.Unlock()

		_, wrote, err := c.writeThrough(key, value, ts)

		c.mu.Lock()
		switch {
		case e.gen != gen:
			// Written again meanwhile: PutAt put it back in the list.
		case !wrote:
			// inner refused the write; the entry stays dirty, oldest.
			c.pushFront(e)
		default:
			delete(c.entries, string(e.key))
			c.size -= e.size
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// writeThrough writes one update to inner and then tells the listener.
// It returns the value inner had, and whether inner took the write (the
// listener may fail after it did).
func (c *cachedStore) writeThrough(key, value []byte, ts int64) (old []byte, wrote bool, err error) {
	if value == nil {
		old, err = c.in.Delete(key)
	} else if old, err = c.in.Get(key); err == nil {
		err = c.in.Put(key, value)
	}
	if err != nil {
		return nil, false, err
	}
	c.mu.RLock()
	l := c.listener
	c.mu.RUnlock()
	if l == nil || (value == nil && old == nil) {
		return old, true, nil
	}
	return old, true, l(key, value, old, ts)
}

func (c *cachedStore) pushBack(e *cacheEntry) {
	e.prev, e.next, e.linked = c.tail, nil, true
	if c.tail != nil {
		c.tail.next = e
	} else {
		c.head = e
	}
	c.tail = e
}

func (c *cachedStore) pushFront(e *cacheEntry) {
	e.prev, e.next, e.linked = nil, c.head, true
	if c.head != nil {
		c.head.prev = e
	} else {
		c.tail = e
	}
	c.head = e
}

func (c *cachedStore) unlink(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next, e.linked = nil, nil, false
}

// ApproximateNumEntries is inner's count corrected by the dirty entries:
// a cached put of a key inner lacks adds one, a cached delete of a key
// inner has removes one. That costs one inner Get per dirty entry, bounded
// by the cache size.
func (c *cachedStore) ApproximateNumEntries() (int64, error) {
	dirty, err := c.dirty(nil, nil)
	if err != nil {
		return 0, err
	}
	n, err := c.in.ApproximateNumEntries()
	if err != nil {
		return 0, err
	}
	for _, e := range dirty {
		v, err := c.in.Get(e.Key)
		if err != nil {
			return 0, err
		}
		switch {
		case v == nil && e.Value != nil:
			n++
		case v != nil && e.Value == nil:
			n--
		}
	}
	return n, nil
}

// Close closes inner. Entries not yet flushed are dropped: the runtime
// flushes before it commits, and writes made after the last commit come
// back when their input records are processed again.
func (c *cachedStore) Close() error {
	c.mu.Lock()
	if c.closed.Swap(true) {
		c.mu.Unlock()
		return nil
	}
	c.entries, c.head, c.tail, c.size = nil, nil, nil, 0
	c.mu.Unlock()
	return c.in.Close()
}

// dirty returns the cached entries with keys in [lower, upper) (nil: open),
// sorted by key. Values are shared, not copied: a cached value slice is
// never written after it is stored.
func (c *cachedStore) dirty(lower, upper []byte) ([]KeyValue, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	var out []KeyValue
	for _, e := range c.entries {
		if lower != nil && bytes.Compare(e.key, lower) < 0 {
			continue
		}
		if upper != nil && bytes.Compare(e.key, upper) >= 0 {
			continue
		}
		out = append(out, KeyValue{Key: e.key, Value: e.value})
	}
	slices.SortFunc(out, func(a, b KeyValue) int { return bytes.Compare(a.Key, b.Key) })
	return out, nil
}

// merged opens inner's iterator and lays the cached entries in
// [lower, upper) over it. The cache is read first: an entry evicted in
// between is then in both, with the same value, rather than in neither.
func (c *cachedStore) merged(lower, upper []byte, reverse bool, open func() (Iterator, error)) (Iterator, error) {
	dirty, err := c.dirty(lower, upper)
	if err != nil {
		return nil, err
	}
	if reverse {
		slices.Reverse(dirty)
	}
	in, err := open()
	if err != nil {
		return nil, err
	}
	return &mergeIter{c: c, cache: dirty, in: in, reverse: reverse, pending: true}, nil
}

func (c *cachedStore) Range(from, to []byte) (Iterator, error) {
	var upper []byte
	if to != nil {
		upper = keySuccessor(to)
	}
	return c.merged(from, upper, false, func() (Iterator, error) { return c.in.Range(from, to) })
}

func (c *cachedStore) ReverseRange(from, to []byte) (Iterator, error) {
	var upper []byte
	if to != nil {
		upper = keySuccessor(to)
	}
	return c.merged(from, upper, true, func() (Iterator, error) { return c.in.ReverseRange(from, to) })
}

func (c *cachedStore) All() (Iterator, error) {
	return c.merged(nil, nil, false, c.in.All)
}

func (c *cachedStore) PrefixScan(prefix []byte) (Iterator, error) {
	return c.merged(prefix, prefixSuccessor(prefix), false, func() (Iterator, error) { return c.in.PrefixScan(prefix) })
}

// mergeIter walks a sorted slice of cached entries and inner's iterator
// together; on equal keys the cache wins, and a cached delete hides the key.
type mergeIter struct {
	c       *cachedStore
	cache   []KeyValue
	ci      int
	in      Iterator
	inValid bool
	// pending: in must advance before it is read again. Advancing lazily
	// keeps in's Key and Value valid while the caller holds them.
	pending bool
	reverse bool

	key, value []byte
	err        error
	closed     bool
}

func (it *mergeIter) Next() bool {
	if it.closed || it.err != nil {
		return false
	}
	if it.c.closed.Load() {
		it.err = ErrClosed
		return false
	}
	if it.pending {
		it.inValid, it.pending = it.in.Next(), false
	}
	for {
		haveCache := it.ci < len(it.cache)
		if !haveCache && !it.inValid {
			return false
		}
		cmp := -1
		switch {
		case !haveCache:
			cmp = 1
		case it.inValid:
			cmp = bytes.Compare(it.cache[it.ci].Key, it.in.Key())
			if it.reverse {
				cmp = -cmp
			}
		}
		if cmp > 0 {
			it.key, it.value, it.pending = it.in.Key(), it.in.Value(), true
			return true
		}
		e := it.cache[it.ci]
		it.ci++
		if cmp == 0 {
			it.inValid = it.in.Next() // shadowed by the cached entry
		}
		if e.Value == nil {
			continue
		}
		it.key, it.value = e.Key, e.Value
		return true
	}
}

func (it *mergeIter) Key() []byte   { return it.key }
func (it *mergeIter) Value() []byte { return it.value }

func (it *mergeIter) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.in.Err()
}

func (it *mergeIter) Close() error {
	if it.closed {
		return nil
	}
	it.closed = true
	return it.in.Close()
}
