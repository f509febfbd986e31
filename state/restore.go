package state

// Bulk restore: between PebbleDB.BeginRestore and EndRestore, RestoreBatch
// of the db's stores does not go through Pebble's memtable. Writes are
// copied into a chunk; once it holds restoreChunkBytes it is sorted, the
// last write of each key kept, and written as one sstable that Pebble
// ingests (DB.Ingest), as RocksDB's bulk loading does for Kafka Streams'
// restores. A restore then never waits for a memtable flush (a write
// stall), and the data is written once, already sorted, instead of into a
// memtable that is then flushed. Ingestion puts a table in the lowest
// level it does not overlap, so the first chunks of an empty store go to
// L6, L5, ... rather than piling up in L0.
//
// A full chunk is written and ingested on a goroutine of its own while the
// next one fills, one at a time, so fetching goes on meanwhile and the
// tables are ingested in order.
//
// Ordering: an ingested table's entries get sequence numbers above every
// write before the ingestion, and a table holds each key once, its last
// write (a nil value is a tombstone, written as a point deletion). So the
// changelog's order is kept within a chunk by the sort and across chunks by
// the ingestion order. A write that must land after what is buffered (a
// DropStore of an expired segment during a window-store restore) ingests
// the buffer first.
//
// Durability: a table is synced before it is ingested, and ingestion
// records it in Pebble's manifest, so an ingested chunk is on disk whether
// or not the WAL is on; OnUnplannedFlush hears of it first, as of a flush.
// What is still buffered is not in the db: EndRestore ingests it, and
// AbortRestore or Close drop it.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// restoreChunkBytes is how much a bulk restore buffers (keys and values)
// before it writes and ingests an sstable. Larger chunks mean fewer tables:
// each ingestion costs a few fsyncs and a manifest write, and tables that
// overlap stack up in the LSM (L6, L5, ...) until compactions merge them
// after the restore. A 27 MB restore in 8 MiB chunks left compactions
// worth 1.0-1.1 µs of CPU per record; in 16 MiB chunks, almost none
// (BenchmarkPebbleRestore). Smaller chunks mean less memory: a restore
// holds two, the chunk filling and the one being written, 32 MiB in all
// (Kafka Streams gives RocksDB three 16 MiB memtables).
const restoreChunkBytes = 16 << 20

// restoreGatherBytes is how much of a chunk its write copies in key order
// at a time (restoreChunk.write): small enough to stay in cache.
const restoreGatherBytes = 256 << 10

// restoreTableFormat is the newest sstable format restores write, if the
// db's is newer. Pebble reads and ingests every format its format major
// version allows, and compactions rewrite tables in the db's own format.
// Row blocks (v4) cost about a third less CPU to write than the columnar
// blocks of v5 and later, and writing the tables is most of a restore's
// own CPU.
const restoreTableFormat = sstable.TableFormatPebblev4

// restoreTempPrefix starts the names of the sstables a bulk restore writes
// in the db's directory before ingesting them; OpenPebble removes any that
// a crash left behind.
const restoreTempPrefix = "kstreams-restore-"

// BeginRestore makes RestoreBatch of the db's stores buffer its writes and
// add them to the db as ingested sstables (see restore.go), until
// EndRestore or AbortRestore. Meanwhile reads do not see what is buffered,
// and the db's stores must be written only with RestoreBatch (and dropped
// with DropStore), by one goroutine: the restore's. RestoreBatch copies
// what it keeps and returns before the batch is in the db.
func (db *PebbleDB) BeginRestore() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	if db.bulk != nil {
		return fmt.Errorf("state: restore into pebble %s: already begun", db.dir)
	}
	db.bulk = &bulkRestore{db: db, chunkBytes: restoreChunkBytes, gatherBytes: restoreGatherBytes, cur: &restoreChunk{}}
	return nil
}

// EndRestore ingests what the restore still buffers and returns
// RestoreBatch to Pebble batches. The restored data is then on disk
// already; Commit is still the barrier before a checkpoint.
func (db *PebbleDB) EndRestore() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	b := db.bulk
	if b == nil {
		return nil
	}
	db.bulk = nil
	return b.finish()
}

// AbortRestore ends the restore, dropping what it buffers: for a restore
// that failed, to be run again from its checkpoint. Tables it ingested
// stay.
func (db *PebbleDB) AbortRestore() {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.dropRestore()
}

// dropRestore ends the restore, if any, without ingesting what it buffers.
// The caller holds mu.
func (db *PebbleDB) dropRestore() {
	if db.bulk != nil {
		_ = db.bulk.wait() // the restore failed or is abandoned: its error is moot
		db.bulk = nil
	}
}

// flushRestore ingests what the restore buffers, so that a write that
// follows lands after it. The caller holds mu.
func (db *PebbleDB) flushRestore() error {
	if db.bulk == nil {
		return nil
	}
	return db.bulk.finish()
}

