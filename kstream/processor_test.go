package kstream_test

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
	"github.com/kstreams-go/kstreams/testutil"
)

// funcProc is a kstream.Processor made of optional functions.
type funcProc[KIn, VIn, KOut, VOut any] struct {
	init    func(ctx kstream.ProcessorContext[KOut, VOut]) error
	process func(ctx kstream.ProcessorContext[KOut, VOut], r kstream.Record[KIn, VIn]) error
	close   func() error

	ctx kstream.ProcessorContext[KOut, VOut]
}

func (p *funcProc[KIn, VIn, KOut, VOut]) Init(ctx kstream.ProcessorContext[KOut, VOut]) error {
	p.ctx = ctx
	if p.init != nil {
		return p.init(ctx)
	}
	return nil
}

func (p *funcProc[KIn, VIn, KOut, VOut]) Process(r kstream.Record[KIn, VIn]) error {
	if p.process != nil {
		return p.process(p.ctx, r)
	}
	return nil
}

func (p *funcProc[KIn, VIn, KOut, VOut]) Close() error {
	if p.close != nil {
		return p.close()
	}
	return nil
}

type strProc = funcProc[string, string, string, string]

// supply returns a supplier that hands out p; the driver runs one task per
// sub-topology, so one instance is enough.
func supply[KIn, VIn, KOut, VOut any](p *funcProc[KIn, VIn, KOut, VOut]) func() kstream.Processor[KIn, VIn, KOut, VOut] {
	return func() kstream.Processor[KIn, VIn, KOut, VOut] { return p }
}

func TestProcessForward(t *testing.T) {
	b := kstream.NewBuilder()
	p := &funcProc[string, string, string, int64]{
		process: func(ctx kstream.ProcessorContext[string, int64], r kstream.Record[string, string]) error {
			// Two outputs per input, with a new key and value type; the
			// second carries no timestamp and keeps the input record's.
			ctx.Forward(kstream.Record[string, int64]{Key: r.Key + "-len", Value: int64(len(r.Value)), Timestamp: r.Timestamp.Add(time.Millisecond)})
			ctx.Forward(kstream.Record[string, int64]{Key: r.Key + "-st", Value: ctx.StreamTime().Sub(t0).Milliseconds()})
			return nil
		},
	}
	kstream.Process(kstream.Stream(b, strStr, "in"), supply(p)).To("out")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")
	out := testutil.OutputTopic(d, "out", serde.String(), serde.Int64())

	in.PipeAt("a", "xyz", at(10))
	in.PipeAt("b", "", at(5)) // late: stream time stays 10

	wantRecs(t, "out", readAll(t, out), []rec[string, int64]{
		{"a-len", 3, 11}, {"a-st", 10, 10},
		{"b-len", 0, 6}, {"b-st", 10, 5},
	})
}

func TestProcessForwardTo(t *testing.T) {
	b := kstream.NewBuilder()
	p := &strProc{
		process: func(ctx kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
			switch r.Value {
			case "left":
				ctx.ForwardTo("to-left", r)
			case "right":
				ctx.ForwardTo("upper-right", r)
			default:
				ctx.Forward(r)
			}
			return nil
		},
	}
	routed := kstream.Process(kstream.Stream(b, strStr, "in"), supply(p), kstream.Named("router"))
	routed.To("left", kstream.Produced[string, string]{Name: "to-left"})
	kstream.MapValues(routed, strings.ToUpper, kstream.Named("upper-right")).To("right")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	in.PipeAt("1", "left", at(1))
	in.PipeAt("2", "right", at(2))
	in.PipeAt("3", "both", at(3))

	wantRecs(t, "left", readAll(t, strOut(d, "left")), []kv{{"1", "left", 1}, {"3", "both", 3}})
	wantRecs(t, "right", readAll(t, strOut(d, "right")), []kv{{"2", "RIGHT", 2}, {"3", "BOTH", 3}})
}

