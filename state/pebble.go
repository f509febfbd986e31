package state

// One Pebble instance serves a task directory and holds all of the task's
// stores, as named key ranges.
//
// Key layout: every key on disk is
//
//	uvarint(len(storeName)) || storeName || userKey
//
// so each store is one contiguous key range, and stores whose names share
// a prefix ("a" and "ab") still never overlap: the length comes first.
// Range, ReverseRange, All and PrefixScan set the iterator's LowerBound and
// UpperBound inside the store's range, so Pebble never walks another
// store's keys. Range's upper bound is inclusive (Kafka Streams semantics);
// Pebble's is exclusive, so the bound passed is the successor of to
// (to || 0x00).
//
// Writes use pebble.NoSync: the changelog topic is the source of truth,
// and the checkpoint, written after Commit (or a store's Flush) made the
// writes durable, says how much of it the stores hold.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// PebbleOptions configures OpenPebble. The zero value works.
type PebbleOptions struct {
	// CacheSize is the block cache size in bytes, for sstable blocks.
	// Default 8 MiB. Pebble counts its memtables against its cache, so the
	// cache OpenPebble gives Pebble is CacheSize + 2*MemTableSize.
	CacheSize int64
	// MemTableSize is the size of one memtable in bytes. Default 4 MiB.
	MemTableSize uint64
	// FS is the file system. Default (nil): the operating system's. Tests
	// may pass vfs.NewMem().
	FS vfs.FS
	// DisableWAL turns Pebble's write-ahead log off: writes then reach disk
	// only when a memtable is flushed, which Commit and a store's Flush
	// force; writes after the last of those are lost at Close or a crash.
	// The changelog is the source of truth, so nothing is lost that a
	// restore from the last checkpoint cannot bring back. Default false.
	DisableWAL bool
	// OnUnplannedFlush is called when Pebble starts flushing a memtable on
	// its own (it filled up), rather than for Flush or Commit, and before a
	// restore ingests a table (BeginRestore). With the WAL
	// disabled that flush makes writes durable that no checkpoint covers
	// yet, so a caller that trusts its checkpoint to describe the disk must
	// stop trusting it (the task manager deletes the checkpoint file). It
	// runs on a Pebble goroutine and must not call back into the db.
	OnUnplannedFlush func()
}

const (
	defaultPebbleCacheSize    = 8 << 20
	defaultPebbleMemTableSize = 4 << 20
	// memTablesCharged is Pebble's default MemTableStopWritesThreshold: how
	// many memtables may be held (one being written, one being flushed)
	// before writes stall.
	memTablesCharged = 2
)

// PebbleDB is one Pebble instance holding many named stores: one per task
// directory. It is safe for concurrent use.
type PebbleDB struct {
	dir        string
	db         *pebble.DB
	opts       *pebble.Options // as Pebble was opened with, defaults filled in
	disableWAL bool
	unplanned  func() // PebbleOptions.OnUnplannedFlush, or nil
	// planned is set while Flush or Commit flushes memtables, so the event
	// listener can tell those flushes from Pebble's own.
	planned atomic.Bool

	// keyBufs holds buffers for prefixed keys, so Get, Put and Delete do not
	// allocate one per call.
	keyBufs sync.Pool

	mu     sync.Mutex
	stores map[string]*pebbleStore
	closed bool
	// bulk is set between BeginRestore and EndRestore.
	bulk *bulkRestore
}

