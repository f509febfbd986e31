package task_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
)

var errBad = errors.New("bad value")

func strDe(_ string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if string(b) == "undecodable" {
		return nil, errors.New("cannot decode")
	}
	return string(b), nil
}

func strSer(_ string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return []byte(v.(string)), nil
}

type sent struct {
	Topic     string
	Partition int32
	Key       string
	Value     string
	TS        int64
}

type collector struct{ sent []sent }

func (c *collector) Send(topic string, partition int32, key, value []byte, _ []topology.Header, ts int64) error {
	c.sent = append(c.sent, sent{topic, partition, string(key), string(value), ts})
	return nil
}

func (c *collector) Partitions(string) (int32, bool) { return 1, true }

// recorder logs every record it sees as "topic@offset ts=T st=S" (stream
// time included), fails on the value "bad" and forwards the rest.
type recorder struct {
	ctx    topology.Context
	log    *[]string
	closed *[]string
	name   string
}

func (r *recorder) Init(ctx topology.Context) error { r.ctx = ctx; return nil }

func (r *recorder) Process(rec topology.Record) error {
	m, _ := r.ctx.Metadata()
	*r.log = append(*r.log, fmt.Sprintf("%s@%d ts=%d st=%d", m.Topic, m.Offset, rec.Timestamp, r.ctx.StreamTime()))
	if rec.Value == "bad" {
		return errBad
	}
	r.ctx.Forward(rec)
	return nil
}

func (r *recorder) Close() error {
	if r.closed != nil {
		*r.closed = append(*r.closed, r.name)
	}
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	task *task.Task
	coll *collector
	log  []string
}

// newFixture runs src(a, b) -> rec -> sink(out) as task 0_3.
func newFixture(t *testing.T, onDeser task.DeserializationHandler) *fixture {
	t.Helper()
	f := &fixture{coll: &collector{}}
	topo := topology.New()
	must(t, topo.AddSource("src", topology.SourceSpec{Topics: []string{"b", "a"}, KeyDeserializer: strDe, ValueDeserializer: strDe}))
	must(t, topo.AddProcessor("rec", func() topology.Processor { return &recorder{log: &f.log} }, "src"))
	must(t, topo.AddSink("sink", topology.SinkSpec{Topic: "out", KeySerializer: strSer, ValueSerializer: strSer}, "rec"))
	c, err := topology.Compile(topo, "app")
	must(t, err)
	f.task, err = task.New(task.Config{
		ID:                     task.ID{Subtopology: 0, Partition: 3},
		ApplicationID:          "app",
		Subtopology:            c.Subtopologies[0],
		Collector:              f.coll,
		OnDeserializationError: onDeser,
	})
	must(t, err)
	t.Cleanup(func() { must(t, f.task.Close()) })
	return f
}

func record(topic string, offset, ts int64, value string) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: 3, Offset: offset, Key: []byte("k"), Value: []byte(value), Timestamp: time.UnixMilli(ts)}
}

// drain processes every queued record and returns the first error.
func (f *fixture) drain(t *testing.T) error {
	t.Helper()
	for i := 0; ; i++ {
		ok, err := f.task.Process()
		if err != nil || !ok {
			return err
		}
		if i > 1000 {
			t.Fatal("Process never reported an empty queue")
		}
	}
}

func tp(topic string) task.TopicPartition { return task.TopicPartition{Topic: topic, Partition: 3} }