func TestProcessForwardToUnknownChildPanics(t *testing.T) {
	b := kstream.NewBuilder()
	p := &strProc{
		process: func(ctx kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
			ctx.ForwardTo("nope", r)
			return nil
		},
	}
	kstream.Process(kstream.Stream(b, strStr, "in"), supply(p), kstream.Named("p")).To("out")
	d := testutil.NewDriver(t, build(t, b))
	defer func() {
		r := recover()
		if msg := fmt.Sprint(r); !strings.Contains(msg, `node p has no child named "nope"`) {
			t.Errorf("recovered %q, want a panic naming the node and the missing child", msg)
		}
	}()
	strIn(d, "in").Pipe("k", "v")
	t.Error("ForwardTo an unknown child did not panic")
}

func TestProcessContext(t *testing.T) {
	b := kstream.NewBuilder()
	var got []string
	p := &strProc{
		process: func(ctx kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
			m, ok := ctx.RecordMetadata()
			got = append(got, fmt.Sprintf("%v %s-%d@%d task=%s app=%s wall=%v store=%v",
				ok, m.Topic, m.Partition, m.Offset, ctx.TaskID(), ctx.ApplicationID(),
				ctx.WallClock().Sub(t0), ctx.Store("missing")))
			return nil
		},
	}
	kstream.Process(kstream.Stream(b, strStr, "in"), supply(p))
	d := testutil.NewDriver(t, build(t, b), testutil.WithApplicationID("my-app"))
	in := strIn(d, "in")

	in.Pipe("a", "1")
	in.Pipe("b", "2")
	d.AdvanceWallClockTime(time.Second)
	in.Pipe("c", "3")

	want := []string{
		"true in-0@0 task=0_0 app=my-app wall=0s store=<nil>",
		"true in-0@1 task=0_0 app=my-app wall=0s store=<nil>",
		"true in-0@2 task=0_0 app=my-app wall=1s store=<nil>",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("processor saw\n %q\nwant\n %q", got, want)
	}
}

func TestHeadersPassThrough(t *testing.T) {
	b := kstream.NewBuilder()
	var seen [][]kstream.Header
	p := &strProc{
		process: func(ctx kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
			seen = append(seen, r.Headers)
			ctx.Forward(r)
			return nil
		},
	}
	s := kstream.Stream(b, strStr, "in").Filter(func(string, string) bool { return true })
	s = kstream.MapValues(kstream.Process(s, supply(p)), strings.ToUpper)
	s.To("out")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	hs := []kstream.Header{{Key: "trace", Value: []byte("abc")}, {Key: "empty", Value: nil}}
	in.PipeRecord(testutil.TestRecord[string, string]{Key: "k", Value: "v", Headers: hs, Timestamp: at(1)})
	in.PipeAt("k2", "v2", at(2))

	if want := [][]kstream.Header{hs, nil}; !reflect.DeepEqual(seen, want) {
		t.Errorf("processor saw headers %+v, want %+v", seen, want)
	}
	recs := strOut(d, "out").ReadRecords()
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	if !reflect.DeepEqual(recs[0].Headers, hs) || recs[0].Value != "V" {
		t.Errorf("record 0 = %+v, want value V with headers %+v", recs[0], hs)
	}
	if len(recs[1].Headers) != 0 {
		t.Errorf("record 1 headers = %+v, want none", recs[1].Headers)
	}
}

func TestProcessCloseOnDriverClose(t *testing.T) {
	b := kstream.NewBuilder()
	var closed []string
	mk := func(name string) *strProc {
		return &strProc{
			process: func(ctx kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
				ctx.Forward(r)
				return nil
			},
			close: func() error { closed = append(closed, name); return nil },
		}
	}
	s := kstream.Process(kstream.Stream(b, strStr, "in"), supply(mk("first")))
	kstream.Process(s, supply(mk("second"))).To("out")
	d := testutil.NewDriver(t, build(t, b))
	strIn(d, "in").Pipe("k", "v")
	if len(closed) != 0 {
		t.Fatalf("closed %q before Close", closed)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"second", "first"}; !reflect.DeepEqual(closed, want) {
		t.Errorf("closed %q, want %q (children first)", closed, want)
	}
	if err := d.Close(); err != nil || len(closed) != 2 {
		t.Errorf("second Close: %v, closed %q; want no error and no second close", err, closed)
	}
}

