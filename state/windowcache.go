package state

// A write cache for window stores, as Kafka Streams' CachingWindowStore:
// the window-store counterpart of NewCached. Entries are keyed by the
// window's store key WindowKey(key, start, 0), so the updates of one window
// collapse, and they reach the inner store (and through a logging layer the
// changelog) and the FlushListener when evicted or flushed.

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// windowEntryOverhead approximates what one cached window costs beyond its
// store key and value bytes: the entry struct, its map slot and the
// rounding of the allocations. A cache of 20-byte store keys and 8-byte
// values held about 200 bytes per window; counting less would let a cache
// of many small windows outgrow its budget.
const windowEntryOverhead = 176

// WindowCache is implemented by caching window stores.
type WindowCache interface {
	WindowStore
	// SetFlushListener sets the listener; nil means none. Its key is the
	// window's store key, WindowKey(key, start, 0), which ParseWindowKey
	// splits.
	SetFlushListener(FlushListener)
	// PutAt is Put recording the timestamp of the record that caused it.
	PutAt(key, value []byte, start, timestamp int64) error
}

// windowEntry is one dirty window: its latest value (nil: a cached delete)
// and the timestamp of the record that wrote it.
type windowEntry struct {
	wkey  []byte // WindowKey(key, start, 0); never written after creation
	value []byte // never written after it is stored
	ts    int64
	size  int64
	// old is inner's value of the window, when known (oldKnown): the
	// listener's old value, which a write-through then need not fetch.
	old      []byte
	oldKnown bool
	// gen counts writes, so a write-through can tell whether the entry was
	// written again (by the listener's downstream) while it was away.
	gen        uint64
	prev, next *windowEntry
	linked     bool // in the LRU list; false while being written through
	inMap      bool // in entries; false once written through or dropped
}

func (e *windowEntry) key() []byte {
	n := len(e.wkey) - windowSuffix
	return e.wkey[:n:n]
}

func (e *windowEntry) start() int64 { return windowStart(e.wkey) }

// windowStart reads the start of a WindowKey.
func windowStart(wkey []byte) int64 {
	return int64(binary.BigEndian.Uint64(wkey[len(wkey)-windowSuffix:]))
}

// cachedWindow is the window cache. Its concurrency is cachedStore's: the
// task goroutine writes, interactive queries read from other goroutines,
// the map and list are guarded by an RWMutex that is never held while
// calling the inner store or the listener.
type cachedWindow struct {
	in       WindowStore
	maxBytes int64
	// seg is the segments of the inner store of this package under in
	// (nil for another store): the cache expires windows as it does.
	seg *segmented

	mu         sync.RWMutex
	entries    map[string]*windowEntry // keys alias entry.wkey's bytes
	head, tail *windowEntry            // head: least recently written
	size       int64
	listener   FlushListener
	closed     atomic.Bool

	// observed is the latest start written to the cache, which the inner
	// store has not necessarily seen yet; written by the writer only.
	observed atomic.Int64

	// lastMiss remembers what the last Fetch that missed the cache read
	// from inner. An aggregation fetches a window before it writes it, so
	// when PutAt then creates that window's entry it knows inner's value,
	// and the write-through saves a read of inner. writes counts inner
	// writes, so a remembered value read before one is not trusted.
	lastMiss atomic.Pointer[innerRead]
	writes   atomic.Uint64
	// lastHit is the entry the last Fetch found, which PutAt then need not
	// look up again: in a big cache, the map lookup is a cache miss.
	lastHit atomic.Pointer[windowEntry]
}

// innerRead is a value read from inner, and writes as it was before.
type innerRead struct {
	wkey, value []byte
	writes      uint64
}

