package state

// Write caches for window and session stores, as Kafka Streams'
// CachingWindowStore and CachingSessionStore: the counterparts of NewCached.
// Entries are keyed by the store key (WindowKey(key, start, 0),
// SessionKey(key, start, end)), so the updates of one window or session
// collapse, and they reach the inner store (and through a logging layer the
// changelog) and the FlushListener when evicted or flushed.
//
// Both share segCache, which holds the entries; the window and session
// types add their reads, which merge the cached entries over the inner
// store's iterators.

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// segEntryOverhead approximates what one cached window or session costs
// beyond its store key and value bytes: the entry struct, its slots in the
// two maps and the rounding of the allocations. A window cache of 20-byte
// store keys and 8-byte values, ten windows a key, held about 240 bytes per
// window; counting less would let a cache of many small windows outgrow its
// budget.
const segEntryOverhead = 208

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

// SessionCache is implemented by caching session stores.
type SessionCache interface {
	SessionStore
	// SetFlushListener sets the listener; nil means none. Its key is the
	// session's store key, SessionKey(key, start, end), which
	// ParseSessionKey splits.
	SetFlushListener(FlushListener)
	// PutAt is Put recording the timestamp of the record that caused it.
	PutAt(key []byte, start, end int64, value []byte, timestamp int64) error
}

// segEntry is one dirty window or session: its latest value (nil: a
// cached delete) and the timestamp of the record that wrote it.
type segEntry struct {
	skey       []byte // the store key; never written after creation
	start, end int64  // of a window, end is its start: what expiry counts
	value      []byte // never written after it is stored
	ts         int64
	size       int64
	// old is inner's value, when known (oldKnown): the listener's old
	// value, which a write-through then need not read.
	old      []byte
	oldKnown bool
	// gen counts writes, so a write-through can tell whether the entry was
	// written again (by the listener's downstream) while it was away.
	gen                uint64
	lruLinks[segEntry]      // in the LRU list; unlinked while being written through
	inMap              bool // in entries; false once written through or dropped
}

//lint:ignore U1000 called through the lruEntry constraint, which staticcheck does not follow
func (e *segEntry) links() *lruLinks[segEntry] { return &e.lruLinks }

// segCache is what the window and session caches share: the entries, in
// least-recently-written order, and their write-through. Its concurrency
// is cachedStore's: the task goroutine writes, interactive queries read
// from other goroutines, and the maps and list are guarded by an RWMutex
// that is never held while calling the inner store or the listener (which
// forwards downstream, where a processor may read this same store).
type segCache struct {
	maxBytes int64
	suffix   int // of the store key after the key: windowSuffix, sessionSuffix
	// seg is the segments of the inner store of this package (nil for
	// another store): the cache expires entries as it does.
	seg *segmented
	// innerGet and innerPut read and write inner by store key.
	innerGet func(skey []byte) ([]byte, error)
	innerPut func(skey, value []byte) error

	mu       sync.RWMutex
	entries  map[string]*segEntry         // by store key, aliasing entry.skey
	byKey    map[string][]*segEntry       // by key, for a key's range reads
	lru      lruList[segEntry, *segEntry] // head: least recently written
	size     int64
	listener FlushListener
	closed   atomic.Bool

	// observed is the latest time (end) written to the cache, which the
	// inner store has not necessarily seen yet; written by the writer only.
	observed atomic.Int64

	// lastMiss remembers what the last read that missed the cache got from
	// inner. An aggregation reads a window before it writes it, so when
	// PutAt then creates that window's entry it knows inner's value, and
	// the write-through saves a read of inner. writes counts inner writes,
	// so a remembered value read before one is not trusted.
	lastMiss atomic.Pointer[innerRead]
	writes   atomic.Uint64
	// lastHit is the entry the last read found, which PutAt then need not
	// look up again: in a big cache, the map lookup is a memory miss.
	lastHit atomic.Pointer[segEntry]
}

// innerRead is a value read from inner, and writes as it was before.
type innerRead struct {
	skey, value []byte
	writes      uint64
}

func (c *segCache) init(maxBytes int64, suffix int, seg *segmented) {
	c.maxBytes, c.suffix, c.seg = maxBytes, suffix, seg
	c.entries, c.byKey = make(map[string]*segEntry), make(map[string][]*segEntry)
	c.observed.Store(noTime)
}

func (c *segCache) SetFlushListener(l FlushListener) {
	c.mu.Lock()
	c.listener = l
	c.mu.Unlock()
}

