package rest

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Backend is what the handler asks of the running application. Store keys
// and bounds are the store's serialized key bytes; the handler turns URL
// text into them with the store's Codec. Every method is safe for
// concurrent use.
type Backend interface {
	// Stores lists the queryable stores of the topology, sorted by name.
	Stores() []StoreInfo
	// Codec returns the codec of a store, or false when the topology has
	// no store of that name.
	Codec(store string) (Codec, bool)
	// Locate says which instance answers for key in store right now.
	Locate(store string, key []byte) (Location, error)
	// Get reads key from the local active task that owns it. It returns a
	// *Unavailable error when that task is not queryable here right now.
	Get(store string, key []byte) (value []byte, found bool, err error)
	// Range reads the local active tasks' entries of store with from <=
	// key <= to (nil bounds are open), merged in key byte order, at most
	// limit of them. A *Unavailable error means some local task of the
	// store is not queryable right now.
	Range(ctx context.Context, store string, from, to []byte, limit int) ([]Entry, error)
	// RangeHosts lists the endpoints of the other instances that hold
	// active tasks of store (for a range scan over the whole store), or a
	// *Unavailable error while some task of the store has no active owner.
	RangeHosts(store string) ([]string, error)
	// Windows fetches key's windows of a window store with start time in
	// [from, to]. ErrNotWindowStore for other store kinds.
	Windows(store string, key []byte, from, to time.Time) ([]WindowEntry, error)
	// Metadata is the cluster map as JSON-able data for GET /v1/metadata.
	Metadata() any
	// Endpoint is this instance's own "host:port" (ApplicationServer), or
	// "" when it has none.
	Endpoint() string
}

// StoreInfo describes a queryable store for GET /v1/stores.
type StoreInfo struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"` // "keyvalue", "window" or "session"
	KeyType   string `json:"keyType"`
	ValueType string `json:"valueType"`
}

// Codec turns a store's URL key text into key bytes and its bytes into
// JSON values.
type Codec struct {
	// ParseKey parses a key as written in a URL path or query.
	ParseKey func(text string) ([]byte, error)
	// FormatKey writes key bytes back as URL text (for paging cursors).
	FormatKey func(key []byte) (string, error)
	// KeyJSON and ValueJSON render key and value bytes as JSON values.
	KeyJSON   func(key []byte) (json.RawMessage, error)
	ValueJSON func(value []byte) (json.RawMessage, error)
}

// Location is where a key is answered.
type Location struct {
	// Local is true when this instance's active task owns the key and is
	// queryable.
	Local bool
	// Endpoint is the owner's "host:port" when it is another instance.
	Endpoint string
	// Partition is the key's partition.
	Partition int32
}

// Entry is one key and value of a range.
type Entry struct {
	Key   []byte
	Value []byte
}

// WindowEntry is one window of a key.
type WindowEntry struct {
	Start, End time.Time
	Value      []byte
}

// Unavailable means the answer exists but cannot be given right now:
// the owner is rebalancing, restoring, or unknown. The handler answers 503
// with Retry-After.
type Unavailable struct {
	Reason     string
	RetryAfter time.Duration
}

func (e *Unavailable) Error() string { return "not queryable right now: " + e.Reason }

// ErrNotWindowStore is returned by Windows for a store that holds no windows.
var ErrNotWindowStore = errors.New("not a window store")

// ErrUnknownStore is returned for a store name the topology does not have.
var ErrUnknownStore = errors.New("unknown store")
