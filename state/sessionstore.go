package state

// Session stores: a segmented store, segmented by session end as Kafka
// Streams' SessionKeySchema, whose segments hold the changelog's store key
//
//	key | session end (8 bytes, big-endian) | session start (8 bytes, big-endian)
//
// Key first, so a key's sessions in a segment are one range, ordered by end;
// every entry's key part is checked, as for windows. Retention counts from
// a session's end: a session is expired once end <= observed - Retention,
// where observed is the latest end seen.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// sessionSuffix is the length of the end and start after the key.
const sessionSuffix = 8 + 8

// SessionKey returns key's store and changelog key for the session
// [start, end]: key | end | start, big-endian.
func SessionKey(key []byte, start, end int64) []byte {
	return appendSessionKey(make([]byte, 0, len(key)+sessionSuffix), key, start, end)
}

func appendSessionKey(b, key []byte, start, end int64) []byte {
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	return binary.BigEndian.AppendUint64(b, uint64(start))
}

// ParseSessionKey splits a SessionKey. The key returned shares b's bytes.
func ParseSessionKey(b []byte) (key []byte, start, end int64, err error) {
	if len(b) < sessionSuffix {
		return nil, 0, 0, fmt.Errorf("state: session store key of %d bytes, shorter than its %d-byte suffix", len(b), sessionSuffix)
	}
	n := len(b) - sessionSuffix
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n+8:])), int64(binary.BigEndian.Uint64(b[n:])), nil
}

// sessionStore is the inner (Pebble or in-memory) session store. It
// implements SessionStore, Restorer and Clearer.
type sessionStore struct {
	seg *segmented
	buf []byte // writer's scratch for store keys
}

// sessionPutter is implemented by the inner session stores: put reports
// whether it wrote (false: the session had expired), so the logging layer
// logs only what was stored.
type sessionPutter interface {
	put(key []byte, start, end int64, value []byte) (written bool, err error)
}

// SessionStore returns the session store called name, whose segments are
// stores of db named name + "." + 16 hex digits; it also implements
// Restorer and Clearer. It finds the segments an earlier store of that
// name left in db. Open each name once.
func (db *PebbleDB) SessionStore(name string, o SegmentedOptions) (SessionStore, error) {
	return newSessionStore(name, o, pebbleSegments{db})
}

// NewInMemorySessionStore returns an empty in-memory session store, which
// also implements Restorer and Clearer. It panics if o is invalid
// (Retention not positive, or a negative SegmentInterval).
func NewInMemorySessionStore(name string, o SegmentedOptions) SessionStore {
	s, err := newSessionStore(name, o, memSegments{})
	if err != nil {
		panic(err)
	}
	return s
}

func newSessionStore(name string, o SegmentedOptions, b segmentBackend) (*sessionStore, error) {
	seg, err := newSegmented(name, o, b)
	if err != nil {
		return nil, err
	}
	return &sessionStore{seg: seg}, nil
}

func (s *sessionStore) Name() string { return s.seg.name }

func (s *sessionStore) Put(key []byte, start, end int64, value []byte) error {
	_, err := s.put(key, start, end, value)
	return err
}

func (s *sessionStore) put(key []byte, start, end int64, value []byte) (bool, error) {
	s.buf = appendSessionKey(s.buf[:0], key, start, end)
	return s.seg.write(end, s.buf, value)
}

func (s *sessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
}

func (s *sessionStore) FetchSession(key []byte, start, end int64) ([]byte, error) {
	if end < s.seg.liveFrom() {
		_, err := s.seg.lookup(0) // ErrClosed, or nothing
		return nil, err
	}
	return s.seg.get(s.seg.segmentID(end), SessionKey(key, start, end))
}

// FindSessions scans, in every segment from that of earliestEnd on (a
// session ending later may still start early enough), the range
// key|earliestEnd|* .. key|segment end|*, and keeps the sessions starting
// at or before latestStart. The result is sorted by start (then end): a
// key's sessions do not overlap once merged, so that is also their order
// by end, Kafka's order.
func (s *sessionStore) FindSessions(key []byte, earliestEnd, latestStart int64) (SessionIterator, error) {
	from := max(earliestEnd, s.seg.liveFrom())
	ids, err := s.seg.ids(s.seg.segmentID(from), math.MaxInt64, false)
	if err != nil {
		return nil, err
	}
	var (
		arena []byte
		out   []entry
	)
	for _, id := range ids {
		lo, hi := s.seg.bounds(id)
		f := max(from, lo)
		// Starts in the segment may be of either sign: their bytes span
		// 0x00.. to 0xff.. whatever the numbers.
		loKey, hiKey := SessionKey(key, 0, f), SessionKey(key, -1, hi)
		err := s.seg.scan(id, loKey, hiKey, false, func(k, v []byte) {
			n := len(k) - sessionSuffix
			if n != len(key) || !bytes.Equal(k[:n], key) {
				return // another key's entry
			}
			_, start, end, _ := ParseSessionKey(k)
			if end < f || end > hi || start > latestStart {
				return
			}
			var e entry
			arena, e = appendEntry(arena, key, v, start, end, 0)
			out = append(out, e)
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b entry) int {
		if c := cmpInt64(a.start, b.start); c != 0 {
			return c
		}
		return cmpInt64(a.end, b.end)
	})
	return &entryIter{arena: arena, buf: out}, nil
}

// Fetch iterates all of key's sessions that are not expired.
func (s *sessionStore) Fetch(key []byte) (SessionIterator, error) {
	return s.FindSessions(key, math.MinInt64, math.MaxInt64)
}

// RestoreBatch applies changelog records (keys as SessionKey, nil value:
// delete). Records of expired sessions are skipped.
func (s *sessionStore) RestoreBatch(batch []KeyValue) error {
	if len(batch) == 0 {
		return nil
	}
	times := make([]int64, len(batch))
	for i, kv := range batch {
		_, _, end, err := ParseSessionKey(kv.Key)
		if err != nil {
			return s.seg.wrap("restore", err)
		}
		times[i] = end
	}
	return s.seg.restore(batch, times)
}

// Clear drops every segment; see Clearer.
func (s *sessionStore) Clear() error { return s.seg.clear() }

func (s *sessionStore) Flush() error { return s.seg.flush() }

// Close closes the segments' stores, keeping their data.
func (s *sessionStore) Close() error { return s.seg.close() }
