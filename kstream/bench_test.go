package kstream_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

type nopCollector struct{ n int }

func (c *nopCollector) Send(string, int32, []byte, []byte, []topology.Header, int64) error {
	c.n++
	return nil
}
func (c *nopCollector) Partitions(string) (int32, bool) { return 1, true }

// BenchmarkMapFilterTo measures the per-record cost of the processing path
// (queue, deserialize, Map, Filter, serialize, hand to the collector)
// without any Kafka I/O.
func BenchmarkMapFilterTo(b *testing.B) {
	bld := kstream.NewBuilder()
	s := kstream.Stream(bld, kstream.ConsumedWith(serde.Bytes(), serde.Bytes()), "in")
	kstream.Map(s, func(k, v []byte) ([]byte, []byte) { return k, v }).
		Filter(func(_, v []byte) bool { return len(v) > 0 }).
		To("out")
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	c, err := topology.Compile(topo, "bench")
	if err != nil {
		b.Fatal(err)
	}
	coll := &nopCollector{}
	tk, err := task.New(task.Config{ID: task.ID{}, Subtopology: c.Subtopologies[0], Collector: coll})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, 1000)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "in", Key: []byte("key-" + strconv.Itoa(i)), Value: make([]byte, 100), Timestamp: time.UnixMilli(int64(i))}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := recs[i%len(recs)]
		r.Offset = int64(i)
		if err := tk.Add(r); err != nil {
			b.Fatal(err)
		}
		if _, err := tk.Process(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapFilterToBatch is MapFilterTo with records added a fetch at a
// time, as the runtime does.
func BenchmarkMapFilterToBatch(b *testing.B) {
	bld := kstream.NewBuilder()
	s := kstream.Stream(bld, kstream.ConsumedWith(serde.Bytes(), serde.Bytes()), "in")
	kstream.Map(s, func(k, v []byte) ([]byte, []byte) { return k, v }).
		Filter(func(_, v []byte) bool { return len(v) > 0 }).
		To("out")
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	c, err := topology.Compile(topo, "bench")
	if err != nil {
		b.Fatal(err)
	}
	tk, err := task.New(task.Config{ID: task.ID{}, Subtopology: c.Subtopologies[0], Collector: &nopCollector{}})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	recs := make([]*kgo.Record, batch)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "in", Key: []byte("key-" + strconv.Itoa(i)), Value: make([]byte, 100), Timestamp: time.UnixMilli(int64(i))}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		for j, r := range recs {
			r.Offset = int64(i + j)
		}
		if err := tk.Add(recs...); err != nil {
			b.Fatal(err)
		}
		for {
			ok, err := tk.Process()
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
		}
	}
}
