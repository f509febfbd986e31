package task_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
)

// fakeStore records its flushes in a shared log; on flush it calls onFlush
// (to forward, as a cache does) and returns err.
type fakeStore struct {
	name    string
	log     *[]string
	onFlush func()
	err     error
}

func (s *fakeStore) Flush() error {
	*s.log = append(*s.log, s.name)
	if s.onFlush != nil {
		s.onFlush()
	}
	return s.err
}

// forwarder keeps its context so a store's flush can forward through it.
type forwarder struct{ ctx *topology.Context }

func (f *forwarder) Init(ctx topology.Context) error { *f.ctx = ctx; return nil }
func (f *forwarder) Process(r topology.Record) error { (*f.ctx).Forward(r); return nil }
func (f *forwarder) Close() error                    { return nil }

// flushTopology is src -> up(stores z-up) -> down(stores a-down, b-down) -> sink,
// so store names sort the other way round from the nodes.
func flushTopology(t *testing.T, upCtx *topology.Context, failing topology.Supplier) *topology.Subtopology {
	t.Helper()
	topo := topology.New()
	must(t, topo.AddSource("src", topology.SourceSpec{Topics: []string{"in"}, KeyDeserializer: strDe, ValueDeserializer: strDe}))
	must(t, topo.AddProcessor("up", func() topology.Processor { return &forwarder{ctx: upCtx} }, "src"))
	down := failing
	if down == nil {
		down = topology.Funcs(func(ctx topology.Context, r topology.Record) error { ctx.Forward(r); return nil })
	}
	must(t, topo.AddProcessor("down", down, "up"))
	must(t, topo.AddSink("sink", topology.SinkSpec{Topic: "out", KeySerializer: strSer, ValueSerializer: strSer}, "down"))
	must(t, topo.AddStore(topology.StoreSpec{Name: "z-up"}, "up"))
	must(t, topo.AddStore(topology.StoreSpec{Name: "b-down"}, "down"))
	must(t, topo.AddStore(topology.StoreSpec{Name: "a-down"}, "down"))
	c, err := topology.Compile(topo, "app")
	must(t, err)
	return c.Subtopologies[0]
}

func TestFlushOrderAndForwarding(t *testing.T) {
	var upCtx topology.Context
	st := flushTopology(t, &upCtx, nil)
	var log []string
	coll := &collector{}
	stores := map[string]any{
		"z-up":   &fakeStore{name: "z-up", log: &log, onFlush: func() { upCtx.Forward(topology.Record{Key: "k", Value: "flushed", Timestamp: 7}) }},
		"b-down": &fakeStore{name: "b-down", log: &log},
		"a-down": &fakeStore{name: "a-down", log: &log},
		"extra":  &fakeStore{name: "extra", log: &log}, // used by no node
		"plain":  "not a store with Flush",
	}
	tk, err := task.New(task.Config{ID: task.ID{Partition: 1}, Subtopology: st, Collector: coll, Stores: stores})
	must(t, err)
	defer tk.Close()
	must(t, tk.Flush())
	// Upstream node's store first, so what it forwards into downstream
	// stores is flushed in the same call; a node's stores by name; stores
	// no node uses last.
	if want := []string{"z-up", "a-down", "b-down", "extra"}; !reflect.DeepEqual(log, want) {
		t.Errorf("flush order %q, want %q", log, want)
	}
	if want := []sent{{"out", -1, "k", "flushed", 7}}; !reflect.DeepEqual(coll.sent, want) {
		t.Errorf("sent %+v, want %+v", coll.sent, want)
	}
}

func TestFlushErrors(t *testing.T) {
	errStore := errors.New("disk full")
	errNode := errors.New("node failed")
	tests := []struct {
		name     string
		storeErr error
		nodeErr  error
		want     []string
		is       error
	}{
		{"store error", errStore, nil, []string{"task 0_1", "flush store z-up", "disk full"}, errStore},
		{"error of a node the flush forwarded to", nil, errNode, []string{"task 0_1", "flush store z-up", "node down", "node failed"}, errNode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var upCtx topology.Context
			st := flushTopology(t, &upCtx, topology.Funcs(func(topology.Context, topology.Record) error { return tt.nodeErr }))
			var log []string
			stores := map[string]any{
				"z-up": &fakeStore{name: "z-up", log: &log, err: tt.storeErr,
					onFlush: func() { upCtx.Forward(topology.Record{Key: "k", Value: "v"}) }},
				"a-down": &fakeStore{name: "a-down", log: &log},
			}
			tk, err := task.New(task.Config{ID: task.ID{Partition: 1}, Subtopology: st, Collector: &collector{}, Stores: stores})
			must(t, err)
			defer tk.Close()
			err = tk.Flush()
			if !errors.Is(err, tt.is) {
				t.Fatalf("Flush() = %v, want %v", err, tt.is)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if want := []string{"z-up"}; !reflect.DeepEqual(log, want) {
				t.Errorf("flushed %q after the error, want only %q", log, want)
			}
			// The failure does not stick: the next flush starts clean.
			tt.nodeErr = nil
			stores["z-up"].(*fakeStore).err = nil
			must(t, tk.Flush())
		})
	}
}
