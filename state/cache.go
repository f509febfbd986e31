package state

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// cacheEntryOverhead approximates what one cache entry costs beyond its key
// and value bytes: the entry struct (144 bytes in its size class), its map
// slot, and the rounding of the key and value allocations. A heap profile
// of a cache of 11-byte keys and 8-byte values held about 220 bytes per
// entry; counting less lets a cache of many tiny entries outgrow its budget.
const cacheEntryOverhead = 200

// cacheEntry is one cached key: its latest value (nil: a delete) and the
// timestamp of the record that wrote it. A dirty entry holds a write inner
// has not seen yet; a clean one holds what inner has, kept after a flush so
// that the next read and the next write-through need not go to inner.
type cacheEntry struct {
	key   []byte
	value []byte
	ts    int64
	size  int64
	// gen counts writes, so a write-through can tell whether the entry was
	// written again (by the listener's downstream) while it was away.
	gen   uint64
	dirty bool
	// prior is inner's value when the entry turned dirty, known when it
	// was clean then; a write-through uses it instead of reading inner.
	prior      []byte
	priorKnown bool
	lruLinks[cacheEntry]
}

//lint:ignore U1000 called through the lruEntry constraint, which staticcheck does not follow
func (e *cacheEntry) links() *lruLinks[cacheEntry] { return &e.lruLinks }

// entryList is the cache's LRU list of entries.
type entryList = lruList[cacheEntry, *cacheEntry]

// listOf is the list e is in when linked: a clean entry turns dirty only
// after it left the clean list.
func (c *cachedStore) listOf(e *cacheEntry) *entryList {
	if e.dirty {
		return &c.dirtyL
	}
	return &c.cleanL
}

// cachedStore is a write cache in the manner of Kafka Streams'
// CachingKeyValueStore over a NamedCache: writes stay in memory as dirty
// entries, repeated writes of a key collapse into one, and an entry reaches
// the inner store and the FlushListener only when evicted or flushed.
//
// Dirty entries are kept in least-recently-written order (reads do not
// reorder them: what matters is how long an update has been held back).
// A flushed entry stays as a clean entry, as Kafka Streams' NamedCache
// marks flushed entries clean and leaves them to eviction: the next update
// of a hot key then finds it in memory, and its write-through knows the
// value it replaces without reading inner. Clean entries are the first to
// go when the cache is over size, least recently written first, and cost
// no write. The task goroutine writes; interactive queries may read
// concurrently, so the map and lists are guarded by an RWMutex, which is
// never held while calling the inner store or the listener: the listener
// forwards downstream, where a processor may read this same store.
type cachedStore struct {
	in       KeyValueStore
	maxBytes int64

	mu       sync.RWMutex
	entries  map[string]*cacheEntry // keys alias entry.key's bytes
	dirtyL   entryList              // dirty entries, least recently written at head
	cleanL   entryList              // clean entries, least recently written at head
	size     int64
	listener FlushListener
	closed   atomic.Bool
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
// maxBytes, clean entries are dropped and then the least recently written
// dirty entries are written through to inner, each followed by a call to
// the FlushListener with the new value, the value inner had before (the
// clean entry's, else read just before the write) and the timestamp; Flush
// writes every dirty entry through, oldest first, keeps them as clean
// entries, and then flushes inner. Several writes of a key between two write-throughs reach
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
				c.listOf(e).unlink(e)
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
		if !e.dirty {
			// inner has the clean value: the write-through to come
			// replaces it.
			e.prior, e.priorKnown = e.value, true
		}
		if e.linked {
			c.listOf(e).unlink(e)
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
	e.value, e.ts, e.dirty = v, ts, true
	e.gen++
	e.size = int64(len(key)+len(value)) + cacheEntryOverhead
	c.size += e.size
	c.dirtyL.pushBack(e)
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

// writeOldest writes dirty entries through from the head of their list:
// while the cache is over size when untilFits (after dropping clean
// entries, which costs nothing), else until no dirty entry is left. A
// written entry stays as a clean one, unless the cache is over size.
func (c *cachedStore) writeOldest(untilFits bool) error {
	defer func() {
		c.mu.Lock()
		c.dropClean()
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		if untilFits && c.dropClean() {
			c.mu.Unlock()
			return nil
		}
		e := c.dirtyL.head
		if e == nil {
			c.mu.Unlock()
			return nil
		}
		// The entry stays in the map while it is away, so Get still finds
		// it: inner may not have the new value yet.
		c.dirtyL.unlink(e)
		key, value, ts, gen := e.key, e.value, e.ts, e.gen
		prior, priorKnown := e.prior, e.priorKnown
		c.mu.Unlock()

		_, wrote, err := c.writeThroughKnown(key, value, ts, prior, priorKnown)

		c.mu.Lock()
		switch {
		case e.gen != gen:
			// Written again meanwhile: PutAt put it back in the list.
			if wrote {
				// inner has value now, which the newer write replaces.
				e.prior, e.priorKnown = value, true
			}
		case !wrote:
			// inner refused the write; the entry stays dirty, oldest.
			c.dirtyL.pushFront(e)
		case untilFits:
			delete(c.entries, string(e.key))
			c.size -= e.size
		default:
			e.dirty, e.prior, e.priorKnown = false, nil, false
			c.cleanL.pushBack(e)
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// dropClean drops clean entries, least recently written first, until the
// cache fits, and reports whether it does. c.mu is held.
func (c *cachedStore) dropClean() bool {
	for c.size > c.maxBytes {
		e := c.cleanL.head
		if e == nil {
			return false
		}
		c.cleanL.unlink(e)
		delete(c.entries, string(e.key))
		c.size -= e.size
	}
	return true
}

// writeThrough writes one update to inner and then tells the listener.
// It returns the value inner had, and whether inner took the write (the
// listener may fail after it did).
func (c *cachedStore) writeThrough(key, value []byte, ts int64) (old []byte, wrote bool, err error) {
	return c.writeThroughKnown(key, value, ts, nil, false)
}

// writeThroughKnown is writeThrough given, when known, the value inner
// holds (prior), which saves reading it.
func (c *cachedStore) writeThroughKnown(key, value []byte, ts int64, prior []byte, priorKnown bool) (old []byte, wrote bool, err error) {
	switch {
	case value == nil:
		old, err = c.in.Delete(key)
	case priorKnown:
		old = prior
		err = c.in.Put(key, value)
	default:
		if old, err = c.in.Get(key); err == nil {
			err = c.in.Put(key, value)
		}
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
	c.entries, c.dirtyL, c.cleanL, c.size = nil, entryList{}, entryList{}, 0
	c.mu.Unlock()
	return c.in.Close()
}

// dirty returns the dirty entries with keys in [lower, upper) (nil: open),
// sorted by key; clean ones hold what inner has. Values are shared, not
// copied: a cached value slice is never written after it is stored.
func (c *cachedStore) dirty(lower, upper []byte) ([]KeyValue, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	var out []KeyValue
	for _, e := range c.entries {
		if !e.dirty {
			continue
		}
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