func TestLowestTimestampFirst(t *testing.T) {
	f := newFixture(t, nil)
	if got, want := f.task.Partitions(), []task.TopicPartition{tp("a"), tp("b")}; !reflect.DeepEqual(got, want) {
		t.Errorf("Partitions() = %v, want %v", got, want)
	}
	if st := f.task.StreamTime(); st != -1 {
		t.Errorf("StreamTime() before any record = %d, want -1", st)
	}
	must(t, f.task.Add(record("a", 0, 10, "a0"), record("a", 1, 50, "a1"), record("a", 2, 5, "a2")))
	must(t, f.task.Add(record("b", 0, 20, "b0"), record("b", 1, 40, "b1"), record("b", 2, 50, "b2")))
	if n := f.task.BufferedTotal(); n != 6 {
		t.Errorf("BufferedTotal() = %d, want 6", n)
	}
	if n := f.task.Buffered(tp("b")); n != 3 {
		t.Errorf("Buffered(b) = %d, want 3", n)
	}
	if n := f.task.Buffered(tp("c")); n != 0 {
		t.Errorf("Buffered(c) = %d, want 0", n)
	}

	must(t, f.drain(t))

	// Heads compared by timestamp; a partition's own order is kept (a2 at
	// ts 5 waits behind a1), a tie goes to the first topic in name order,
	// and stream time never goes back.
	want := []string{
		"a@0 ts=10 st=10",
		"b@0 ts=20 st=20",
		"b@1 ts=40 st=40",
		"a@1 ts=50 st=50",
		"a@2 ts=5 st=50",
		"b@2 ts=50 st=50",
	}
	if !reflect.DeepEqual(f.log, want) {
		t.Errorf("processing order\n %q\nwant\n %q", f.log, want)
	}
	if st := f.task.StreamTime(); st != 50 {
		t.Errorf("StreamTime() = %d, want 50", st)
	}
	if got, want := f.task.Positions(), map[task.TopicPartition]int64{tp("a"): 3, tp("b"): 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("Positions() = %v, want %v", got, want)
	}
	wantSent := []sent{
		{"out", -1, "k", "a0", 10}, {"out", -1, "k", "b0", 20}, {"out", -1, "k", "b1", 40},
		{"out", -1, "k", "a1", 50}, {"out", -1, "k", "a2", 5}, {"out", -1, "k", "b2", 50},
	}
	if !reflect.DeepEqual(f.coll.sent, wantSent) {
		t.Errorf("sent %+v, want %+v", f.coll.sent, wantSent)
	}
}

func TestPositionsOnlyWithProgress(t *testing.T) {
	f := newFixture(t, nil)
	if got := f.task.Positions(); len(got) != 0 {
		t.Errorf("Positions() before processing = %v, want empty", got)
	}
	must(t, f.task.Add(record("a", 7, 1, "x"), record("a", 9, 2, "y"))) // offsets may have gaps (compaction)
	if ok, err := f.task.Process(); !ok || err != nil {
		t.Fatalf("Process() = %v, %v", ok, err)
	}
	if got, want := f.task.Positions(), map[task.TopicPartition]int64{tp("a"): 8}; !reflect.DeepEqual(got, want) {
		t.Errorf("Positions() = %v, want %v", got, want)
	}
	must(t, f.drain(t))
	if got, want := f.task.Positions(), map[task.TopicPartition]int64{tp("a"): 10}; !reflect.DeepEqual(got, want) {
		t.Errorf("Positions() = %v, want %v", got, want)
	}
	if ok, err := f.task.Process(); ok || err != nil {
		t.Errorf("Process() on empty queues = %v, %v; want false, nil", ok, err)
	}
}

func TestAddDropsRedelivered(t *testing.T) {
	f := newFixture(t, nil)
	must(t, f.task.Add(record("a", 0, 1, "a0"), record("a", 1, 2, "a1")))
	if _, err := f.task.Process(); err != nil {
		t.Fatal(err)
	}
	// A re-delivered fetch overlaps both what was processed (a0) and what is
	// still queued (a1).
	must(t, f.task.Add(record("a", 0, 1, "a0"), record("a", 1, 2, "a1"), record("a", 2, 3, "a2")))
	if n := f.task.Buffered(tp("a")); n != 2 {
		t.Errorf("Buffered(a) = %d, want 2 (a1, a2)", n)
	}
	must(t, f.drain(t))
	must(t, f.task.Add(record("a", 1, 2, "a1"), record("a", 2, 3, "a2")))
	if n := f.task.BufferedTotal(); n != 0 {
		t.Errorf("BufferedTotal() after re-adding processed offsets = %d, want 0", n)
	}
	want := []string{"a@0 ts=1 st=1", "a@1 ts=2 st=2", "a@2 ts=3 st=3"}
	if !reflect.DeepEqual(f.log, want) {
		t.Errorf("processed %q, want each offset once: %q", f.log, want)
	}

	err := f.task.Add(&kgo.Record{Topic: "a", Partition: 4, Offset: 0})
	if err == nil || !strings.Contains(err.Error(), "a-4") || !strings.Contains(err.Error(), "task 0_3") {
		t.Errorf("Add from a foreign partition = %v, want an error naming task 0_3 and a-4", err)
	}
}