// liveFrom returns the earliest time not expired, by the later of the
// cache's and inner's observed times.
func (c *segCache) liveFrom() int64 {
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

// put writes value (nil: delete) under the store key sk (the caller's
// buffer, not kept), recording ts for the listener, and evicts the oldest
// entries if the cache is over size. A write of an expired entry is
// dropped, as inner drops it.
func (c *segCache) put(sk []byte, start, end int64, value []byte, ts int64) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.maxBytes <= 0 {
		_, _, err := c.writeThrough(bytes.Clone(sk), value, nil, false, ts)
		return err
	}
	if end > c.observed.Load() {
		c.observed.Store(end)
	}
	if end < c.liveFrom() {
		return nil
	}
	v := cloneValue(value) // never reused: a write-through may be reading the old one
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return ErrClosed
	}
	e := c.lastHit.Load()
	ok := e != nil && e.inMap && bytes.Equal(e.skey, sk)
	if !ok {
		e, ok = c.entries[string(sk)]
	}
	if ok {
		c.size -= e.size
		if e.linked {
			c.lru.unlink(e)
		}
	} else {
		k := bytes.Clone(sk)
		e = &segEntry{skey: k, start: start, end: end, inMap: true}
		if m := c.lastMiss.Load(); m != nil && m.writes == c.writes.Load() && bytes.Equal(m.skey, sk) {
			e.old, e.oldKnown = m.value, true
		}
		// The key bytes are never written again, so the map keys can share
		// them instead of copying.
		c.entries[unsafe.String(unsafe.SliceData(k), len(k))] = e
		n := len(k) - c.suffix
		c.byKey[unsafe.String(unsafe.SliceData(k), n)] = append(c.byKey[string(k[:n])], e)
	}
	e.value, e.ts = v, ts
	e.gen++
	e.size = int64(len(sk)+len(value)+len(e.old)) + segEntryOverhead
	c.size += e.size
	c.lru.pushBack(e)
	over := c.size > c.maxBytes
	c.mu.Unlock()
	if over {
		return c.writeOldest(true)
	}
	return nil
}

// get returns the cached value under skey (built in the caller's buffer)
// or, through read, inner's; expired entries (end before liveFrom) read as
// absent.
func (c *segCache) get(skey []byte, end int64, read func() ([]byte, error)) ([]byte, error) {
	c.mu.RLock()
	if c.closed.Load() {
		c.mu.RUnlock()
		return nil, ErrClosed
	}
	if end < c.liveFrom() {
		c.mu.RUnlock()
		return nil, nil
	}
	if e, ok := c.entries[string(skey)]; ok {
		v := cloneValue(e.value)
		c.mu.RUnlock()
		c.lastHit.Store(e)
		return v, nil
	}
	c.mu.RUnlock()
	// An entry evicted meanwhile was written to inner before it left the
	// map, so inner has it now.
	writes := c.writes.Load()
	v, err := read()
	if err == nil && c.maxBytes > 0 {
		c.lastMiss.Store(&innerRead{skey: bytes.Clone(skey), value: cloneValue(v), writes: writes})
	}
	return v, err
}