// NewCachedWindow wraps inner (a window store of this package, logged or
// not) in a write cache of about maxBytes (each window counts the length
// of its store key and value, and of inner's value when the cache holds
// it, plus 176 bytes).
//
// Put and PutAt write only to the cache. Fetch, FetchRange,
// BackwardFetchRange, FetchAll and All read the cached windows merged over
// inner's, in inner's order, without flushing; a cached delete hides the
// window. When the cache grows past maxBytes, the least recently written
// windows are written through to inner, each followed by a call to the
// FlushListener with the window's store key, the new value, the value
// inner had before and the timestamp; Flush writes every window through,
// oldest first, and then flushes inner. The value inner had is the one the
// Fetch just before the window's first write read from inner, as an
// aggregation's does, else it is read just before the write-through. The
// listener is not called when both values are nil.
//
// Expiry is inner's: with inner's retention, a window whose start is at or
// before the latest start written (to the cache or inner) minus retention
// is neither cached by Put nor read from the cache. A window that expires
// while cached is still written through and reported to the listener at
// its flush (inner then drops it): it was live when written, and an
// emit-final downstream needs its last value.
//
// With maxBytes <= 0, or over a store that retains duplicates (whose every
// Put is a new entry, so nothing collapses), there is no caching: every
// write goes straight to inner and the listener is called at once.
//
// The cache is not a Restorer: the runtime restores the inner store, before
// anything is written to the cache.
func NewCachedWindow(inner WindowStore, maxBytes int64) WindowCache {
	c := &cachedWindow{in: inner, maxBytes: maxBytes, entries: make(map[string]*windowEntry)}
	c.observed.Store(noTime)
	for s := inner; s != nil; s = InnerWindow(s) {
		if w, ok := s.(*windowStore); ok {
			c.seg = w.seg
			if w.dups {
				c.maxBytes = 0
			}
			break
		}
	}
	return c
}

func (c *cachedWindow) innerWindow() WindowStore { return c.in }
func (c *cachedWindow) Name() string             { return c.in.Name() }

func (c *cachedWindow) SetFlushListener(l FlushListener) {
	c.mu.Lock()
	c.listener = l
	c.mu.Unlock()
}

// liveFrom returns the earliest start not expired, by the later of the
// cache's and inner's observed times.
func (c *cachedWindow) liveFrom() int64 {
	if c.seg == nil {
		return math.MinInt64
	}
	o := max(c.observed.Load(), c.seg.observed.Load())
	if o == noTime {
		return math.MinInt64
	}
	e := c.seg.expiredBefore(o)
	if e == math.MinInt64 {
		return math.MinInt64
	}
	return e + 1
}

// Put is PutAt with timestamp 0; processors that know their record's
// timestamp use PutAt.
func (c *cachedWindow) Put(key, value []byte, start int64) error {
	return c.PutAt(key, value, start, 0)
}

// PutAt writes value (nil: delete) for key's window at start in the cache,
// recording ts for the listener, and evicts the oldest windows if the cache
// is over size. A write to an expired window is dropped, as inner drops it.
func (c *cachedWindow) PutAt(key, value []byte, start, ts int64) error {
	if c.maxBytes <= 0 {
		if c.closed.Load() {
			return ErrClosed
		}
		_, _, err := c.writeThrough(WindowKey(key, start, 0), value, nil, false, ts)
		return err
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if start > c.observed.Load() {
		c.observed.Store(start)
	}
	if start < c.liveFrom() {
		return nil
	}
	v := cloneValue(value) // never reused: a write-through may be reading the old one
	var arr [64]byte
	wk := appendWindowKey(arr[:0], key, start, 0)
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return ErrClosed
	}
	e := c.lastHit.Load()
	ok := e != nil && e.inMap && bytes.Equal(e.wkey, wk)
	if !ok {
		e, ok = c.entries[string(wk)]
	}
	if ok {
		c.size -= e.size
		if e.linked {
			c.unlink(e)
		}
	} else {
		k := bytes.Clone(wk)
		e = &windowEntry{wkey: k, inMap: true}
		if m := c.lastMiss.Load(); m != nil && m.writes == c.writes.Load() && bytes.Equal(m.wkey, wk) {
			e.old, e.oldKnown = m.value, true
		}
		// The key bytes are never written again, so the map key can share
		// them instead of copying.
		c.entries[unsafe.String(unsafe.SliceData(k), len(k))] = e
	}
	e.value, e.ts = v, ts
	e.gen++
	e.size = int64(len(wk)+len(value)+len(e.old)) + windowEntryOverhead
	c.size += e.size
	c.pushBack(e)
	over := c.size > c.maxBytes
	c.mu.Unlock()
	if over {
		return c.writeOldest(true)
	}
	return nil
}