func TestFailedRecordNotInPositions(t *testing.T) {
	f := newFixture(t, nil)
	must(t, f.task.Add(record("a", 0, 1, "ok"), record("a", 1, 2, "bad"), record("a", 2, 3, "later")))

	err := f.drain(t)
	var ne *task.NodeError
	if !errors.As(err, &ne) {
		t.Fatalf("drain() = %v (%T), want a *task.NodeError", err, err)
	}
	if !errors.Is(err, errBad) {
		t.Errorf("error %v does not wrap errBad", err)
	}
	wantNE := task.NodeError{Task: task.ID{Subtopology: 0, Partition: 3}, Node: "rec", Meta: topology.Metadata{Topic: "a", Partition: 3, Offset: 1}, HasMeta: true, Err: errBad}
	if *ne != wantNE {
		t.Errorf("NodeError = %+v, want %+v", *ne, wantNE)
	}
	if want := "task 0_3: node rec: record at topic a partition 3 offset 1: bad value"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if got, want := f.task.Positions(), map[task.TopicPartition]int64{tp("a"): 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("Positions() = %v, want %v: the failed offset must not be committed", got, want)
	}
}

func TestDeserializationErrors(t *testing.T) {
	t.Run("default handler fails", func(t *testing.T) {
		f := newFixture(t, nil)
		must(t, f.task.Add(record("a", 0, 1, "ok"), record("a", 1, 2, "undecodable")))
		err := f.drain(t)
		var de *task.DeserializationError
		if !errors.As(err, &de) || de.IsKey || de.Record.Offset != 1 {
			t.Fatalf("drain() = %v, want a value DeserializationError at offset 1", err)
		}
		if want := "task 0_3: deserialize value of record at topic a partition 3 offset 1: cannot decode"; err.Error() != want {
			t.Errorf("Error() = %q, want %q", err, want)
		}
		if got, want := f.task.Positions(), map[task.TopicPartition]int64{tp("a"): 1}; !reflect.DeepEqual(got, want) {
			t.Errorf("Positions() = %v, want %v", got, want)
		}
	})
	t.Run("skipping handler", func(t *testing.T) {
		var skipped []int64
		f := newFixture(t, func(e *task.DeserializationError) error {
			skipped = append(skipped, e.Record.Offset)
			return nil
		})
		must(t, f.task.Add(record("a", 0, 1, "undecodable"), record("a", 1, 2, "ok")))
		must(t, f.drain(t))
		if !reflect.DeepEqual(skipped, []int64{0}) {
			t.Errorf("skipped %v, want [0]", skipped)
		}
		if want := []string{"a@1 ts=2 st=2"}; !reflect.DeepEqual(f.log, want) {
			t.Errorf("processed %q, want %q", f.log, want)
		}
		if got, want := f.task.Positions(), map[task.TopicPartition]int64{tp("a"): 2}; !reflect.DeepEqual(got, want) {
			t.Errorf("Positions() = %v, want %v: a skipped record counts as consumed", got, want)
		}
	})
}

// TestForwardToAndClose builds src -> router -> {left, right} -> sinks and
// checks that ForwardTo reaches one child only and that Close runs
// children first.
func TestForwardToAndClose(t *testing.T) {
	var closed, log []string
	topo := topology.New()
	must(t, topo.AddSource("src", topology.SourceSpec{Topics: []string{"in"}, KeyDeserializer: strDe, ValueDeserializer: strDe}))
	must(t, topo.AddProcessor("router", topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		ctx.ForwardTo(r.Value.(string), r)
		return nil
	}), "src"))
	for _, side := range []string{"left", "right"} {
		must(t, topo.AddProcessor(side, func() topology.Processor {
			return &recorder{log: &log, closed: &closed, name: side}
		}, "router"))
		must(t, topo.AddSink(side+"-sink", topology.SinkSpec{Topic: side, KeySerializer: strSer, ValueSerializer: strSer}, side))
	}
	c, err := topology.Compile(topo, "")
	must(t, err)
	coll := &collector{}
	tk, err := task.New(task.Config{ID: task.ID{Partition: 0}, Subtopology: c.Subtopologies[0], Collector: coll})
	must(t, err)

	in := func(offset int64, v string) *kgo.Record {
		return &kgo.Record{Topic: "in", Offset: offset, Key: []byte("k"), Value: []byte(v), Timestamp: time.UnixMilli(offset)}
	}
	must(t, tk.Add(in(0, "right"), in(1, "left"), in(2, "right")))
	for {
		ok, err := tk.Process()
		must(t, err)
		if !ok {
			break
		}
	}
	want := []sent{{"right", -1, "k", "right", 0}, {"left", -1, "k", "left", 1}, {"right", -1, "k", "right", 2}}
	if !reflect.DeepEqual(coll.sent, want) {
		t.Errorf("sent %+v, want %+v", coll.sent, want)
	}

	must(t, tk.Close())
	if want := []string{"right", "left"}; !reflect.DeepEqual(closed, want) {
		t.Errorf("closed %q, want %q (reverse insertion order)", closed, want)
	}
	must(t, tk.Close())
	if len(closed) != 2 {
		t.Errorf("second Close closed again: %q", closed)
	}
}