// writeOldest writes entries through from the head of the list: while the
// cache is over size when untilFits, else until no dirty entry is left.
func (c *segCache) writeOldest(untilFits bool) error {
	for {
		c.mu.Lock()
		e := c.lru.head
		if e == nil || (untilFits && c.size <= c.maxBytes) {
			c.mu.Unlock()
			return nil
		}
		// The entry stays in the map while it is away, so reads still find
		// it: inner may not have the new value yet.
		c.lru.unlink(e)
		skey, value, old, oldKnown, ts, gen := e.skey, e.value, e.old, e.oldKnown, e.ts, e.gen
		c.mu.Unlock()

		_, wrote, err := c.writeThrough(skey, value, old, oldKnown, ts)

		c.mu.Lock()
		switch {
		case c.closed.Load():
		case e.gen != gen && wrote:
			// Written again meanwhile (PutAt put it back in the list):
			// inner now has what was written through.
			e.old, e.oldKnown = value, true
			c.size -= e.size
			e.size = int64(len(e.skey)+len(e.value)+len(e.old)) + segEntryOverhead
			c.size += e.size
		case e.gen != gen:
		case !wrote:
			// inner refused the write; the entry stays dirty, oldest.
			c.lru.pushFront(e)
		default:
			c.remove(e)
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// remove takes a written-through entry out of the maps; the caller holds
// mu for writing.
func (c *segCache) remove(e *segEntry) {
	delete(c.entries, string(e.skey))
	e.inMap = false
	c.size -= e.size
	k := unsafe.String(unsafe.SliceData(e.skey), len(e.skey)-c.suffix)
	of := c.byKey[k]
	if i := slices.Index(of, e); i >= 0 {
		of[i] = of[len(of)-1]
		of[len(of)-1] = nil
		of = of[:len(of)-1]
	}
	if len(of) == 0 {
		delete(c.byKey, k)
	} else {
		c.byKey[k] = of
	}
}

// writeThrough writes one entry to inner and then tells the listener. It
// returns the value inner had (old, unless !oldKnown: then it reads it),
// and whether inner took the write (the listener may fail after it did).
func (c *segCache) writeThrough(skey, value, old []byte, oldKnown bool, ts int64) (_ []byte, wrote bool, err error) {
	if !oldKnown {
		old, err = c.innerGet(skey)
	}
	if err == nil && value == nil && old == nil {
		// A delete of what inner does not have (written and deleted while
		// cached): nothing to write, log or tell.
		return nil, true, nil
	}
	if err == nil {
		err = c.innerPut(skey, value)
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
	if l == nil {
		return old, true, nil
	}
	return old, true, l(skey, value, old, ts)
}

// drop forgets every entry, for Close; it reports false when the cache was
// closed already.
func (c *segCache) drop() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Swap(true) {
		return false
	}
	c.entries, c.byKey, c.lru, c.size = nil, nil, lruList[segEntry, *segEntry]{}, 0
	return true
}

// cachedEntry is one cached window or session a read merges over inner's;
// the slices are shared with the entry, whose bytes are never written
// again.
type cachedEntry struct {
	key        []byte
	start, end int64
	value      []byte // nil: a cached delete
}

// dirty returns the live cached entries of key (of every key when
// allKeys) that keep accepts, sorted by order.
func (c *segCache) dirty(key []byte, allKeys bool, keep func(start, end int64) bool,
	order func(a, b cachedEntry) int) ([]cachedEntry, error) {
	live := c.liveFrom()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	var out []cachedEntry
	add := func(e *segEntry) {
		if e.end >= live && keep(e.start, e.end) {
			out = append(out, cachedEntry{key: e.skey[: len(e.skey)-c.suffix : len(e.skey)-c.suffix], start: e.start, end: e.end, value: e.value})
		}
	}
	if allKeys {
		for _, e := range c.entries {
			add(e)
		}
	} else {
		for _, e := range c.byKey[string(key)] {
			add(e)
		}
	}
	slices.SortFunc(out, order)
	return out, nil
}

// innerIter is what the merge needs of inner's window or session iterator.
type innerIter interface {
	Next() bool
	Key() []byte
	Start() int64
	Value() []byte
	Err() error
	Close() error
}

// mergedIter walks a sorted slice of cached entries and inner's iterator
// together; for the same entry the cache wins, and a cached delete hides
// it. It is a WindowIterator and a SessionIterator.
type mergedIter struct {
	c     *segCache
	cache []cachedEntry
	ci    int
	in    innerIter
	// inEnd reads the end of inner's current entry (sessions); nil for
	// windows, whose end is their start.
	inEnd   func() int64
	order   func(a, b cachedEntry) int
	inValid bool
	// pending: in must advance before it is read again. Advancing lazily
	// keeps in's Key and Value valid while the caller holds them.
	pending bool
	reverse bool

	cur    cachedEntry
	err    error
	closed bool
}

func (it *mergedIter) inner() cachedEntry {
	e := cachedEntry{key: it.in.Key(), start: it.in.Start(), value: it.in.Value()}
	e.end = e.start
	if it.inEnd != nil {
		e.end = it.inEnd()
	}
	return e
}

func (it *mergedIter) Next() bool {
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
		var in cachedEntry
		if it.inValid {
			in = it.inner()
		}
		switch {
		case !haveCache:
			cmp = 1
		case it.inValid:
			cmp = it.order(it.cache[it.ci], in)
			if it.reverse {
				cmp = -cmp
			}
		}
		if cmp > 0 {
			it.cur, it.pending = in, true
			return true
		}
		e := it.cache[it.ci]
		it.ci++
		if cmp == 0 {
			it.inValid = it.in.Next() // shadowed by the cached entry
		}
		if e.value == nil {
			continue
		}
		it.cur = e
		return true
	}
}

func (it *mergedIter) Key() []byte   { return it.cur.key }
func (it *mergedIter) Start() int64  { return it.cur.start }
func (it *mergedIter) End() int64    { return it.cur.end }
func (it *mergedIter) Value() []byte { return it.cur.value }

func (it *mergedIter) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.in.Err()
}

func (it *mergedIter) Close() error {
	if it.closed {
		return nil
	}
	it.closed = true
	return it.in.Close()
}

// cachedWindow is the window cache.
type cachedWindow struct {
	segCache
	in WindowStore
}

// NewCachedWindow wraps inner (a window store of this package, logged or
// not) in a write cache of about maxBytes (each window counts the length
// of its store key and value, and of inner's value when the cache holds
// it, plus 208 bytes).
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
// aggregation's does, else it is read just before the write-through. A
// delete of a window inner does not have (one written and deleted while
// cached) is not written through at all: inner, the changelog and the
// listener never hear of it.
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
	var seg *segmented
	for s := inner; s != nil; s = InnerWindow(s) {
		if w, ok := s.(*windowStore); ok {
			seg = w.seg
			if w.dups {
				maxBytes = 0
			}
			break
		}
	}
	c := &cachedWindow{in: inner}
	c.init(maxBytes, windowSuffix, seg)
	c.innerGet = func(wkey []byte) ([]byte, error) {
		n := len(wkey) - windowSuffix
		return inner.Fetch(wkey[:n:n], windowStart(wkey))
	}
	c.innerPut = func(wkey, value []byte) error {
		n := len(wkey) - windowSuffix
		return inner.Put(wkey[:n:n], value, windowStart(wkey))
	}
	return c
}

