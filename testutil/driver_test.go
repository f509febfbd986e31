package testutil

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// strDe reads bytes as a string; nil (a tombstone) stays nil.
func strDe(_ string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	return string(b), nil
}

// strSer writes a string's bytes; nil stays nil.
func strSer(_ string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return []byte(v.(string)), nil
}

func source(topics ...string) topology.SourceSpec {
	return topology.SourceSpec{Topics: topics, KeyDeserializer: strDe, ValueDeserializer: strDe}
}

func sink(topic string) topology.SinkSpec {
	return topology.SinkSpec{Topic: topic, KeySerializer: strSer, ValueSerializer: strSer}
}

// upper forwards the record with its value in upper case.
var upper = topology.Funcs(func(ctx topology.Context, r topology.Record) error {
	if s, ok := r.Value.(string); ok {
		r.Value = strings.ToUpper(s)
	}
	ctx.Forward(r)
	return nil
})

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// upperTopology is in -> upper -> out.
func upperTopology(t *testing.T) *topology.Topology {
	topo := topology.New()
	must(t, topo.AddSource("src", source("in")))
	must(t, topo.AddProcessor("upper", upper, "src"))
	must(t, topo.AddSink("sink", sink("out"), "upper"))
	return topo
}

func strIn(d *Driver, topic string) *TestInputTopic[string, string] {
	return InputTopic(d, topic, serde.String(), serde.String())
}

func strOut(d *Driver, topic string) *TestOutputTopic[string, string] {
	return OutputTopic(d, topic, serde.String(), serde.String())
}

func TestPipeAndRead(t *testing.T) {
	start := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	d := NewDriver(t, upperTopology(t), WithStartTime(start))
	in, out := strIn(d, "in"), strOut(d, "out")

	in.Pipe("k1", "hello")
	in.PipeAt("k2", "world", start.Add(time.Minute))
	hdrs := []topology.Header{{Key: "trace", Value: []byte("abc")}}
	in.PipeRecord(TestRecord[string, string]{Key: "k3", Value: "with headers", Headers: hdrs})

	if got := out.Size(); got != 3 {
		t.Fatalf("Size = %d, want 3", got)
	}
	r, ok := out.ReadRecord()
	if !ok {
		t.Fatal("ReadRecord: no record")
	}
	if r.Key != "k1" || r.Value != "HELLO" || !r.Timestamp.Equal(start) || r.Topic != "out" || r.Tombstone {
		t.Errorf("first record = %+v, want k1/HELLO at %v on out", r, start)
	}
	r, _ = out.ReadRecord()
	if !r.Timestamp.Equal(start.Add(time.Minute)) {
		t.Errorf("PipeAt timestamp: got %v, want %v", r.Timestamp, start.Add(time.Minute))
	}
	r, _ = out.ReadRecord()
	if !reflect.DeepEqual(r.Headers, hdrs) {
		t.Errorf("headers: got %v, want %v", r.Headers, hdrs)
	}
	if !r.Timestamp.Equal(start) {
		t.Errorf("PipeRecord with zero timestamp: got %v, want the wall clock %v", r.Timestamp, start)
	}
	if _, ok := out.ReadRecord(); ok || !out.IsEmpty() {
		t.Error("topic not empty after reading everything")
	}
	if got := d.Produced("out"); got != 3 {
		t.Errorf("Produced = %d, want 3 (read records still count)", got)
	}

	in.Pipe("a", "x")
	in.Pipe("b", "y")
	if got, want := out.ReadKeyValues(), []KeyValue[string, string]{{"a", "X"}, {"b", "Y"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("ReadKeyValues = %v, want %v", got, want)
	}
	in.Pipe("c", "z")
	if got, want := out.ReadValues(), []string{"Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ReadValues = %v, want %v", got, want)
	}
	if err := d.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
}

func TestTombstone(t *testing.T) {
	d := NewDriver(t, upperTopology(t))
	in, out := strIn(d, "in"), strOut(d, "out")
	in.PipeTombstone("gone")
	in.Pipe("here", "")
	recs := out.ReadRecords()
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	if r := recs[0]; !r.Tombstone || r.Key != "gone" || r.Value != "" {
		t.Errorf("tombstone read back as %+v", r)
	}
	if r := recs[1]; r.Tombstone {
		t.Errorf("empty string read back as a tombstone: %+v", r)
	}
}

