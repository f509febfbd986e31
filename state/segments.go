package state

// A segmented store (Kafka Streams' RocksDBSegmentedBytesStore and
// KeyValueSegments) keeps one byte-level KeyValueStore per segment of time:
// segment id = floor(t / SegmentInterval), where t is a window's start or a
// session's end. Expiry then drops whole segments instead of deleting keys
// one by one.
//
// On Pebble a segment is a store of the task's PebbleDB named
//
//	<store name> "." <segment id as 16 hex digits>
//
// and dropping it is one DeleteRange over its key range
// (PebbleDB.DropStore). A reopened store finds its segments with
// PebbleDB.StoreNames, and its observed time (below) under key "observed"
// of the store <store name> ".meta", written by Flush and Close. In memory
// a segment is a NewInMemory store, dropped by discarding it.
//
// Observed time is the largest t seen by a Put or a restore. A segment s
// is expired once its last millisecond is older than observed - Retention:
// (s+1)*SegmentInterval - 1 < observed - Retention, Kafka's minLiveTime.
// Entries with t <= observed - Retention are expired one by one: Puts of
// them are skipped and fetches never return them, even while their segment
// lives on.
//
// Concurrency: one task goroutine writes (Put, RestoreBatch, Clear, Close);
// interactive queries read on other goroutines. The segment list is guarded
// by an RWMutex: a drop takes it for writing, and a read holds it for
// reading while it copies one segment's matching entries out. An iterator
// so never holds a store iterator between calls, and a segment dropped
// while an iterator is open is skipped: everything in it had expired.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// noTime is the observed time of a store that has seen no record.
const noTime = math.MinInt64

// defaultMinSegmentInterval is Kafka Streams' lower bound on the default
// segment interval: max(Retention/2, 60 000 ms).
const defaultMinSegmentInterval = 60_000

// Clearer is implemented by the inner window and session stores.
type Clearer interface {
	// Clear drops every segment and forgets the observed time and sequence
	// numbers, as before a restore from the start of the changelog.
	Clear() error
}

// segmentBackend creates, lists and drops the stores segments live in.
type segmentBackend interface {
	open(name string) (KeyValueStore, error)
	// drop closes s and deletes its data.
	drop(name string, s KeyValueStore) error
	// existing lists the names of stores that exist with the prefix.
	existing(prefix string) ([]string, error)
	flush() error
	// saveObserved, loadObserved and dropObserved keep a store's observed
	// time across a reopen, where the backend outlives the store.
	saveObserved(name string, t int64) error
	loadObserved(name string) (t int64, ok bool, err error)
	dropObserved(name string) error
}

type memSegments struct{}

func (memSegments) open(name string) (KeyValueStore, error) { return NewInMemory(name), nil }
func (memSegments) drop(_ string, s KeyValueStore) error    { return s.Close() }
func (memSegments) existing(string) ([]string, error)       { return nil, nil }
func (memSegments) flush() error                            { return nil }
func (memSegments) saveObserved(string, int64) error        { return nil }
func (memSegments) loadObserved(string) (int64, bool, error) {
	return 0, false, nil
}
func (memSegments) dropObserved(string) error { return nil }

type pebbleSegments struct{ db *PebbleDB }

func (b pebbleSegments) open(name string) (KeyValueStore, error) {
	b.db.mu.Lock()
	closed := b.db.closed
	b.db.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return b.db.Store(name), nil
}

func (b pebbleSegments) drop(name string, s KeyValueStore) error {
	return errors.Join(s.Close(), b.db.DropStore(name))
}

func (b pebbleSegments) existing(prefix string) ([]string, error) {
	return b.db.StoreNames(prefix)
}

// flush is pebbleStore.Flush for the whole db: with the WAL on, sync it;
// with it off, durability is the owner's Commit.
func (b pebbleSegments) flush() error {
	b.db.mu.Lock()
	defer b.db.mu.Unlock()
	if b.db.closed {
		return ErrClosed
	}
	if b.db.disableWAL {
		return nil
	}
	if err := b.db.sync(); err != nil {
		return fmt.Errorf("state: flush pebble %s: %w", b.db.dir, err)
	}
	return nil
}