// fatalTB records the message of Fatalf and ends the goroutine, as
// testing.T does, so a test can check how NewDriver fails.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalMessage runs fn with a fatalTB on its own goroutine and returns the
// Fatalf message, or "" when fn returned normally.
func fatalMessage(t *testing.T, fn func(tb testing.TB)) string {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.msg
}

func TestProcessInitError(t *testing.T) {
	b := kstream.NewBuilder()
	var closed []string
	first := &strProc{close: func() error { closed = append(closed, "first"); return nil }}
	second := &strProc{
		init:  func(kstream.ProcessorContext[string, string]) error { return errBoom },
		close: func() error { closed = append(closed, "second"); return nil },
	}
	s := kstream.Process(kstream.Stream(b, strStr, "in"), supply(first), kstream.Named("first"))
	kstream.Process(s, supply(second), kstream.Named("second"))
	topo := build(t, b)

	msg := fatalMessage(t, func(tb testing.TB) { testutil.NewDriver(tb, topo) })
	if want := "task 0_0: init second: boom"; !strings.Contains(msg, want) {
		t.Errorf("NewDriver failed with %q, want it to contain %q", msg, want)
	}
	if want := []string{"first"}; !reflect.DeepEqual(closed, want) {
		t.Errorf("closed %q, want %q: processors already initialised are closed, the failed one is not", closed, want)
	}
}

// tickProc forwards its input and, on every punctuation, a "tick" record
// whose value is the punctuation time (ms after t0).
func tickProc(interval time.Duration, pt kstream.PunctuationType, fired *[]int64, cancelAfter int) *strProc {
	return &strProc{
		init: func(ctx kstream.ProcessorContext[string, string]) error {
			var c kstream.Cancellable
			c = ctx.Schedule(interval, pt, func(ts time.Time) {
				ms := ts.Sub(t0).Milliseconds()
				*fired = append(*fired, ms)
				if _, ok := ctx.RecordMetadata(); ok {
					panic("RecordMetadata inside a punctuator reported ok")
				}
				ctx.Forward(kstream.Record[string, string]{Key: "tick", Value: fmt.Sprint(ms), Timestamp: ts})
				if len(*fired) == cancelAfter {
					c.Cancel()
				}
			})
			return nil
		},
		process: func(ctx kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
			ctx.Forward(r)
			return nil
		},
	}
}

func TestStreamTimePunctuator(t *testing.T) {
	b := kstream.NewBuilder()
	var fired []int64
	kstream.Process(kstream.Stream(b, strStr, "in"), supply(tickProc(10*time.Second, kstream.StreamTime, &fired, 0))).To("out")
	d := testutil.NewDriver(t, build(t, b))
	in, out := strIn(d, "in"), strOut(d, "out")

	d.AdvanceWallClockTime(time.Hour) // wall time does not move stream time
	for _, ms := range []int64{1000, 5000, 10000, 3000, 65000, 70000} {
		in.PipeAt("k", fmt.Sprint(ms), at(ms))
	}

	// First record, then each multiple of 10s passed; the jump from 10s to
	// 65s fires once.
	if want := []int64{1000, 10000, 65000, 70000}; !reflect.DeepEqual(fired, want) {
		t.Errorf("fired at %v, want %v", fired, want)
	}
	// A punctuation runs after the record that moved stream time.
	wantRecs(t, "out", readAll(t, out), []kv{
		{"k", "1000", 1000}, {"tick", "1000", 1000},
		{"k", "5000", 5000},
		{"k", "10000", 10000}, {"tick", "10000", 10000},
		{"k", "3000", 3000},
		{"k", "65000", 65000}, {"tick", "65000", 65000},
		{"k", "70000", 70000}, {"tick", "70000", 70000},
	})
}