// OpenPebble opens (creating it if needed) the Pebble instance in dir. A
// directory Pebble cannot read (corrupt or from an incompatible version)
// gives an error wrapping Pebble's, never a panic; the caller may then
// WipePebble the directory and restore from the changelogs.
func OpenPebble(dir string, opts PebbleOptions) (db *PebbleDB, err error) {
	po := &pebble.Options{
		CacheSize:    opts.CacheSize,
		MemTableSize: opts.MemTableSize,
		FS:           opts.FS,
		DisableWAL:   opts.DisableWAL,
		Logger:       quietLogger{},
		// A task directory is local and rebuilt from the changelog when
		// unreadable, so there is no reason to stay on an old format.
		FormatMajorVersion: pebble.FormatNewest,
	}
	if po.CacheSize <= 0 {
		po.CacheSize = defaultPebbleCacheSize
	}
	if po.MemTableSize == 0 {
		po.MemTableSize = defaultPebbleMemTableSize
	}
	// Pebble charges its memtables (up to MemTableStopWritesThreshold of
	// them, default 2) against the block cache: with 8 MiB of cache and two
	// 4 MiB memtables no block would stay cached and every Get would read
	// and decompress a block from disk. So the cache Pebble gets is
	// CacheSize on top of the memtables.
	po.CacheSize += memTablesCharged * int64(po.MemTableSize)
	// Restores write as fast as the changelog can be fetched; with the
	// default of two memtables a write waits whenever one is being
	// flushed. Four let writes go on through a flush.
	po.MemTableStopWritesThreshold = 4
	// Bloom filters, as Kafka Streams configures RocksDB: a Get of an
	// absent key (the first record of every key in an aggregation) then
	// skips sstables without reading their blocks. Set on L0, Pebble
	// carries it to every level.
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	pdb := &PebbleDB{dir: dir, opts: po, disableWAL: opts.DisableWAL, unplanned: opts.OnUnplannedFlush,
		stores: make(map[string]*pebbleStore)}
	if opts.OnUnplannedFlush != nil {
		cb := opts.OnUnplannedFlush
		po.EventListener = &pebble.EventListener{
			FlushBegin: func(pebble.FlushInfo) {
				if !pdb.planned.Load() {
					cb()
				}
			},
		}
	}
	// Filled in for the restore's sstable writer (MakeWriterOptions);
	// Pebble fills in its own copy.
	po.EnsureDefaults()
	// Pebble panics on some malformed files (its own invariant checks); the
	// caller's recovery path is the same as for an error.
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("state: open pebble %s: %v", dir, r)
		}
	}()
	inner, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("state: open pebble %s: %w", dir, err)
	}
	pdb.db = inner
	if err := removeRestoreTemps(po.FS, dir); err != nil {
		return nil, errors.Join(fmt.Errorf("state: open pebble %s: %w", dir, err), inner.Close())
	}
	return pdb, nil
}

// WipePebble removes dir and everything in it, as when OpenPebble failed
// on a corrupt directory and the stores are to be restored from scratch.
func WipePebble(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("state: wipe pebble %s: %w", dir, err)
	}
	return nil
}

// Store returns the store called name, which also implements Restorer.
// Calling it again with the same name returns the same store until that
// store is closed. On a closed PebbleDB it returns a store whose methods
// return ErrClosed.
func (db *PebbleDB) Store(name string) KeyValueStore {
	db.mu.Lock()
	defer db.mu.Unlock()
	if s, ok := db.stores[name]; ok {
		return s
	}
	prefix := storePrefix(name)
	s := &pebbleStore{
		db:     db,
		name:   name,
		prefix: prefix,
		// The store's range ends where the next length-prefixed name would
		// start; prefix is never all 0xff (the varint's last byte is < 0x80).
		upper:  prefixSuccessor(prefix),
		iters:  make(map[*pebbleIter]struct{}),
		closed: db.closed,
	}
	if !db.closed {
		db.stores[name] = s
	}
	return s
}

// storePrefix is the key prefix of the store called name:
// uvarint(len(name)) || name.
func storePrefix(name string) []byte {
	prefix := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(name)), uint64(len(name)))
	return append(prefix, name...)
}

// DropStore deletes every key of the store called name with one range
// deletion, whatever the number of keys: the segmented window and session
// stores drop an expired segment this way. The space is reclaimed by
// compactions later. A store of that name that is open stays usable, and
// empty.
func (db *PebbleDB) DropStore(name string) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	// What a restore buffered was written before the drop.
	if err := db.flushRestore(); err != nil {
		return err
	}
	prefix := storePrefix(name)
	if err := db.db.DeleteRange(prefix, prefixSuccessor(prefix), pebble.NoSync); err != nil {
		return fmt.Errorf("state: drop store %q in pebble %s: %w", name, db.dir, err)
	}
	return nil
}