// rekey sets the key to the value.
var rekey = topology.Funcs(func(ctx topology.Context, r topology.Record) error {
	r.Key = r.Value
	ctx.Forward(r)
	return nil
})

// TestInternalTopic runs in -> rekey -> repartition topic -> upper -> out:
// two sub-topologies joined through an internal topic the driver feeds back.
func TestInternalTopic(t *testing.T) {
	topo := topology.New()
	must(t, topo.AddInternalTopic(topology.InternalTopic{Name: "rekey-repartition", Partitions: 1}))
	must(t, topo.AddSource("src", source("in")))
	must(t, topo.AddProcessor("rekey", rekey, "src"))
	must(t, topo.AddSink("to-repartition", sink("rekey-repartition"), "rekey"))
	must(t, topo.AddSource("from-repartition", source("rekey-repartition")))
	must(t, topo.AddProcessor("upper", upper, "from-repartition"))
	must(t, topo.AddSink("sink", sink("out"), "upper"))

	d := NewDriver(t, topo, WithApplicationID("my-app"))
	in, out := strIn(d, "in"), strOut(d, "out")
	in.Pipe("k", "v1")
	in.Pipe("k", "v2")

	if got, want := out.ReadKeyValues(), []KeyValue[string, string]{{"v1", "V1"}, {"v2", "V2"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("out = %v, want %v", got, want)
	}
	rp := strOut(d, "my-app-rekey-repartition")
	if got, want := rp.ReadKeyValues(), []KeyValue[string, string]{{"v1", "v1"}, {"v2", "v2"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("repartition topic = %v, want %v", got, want)
	}
	if got := d.Produced("my-app-rekey-repartition"); got != 2 {
		t.Errorf("Produced(repartition) = %d, want 2", got)
	}
	if err := d.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
}

// TestDepthFirst checks that everything a record causes through internal
// topics is processed before the next record of the same task: in -> fan
// (two records) -> loop1 -> out and loop2 -> upper -> out.
func TestDepthFirst(t *testing.T) {
	fan := topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		for _, suffix := range []string{"1", "2"} {
			ctx.Forward(topology.Record{Key: r.Key, Value: r.Value.(string) + suffix, Timestamp: r.Timestamp})
		}
		return nil
	})
	topo := topology.New()
	must(t, topo.AddInternalTopic(topology.InternalTopic{Name: "loop1", Partitions: 1}))
	must(t, topo.AddInternalTopic(topology.InternalTopic{Name: "loop2", Partitions: 1}))
	must(t, topo.AddSource("src", source("in")))
	must(t, topo.AddProcessor("fan", fan, "src"))
	must(t, topo.AddSink("to-loop1", sink("loop1"), "fan"))
	must(t, topo.AddSource("from-loop1", source("loop1")))
	must(t, topo.AddSink("direct", sink("out"), "from-loop1"))
	must(t, topo.AddSink("to-loop2", sink("loop2"), "from-loop1"))
	must(t, topo.AddSource("from-loop2", source("loop2")))
	must(t, topo.AddProcessor("upper", upper, "from-loop2"))
	must(t, topo.AddSink("via-loop2", sink("out"), "upper"))

	d := NewDriver(t, topo)
	in, out := strIn(d, "in"), strOut(d, "out")
	in.Pipe("k", "a")
	in.Pipe("k", "b")
	want := []string{"a1", "A1", "a2", "A2", "b1", "B1", "b2", "B2"}
	if got := out.ReadValues(); !reflect.DeepEqual(got, want) {
		t.Errorf("out = %v, want %v", got, want)
	}
	if got := d.Produced("test-app-loop2"); got != 4 {
		t.Errorf("Produced(test-app-loop2) = %d, want 4", got)
	}
}

