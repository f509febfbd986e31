package state

// Window stores: a segmented store whose segments hold, as Kafka Streams'
// RocksDBWindowStore with WindowKeySchema, the changelog's store key
//
//	key | window start (8 bytes, big-endian) | sequence number (4 bytes, big-endian)
//
// Key first, so a key's windows in a segment are one range. Keys vary in
// length, so the range for key "a" may also hold another key's entries
// (those of "a\x00\x00..."): every entry's key part is checked, as Kafka's
// WindowKeySchema does. Starts in one segment all have the same sign
// (segments are floor(start / SegmentInterval)), so their big-endian bytes
// order as the numbers do.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// windowSuffix is the length of the start and sequence number after the key.
const windowSuffix = 8 + 4

// WindowKey returns key's store and changelog key for the window starting
// at start with sequence number seq: key | start | seq, big-endian.
func WindowKey(key []byte, start int64, seq int32) []byte {
	return appendWindowKey(make([]byte, 0, len(key)+windowSuffix), key, start, seq)
}

func appendWindowKey(b, key []byte, start int64, seq int32) []byte {
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	return binary.BigEndian.AppendUint32(b, uint32(seq))
}

// ParseWindowKey splits a WindowKey. The key returned shares b's bytes.
func ParseWindowKey(b []byte) (key []byte, start int64, seq int32, err error) {
	if len(b) < windowSuffix {
		return nil, 0, 0, fmt.Errorf("state: window store key of %d bytes, shorter than its %d-byte suffix", len(b), windowSuffix)
	}
	n := len(b) - windowSuffix
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n:])), int32(binary.BigEndian.Uint32(b[n+8:])), nil
}

// windowStore is the inner (Pebble or in-memory) window store. It
// implements WindowStore, Restorer and Clearer.
type windowStore struct {
	seg  *segmented
	dups bool

	// Writer only.
	seq int32  // last sequence number given out when dups
	buf []byte // scratch for store keys
}

// windowPutter is implemented by the inner window stores: put reports the
// sequence number it used and whether it wrote (false: the window had
// expired, or a delete in a store of duplicates), so the logging layer logs
// exactly what was stored.
type windowPutter interface {
	put(key, value []byte, start int64) (seq int32, written bool, err error)
}

// WindowStore returns the window store called name, whose segments are
// stores of db named name + "." + 16 hex digits; it also implements
// Restorer and Clearer. It finds the segments an earlier store of that
// name left in db. Open each name once.
func (db *PebbleDB) WindowStore(name string, o SegmentedOptions) (WindowStore, error) {
	return newWindowStore(name, o, pebbleSegments{db})
}

// NewInMemoryWindowStore returns an empty in-memory window store, which
// also implements Restorer and Clearer. It panics if o is invalid
// (Retention not positive, or a negative SegmentInterval).
func NewInMemoryWindowStore(name string, o SegmentedOptions) WindowStore {
	s, err := newWindowStore(name, o, memSegments{})
	if err != nil {
		panic(err)
	}
	return s
}

func newWindowStore(name string, o SegmentedOptions, b segmentBackend) (*windowStore, error) {
	seg, err := newSegmented(name, o, b)
	if err != nil {
		return nil, err
	}
	return &windowStore{seg: seg, dups: o.RetainDuplicates}, nil
}

func (w *windowStore) Name() string { return w.seg.name }

func (w *windowStore) Put(key, value []byte, start int64) error {
	_, _, err := w.put(key, value, start)
	return err
}

// put follows Kafka's RocksDBWindowStore.put: a store of duplicates gives
// every Put the next sequence number (wrapping at 2^31) and ignores
// deletes, which could not say which duplicate they mean.
func (w *windowStore) put(key, value []byte, start int64) (int32, bool, error) {
	if w.dups && value == nil {
		return 0, false, nil
	}
	var seq int32
	if w.dups {
		w.seq = (w.seq + 1) & math.MaxInt32
		seq = w.seq
	}
	w.buf = appendWindowKey(w.buf[:0], key, start, seq)
	written, err := w.seg.write(start, w.buf, value)
	return seq, written, err
}