// StoreNames returns the names, starting with prefix, of the stores that
// hold at least one key, in the order of their key ranges (names of one
// length order bytewise). It seeks once per store in the db rather than
// reading every key: a reopened window or session store finds its segments
// with it.
func (db *PebbleDB) StoreNames(prefix string) ([]string, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, ErrClosed
	}
	it, err := db.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("state: list stores in pebble %s: %w", db.dir, err)
	}
	var names []string
	for valid := it.First(); valid; {
		k := it.Key()
		n, w := binary.Uvarint(k)
		if w <= 0 || n > uint64(len(k)-w) {
			// Not a store key: nothing this package wrote.
			valid = it.Next()
			continue
		}
		end := w + int(n)
		if name := k[w:end]; bytes.HasPrefix(name, []byte(prefix)) {
			names = append(names, string(name))
		}
		// The next store's keys start after every key with this prefix.
		valid = it.SeekGE(prefixSuccessor(k[:end]))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("state: list stores in pebble %s: %w", db.dir, err)
	}
	return names, nil
}

// Flush writes the memtables to sstables on disk.
func (db *PebbleDB) Flush() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	db.planned.Store(true)
	defer db.planned.Store(false)
	if err := db.db.Flush(); err != nil {
		return fmt.Errorf("state: flush pebble %s: %w", db.dir, err)
	}
	return nil
}

// Commit makes every write to the db's stores so far durable, the barrier
// to pass before writing the checkpoint: it syncs the WAL, or, with the WAL
// disabled, flushes the memtables. Writes are applied (and visible) as they
// are made; Commit does not buffer or roll anything back. Each store's
// Flush does the same.
func (db *PebbleDB) Commit() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	if err := db.sync(); err != nil {
		return fmt.Errorf("state: commit pebble %s: %w", db.dir, err)
	}
	return nil
}

// sync is Commit without the locking; the caller keeps the db open.
//
// With the WAL on, syncing it is enough and far cheaper than writing the
// memtables out, which would leave a small sstable per commit for
// compactions to clean up.
func (db *PebbleDB) sync() error {
	if db.disableWAL {
		db.planned.Store(true)
		defer db.planned.Store(false)
		return db.db.Flush()
	}
	return db.db.LogData(nil, pebble.Sync)
}

// Close closes every store and then the Pebble instance. Iterators left
// open are closed and reported in the error. Calling Close again returns
// nil.
func (db *PebbleDB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	db.dropRestore() // a restore not ended is not complete
	var errs []error
	for _, s := range db.stores {
		errs = append(errs, s.close())
	}
	db.stores = nil
	if err := db.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("state: close pebble %s: %w", db.dir, err))
	}
	return errors.Join(errs...)
}

func (db *PebbleDB) forget(s *pebbleStore) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.stores[s.name] == s {
		delete(db.stores, s.name)
	}
}

// quietLogger drops Pebble's informational messages (a library should not
// print on every open) and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(f string, args ...any) { pebble.DefaultLogger.Errorf(f, args...) }
func (quietLogger) Fatalf(f string, args ...any) { pebble.DefaultLogger.Fatalf(f, args...) }

// pebbleStore is one named key range of a PebbleDB.
//
// Every method holds mu for reading while it uses Pebble, and Close takes
// it for writing: Pebble panics when a closed DB or iterator is used, and
// interactive queries may read on other goroutines while the task closes.
type pebbleStore struct {
	db     *PebbleDB
	name   string
	prefix []byte
	upper  []byte

	mu     sync.RWMutex
	closed bool

	itersMu sync.Mutex
	iters   map[*pebbleIter]struct{}
}

func (s *pebbleStore) Name() string { return s.name }

func (s *pebbleStore) openIterators() int {
	s.itersMu.Lock()
	defer s.itersMu.Unlock()
	return len(s.iters)
}

// key returns prefix||userKey in a pooled buffer; give it back with
// putKey once Pebble is done with it (Pebble copies keys it keeps).
func (s *pebbleStore) key(userKey []byte) *[]byte {
	bp, _ := s.db.keyBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = append(append((*bp)[:0], s.prefix...), userKey...)
	return bp
}

func (s *pebbleStore) putKey(bp *[]byte) { s.db.keyBufs.Put(bp) }

func (s *pebbleStore) wrap(op string, err error) error {
	return fmt.Errorf("state: store %q: %s: %w", s.name, op, err)
}

