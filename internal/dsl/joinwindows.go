package dsl

import (
	"fmt"
	"time"

	"github.com/kstreams-go/kstreams/serde"
)

// JoinWindows bound a stream–stream join, as Kafka Streams' JoinWindows: a
// left record at t joins the right records of its key in [t-before,
// t+after], both ends inclusive, so a right record at t joins the left
// records in [t-after, t+before]. before+after is the window's size and
// must not be negative; one of them may be, for a window that lies wholly
// after (or before) the record. Grace is how long after a window's end a
// record out of order is still taken.
//
// The zero value joins records with equal timestamps only, without grace.
type JoinWindows struct {
	before, after, grace time.Duration
}

// NewJoinWindows returns windows reaching before and after a left record,
// with grace.
func NewJoinWindows(before, after, grace time.Duration) JoinWindows {
	return JoinWindows{before: before, after: after, grace: grace}
}

// Before returns a copy reaching d before a left record (after a right
// one), as Kafka Streams' JoinWindows.before.
func (w JoinWindows) Before(d time.Duration) JoinWindows { w.before = d; return w }

// After returns a copy reaching d after a left record (before a right
// one), as Kafka Streams' JoinWindows.after.
func (w JoinWindows) After(d time.Duration) JoinWindows { w.after = d; return w }

// Bounds returns how far the window reaches before and after a left
// record.
func (w JoinWindows) Bounds() (before, after time.Duration) { return w.before, w.after }

// Grace returns the grace period.
func (w JoinWindows) Grace() time.Duration { return w.grace }

// Size is before+after: how far apart the records of one window may be.
func (w JoinWindows) Size() time.Duration { return w.before + w.after }

func (w JoinWindows) check() error {
	switch {
	case w.before.Milliseconds()+w.after.Milliseconds() < 0:
		return fmt.Errorf("join windows: before %v plus after %v is negative; the window would be empty", w.before, w.after)
	case w.grace < 0:
		return fmt.Errorf("join windows: grace %v is negative", w.grace)
	}
	return nil
}

// StreamJoined says how a stream–stream join keeps its state and names its
// parts (Kafka Streams' StreamJoined). The zero value keeps both window
// stores and the shared store of a left or outer join in Pebble, logged,
// with generated names.
type StreamJoined[K, V, VO any] struct {
	// Name names the join's nodes "<Name>-this-windowed",
	// "<Name>-other-windowed", "<Name>-this-join" (an outer join:
	// "-outer-this-join"), "<Name>-other-join" (a left or outer join:
	// "-outer-other-join") and "<Name>-merge", and the repartition topics
	// "<Name>-left-repartition" and "<Name>-right-repartition" of a side
	// whose key changed. Empty: generated names, and repartition topics
	// named after each side's node.
	Name string
	// StoreName names the stores, hence their changelog topics
	// "<application.id>-<store>-changelog": "<StoreName>-this-join-store"
	// and "<StoreName>-other-join-store" (with "outer-" as in the node
	// names), and for a left join "<StoreName>-left-shared-join-store", an
	// outer join "<StoreName>-outer-shared-join-store". Empty: names made
	// from the join nodes' generated names, such as
	// KSTREAM-JOINTHIS-0000000004-store and KSTREAM-OUTERSHARED-0000000004-store,
	// which change when the topology changes.
	StoreName string
	// KeySerde writes keys into the stores (and the repartition topics);
	// nil: the left stream's serde, else the right's, else DefaultSerde.
	KeySerde serde.Serde[K]
	// ValueSerde and OtherValueSerde write the left and right values; nil:
	// each stream's serde, else DefaultSerde.
	ValueSerde      serde.Serde[V]
	OtherValueSerde serde.Serde[VO]
	// InMemory keeps the stores in memory instead of Pebble; they are
	// restored from their changelogs after a restart.
	InMemory bool
	// LoggingDisabled stops backing the stores by changelog topics.
	LoggingDisabled bool
	// LogConfig holds extra changelog topic configs.
	LogConfig map[string]string
}

// WithName returns a copy with the nodes' (and repartition topics') name
// set.
func (s StreamJoined[K, V, VO]) WithName(name string) StreamJoined[K, V, VO] { s.Name = name; return s }

// WithStoreName returns a copy with the stores' name set.
func (s StreamJoined[K, V, VO]) WithStoreName(name string) StreamJoined[K, V, VO] {
	s.StoreName = name
	return s
}