// observedKey is where a store's observed time is kept: key "observed" of
// the store name + ".meta", which no segment name matches.
func observedKey(name string) []byte {
	return append(storePrefix(name+".meta"), "observed"...)
}

func (b pebbleSegments) saveObserved(name string, t int64) error {
	b.db.mu.Lock()
	defer b.db.mu.Unlock()
	if b.db.closed {
		return ErrClosed
	}
	return b.db.db.Set(observedKey(name), binary.BigEndian.AppendUint64(nil, uint64(t)), pebble.NoSync)
}

func (b pebbleSegments) loadObserved(name string) (int64, bool, error) {
	b.db.mu.Lock()
	defer b.db.mu.Unlock()
	if b.db.closed {
		return 0, false, ErrClosed
	}
	v, closer, err := b.db.db.Get(observedKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, nil // not ours: ignore, as a missing time
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

func (b pebbleSegments) dropObserved(name string) error {
	b.db.mu.Lock()
	defer b.db.mu.Unlock()
	if b.db.closed {
		return ErrClosed
	}
	return b.db.db.Delete(observedKey(name), pebble.NoSync)
}

type segment struct {
	id    int64
	store KeyValueStore
}

// segmented is the segment bookkeeping shared by window and session stores;
// they choose the key layout inside a segment.
type segmented struct {
	name      string
	retention int64
	interval  int64
	backend   segmentBackend

	mu     sync.RWMutex
	segs   []segment // ascending id
	closed bool

	// observed is the largest time seen (noTime before any). The writer
	// sets it; readers load it to leave out expired entries.
	observed atomic.Int64
	// minLive is the lowest segment id not yet dropped for expiry; only the
	// writer uses it.
	minLive int64
}

// checkOptions validates o and fills in the default segment interval.
func checkOptions(name string, o SegmentedOptions) (SegmentedOptions, error) {
	if o.Retention <= 0 {
		return o, fmt.Errorf("state: store %q: Retention must be positive, got %d", name, o.Retention)
	}
	if o.SegmentInterval < 0 {
		return o, fmt.Errorf("state: store %q: SegmentInterval must not be negative, got %d", name, o.SegmentInterval)
	}
	if o.SegmentInterval == 0 {
		o.SegmentInterval = max(o.Retention/2, defaultMinSegmentInterval)
	}
	return o, nil
}

// newSegmented opens the segments the backend already holds. Observed time
// is saved by Flush and Close; a reopened store starts from the later of
// that and the first millisecond of its newest segment (which covers writes
// after the last save), never later than the true observed time, so it
// never expires too much. Restores and Puts move it on from there. (Kafka
// Streams starts a reopened store with no observed time at all.)
func newSegmented(name string, o SegmentedOptions, b segmentBackend) (*segmented, error) {
	o, err := checkOptions(name, o)
	if err != nil {
		return nil, err
	}
	w := &segmented{name: name, retention: o.Retention, interval: o.SegmentInterval, backend: b, minLive: math.MinInt64}
	w.observed.Store(noTime)
	names, err := b.existing(name + ".")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		id, ok := w.parseSegmentName(n)
		if !ok {
			continue
		}
		s, err := b.open(n)
		if err != nil {
			return nil, errors.Join(err, w.close())
		}
		w.segs = append(w.segs, segment{id, s})
	}
	slices.SortFunc(w.segs, func(a, b segment) int { return cmpInt64(a.id, b.id) })
	observed, ok, err := b.loadObserved(name)
	if err != nil {
		return nil, errors.Join(w.wrap("open", err), w.close())
	}
	if !ok {
		observed = noTime
	}
	if n := len(w.segs); n > 0 {
		lo, _ := w.bounds(w.segs[n-1].id)
		observed = max(observed, lo)
	}
	if observed != noTime {
		if err := w.advance(observed); err != nil {
			return nil, errors.Join(err, w.close())
		}
	}
	return w, nil
}

func (w *segmented) segmentName(id int64) string {
	return w.name + "." + fmt.Sprintf("%016x", uint64(id))
}

func (w *segmented) parseSegmentName(n string) (int64, bool) {
	hex, ok := strings.CutPrefix(n, w.name+".")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	u, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, false
	}
	return int64(u), true
}