// ticker forwards a record from each punctuation, keyed by the punctuation
// type, with the punctuation time (ms) as value.
func ticker(pt topology.PunctuationType, every time.Duration) topology.Supplier {
	return func() topology.Processor { return &tickProc{pt: pt, every: every} }
}

type tickProc struct {
	pt    topology.PunctuationType
	every time.Duration
}

func (p *tickProc) Init(ctx topology.Context) error {
	ctx.Schedule(p.every, p.pt, func(ts int64) {
		ctx.Forward(topology.Record{Key: p.pt.String(), Value: strconv.FormatInt(ts, 10), Timestamp: ts})
	})
	return nil
}
func (p *tickProc) Process(topology.Record) error { return nil }
func (p *tickProc) Close() error                  { return nil }

func tickTopology(t *testing.T, pt topology.PunctuationType, every time.Duration) *topology.Topology {
	topo := topology.New()
	must(t, topo.AddSource("src", source("in")))
	must(t, topo.AddProcessor("tick", ticker(pt, every), "src"))
	must(t, topo.AddSink("sink", sink("ticks"), "tick"))
	return topo
}

func ms(ts time.Time) string { return strconv.FormatInt(ts.UnixMilli(), 10) }

func TestWallClockPunctuation(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewDriver(t, tickTopology(t, topology.WallClockTime, 10*time.Second), WithStartTime(start))
	out := strOut(d, "ticks")

	d.AdvanceWallClockTime(5 * time.Second)
	if !out.IsEmpty() {
		t.Fatalf("punctuated before the interval: %v", out.ReadValues())
	}
	d.AdvanceWallClockTime(5 * time.Second)
	if got, want := out.ReadValues(), []string{ms(start.Add(10 * time.Second))}; !reflect.DeepEqual(got, want) {
		t.Errorf("after 10s: %v, want %v", got, want)
	}
	// Three missed intervals fire once, as in Kafka Streams.
	d.AdvanceWallClockTime(35 * time.Second)
	if got, want := out.ReadValues(), []string{ms(start.Add(45 * time.Second))}; !reflect.DeepEqual(got, want) {
		t.Errorf("after 45s: %v, want %v", got, want)
	}
	// Records do not move the wall clock.
	strIn(d, "in").Pipe("k", "v")
	if !out.IsEmpty() {
		t.Errorf("a record fired a wall-clock punctuator: %v", out.ReadValues())
	}
	if got, want := d.WallClock(), start.Add(45*time.Second); !got.Equal(want) {
		t.Errorf("WallClock = %v, want %v", got, want)
	}
}

func TestStreamTimePunctuation(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewDriver(t, tickTopology(t, topology.StreamTime, 10*time.Second), WithStartTime(start))
	in, out := strIn(d, "in"), strOut(d, "ticks")

	d.AdvanceWallClockTime(time.Hour)
	if !out.IsEmpty() {
		t.Fatalf("the wall clock fired a stream-time punctuator: %v", out.ReadValues())
	}
	steps := []struct {
		at   time.Duration
		want []string
	}{
		{0, []string{ms(start)}}, // the first record starts stream time
		{5 * time.Second, nil},
		{10 * time.Second, []string{ms(start.Add(10 * time.Second))}},
		{3 * time.Second, nil}, // out of order: stream time does not go back
		{35 * time.Second, []string{ms(start.Add(35 * time.Second))}},
	}
	for _, s := range steps {
		in.PipeAt("k", "v", start.Add(s.at))
		got := out.ReadValues()
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("record at +%v: punctuations %v, want %v", s.at, got, s.want)
		}
	}
}

var errBoom = errors.New("boom")

func TestProcessorError(t *testing.T) {
	topo := topology.New()
	must(t, topo.AddSource("src", source("in")))
	must(t, topo.AddProcessor("check", topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		if r.Value == "bad" {
			return errBoom
		}
		ctx.Forward(r)
		return nil
	}), "src"))
	must(t, topo.AddSink("sink", sink("out"), "check"))

	d := NewDriver(t, topo)
	in, out := strIn(d, "in"), strOut(d, "out")
	in.Pipe("k", "ok")
	in.Pipe("k", "bad")
	in.Pipe("k", "later")

	err := d.Err()
	if !errors.Is(err, errBoom) {
		t.Fatalf("Err = %v, want one wrapping %v", err, errBoom)
	}
	for _, s := range []string{"offset 1", "topic in", "check"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Err %q does not mention %q", err, s)
		}
	}
	if got, want := out.ReadValues(), []string{"ok"}; !reflect.DeepEqual(got, want) {
		t.Errorf("out = %v, want %v (input after the error is ignored)", got, want)
	}
}