// Fetch returns the cached value of key's window at start, or inner's.
func (c *cachedWindow) Fetch(key []byte, start int64) ([]byte, error) {
	var arr [64]byte
	wk := appendWindowKey(arr[:0], key, start, 0)
	c.mu.RLock()
	if c.closed.Load() {
		c.mu.RUnlock()
		return nil, ErrClosed
	}
	if start < c.liveFrom() {
		c.mu.RUnlock()
		return nil, nil
	}
	if e, ok := c.entries[string(wk)]; ok {
		v := cloneValue(e.value)
		c.mu.RUnlock()
		c.lastHit.Store(e)
		return v, nil
	}
	c.mu.RUnlock()
	// An entry evicted meanwhile was written to inner before it left the
	// map, so inner has it now.
	writes := c.writes.Load()
	v, err := c.in.Fetch(key, start)
	if err == nil && c.maxBytes > 0 {
		c.lastMiss.Store(&innerRead{wkey: bytes.Clone(wk), value: cloneValue(v), writes: writes})
	}
	return v, err
}

// Flush writes every dirty window through to inner, oldest first, telling
// the listener about each, then flushes inner.
func (c *cachedWindow) Flush() error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.writeOldest(false); err != nil {
		return err
	}
	return c.in.Flush()
}

// writeOldest writes windows through from the head of the list: while the
// cache is over size when untilFits, else until no dirty window is left.
func (c *cachedWindow) writeOldest(untilFits bool) error {
	for {
		c.mu.Lock()
		e := c.head
		if e == nil || (untilFits && c.size <= c.maxBytes) {
			c.mu.Unlock()
			return nil
		}
		// The entry stays in the map while it is away, so Fetch still
		// finds it: inner may not have the new value yet.
		c.unlink(e)
		wkey, value, old, oldKnown, ts, gen := e.wkey, e.value, e.old, e.oldKnown, e.ts, e.gen
		c.mu.Unlock()

		_, wrote, err := c.writeThrough(wkey, value, old, oldKnown, ts)

		c.mu.Lock()
		switch {
		case c.closed.Load():
		case e.gen != gen && wrote:
			// Written again meanwhile (PutAt put it back in the list):
			// inner now has what was written through.
			e.old, e.oldKnown = value, true
			c.size -= e.size
			e.size = int64(len(e.wkey)+len(e.value)+len(e.old)) + windowEntryOverhead
			c.size += e.size
		case e.gen != gen:
		case !wrote:
			// inner refused the write; the entry stays dirty, oldest.
			c.pushFront(e)
		default:
			delete(c.entries, string(e.wkey))
			e.inMap = false
			c.size -= e.size
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// writeThrough writes one window to inner and then tells the listener. It
// returns the value inner had (old, unless !oldKnown: then it reads it),
// and whether inner took the write (the listener may fail after it did).
func (c *cachedWindow) writeThrough(wkey, value, old []byte, oldKnown bool, ts int64) (_ []byte, wrote bool, err error) {
	n := len(wkey) - windowSuffix
	key, start := wkey[:n:n], windowStart(wkey)
	if !oldKnown {
		old, err = c.in.Fetch(key, start)
	}
	if err == nil {
		err = c.in.Put(key, value, start)
		// After the write: a read of inner that counted writes before it
		// may have seen the value before.
		c.writes.Add(1)
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
	return old, true, l(wkey, value, old, ts)
}

func (c *cachedWindow) pushBack(e *windowEntry) {
	e.prev, e.next, e.linked = c.tail, nil, true
	if c.tail != nil {
		c.tail.next = e
	} else {
		c.head = e
	}
	c.tail = e
}

func (c *cachedWindow) pushFront(e *windowEntry) {
	e.prev, e.next, e.linked = nil, c.head, true
	if c.head != nil {
		c.head.prev = e
	} else {
		c.tail = e
	}
	c.head = e
}

func (c *cachedWindow) unlink(e *windowEntry) {
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

// Close closes inner. Windows not yet flushed are dropped: the runtime
// flushes before it commits, and writes made after the last commit come
// back when their input records are processed again.
func (c *cachedWindow) Close() error {
	c.mu.Lock()
	if c.closed.Swap(true) {
		c.mu.Unlock()
		return nil
	}
	c.entries, c.head, c.tail, c.size = nil, nil, nil, 0
	c.mu.Unlock()
	return c.in.Close()
}

// cachedWin is one cached window a read merges over inner's; the slices
// are shared with the entry, whose bytes are never written again.
type cachedWin struct {
	key   []byte
	start int64
	value []byte // nil: a cached delete
}

// cmpWindow orders windows as FetchAll does: by start, then key. (A
// single key's windows then order by start, as FetchRange does.)
func cmpWindow(startA int64, keyA []byte, startB int64, keyB []byte) int {
	if c := cmpInt64(startA, startB); c != 0 {
		return c
	}
	return bytes.Compare(keyA, keyB)
}

// dirty returns the cached windows with start in [from, to] (from already
// clamped to the live ones), of key alone unless allKeys, sorted by start
// and key. It looks at every cached window: range reads are for
// interactive queries, and the cache is bounded.
func (c *cachedWindow) dirty(key []byte, allKeys bool, from, to int64) ([]cachedWin, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	var out []cachedWin
	for _, e := range c.entries {
		start := e.start()
		if start < from || start > to {
			continue
		}
		k := e.key()
		if !allKeys && !bytes.Equal(k, key) {
			continue
		}
		out = append(out, cachedWin{key: k, start: start, value: e.value})
	}
	slices.SortFunc(out, func(a, b cachedWin) int { return cmpWindow(a.start, a.key, b.start, b.key) })
	return out, nil
}

// merged reads the cached windows and then opens inner's iterator over the
// same live range, and lays the first over the second. The cache is read
// first: a window evicted in between is then in both, with the same value,
// rather than in neither.
func (c *cachedWindow) merged(key []byte, allKeys bool, from, to int64, reverse bool,
	open func(from, to int64) (WindowIterator, error)) (WindowIterator, error) {
	from = max(from, c.liveFrom())
	dirty, err := c.dirty(key, allKeys, from, to)
	if err != nil {
		return nil, err
	}
	if reverse {
		slices.Reverse(dirty)
	}
	in, err := open(from, to)
	if err != nil {
		return nil, err
	}
	return &mergedWindowIter{c: c, cache: dirty, in: in, reverse: reverse, pending: true}, nil
}

func (c *cachedWindow) FetchRange(key []byte, from, to int64) (WindowIterator, error) {
	return c.merged(key, false, from, to, false, func(from, to int64) (WindowIterator, error) {
		return c.in.FetchRange(key, from, to)
	})
}

func (c *cachedWindow) BackwardFetchRange(key []byte, from, to int64) (WindowIterator, error) {
	return c.merged(key, false, from, to, true, func(from, to int64) (WindowIterator, error) {
		return c.in.BackwardFetchRange(key, from, to)
	})
}

func (c *cachedWindow) FetchAll(from, to int64) (WindowIterator, error) {
	return c.merged(nil, true, from, to, false, c.in.FetchAll)
}

// All is FetchAll over all time: every live window, by start and key.
func (c *cachedWindow) All() (WindowIterator, error) {
	return c.FetchAll(math.MinInt64, math.MaxInt64)
}

// mergedWindowIter walks a sorted slice of cached windows and inner's
// iterator together; for the same key and start the cache wins, and a
// cached delete hides the window.
type mergedWindowIter struct {
	c       *cachedWindow
	cache   []cachedWin
	ci      int
	in      WindowIterator
	inValid bool
	// pending: in must advance before it is read again. Advancing lazily
	// keeps in's Key and Value valid while the caller holds them.
	pending bool
	reverse bool

	key, value []byte
	start      int64
	err        error
	closed     bool
}

func (it *mergedWindowIter) Next() bool {
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
			e := it.cache[it.ci]
			cmp = cmpWindow(e.start, e.key, it.in.Start(), it.in.Key())
			if it.reverse {
				cmp = -cmp
			}
		}
		if cmp > 0 {
			it.key, it.start, it.value, it.pending = it.in.Key(), it.in.Start(), it.in.Value(), true
			return true
		}
		e := it.cache[it.ci]
		it.ci++
		if cmp == 0 {
			it.inValid = it.in.Next() // shadowed by the cached window
		}
		if e.value == nil {
			continue
		}
		it.key, it.start, it.value = e.key, e.start, e.value
		return true
	}
}

func (it *mergedWindowIter) Key() []byte   { return it.key }
func (it *mergedWindowIter) Start() int64  { return it.start }
func (it *mergedWindowIter) Value() []byte { return it.value }

func (it *mergedWindowIter) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.in.Err()
}

func (it *mergedWindowIter) Close() error {
	if it.closed {
		return nil
	}
	it.closed = true
	return it.in.Close()
}