// get reads a key; the caller holds mu.
func (s *pebbleStore) get(key []byte) ([]byte, error) {
	bp := s.key(key)
	defer s.putKey(bp)
	v, closer, err := s.db.db.Get(*bp)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap("get", err)
	}
	out := cloneValue(v)
	if out == nil {
		out = []byte{}
	}
	if err := closer.Close(); err != nil {
		return nil, s.wrap("get", err)
	}
	return out, nil
}

func (s *pebbleStore) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.get(key)
}

// set writes a key (nil value: delete); the caller holds mu.
func (s *pebbleStore) set(key, value []byte) error {
	bp := s.key(key)
	defer s.putKey(bp)
	var err error
	if value == nil {
		err = s.db.db.Delete(*bp, pebble.NoSync)
	} else {
		err = s.db.db.Set(*bp, value, pebble.NoSync)
	}
	if err != nil {
		return s.wrap("put", err)
	}
	return nil
}

func (s *pebbleStore) Put(key, value []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.set(key, value)
}

func (s *pebbleStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	old, err := s.get(key)
	if err != nil || old != nil {
		return old, err
	}
	return nil, s.set(key, value)
}

func (s *pebbleStore) Delete(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	old, err := s.get(key)
	if err != nil || old == nil {
		return old, err
	}
	return old, s.set(key, nil)
}

// RestoreBatch writes the batch as one Pebble batch, committed with NoSync:
// atomic, and the cheapest write path Pebble has short of ingesting
// sstables, which is what it does between the db's BeginRestore and
// EndRestore (restore.go). Keys are encoded straight into the batch's
// buffer.
func (s *pebbleStore) RestoreBatch(batch []KeyValue) error {
	// Between BeginRestore and EndRestore the batch goes to an sstable
	// (restore.go). Checked before taking mu: the db's lock comes first.
	if ok, err := s.db.restoreBulk(s, batch); ok {
		if err != nil {
			return s.wrap("restore", err)
		}
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	size := 0
	for _, kv := range batch {
		// 1 kind byte and two varints (at most 5 bytes each) per entry.
		size += 11 + len(s.prefix) + len(kv.Key) + len(kv.Value)
	}
	b := s.db.db.NewBatchWithSize(size)
	defer b.Close()
	for _, kv := range batch {
		var op *pebble.DeferredBatchOp
		if kv.Value == nil {
			op = b.DeleteDeferred(len(s.prefix) + len(kv.Key))
		} else {
			op = b.SetDeferred(len(s.prefix)+len(kv.Key), len(kv.Value))
			copy(op.Value, kv.Value)
		}
		copy(op.Key[copy(op.Key, s.prefix):], kv.Key)
		if err := op.Finish(); err != nil {
			return s.wrap("restore", err)
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return s.wrap("restore", err)
	}
	return nil
}

// ApproximateNumEntries counts the store's keys with a key-only walk: the
// answer is exact, and the cost is O(entries).
func (s *pebbleStore) ApproximateNumEntries() (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	it, err := s.db.db.NewIter(&pebble.IterOptions{LowerBound: s.prefix, UpperBound: s.upper})
	if err != nil {
		return 0, s.wrap("count", err)
	}
	var n int64
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, s.wrap("count", err)
	}
	return n, nil
}

// Flush makes the store's writes durable, and those of every other store
// of the PebbleDB: see PebbleDB.Commit.
func (s *pebbleStore) Flush() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if s.db.disableWAL {
		// Without a WAL, durability is the owner's call: PebbleDB.Commit
		// flushes once the changelog has acknowledged every write, and a
		// store-level flush (the cache's write-through at commit) must not
		// make writes durable before that.
		return nil
	}
	if err := s.db.sync(); err != nil {
		return s.wrap("flush", err)
	}
	return nil
}

// Close closes the store (not the PebbleDB, nor its data). Iterators left
// open are closed, so the DB can close, and reported in the error.
func (s *pebbleStore) Close() error {
	err := s.close()
	s.db.forget(s)
	return err
}

