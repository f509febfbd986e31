package kstream

import (
	"time"

	"github.com/kstreams-go/kstreams/internal/dsl"
	"github.com/kstreams-go/kstreams/internal/topology"
)

// Record is one typed record as a Processor sees and forwards it.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   []Header
}

// PunctuationType selects the clock a punctuator follows.
type PunctuationType = topology.PunctuationType

const (
	// StreamTime punctuators fire as the task's stream time (the highest
	// record timestamp seen) passes each interval; they never fire without
	// input.
	StreamTime = topology.StreamTime
	// WallClockTime punctuators fire on the system clock.
	WallClockTime = topology.WallClockTime
)

// Cancellable stops a scheduled punctuator.
type Cancellable = topology.Cancellable

// ProcessorContext is a user processor's view of its task. KOut and VOut
// are the types it forwards.
type ProcessorContext[KOut, VOut any] interface {
	// Forward sends r to every downstream node.
	Forward(r Record[KOut, VOut])
	// ForwardTo sends r to the named downstream node only.
	ForwardTo(child string, r Record[KOut, VOut])
	// RecordMetadata is the topic, partition and offset of the input record
	// being processed; ok is false inside a punctuator.
	RecordMetadata() (m RecordMetadata, ok bool)
	// TaskID is "<subtopology>_<partition>".
	TaskID() string
	ApplicationID() string
	// StreamTime is the highest record timestamp the task has seen.
	StreamTime() time.Time
	// WallClock is the task's clock (the mock clock in the test driver).
	WallClock() time.Time
	// Schedule runs fn every interval of stream or wall-clock time, with
	// that clock's current time. Stream-time punctuators first fire with
	// the first record and then at multiples of interval.
	Schedule(interval time.Duration, t PunctuationType, fn func(ts time.Time)) Cancellable
	// Store returns a state store connected to this processor, or nil.
	Store(name string) any
}

// Processor is user logic with access to its context: forward any number of
// records, read metadata, schedule punctuators. A new instance is made per
// task by the supplier given to Process, and only that task's goroutine
// calls it.
type Processor[KIn, VIn, KOut, VOut any] interface {
	Init(ctx ProcessorContext[KOut, VOut]) error
	Process(r Record[KIn, VIn]) error
	Close() error
}

// Process runs a user processor on every record. Its output may have any
// key, so a later key-based stateful operator repartitions first.
func Process[K, V, KR, VR any](s *KStream[K, V], supplier func() Processor[K, V, KR, VR], name ...Named) *KStream[KR, VR] {
	n := s.AddProcessor("PROCESSOR", name, func() topology.Processor {
		return &processorAdapter[K, V, KR, VR]{user: supplier()}
	})
	return dsl.NewStream[KR, VR](s.Builder(), n, nil, nil, true)
}

// ProcessValues runs a user processor that may not change keys: every
// record it forwards carries the key of the input record being processed
// (inside a punctuator, the key it set), so no repartition is needed.
func ProcessValues[K, V, VR any](s *KStream[K, V], supplier func() Processor[K, V, K, VR], name ...Named) *KStream[K, VR] {
	n := s.AddProcessor("PROCESSVALUES", name, func() topology.Processor {
		return &processorAdapter[K, V, K, VR]{user: supplier(), fixedKey: true}
	})
	return dsl.NewStream[K, VR](s.Builder(), n, s.KeySerde(), nil, s.KeyChanged())
}

// Stores connects state stores to a processor added by Process or
// ProcessValues (named by its Named or generated name).
func Stores(b *Builder, processor string, stores ...string) {
	b.Fail(b.Topology().ConnectStores(processor, stores...))
}

type processorAdapter[KIn, VIn, KOut, VOut any] struct {
	user     Processor[KIn, VIn, KOut, VOut]
	ctx      topology.Context
	fixedKey bool
	inKey    any
	inTs     int64
	inRecord bool
}

func (p *processorAdapter[KIn, VIn, KOut, VOut]) Init(ctx topology.Context) error {
	p.ctx = ctx
	return p.user.Init(typedContext[KIn, VIn, KOut, VOut]{p})
}

func (p *processorAdapter[KIn, VIn, KOut, VOut]) Process(r topology.Record) error {
	p.inKey, p.inTs, p.inRecord = r.Key, r.Timestamp, true
	err := p.user.Process(Record[KIn, VIn]{
		Key:       dsl.As[KIn](r.Key),
		Value:     dsl.As[VIn](r.Value),
		Timestamp: time.UnixMilli(r.Timestamp),
		Headers:   r.Headers,
	})
	p.inKey, p.inRecord = nil, false
	return err
}

func (p *processorAdapter[KIn, VIn, KOut, VOut]) Close() error { return p.user.Close() }

func (p *processorAdapter[KIn, VIn, KOut, VOut]) untyped(r Record[KOut, VOut]) topology.Record {
	out := topology.Record{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli(), Headers: r.Headers}
	if r.Timestamp.IsZero() {
		// As Kafka Streams: a forwarded record keeps the input record's
		// timestamp; inside a punctuator it takes the stream time.
		if p.inRecord {
			out.Timestamp = p.inTs
		} else {
			out.Timestamp = p.ctx.StreamTime()
		}
	}
	if p.fixedKey && p.inRecord {
		out.Key = p.inKey
	}
	return out
}

type typedContext[KIn, VIn, KOut, VOut any] struct {
	p *processorAdapter[KIn, VIn, KOut, VOut]
}

func (c typedContext[KIn, VIn, KOut, VOut]) Forward(r Record[KOut, VOut]) {
	c.p.ctx.Forward(c.p.untyped(r))
}

func (c typedContext[KIn, VIn, KOut, VOut]) ForwardTo(child string, r Record[KOut, VOut]) {
	c.p.ctx.ForwardTo(child, c.p.untyped(r))
}

func (c typedContext[KIn, VIn, KOut, VOut]) RecordMetadata() (RecordMetadata, bool) {
	return c.p.ctx.Metadata()
}
func (c typedContext[KIn, VIn, KOut, VOut]) TaskID() string        { return c.p.ctx.TaskID() }
func (c typedContext[KIn, VIn, KOut, VOut]) ApplicationID() string { return c.p.ctx.ApplicationID() }
func (c typedContext[KIn, VIn, KOut, VOut]) StreamTime() time.Time {
	return time.UnixMilli(c.p.ctx.StreamTime())
}
func (c typedContext[KIn, VIn, KOut, VOut]) WallClock() time.Time { return c.p.ctx.WallClock() }
func (c typedContext[KIn, VIn, KOut, VOut]) Store(name string) any {
	return c.p.ctx.Store(name)
}

func (c typedContext[KIn, VIn, KOut, VOut]) Schedule(interval time.Duration, t PunctuationType, fn func(time.Time)) Cancellable {
	return c.p.ctx.Schedule(interval, t, func(ts int64) { fn(time.UnixMilli(ts)) })
}