// restoreBulk buffers batch for store s if a restore is on; it reports
// whether it took the batch.
func (db *PebbleDB) restoreBulk(s *pebbleStore, batch []KeyValue) (bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bulk == nil || db.closed || db.stores[s.name] != s {
		return false, nil // not restoring, or s is closed: RestoreBatch says so
	}
	return true, db.bulk.add(s.prefix, batch)
}

// bulkRestore is a PebbleDB's restore in progress. Its methods run under
// the db's mu; the goroutine writing a full chunk touches only that chunk,
// the buffers below and Pebble.
type bulkRestore struct {
	db          *PebbleDB
	chunkBytes  int
	gatherBytes int
	cur         *restoreChunk
	// spare is the chunk being written while writing is set, then free.
	spare   *restoreChunk
	writing chan error
	tables  int // tables started, for temporary file names
	// sorted is restoreChunk.write's work space and out the table file's
	// buffer, used by one write at a time.
	sorted, out []byte
}

// add buffers batch for the store with the given key prefix.
func (b *bulkRestore) add(prefix []byte, batch []KeyValue) error {
	for _, kv := range batch {
		if !b.cur.fits(len(prefix)+len(kv.Key)+len(kv.Value), b.chunkBytes) {
			if err := b.rotate(); err != nil {
				return err
			}
		}
		b.cur.add(prefix, kv.Key, kv.Value, b.chunkBytes)
	}
	return nil
}

// rotate starts writing the current chunk on its own goroutine, once the
// previous one is ingested, and starts filling the other.
func (b *bulkRestore) rotate() error {
	if err := b.wait(); err != nil {
		return err
	}
	full := b.cur
	b.cur = b.spare
	if b.cur == nil {
		b.cur = &restoreChunk{}
	}
	b.spare = full
	done := make(chan error, 1)
	n := b.tables
	b.tables++
	go func() { done <- b.ingest(full, n) }()
	b.writing = done
	return nil
}

// wait waits for the chunk being written, if any, and returns its error.
func (b *bulkRestore) wait() error {
	if b.writing == nil {
		return nil
	}
	err := <-b.writing
	b.writing = nil
	return err
}

// finish ingests everything buffered, in order.
func (b *bulkRestore) finish() error {
	if err := b.wait(); err != nil {
		return err
	}
	n := b.tables
	b.tables++
	return b.ingest(b.cur, n)
}

// ingest writes c as the n-th table of the restore, ingests it, and
// empties c.
func (b *bulkRestore) ingest(c *restoreChunk, n int) error {
	if c.empty() {
		return nil
	}
	defer c.reset()
	db := b.db
	fs := db.opts.FS
	path := fs.PathJoin(db.dir, fmt.Sprintf("%s%06d.sst", restoreTempPrefix, n))
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("state: restore into pebble %s: %w", db.dir, err)
	}
	out := &restoreFile{f: f, buf: b.out[:0]}
	w := sstable.NewWriter(out, db.opts.MakeWriterOptions(0, min(db.db.TableFormat(), restoreTableFormat)))
	b.sorted, err = c.write(w, b.sorted, b.gatherBytes)
	// Close finishes the file (writes, syncs and closes it), also after an
	// error.
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	b.out = out.buf
	if err == nil {
		if db.unplanned != nil {
			db.unplanned()
		}
		err = db.db.Ingest(context.Background(), []string{path})
	}
	if err != nil {
		_ = fs.Remove(path)
		return fmt.Errorf("state: restore into pebble %s: %w", db.dir, err)
	}
	return nil
}

// restoreFile is the file a restore writes a table to: an
// objstorage.Writable. Pebble's own (objstorageprovider.NewFileWritable)
// buffers 4 KiB, a write system call per data block; this one buffers
// restoreFileBuffer.
type restoreFile struct {
	f   vfs.File
	buf []byte
}

const restoreFileBuffer = 1 << 20

func (w *restoreFile) Write(p []byte) error {
	if len(w.buf)+len(p) > restoreFileBuffer {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if len(p) >= restoreFileBuffer {
		_, err := w.f.Write(p)
		return err
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, restoreFileBuffer)
	}
	w.buf = append(w.buf, p...)
	return nil
}

func (w *restoreFile) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.f.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Finish writes what is buffered, syncs the file and closes it.
func (w *restoreFile) Finish() error {
	err := w.flush()
	if err == nil {
		err = w.f.Sync()
	}
	return errors.Join(err, w.f.Close())
}

func (w *restoreFile) Abort() { _ = w.f.Close() }

// removeRestoreTemps deletes the sstables a bulk restore wrote in dir and a
// crash kept it from ingesting.
func removeRestoreTemps(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, restoreTempPrefix) {
			if err := fs.Remove(fs.PathJoin(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