func failingValues(topo *topology.Topology, t *testing.T) {
	spec := source("in")
	spec.ValueDeserializer = func(_ string, b []byte) (any, error) {
		if !strings.HasPrefix(string(b), "{") {
			return nil, fmt.Errorf("not an object: %q", b)
		}
		return string(b), nil
	}
	must(t, topo.AddSource("src", spec))
	must(t, topo.AddSink("sink", sink("out"), "src"))
}

func TestDeserializationError(t *testing.T) {
	t.Run("default fails", func(t *testing.T) {
		topo := topology.New()
		failingValues(topo, t)
		d := NewDriver(t, topo)
		in, out := strIn(d, "in"), strOut(d, "out")
		in.PipeRaw([]byte("k"), []byte("garbage"), time.Time{})
		in.Pipe("k", "{}")

		var de *task.DeserializationError
		if err := d.Err(); !errors.As(err, &de) {
			t.Fatalf("Err = %v, want a *task.DeserializationError", err)
		}
		if de.IsKey || de.Record.Offset != 0 || de.Record.Topic != "in" {
			t.Errorf("error = %+v, want the value of in offset 0", de)
		}
		if !out.IsEmpty() {
			t.Errorf("processed input after the error: %v", out.ReadValues())
		}
	})
	t.Run("handler skips", func(t *testing.T) {
		topo := topology.New()
		failingValues(topo, t)
		var skipped []int64
		d := NewDriver(t, topo, WithDeserializationHandler(func(e *task.DeserializationError) error {
			skipped = append(skipped, e.Record.Offset)
			return nil
		}))
		in, out := strIn(d, "in"), strOut(d, "out")
		in.PipeRaw([]byte("k"), []byte("garbage"), time.Time{})
		in.Pipe("k", "{}")
		if err := d.Err(); err != nil {
			t.Fatalf("Err = %v", err)
		}
		if !reflect.DeepEqual(skipped, []int64{0}) {
			t.Errorf("skipped offsets %v, want [0]", skipped)
		}
		if got, want := out.ReadValues(), []string{"{}"}; !reflect.DeepEqual(got, want) {
			t.Errorf("out = %v, want %v", got, want)
		}
	})
}

type closeProc struct{ closed *bool }

func (p *closeProc) Init(topology.Context) error   { return nil }
func (p *closeProc) Process(topology.Record) error { return nil }
func (p *closeProc) Close() error                  { *p.closed = true; return nil }