func TestStreamTimePunctuatorCancel(t *testing.T) {
	b := kstream.NewBuilder()
	var fired []int64
	kstream.Process(kstream.Stream(b, strStr, "in"), supply(tickProc(time.Second, kstream.StreamTime, &fired, 2))).To("out")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	for _, ms := range []int64{0, 1000, 2000, 3000} {
		in.PipeAt("k", "v", at(ms))
	}

	if want := []int64{0, 1000}; !reflect.DeepEqual(fired, want) {
		t.Errorf("fired at %v, want %v (cancelled after two)", fired, want)
	}
}

func TestWallClockPunctuator(t *testing.T) {
	b := kstream.NewBuilder()
	var fired []int64
	var cancel kstream.Cancellable
	p := &strProc{
		init: func(ctx kstream.ProcessorContext[string, string]) error {
			cancel = ctx.Schedule(time.Minute, kstream.WallClockTime, func(ts time.Time) {
				if !ts.Equal(ctx.WallClock()) {
					panic(fmt.Sprintf("punctuated with %v, wall clock is %v", ts, ctx.WallClock()))
				}
				ms := ts.Sub(t0).Milliseconds()
				fired = append(fired, ms)
				ctx.Forward(kstream.Record[string, string]{Key: "tick", Value: fmt.Sprint(ms), Timestamp: ts})
			})
			return nil
		},
		process: func(ctx kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
			ctx.Forward(r)
			return nil
		},
	}
	kstream.Process(kstream.Stream(b, strStr, "in"), supply(p)).To("out")
	d := testutil.NewDriver(t, build(t, b))
	out := strOut(d, "out")

	strIn(d, "in").PipeAt("k", "v", at(500_000)) // stream time does not fire wall-clock punctuators
	d.AdvanceWallClockTime(30 * time.Second)
	if len(fired) != 0 {
		t.Fatalf("fired at %v before the first minute", fired)
	}
	d.AdvanceWallClockTime(30 * time.Second) // 1m
	d.AdvanceWallClockTime(5 * time.Minute)  // 6m: fires once
	d.AdvanceWallClockTime(time.Minute)      // 7m
	cancel.Cancel()
	d.AdvanceWallClockTime(10 * time.Minute)

	if want := []int64{60_000, 360_000, 420_000}; !reflect.DeepEqual(fired, want) {
		t.Errorf("fired at %v, want %v", fired, want)
	}
	wantRecs(t, "out", readAll(t, out), []kv{
		{"k", "v", 500_000},
		{"tick", "60000", 60_000}, {"tick", "360000", 360_000}, {"tick", "420000", 420_000},
	})
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestPunctuatorError(t *testing.T) {
	b := kstream.NewBuilder()
	p := &strProc{
		init: func(ctx kstream.ProcessorContext[string, string]) error {
			ctx.Schedule(time.Second, kstream.WallClockTime, func(time.Time) {
				ctx.Forward(kstream.Record[string, string]{Key: "k", Value: "bad", Timestamp: t0})
			})
			return nil
		},
	}
	s := kstream.Process(kstream.Stream(b, strStr, "in"), supply(p), kstream.Named("ticker"))
	kstream.Process(s, supply(&strProc{
		process: func(_ kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
			return fmt.Errorf("refused %q: %w", r.Value, errBoom)
		},
	}), kstream.Named("refuser"))
	d := testutil.NewDriver(t, build(t, b))

	d.AdvanceWallClockTime(time.Second)

	err := d.Err()
	if err == nil {
		t.Fatal("Err() = nil, want the downstream error")
	}
	for _, s := range []string{"punctuator of ticker", "node refuser", "boom"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestProcessValuesKeepsKey(t *testing.T) {
	b := kstream.NewBuilder()
	p := &funcProc[string, string, string, int64]{
		init: func(ctx kstream.ProcessorContext[string, int64]) error {
			// Inside a punctuator there is no input key: the key set is kept.
			ctx.Schedule(time.Hour, kstream.StreamTime, func(ts time.Time) {
				ctx.Forward(kstream.Record[string, int64]{Key: "from-punctuator", Value: -1, Timestamp: ts})
			})
			return nil
		},
		process: func(ctx kstream.ProcessorContext[string, int64], r kstream.Record[string, string]) error {
			ctx.Forward(kstream.Record[string, int64]{Key: "ignored", Value: int64(len(r.Value)), Timestamp: r.Timestamp})
			return nil
		},
	}
	kstream.ProcessValues(kstream.Stream(b, strStr, "in"), supply(p)).To("out")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")
	out := testutil.OutputTopic(d, "out", serde.String(), serde.Int64())

	in.PipeAt("a", "xyz", at(1))
	in.PipeAt("b", "hi", at(2))

	wantRecs(t, "out", readAll(t, out), []rec[string, int64]{
		{"a", 3, 1}, {"from-punctuator", -1, 1},
		{"b", 2, 2},
	})
}

// TestProcessorStateStore: a user processor keeps a running count per key
// in a store declared with AddStateStore, through a typed view.
func TestProcessorStateStore(t *testing.T) {
	b := kstream.NewBuilder()
	var counts *state.KeyValueView[string, int64]
	p := &funcProc[string, string, string, int64]{
		init: func(ctx kstream.ProcessorContext[string, int64]) error {
			kv, ok := ctx.Store("seen").(state.KeyValueStore)
			if !ok {
				return fmt.Errorf("store seen: got %T", ctx.Store("seen"))
			}
			counts = state.Typed(kv, serde.String(), serde.Int64())
			return nil
		},
		process: func(ctx kstream.ProcessorContext[string, int64], r kstream.Record[string, string]) error {
			n, _, err := counts.Get(r.Key)
			if err != nil {
				return err
			}
			n++
			if err := counts.Put(r.Key, n); err != nil {
				return err
			}
			ctx.Forward(kstream.Record[string, int64]{Key: r.Key, Value: n})
			return nil
		},
	}
	kstream.Process(kstream.Stream(b, strStr, "in"), supply(p), kstream.Named("counter")).
		To("out", kstream.ProducedWith(serde.String(), serde.Int64()))
	kstream.AddStateStore(b, kstream.StoreSpec{Name: "seen"}, "counter")
	topo := build(t, b)
	if got := topo.Describe(); !strings.Contains(got, "Processor: counter (stores: [seen])") {
		t.Errorf("Describe() does not list the store:\n%s", got)
	}

	d := testutil.NewDriver(t, topo)
	in := strIn(d, "in")
	in.PipeAt("a", "x", at(1))
	in.PipeAt("b", "x", at(2))
	in.PipeAt("a", "x", at(3))
	out := testutil.OutputTopic(d, "out", serde.String(), serde.Int64())
	wantRecs(t, "out", readAll(t, out), []rec[string, int64]{{"a", 1, 1}, {"b", 1, 2}, {"a", 2, 3}})
	// Logged by default (as Kafka Streams' store builders), not cached:
	// every write reaches the changelog.
	changelog := testutil.OutputTopic(d, "test-app-seen-changelog", serde.String(), serde.Int64())
	wantRecs(t, "changelog", readAll(t, changelog), []rec[string, int64]{{"a", 1, 1}, {"b", 1, 2}, {"a", 2, 3}})
	view := testutil.StoreView(d, "seen", serde.String(), serde.Int64())
	if n, ok, err := view.Get("a"); err != nil || !ok || n != 2 {
		t.Errorf("store seen[a] = %d, %v, %v; want 2", n, ok, err)
	}
	if s := testutil.KeyValueStore(d, "nope"); s != nil {
		t.Errorf("KeyValueStore(nope) = %v, want nil", s)
	}
}

func TestAddStateStoreUnknownProcessor(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Stream(b, strStr, "in").To("out")
	kstream.AddStateStore(b, kstream.StoreSpec{Name: "s"}, "nope")
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), `"nope" is not a processor`) {
		t.Errorf("Build() = %v, want an error naming the processor", err)
	}
}