func (w *segmented) wrap(op string, err error) error {
	return fmt.Errorf("state: store %q: %s: %w", w.name, op, err)
}

// segmentID is floor(t / interval): a segment's times then have one sign,
// so big-endian timestamps order correctly inside it.
func (w *segmented) segmentID(t int64) int64 { return floorDiv(t, w.interval) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// bounds returns the first and last millisecond of segment id, clamped to
// the int64 range.
func (w *segmented) bounds(id int64) (lo, hi int64) {
	if id <= floorDiv(math.MinInt64, w.interval) {
		lo = math.MinInt64
	} else {
		lo = id * w.interval
	}
	if id >= floorDiv(math.MaxInt64, w.interval) {
		hi = math.MaxInt64
	} else {
		hi = (id+1)*w.interval - 1
	}
	return lo, hi
}

// expiredBefore returns observed - retention, clamped: entries at or
// before it are expired.
func (w *segmented) expiredBefore(observed int64) int64 {
	if observed < math.MinInt64+w.retention {
		return math.MinInt64
	}
	return observed - w.retention
}

// liveFrom returns the earliest time that is not expired.
func (w *segmented) liveFrom() int64 {
	o := w.observed.Load()
	if o == noTime {
		return math.MinInt64
	}
	e := w.expiredBefore(o)
	if e == math.MinInt64 {
		return math.MinInt64
	}
	return e + 1
}

// advance moves observed time to t if t is later, and drops the segments
// that are then expired. Writer only.
func (w *segmented) advance(t int64) error {
	if t <= w.observed.Load() {
		return nil
	}
	w.observed.Store(t)
	// Kafka's cleanupEarlierThan(segmentId(streamTime - retention)).
	e := w.expiredBefore(t)
	minLive := w.segmentID(e)
	if e == math.MinInt64 || minLive <= w.minLive {
		return nil
	}
	w.minLive = minLive
	return w.dropBefore(minLive)
}

// dropBefore drops the segments with ids below id.
func (w *segmented) dropBefore(id int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	n := 0
	for n < len(w.segs) && w.segs[n].id < id {
		n++
	}
	if n == 0 {
		return nil
	}
	var errs []error
	for _, s := range w.segs[:n] {
		if err := w.backend.drop(w.segmentName(s.id), s.store); err != nil {
			errs = append(errs, w.wrap("drop segment", err))
		}
	}
	w.segs = slices.Delete(w.segs, 0, n)
	return errors.Join(errs...)
}

// find returns segment id's store or nil; the caller holds mu.
func (w *segmented) find(id int64) KeyValueStore {
	i, ok := slices.BinarySearchFunc(w.segs, id, func(s segment, id int64) int { return cmpInt64(s.id, id) })
	if !ok {
		return nil
	}
	return w.segs[i].store
}

// lookup returns segment id's store, or nil when there is none.
func (w *segmented) lookup(id int64) (KeyValueStore, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, ErrClosed
	}
	return w.find(id), nil
}