func TestWallClockPunctuation(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	var fired []int64
	var cancel topology.Cancellable
	topo := topology.New()
	must(t, topo.AddSource("src", topology.SourceSpec{Topics: []string{"in"}, KeyDeserializer: strDe, ValueDeserializer: strDe}))
	must(t, topo.AddProcessor("p", func() topology.Processor {
		return &initProc{init: func(ctx topology.Context) {
			cancel = ctx.Schedule(time.Second, topology.WallClockTime, func(ts int64) { fired = append(fired, ts) })
		}}
	}, "src"))
	c, err := topology.Compile(topo, "")
	must(t, err)
	tk, err := task.New(task.Config{Subtopology: c.Subtopologies[0], Collector: &collector{}, Clock: func() time.Time { return now }})
	must(t, err)
	defer tk.Close()

	if next, ok := tk.NextWallClockPunctuation(); !ok || next != 1_001_000 {
		t.Errorf("NextWallClockPunctuation() = %d, %v; want 1001000, true", next, ok)
	}
	must(t, tk.PunctuateWallClock())
	now = now.Add(time.Second)
	must(t, tk.PunctuateWallClock())
	now = now.Add(3500 * time.Millisecond) // 1004500: several intervals missed, fires once
	must(t, tk.PunctuateWallClock())
	if next, ok := tk.NextWallClockPunctuation(); !ok || next != 1_005_000 {
		t.Errorf("NextWallClockPunctuation() = %d, %v; want 1005000, true", next, ok)
	}
	cancel.Cancel()
	if _, ok := tk.NextWallClockPunctuation(); ok {
		t.Error("NextWallClockPunctuation() reports a cancelled punctuator")
	}
	now = now.Add(time.Hour)
	must(t, tk.PunctuateWallClock())
	if want := []int64{1_001_000, 1_004_500}; !reflect.DeepEqual(fired, want) {
		t.Errorf("fired at %v, want %v", fired, want)
	}
}

type initProc struct{ init func(ctx topology.Context) }

func (p *initProc) Init(ctx topology.Context) error { p.init(ctx); return nil }
func (p *initProc) Process(topology.Record) error   { return nil }
func (p *initProc) Close() error                    { return nil }

func TestParseID(t *testing.T) {
	id := task.ID{Subtopology: 2, Partition: 17}
	if s := id.String(); s != "2_17" {
		t.Errorf("String() = %q, want 2_17", s)
	}
	got, err := task.ParseID("2_17")
	if err != nil || got != id {
		t.Errorf("ParseID(2_17) = %v, %v; want %v", got, err, id)
	}
	if _, err := task.ParseID("x_1"); err == nil {
		t.Error("ParseID(x_1): want an error")
	}
}

// With a timestamp extractor, records are ordered by the extracted event
// time, not by the Kafka record timestamp.
func TestOrderByExtractedTimestamp(t *testing.T) {
	var log []string
	topo := topology.New()
	// The value holds the event time.
	extract := func(_ topology.Metadata, _, value any, _ int64) int64 {
		var ts int64
		fmt.Sscan(value.(string), &ts)
		return ts
	}
	must(t, topo.AddSource("src", topology.SourceSpec{Topics: []string{"a", "b"}, KeyDeserializer: strDe, ValueDeserializer: strDe, TimestampExtractor: extract}))
	must(t, topo.AddProcessor("rec", func() topology.Processor { return &recorder{log: &log} }, "src"))
	c, err := topology.Compile(topo, "app")
	must(t, err)
	tk, err := task.New(task.Config{ID: task.ID{Partition: 3}, Subtopology: c.Subtopologies[0], Collector: &collector{}})
	must(t, err)
	defer tk.Close()
	// a: Kafka ts 10, event time 100; b: Kafka ts 20, event time 50.
	must(t, tk.Add(record("a", 0, 10, "100"), record("b", 0, 20, "50")))
	for {
		ok, err := tk.Process()
		must(t, err)
		if !ok {
			break
		}
	}
	want := []string{"b@0 ts=50 st=50", "a@0 ts=100 st=100"}
	if fmt.Sprint(log) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", log, want)
	}
}
