package topology

import "time"

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is what flows between nodes of a sub-topology. Keys and values are
// already deserialized (boxed in any); only sources and sinks touch bytes.
type Record struct {
	Key       any
	Value     any
	Timestamp int64 // milliseconds since the epoch, as Kafka's record timestamp
	Headers   []Header
}

// Metadata says where the record being processed came from. It is absent
// while a punctuator runs outside any input record.
type Metadata struct {
	Topic     string
	Partition int32
	Offset    int64
}

// PunctuationType selects the clock a punctuator follows.
type PunctuationType int

const (
	// StreamTime punctuators fire as the task's stream time (the highest
	// record timestamp seen) passes each interval.
	StreamTime PunctuationType = iota
	// WallClockTime punctuators fire on the system clock, whether or not
	// records arrive.
	WallClockTime
)

func (p PunctuationType) String() string {
	if p == WallClockTime {
		return "WALL_CLOCK_TIME"
	}
	return "STREAM_TIME"
}

// Cancellable stops a scheduled punctuator.
type Cancellable interface{ Cancel() }

// Context is what a processor node sees of its task while it runs.
type Context interface {
	// Forward sends r to every child of the current node.
	Forward(r Record)
	// ForwardTo sends r to the named child only; an unknown name panics,
	// because it is a topology bug, not a runtime condition.
	ForwardTo(child string, r Record)
	// Metadata of the input record being processed; ok is false inside a
	// punctuator.
	Metadata() (m Metadata, ok bool)
	// TaskID is "<subtopology>_<partition>".
	TaskID() string
	// ApplicationID is the running application's id ("" in a test driver
	// configured without one).
	ApplicationID() string
	// StreamTime is the highest record timestamp the task has seen, or -1.
	StreamTime() int64
	// WallClock is the task's clock (the test driver's mock clock in tests).
	WallClock() time.Time
	// Schedule registers fn to run every interval on the chosen clock.
	Schedule(interval time.Duration, t PunctuationType, fn func(timestamp int64)) Cancellable
	// Store returns the state store of that name attached to this
	// processor, or nil.
	Store(name string) any
}

// Processor is one node's logic. A fresh instance is made per task by the
// node's supplier, so a processor may keep unsynchronised state: only its
// task's goroutine calls it.
type Processor interface {
	Init(ctx Context) error
	Process(r Record) error
	Close() error
}

// ProcessorFunc adapts a plain function to a Processor without Init or Close.
type ProcessorFunc func(ctx Context, r Record) error

// Supplier makes a new processor instance for one task.
type Supplier func() Processor

// Funcs builds a Supplier whose processors call process for each record.
func Funcs(process ProcessorFunc) Supplier {
	return func() Processor { return &funcProcessor{process: process} }
}

type funcProcessor struct {
	ctx     Context
	process ProcessorFunc
}

func (p *funcProcessor) Init(ctx Context) error { p.ctx = ctx; return nil }
func (p *funcProcessor) Process(r Record) error { return p.process(p.ctx, r) }
func (p *funcProcessor) Close() error           { return nil }

// DropRecorder is implemented by contexts that count the records
// processors drop on purpose (a record too late for its window, say), so
// the runtime can report them as a metric. Processors type-assert for it.
type DropRecorder interface {
	RecordDropped(reason string)
}

// RecordDropped tells ctx, when it counts drops, that a record was
// dropped for reason.
func RecordDropped(ctx Context, reason string) {
	if d, ok := ctx.(DropRecorder); ok {
		d.RecordDropped(reason)
	}
}