// Fetch returns the value of key's window at start; in a store of
// duplicates, that of the first one (lowest sequence number).
func (w *windowStore) Fetch(key []byte, start int64) ([]byte, error) {
	if start < w.seg.liveFrom() {
		_, err := w.seg.lookup(0) // ErrClosed, or nothing
		return nil, err
	}
	id := w.seg.segmentID(start)
	if !w.dups {
		return w.seg.get(id, WindowKey(key, start, 0))
	}
	var out []byte
	err := w.seg.scan(id, WindowKey(key, start, 0), WindowKey(key, start, -1), false, func(k, v []byte) {
		// Same length as key's entries, inside key|start|*: one of them.
		if out == nil && len(k) == len(key)+windowSuffix {
			out = append([]byte{}, v...)
		}
	})
	return out, err
}

func (w *windowStore) FetchRange(key []byte, from, to int64) (WindowIterator, error) {
	return w.fetchKey(key, from, to, false)
}

func (w *windowStore) BackwardFetchRange(key []byte, from, to int64) (WindowIterator, error) {
	return w.fetchKey(key, from, to, true)
}

// fetchKey scans, in each segment from the first to the last (or back),
// the range key|from|0 .. key|to|0xffffffff clamped to the segment.
func (w *windowStore) fetchKey(key []byte, from, to int64, reverse bool) (WindowIterator, error) {
	from = max(from, w.seg.liveFrom())
	ids, err := w.seg.ids(w.seg.segmentID(from), w.seg.segmentID(to), reverse)
	if err != nil || from > to {
		return &entryIter{}, err
	}
	key = bytes.Clone(key)
	load := func(id int64, arena []byte, out []entry) ([]byte, []entry, error) {
		lo, hi := w.seg.bounds(id)
		f, t := max(from, lo), min(to, hi)
		err := w.seg.scan(id, WindowKey(key, f, 0), WindowKey(key, t, -1), reverse, func(k, v []byte) {
			n := len(k) - windowSuffix
			if n != len(key) || !bytes.Equal(k[:n], key) {
				return // another key's entry
			}
			var e entry
			arena, e = appendEntry(arena, key, v, int64(binary.BigEndian.Uint64(k[n:])), 0, int32(binary.BigEndian.Uint32(k[n+8:])))
			out = append(out, e)
		})
		return arena, out, err
	}
	return &entryIter{ids: ids, load: load}, nil
}

// FetchAll reads each segment in the range whole, keeps the windows in
// [from, to] and sorts them by start, key and sequence number: the
// segment's own order is by key.
func (w *windowStore) FetchAll(from, to int64) (WindowIterator, error) {
	from = max(from, w.seg.liveFrom())
	ids, err := w.seg.ids(w.seg.segmentID(from), w.seg.segmentID(to), false)
	if err != nil || from > to {
		return &entryIter{}, err
	}
	load := func(id int64, arena []byte, out []entry) ([]byte, []entry, error) {
		err := w.seg.scan(id, nil, nil, false, func(k, v []byte) {
			key, start, seq, err := ParseWindowKey(k)
			if err != nil || start < from || start > to {
				return
			}
			var e entry
			arena, e = appendEntry(arena, key, v, start, 0, seq)
			out = append(out, e)
		})
		slices.SortFunc(out, func(a, b entry) int {
			if c := cmpInt64(a.start, b.start); c != 0 {
				return c
			}
			if c := bytes.Compare(arena[a.k0:a.k1], arena[b.k0:b.k1]); c != 0 {
				return c
			}
			return cmpInt64(int64(a.seq), int64(b.seq))
		})
		return arena, out, err
	}
	return &entryIter{ids: ids, load: load}, nil
}

// All is FetchAll over all time: every window not expired, by start and
// key.
func (w *windowStore) All() (WindowIterator, error) {
	return w.FetchAll(math.MinInt64, math.MaxInt64)
}

// RestoreBatch applies changelog records (keys as WindowKey, nil value:
// delete). Records of expired windows are skipped. In a store of
// duplicates the sequence numbers go on from the last record restored.
func (w *windowStore) RestoreBatch(batch []KeyValue) error {
	if len(batch) == 0 {
		return nil
	}
	times := make([]int64, len(batch))
	var seq int32
	for i, kv := range batch {
		_, start, s, err := ParseWindowKey(kv.Key)
		if err != nil {
			return w.seg.wrap("restore", err)
		}
		times[i], seq = start, s
	}
	if err := w.seg.restore(batch, times); err != nil {
		return err
	}
	if w.dups {
		w.seq = seq
	}
	return nil
}

// Clear drops every segment; see Clearer.
func (w *windowStore) Clear() error {
	w.seq = 0
	return w.seg.clear()
}

func (w *windowStore) Flush() error { return w.seg.flush() }

// Close closes the segments' stores, keeping their data.
func (w *windowStore) Close() error { return w.seg.close() }