// windowStart reads the start of a WindowKey.
func windowStart(wkey []byte) int64 {
	return int64(binary.BigEndian.Uint64(wkey[len(wkey)-windowSuffix:]))
}

func (c *cachedWindow) innerWindow() WindowStore { return c.in }
func (c *cachedWindow) Name() string             { return c.in.Name() }

// Put is PutAt with timestamp 0; processors that know their record's
// timestamp use PutAt.
func (c *cachedWindow) Put(key, value []byte, start int64) error {
	return c.PutAt(key, value, start, 0)
}

// PutAt writes value (nil: delete) for key's window at start in the cache,
// recording ts for the listener, and evicts the oldest windows if the cache
// is over size. A write to an expired window is dropped, as inner drops it.
func (c *cachedWindow) PutAt(key, value []byte, start, ts int64) error {
	var arr [64]byte
	return c.put(appendWindowKey(arr[:0], key, start, 0), start, start, value, ts)
}

// Fetch returns the cached value of key's window at start, or inner's.
func (c *cachedWindow) Fetch(key []byte, start int64) ([]byte, error) {
	var arr [64]byte
	return c.get(appendWindowKey(arr[:0], key, start, 0), start, func() ([]byte, error) { return c.in.Fetch(key, start) })
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

// Close closes inner. Windows not yet flushed are dropped: the runtime
// flushes before it commits, and writes made after the last commit come
// back when their input records are processed again.
func (c *cachedWindow) Close() error {
	if !c.drop() {
		return nil
	}
	return c.in.Close()
}

// orderWindows orders windows as FetchAll does: by start, then key. (A
// single key's windows then order by start, as FetchRange does.)
func orderWindows(a, b cachedEntry) int {
	if c := cmpInt64(a.start, b.start); c != 0 {
		return c
	}
	return bytes.Compare(a.key, b.key)
}

// merged reads the cached windows with start in [from, to] and then opens
// inner's iterator over the same live range, and lays the first over the
// second. The cache is read first: a window evicted in between is then in
// both, with the same value, rather than in neither.
func (c *cachedWindow) merged(key []byte, allKeys bool, from, to int64, reverse bool,
	open func(from, to int64) (WindowIterator, error)) (WindowIterator, error) {
	from = max(from, c.liveFrom())
	dirty, err := c.dirty(key, allKeys, func(start, _ int64) bool { return start >= from && start <= to }, orderWindows)
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
	return &mergedIter{c: &c.segCache, cache: dirty, in: in, order: orderWindows, reverse: reverse, pending: true}, nil
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

// FetchAll looks at every cached window: it is for interactive queries,
// and the cache is bounded.
func (c *cachedWindow) FetchAll(from, to int64) (WindowIterator, error) {
	return c.merged(nil, true, from, to, false, c.in.FetchAll)
}

// All is FetchAll over all time: every live window, by start and key.
func (c *cachedWindow) All() (WindowIterator, error) {
	return c.FetchAll(math.MinInt64, math.MaxInt64)
}

// cachedSession is the session cache.
type cachedSession struct {
	segCache
	in SessionStore
}

// NewCachedSession wraps inner (a session store of this package, logged or
// not) in a write cache of about maxBytes, as NewCachedWindow does for
// window stores: Put, Remove and PutAt write to the cache; FindSessions,
// FetchSession and Fetch read the cached sessions merged over inner's;
// eviction and Flush write the least recently written sessions through to
// inner and call the FlushListener with the session's store key, the new
// value (nil for a removed session), the value inner had and the
// timestamp. A session created and removed between two write-throughs
// never reaches inner or the listener. Expiry counts a session's end, as
// inner's does. With maxBytes <= 0 every write goes straight through.
func NewCachedSession(inner SessionStore, maxBytes int64) SessionCache {
	var seg *segmented
	for s := inner; s != nil; s = InnerSession(s) {
		if ss, ok := s.(*sessionStore); ok {
			seg = ss.seg
			break
		}
	}
	c := &cachedSession{in: inner}
	c.init(maxBytes, sessionSuffix, seg)
	c.innerGet = func(skey []byte) ([]byte, error) {
		key, start, end, err := ParseSessionKey(skey)
		if err != nil {
			return nil, err
		}
		return inner.FetchSession(key, start, end)
	}
	c.innerPut = func(skey, value []byte) error {
		key, start, end, err := ParseSessionKey(skey)
		if err != nil {
			return err
		}
		return inner.Put(key, start, end, value)
	}
	return c
}

func (c *cachedSession) innerSession() SessionStore { return c.in }
func (c *cachedSession) Name() string               { return c.in.Name() }

// Put is PutAt with timestamp 0.
func (c *cachedSession) Put(key []byte, start, end int64, value []byte) error {
	return c.PutAt(key, start, end, value, 0)
}

// Remove caches the session's removal, with timestamp 0.
func (c *cachedSession) Remove(key []byte, start, end int64) error {
	return c.PutAt(key, start, end, nil, 0)
}

// PutAt writes the session's aggregate (nil: removes it) in the cache,
// recording ts for the listener, and evicts the oldest sessions if the
// cache is over size. A write of an expired session is dropped.
func (c *cachedSession) PutAt(key []byte, start, end int64, value []byte, ts int64) error {
	var arr [64]byte
	return c.put(appendSessionKey(arr[:0], key, start, end), start, end, value, ts)
}

// FetchSession returns the cached value of key's session [start, end], or
// inner's.
func (c *cachedSession) FetchSession(key []byte, start, end int64) ([]byte, error) {
	var arr [64]byte
	return c.get(appendSessionKey(arr[:0], key, start, end), end, func() ([]byte, error) {
		return c.in.FetchSession(key, start, end)
	})
}

// orderSessions orders one key's sessions as FindSessions does: by start,
// then end.
func orderSessions(a, b cachedEntry) int {
	if c := cmpInt64(a.start, b.start); c != 0 {
		return c
	}
	return cmpInt64(a.end, b.end)
}

// FindSessions merges key's cached sessions that end at or after
// earliestEnd and start at or before latestStart over inner's, in start
// order, leaving out expired ones. The cache is read first, as for
// windows.
func (c *cachedSession) FindSessions(key []byte, earliestEnd, latestStart int64) (SessionIterator, error) {
	earliestEnd = max(earliestEnd, c.liveFrom())
	dirty, err := c.dirty(key, false, func(start, end int64) bool { return end >= earliestEnd && start <= latestStart }, orderSessions)
	if err != nil {
		return nil, err
	}
	in, err := c.in.FindSessions(key, earliestEnd, latestStart)
	if err != nil {
		return nil, err
	}
	return &mergedIter{c: &c.segCache, cache: dirty, in: in, inEnd: in.End, order: orderSessions, pending: true}, nil
}

// Fetch iterates all of key's live sessions in start order.
func (c *cachedSession) Fetch(key []byte) (SessionIterator, error) {
	return c.FindSessions(key, math.MinInt64, math.MaxInt64)
}

// Flush writes every dirty session through to inner, oldest first, telling
// the listener about each, then flushes inner.
func (c *cachedSession) Flush() error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.writeOldest(false); err != nil {
		return err
	}
	return c.in.Flush()
}

// Close closes inner, dropping the sessions not yet flushed.
func (c *cachedSession) Close() error {
	if !c.drop() {
		return nil
	}
	return c.in.Close()
}