func (s *pebbleStore) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.itersMu.Lock()
	defer s.itersMu.Unlock()
	var errs []error
	if n := len(s.iters); n > 0 {
		errs = append(errs, fmt.Errorf("state: store %q closed with %d iterators still open", s.name, n))
	}
	for it := range s.iters {
		it.closed = true
		errs = append(errs, it.it.Close())
	}
	clear(s.iters)
	return errors.Join(errs...)
}

// iter opens an iterator over the user keys [lower, upper); nil is open.
func (s *pebbleStore) iter(lower, upper []byte, upperIsPrefix, reverse bool) (Iterator, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	// One allocation for both bounds; Pebble reads them for the iterator's
	// whole life.
	bounds := make([]byte, 0, 2*len(s.prefix)+len(lower)+len(upper)+1)
	lo := append(append(bounds, s.prefix...), lower...)
	hi := s.upper
	if upper != nil {
		hi = append(append(lo[len(lo):], s.prefix...), upper...)
		if upperIsPrefix {
			// prefixSuccessor never runs past the store's prefix into a
			// shorter key than the store's own upper bound allows.
			hi = prefixSuccessor(hi)
		}
	}
	pit, err := s.db.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, s.wrap("iterator", err)
	}
	it := &pebbleIter{s: s, it: pit, prefixLen: len(s.prefix), reverse: reverse}
	s.itersMu.Lock()
	s.iters[it] = struct{}{}
	s.itersMu.Unlock()
	return it, nil
}

func (s *pebbleStore) Range(from, to []byte) (Iterator, error) {
	return s.rangeIter(from, to, false)
}

func (s *pebbleStore) ReverseRange(from, to []byte) (Iterator, error) {
	return s.rangeIter(from, to, true)
}

func (s *pebbleStore) rangeIter(from, to []byte, reverse bool) (Iterator, error) {
	if from != nil && to != nil && bytes.Compare(from, to) > 0 {
		// Pebble requires LowerBound <= UpperBound.
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.closed {
			return nil, ErrClosed
		}
		return &emptyIterator{}, nil
	}
	var upper []byte
	if to != nil {
		upper = keySuccessor(to)
	}
	return s.iter(from, upper, false, reverse)
}

func (s *pebbleStore) All() (Iterator, error) { return s.iter(nil, nil, false, false) }

func (s *pebbleStore) PrefixScan(prefix []byte) (Iterator, error) {
	return s.iter(prefix, prefix, true, false)
}

// pebbleIter wraps a Pebble iterator bounded to the store's range.
type pebbleIter struct {
	s         *pebbleStore
	it        *pebble.Iterator
	prefixLen int
	reverse   bool

	started    bool
	key, value []byte
	err        error
	closed     bool // guarded by s.mu: the store's Close may set it
}

func (it *pebbleIter) Next() bool {
	it.s.mu.RLock()
	defer it.s.mu.RUnlock()
	if it.closed {
		if it.s.closed && it.err == nil {
			it.err = ErrClosed
		}
		return false
	}
	if it.err != nil {
		return false
	}
	var valid bool
	switch {
	case !it.started && it.reverse:
		valid = it.it.Last()
	case !it.started:
		valid = it.it.First()
	case it.reverse:
		valid = it.it.Prev()
	default:
		valid = it.it.Next()
	}
	it.started = true
	if !valid {
		if err := it.it.Error(); err != nil {
			it.err = it.s.wrap("iterate", err)
		}
		return false
	}
	v, err := it.it.ValueAndErr()
	if err != nil {
		it.err = it.s.wrap("iterate", err)
		return false
	}
	it.key, it.value = it.it.Key()[it.prefixLen:], v
	return true
}

// Key is the user key, the store's prefix stripped; the bytes are Pebble's,
// valid until Next.
func (it *pebbleIter) Key() []byte { return it.key }

func (it *pebbleIter) Value() []byte { return it.value }
func (it *pebbleIter) Err() error    { return it.err }

func (it *pebbleIter) Close() error {
	it.s.mu.RLock()
	defer it.s.mu.RUnlock()
	if it.closed {
		return nil
	}
	it.closed = true
	err := it.it.Close()
	it.s.itersMu.Lock()
	delete(it.s.iters, it)
	it.s.itersMu.Unlock()
	if err != nil {
		return it.s.wrap("close iterator", err)
	}
	return nil
}
