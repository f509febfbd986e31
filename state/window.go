package state

// Window and session stores keep the state of windowed aggregations and
// stream-stream joins, as Kafka Streams' WindowStore and SessionStore.
// Both are segmented by time: entries live in segments of
// SegmentInterval milliseconds of window start (session end), and a
// whole segment is dropped once every window in it is older than the
// retention period, instead of deleting its keys one by one.
//
// Changelog records use Kafka Streams' store-key layouts, so a changelog
// written here reads the same in Java (and back):
//
//	window:  key | window start (8 bytes, big-endian) | sequence number (4 bytes, big-endian)
//	session: key | session end (8 bytes, big-endian) | session start (8 bytes, big-endian)
//
// The sequence number is 0 unless the store retains duplicates (joins).

// WindowIterator walks windowed entries. Key, Value and the times are
// valid until the next call to Next.
type WindowIterator interface {
	Next() bool
	Key() []byte
	// Start is the window start (epoch milliseconds).
	Start() int64
	Value() []byte
	Err() error
	Close() error
}

// ReadOnlyWindowStore is what interactive queries see of a window store.
type ReadOnlyWindowStore interface {
	// Fetch returns the value of key's window starting at start, or nil.
	Fetch(key []byte, start int64) ([]byte, error)
	// FetchRange iterates key's windows with from <= start <= to in start
	// order; BackwardFetchRange in reverse start order.
	FetchRange(key []byte, from, to int64) (WindowIterator, error)
	BackwardFetchRange(key []byte, from, to int64) (WindowIterator, error)
	// FetchAll iterates every key's windows with from <= start <= to,
	// ordered by start and then key.
	FetchAll(from, to int64) (WindowIterator, error)
	// All iterates every window the store retains.
	All() (WindowIterator, error)
}

// WindowStore is a writable window store, used by one task goroutine.
type WindowStore interface {
	ReadOnlyWindowStore
	Name() string
	// Put writes value for key's window starting at start; a nil value
	// deletes it. Writes to windows older than the retention period
	// (start + retention <= the latest start seen) are dropped.
	Put(key, value []byte, start int64) error
	// Flush makes buffered writes durable.
	Flush() error
	Close() error
}

// SessionIterator walks sessions: a key, its session's [Start, End] (both
// inclusive, epoch milliseconds) and the aggregate.
type SessionIterator interface {
	Next() bool
	Key() []byte
	Start() int64
	End() int64
	Value() []byte
	Err() error
	Close() error
}

// ReadOnlySessionStore is what interactive queries see of a session store.
type ReadOnlySessionStore interface {
	// FindSessions iterates key's sessions that end at or after
	// earliestEnd and start at or before latestStart, in start order:
	// the sessions a record at t may merge with are
	// FindSessions(key, t-gap, t+gap).
	FindSessions(key []byte, earliestEnd, latestStart int64) (SessionIterator, error)
	// FetchSession returns the value of key's session [start, end], or nil.
	FetchSession(key []byte, start, end int64) ([]byte, error)
	// Fetch iterates all of key's sessions in start order.
	Fetch(key []byte) (SessionIterator, error)
}

// SessionStore is a writable session store, used by one task goroutine.
type SessionStore interface {
	ReadOnlySessionStore
	Name() string
	// Put writes the session's aggregate; a nil value removes it.
	Put(key []byte, start, end int64, value []byte) error
	Remove(key []byte, start, end int64) error
	Flush() error
	Close() error
}

// SegmentedOptions configure a window or session store.
type SegmentedOptions struct {
	// Retention is how long (ms) windows are kept after their start (for
	// sessions, after their end) relative to the latest time seen. It
	// must be positive.
	Retention int64
	// SegmentInterval is the width (ms) of one segment; 0: as Kafka
	// Streams, max(Retention/2, 60 000).
	SegmentInterval int64
	// RetainDuplicates keeps every Put of the same key and window (with
	// increasing sequence numbers) instead of overwriting: join buffers.
	RetainDuplicates bool
}