// getOrCreate returns segment id's store, creating it. Writer only.
func (w *segmented) getOrCreate(id int64) (KeyValueStore, error) {
	if s, err := w.lookup(id); s != nil || err != nil {
		return s, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	name := w.segmentName(id)
	s, err := w.backend.open(name)
	if err != nil {
		return nil, w.wrap("open segment "+name, err)
	}
	i, _ := slices.BinarySearchFunc(w.segs, id, func(s segment, id int64) int { return cmpInt64(s.id, id) })
	w.segs = slices.Insert(w.segs, i, segment{id, s})
	return s, nil
}

// write puts storeKey = value (nil: delete) into the segment of time t,
// first advancing observed time to t. It reports false, writing nothing,
// when t is expired (Kafka: "Skipping record for expired segment"). A
// delete creates no segment. Writer only.
func (w *segmented) write(t int64, storeKey, value []byte) (bool, error) {
	if err := w.advance(t); err != nil {
		return false, err
	}
	if t < w.liveFrom() {
		return false, nil
	}
	var (
		s   KeyValueStore
		err error
	)
	if value == nil {
		s, err = w.lookup(w.segmentID(t))
	} else {
		s, err = w.getOrCreate(w.segmentID(t))
	}
	if err != nil || s == nil {
		return err == nil, err
	}
	if err := s.Put(storeKey, value); err != nil {
		return false, err
	}
	return true, nil
}

// get reads storeKey from segment id; nil when absent.
func (w *segmented) get(id int64, storeKey []byte) ([]byte, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, ErrClosed
	}
	s := w.find(id)
	if s == nil {
		return nil, nil
	}
	return s.Get(storeKey)
}

// scan calls fn with the entries of segment id in [from, to] (nil: open),
// holding the segment list so that the segment cannot be dropped meanwhile.
// A segment that is gone has no entries.
func (w *segmented) scan(id int64, from, to []byte, reverse bool, fn func(k, v []byte)) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	s := w.find(id)
	if s == nil {
		return nil
	}
	var (
		it  Iterator
		err error
	)
	if reverse {
		it, err = s.ReverseRange(from, to)
	} else {
		it, err = s.Range(from, to)
	}
	if err != nil {
		return err
	}
	for it.Next() {
		fn(it.Key(), it.Value())
	}
	return errors.Join(it.Err(), it.Close())
}

// ids lists the existing segments with ids in [lo, hi], in ascending or
// (reverse) descending order.
func (w *segmented) ids(lo, hi int64, reverse bool) ([]int64, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, ErrClosed
	}
	var out []int64
	for _, s := range w.segs {
		if s.id >= lo && s.id <= hi {
			out = append(out, s.id)
		}
	}
	if reverse {
		slices.Reverse(out)
	}
	return out, nil
}

// restore applies changelog entries whose times times gives, as Kafka's
// restoreAllInternal: observed time moves to the latest of them, expired
// segments are dropped, and entries that are expired by then are skipped,
// never an error. Each segment's part is one RestoreBatch. Writer only.
func (w *segmented) restore(batch []KeyValue, times []int64) error {
	if len(batch) == 0 {
		return nil
	}
	if err := w.advance(slices.Max(times)); err != nil {
		return err
	}
	live := w.liveFrom()
	var (
		order []int64
		parts = make(map[int64][]KeyValue)
		puts  = make(map[int64]bool)
	)
	for i, kv := range batch {
		t := times[i]
		if t < live {
			continue
		}
		id := w.segmentID(t)
		if _, ok := parts[id]; !ok {
			order = append(order, id)
		}
		parts[id] = append(parts[id], kv)
		puts[id] = puts[id] || kv.Value != nil
	}
	slices.Sort(order)
	for _, id := range order {
		var (
			s   KeyValueStore
			err error
		)
		if puts[id] {
			s, err = w.getOrCreate(id)
		} else {
			// Deletes only: a segment that does not exist holds none of
			// their keys.
			s, err = w.lookup(id)
		}
		if err != nil {
			return w.wrap("restore", err)
		}
		if s == nil {
			continue
		}
		r, ok := s.(Restorer)
		if !ok {
			return w.wrap("restore", fmt.Errorf("segment store %T is not a Restorer", s))
		}
		if err := r.RestoreBatch(parts[id]); err != nil {
			return w.wrap("restore", err)
		}
	}
	return nil
}