func TestCloseClosesProcessors(t *testing.T) {
	closed := false
	topo := topology.New()
	must(t, topo.AddSource("src", source("in")))
	must(t, topo.AddProcessor("p", func() topology.Processor { return &closeProc{closed: &closed} }, "src"))
	d := NewDriver(t, topo)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !closed {
		t.Error("processor not closed")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper()           {}
func (f *fatalTB) Cleanup(fn func()) {}
func (f *fatalTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msg = fmt.Sprintf(format, args...)
}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// fatalMessage runs fn with a fake TB in its own goroutine and returns what
// it failed the test with.
func fatalMessage(fn func(tb testing.TB)) string {
	tb := &fatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.msg
}

func TestFailsTheTest(t *testing.T) {
	tests := []struct {
		name string
		fn   func(tb testing.TB)
		want []string
	}{
		{"pipe to a topic no source reads", func(tb testing.TB) {
			d := NewDriver(tb, upperTopology(t))
			strIn(d, "nope").Pipe("k", "v")
		}, []string{`"nope"`, `["in"]`}},
		{"output value does not deserialize", func(tb testing.TB) {
			d := NewDriver(tb, upperTopology(t))
			strIn(d, "in").Pipe("k", "v")
			OutputTopic(d, "out", serde.String(), serde.Int64()).ReadRecord()
		}, []string{"topic out", "int64"}},
		{"view of a store the topology lacks", func(tb testing.TB) {
			d := NewDriver(tb, storeTopology(t, topology.StoreSpec{Name: "mem", InMemory: true}))
			StoreView(d, "nope", serde.String(), serde.String())
		}, []string{`"nope"`, `["mem"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := fatalMessage(tt.fn)
			if msg == "" {
				t.Fatal("the test was not failed")
			}
			for _, s := range tt.want {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not mention %s", msg, s)
				}
			}
		})
	}
}

// storeTopology is in -> put -> sink(out), where put writes every record
// to each of the stores (as given) and forwards it.
func storeTopology(t *testing.T, specs ...topology.StoreSpec) *topology.Topology {
	topo := topology.New()
	must(t, topo.AddSource("src", source("in")))
	must(t, topo.AddProcessor("put", topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		for _, spec := range specs {
			kv := ctx.Store(spec.Name).(state.KeyValueStore)
			var v []byte
			if r.Value != nil {
				v = []byte(r.Value.(string))
			}
			if err := kv.Put([]byte(r.Key.(string)), v); err != nil {
				return err
			}
		}
		ctx.Forward(r)
		return nil
	}), "src"))
	must(t, topo.AddSink("sink", sink("out"), "put"))
	for _, spec := range specs {
		must(t, topo.AddStore(spec, "put"))
	}
	return topo
}

// TestStoreLayers checks the stores the driver makes from the specs:
// logging to the captured changelog topic, the cache flushed after every
// piped record, Pebble or memory underneath.
func TestStoreLayers(t *testing.T) {
	topo := storeTopology(t,
		topology.StoreSpec{Name: "cached", Logging: true, Caching: true},
		topology.StoreSpec{Name: "logged", Logging: true, InMemory: true},
		topology.StoreSpec{Name: "bare"},
	)
	d := NewDriver(t, topo, WithApplicationID("app"))
	in := strIn(d, "in")
	in.PipeAt("a", "1", time.UnixMilli(10))
	in.PipeAt("a", "2", time.UnixMilli(20))
	in.PipeRaw([]byte("a"), nil, time.UnixMilli(15)) // a delete, out of order

	if _, ok := KeyValueStore(d, "cached").(state.Cache); !ok {
		t.Errorf("KeyValueStore(cached) is a %T, want the cache layer", KeyValueStore(d, "cached"))
	}
	if _, ok := KeyValueStore(d, "logged").(state.Cache); ok {
		t.Error("KeyValueStore(logged) is a cache; the spec has none")
	}
	for _, name := range []string{"cached", "logged"} {
		got := OutputTopic(d, "app-"+name+"-changelog", serde.String(), serde.String()).ReadRecords()
		var summary []string
		for _, r := range got {
			v := r.Value
			if r.Tombstone {
				v = "<delete>"
			}
			summary = append(summary, fmt.Sprintf("%s=%s@%d", r.Key, v, r.Timestamp.UnixMilli()))
		}
		// Changelog records carry the task's stream time: 20 for the
		// out-of-order delete.
		if want := []string{"a=1@10", "a=2@20", "a=<delete>@20"}; !reflect.DeepEqual(summary, want) {
			t.Errorf("%s changelog %q, want %q", name, summary, want)
		}
	}
	if n := d.Produced("app-bare-changelog"); n != 0 {
		t.Errorf("a store without logging wrote %d changelog records", n)
	}
	in.Pipe("b", "3")
	for _, name := range []string{"cached", "logged", "bare"} {
		v, ok, err := StoreView(d, name, serde.String(), serde.String()).Get("b")
		if err != nil || !ok || v != "3" {
			t.Errorf("%s[b] = %q, %v, %v; want 3", name, v, ok, err)
		}
		if v, ok, _ := StoreView(d, name, serde.String(), serde.String()).Get("a"); ok {
			t.Errorf("%s[a] = %q after its delete", name, v)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