// clear drops every segment, including any the backend holds that this
// store has not opened, and forgets observed time.
func (w *segmented) clear() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	var errs []error
	for _, s := range w.segs {
		if err := w.backend.drop(w.segmentName(s.id), s.store); err != nil {
			errs = append(errs, w.wrap("clear", err))
		}
	}
	w.segs = nil
	names, err := w.backend.existing(w.name + ".")
	if err != nil {
		errs = append(errs, w.wrap("clear", err))
	}
	for _, n := range names {
		if _, ok := w.parseSegmentName(n); !ok {
			continue
		}
		s, err := w.backend.open(n)
		if err == nil {
			err = w.backend.drop(n, s)
		}
		if err != nil {
			errs = append(errs, w.wrap("clear", err))
		}
	}
	if err := w.backend.dropObserved(w.name); err != nil {
		errs = append(errs, w.wrap("clear", err))
	}
	w.observed.Store(noTime)
	w.minLive = math.MinInt64
	return errors.Join(errs...)
}

// flush saves observed time and makes the writes durable. Writer only.
func (w *segmented) flush() error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	if o := w.observed.Load(); o != noTime {
		if err := w.backend.saveObserved(w.name, o); err != nil {
			return w.wrap("flush", err)
		}
	}
	if err := w.backend.flush(); err != nil {
		return w.wrap("flush", err)
	}
	return nil
}

// close saves observed time and closes the segments' stores, keeping their
// data. Calling it again, or after the PebbleDB closed, returns nil.
func (w *segmented) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	if o := w.observed.Load(); o != noTime {
		if err := w.backend.saveObserved(w.name, o); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, w.wrap("close", err))
		}
	}
	for _, s := range w.segs {
		errs = append(errs, s.store.Close())
	}
	w.segs = nil
	return errors.Join(errs...)
}

// segmentNames lists the names of the live segments' stores, in id order;
// tests check drops with it.
func (w *segmented) segmentNames() []string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]string, len(w.segs))
	for i, s := range w.segs {
		out[i] = w.segmentName(s.id)
	}
	return out
}

// entry is one windowed entry or session an iterator returns; the offsets
// point into the iterator's arena.
type entry struct {
	k0, k1, v0, v1 int
	start, end     int64
	seq            int32
}

// entryIter serves both WindowIterator and SessionIterator. It holds the
// entries of one segment at a time, copied out under the segment list's
// lock, and loads the next segment's when they run out.
type entryIter struct {
	ids  []int64 // segments still to load, in order
	load func(id int64, arena []byte, out []entry) ([]byte, []entry, error)

	arena []byte
	buf   []entry
	pos   int
	cur   entry

	err    error
	closed bool
}

func (it *entryIter) Next() bool {
	if it.closed || it.err != nil {
		return false
	}
	for it.pos >= len(it.buf) {
		if len(it.ids) == 0 {
			return false
		}
		id := it.ids[0]
		it.ids = it.ids[1:]
		it.arena, it.buf, it.err = it.load(id, it.arena[:0], it.buf[:0])
		it.pos = 0
		if it.err != nil {
			return false
		}
	}
	it.cur = it.buf[it.pos]
	it.pos++
	return true
}

func (it *entryIter) Key() []byte   { return it.arena[it.cur.k0:it.cur.k1:it.cur.k1] }
func (it *entryIter) Value() []byte { return it.arena[it.cur.v0:it.cur.v1:it.cur.v1] }
func (it *entryIter) Start() int64  { return it.cur.start }
func (it *entryIter) End() int64    { return it.cur.end }
func (it *entryIter) Err() error    { return it.err }

func (it *entryIter) Close() error {
	it.closed = true
	it.arena, it.buf, it.ids = nil, nil, nil
	return nil
}

// appendEntry copies key and value into arena and returns the entry.
func appendEntry(arena, key, value []byte, start, end int64, seq int32) ([]byte, entry) {
	e := entry{k0: len(arena), start: start, end: end, seq: seq}
	arena = append(arena, key...)
	e.k1, e.v0 = len(arena), len(arena)
	arena = append(arena, value...)
	e.v1 = len(arena)
	return arena, e
}
