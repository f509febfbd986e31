package kstream_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
	"github.com/kstreams-go/kstreams/testutil"
)

// prefix16 maps an IPv4 address to its /16 prefix, "10.1.2.3" -> "10.1":
// the key of the organisations table.
func prefix16(_ string, ip string) string {
	parts := strings.SplitN(ip, ".", 3)
	if len(parts) < 3 {
		return ""
	}
	return parts[0] + "." + parts[1]
}

// enrichFlows joins "flows" (flow id -> source IP) with the global table
// "orgs" (/16 prefix -> organisation) into "enriched", inner or left.
func enrichFlows(t *testing.T, left bool) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	orgs := kstream.GlobalTable(b, strStr, "orgs", kstream.MaterializedAs[string, string]("orgs-store"))
	flows := kstream.Stream(b, strStr, "flows")
	var out *kstream.KStream[string, string]
	if left {
		out = kstream.LeftJoinGlobal(flows, orgs, prefix16, func(ip string, org *string) string {
			if org == nil {
				return ip + "@unknown"
			}
			return ip + "@" + *org
		})
	} else {
		out = kstream.JoinGlobal(flows, orgs, prefix16, func(ip, org string) string { return ip + "@" + org })
	}
	out.To("enriched")
	return build(t, b)
}

func TestJoinGlobal(t *testing.T) {
	for _, tc := range []struct {
		name string
		left bool
		want []kv
	}{
		{"inner", false, []kv{
			{"f1", "10.1.0.7@acme", 10},
			{"f3", "10.2.9.9@globex", 12},
			{"f4", "10.1.3.3@acme-corp", 21}, // the update of 10.1 is seen at once
			{"f7", "10.3.0.1@initech", 40},   // a row added while running
		}},
		{"left", true, []kv{
			{"f1", "10.1.0.7@acme", 10},
			{"f2", "192.168.0.1@unknown", 11},
			{"f3", "10.2.9.9@globex", 12},
			{"f4", "10.1.3.3@acme-corp", 21},
			{"f5", "10.2.0.2@unknown", 31}, // 10.2 was deleted
			{"f6", "bogus@unknown", 32},
			{"f7", "10.3.0.1@initech", 40},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testutil.NewDriver(t, enrichFlows(t, tc.left))
			orgs, flows, out := strIn(d, "orgs"), strIn(d, "flows"), strOut(d, "enriched")

			orgs.PipeAt("10.1", "acme", at(1))
			orgs.PipeAt("10.2", "globex", at(2))
			flows.PipeAt("f1", "10.1.0.7", at(10))
			flows.PipeAt("f2", "192.168.0.1", at(11)) // no such prefix
			flows.PipeAt("f3", "10.2.9.9", at(12))
			orgs.PipeAt("10.1", "acme-corp", at(20))
			flows.PipeAt("f4", "10.1.3.3", at(21))
			orgs.PipeTombstone("10.2")
			flows.PipeAt("f5", "10.2.0.2", at(31))
			flows.PipeAt("f6", "bogus", at(32)) // maps to "", which no row has
			orgs.PipeAt("10.3", "initech", at(33))
			flows.PipeAt("f7", "10.3.0.1", at(40))

			wantRecs(t, "enriched", readAll(t, out), tc.want)
			if err := d.Err(); err != nil {
				t.Fatal(err)
			}
			// The driver reads the global store as the processors see it.
			view := testutil.StoreView(d, "orgs-store", serde.String(), serde.String())
			it, err := view.All()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for it.Next() {
				got = append(got, it.Key()+"="+it.Value())
			}
			if err := errors.Join(it.Err(), it.Close()); err != nil {
				t.Fatal(err)
			}
			if want := []string{"10.1=acme-corp", "10.3=initech"}; !slices.Equal(got, want) {
				t.Errorf("global store holds %q, want %q", got, want)
			}
		})
	}
}

// A stream record with a nil key is joined like any other (the key mapper
// reads the value); one with a nil value is dropped, inner or left, as in
// Kafka Streams since KIP-962. A key mapper returning a nil pointer means
// no row: the inner join drops the record, the left join forwards it.
func TestJoinGlobalNilKeysAndValues(t *testing.T) {
	byValue := func(_ string, ip string) *string {
		if ip == "none" {
			return nil
		}
		p := prefix16("", ip)
		return &p
	}
	for _, left := range []bool{false, true} {
		t.Run(map[bool]string{false: "inner", true: "left"}[left], func(t *testing.T) {
			b := kstream.NewBuilder()
			orgs := kstream.GlobalTable(b, kstream.ConsumedWith(serde.JSON[*string](), serde.String()), "orgs")
			flows := kstream.Stream(b, strStr, "flows")
			if left {
				kstream.LeftJoinGlobal(flows, orgs, byValue, func(ip string, org *string) string {
					if org == nil {
						return ip + "@-"
					}
					return ip + "@" + *org
				}).To("enriched")
			} else {
				kstream.JoinGlobal(flows, orgs, byValue, func(ip, org string) string { return ip + "@" + org }).To("enriched")
			}
			d := testutil.NewDriver(t, build(t, b))
			p := "10.1"
			testutil.InputTopic(d, "orgs", serde.JSON[*string](), serde.String()).PipeAt(&p, "acme", at(1))
			in, out := strIn(d, "flows"), testutil.OutputTopic(d, "enriched", serde.Bytes(), serde.String())

			in.PipeRaw(nil, []byte("10.1.0.1"), at(10))      // no key: joined
			in.PipeRaw([]byte("f2"), nil, at(11))            // no value: dropped
			in.PipeRaw([]byte("f3"), []byte("none"), at(12)) // nil join key

			var got []string
			for _, r := range out.ReadRecords() {
				got = append(got, string(r.Key)+"|"+r.Value)
			}
			want := []string{"|10.1.0.1@acme"}
			dropped := int64(2)
			if left {
				want = append(want, "f3|none@-")
				dropped = 1
			}
			if !slices.Equal(got, want) {
				t.Errorf("enriched = %q, want %q", got, want)
			}
			if n := d.Dropped("null-key-or-value"); n != dropped {
				t.Errorf("dropped %d records for a null key or value, want %d", n, dropped)
			}
		})
	}
}

// A record without a key cannot be a row: the global table drops it.
// One that does not deserialize goes to the deserialization handler.
func TestGlobalTableBadRecords(t *testing.T) {
	b := kstream.NewBuilder()
	rates := kstream.GlobalTable(b, kstream.ConsumedWith(serde.String(), serde.Int64()), "rates", kstream.MaterializedAs[string, int64]("rates"))
	kstream.JoinGlobal(kstream.Stream(b, strStr, "orders"), rates,
		func(_, currency string) string { return currency },
		func(currency string, rate int64) int64 { return rate }).
		To("priced", kstream.ProducedWith(serde.String(), serde.Int64()))
	var skipped []string
	d := testutil.NewDriver(t, build(t, b), testutil.WithDeserializationHandler(func(e *task.DeserializationError) error {
		skipped = append(skipped, e.Record.Topic)
		return nil
	}))
	in := testutil.InputTopic(d, "rates", serde.String(), serde.Int64())
	in.PipeAt("eur", 110, at(1))
	in.PipeRaw(nil, []byte{0, 0, 0, 0, 0, 0, 0, 1}, at(2)) // no key
	in.PipeRaw([]byte("usd"), []byte{1, 2, 3}, at(3))      // not an int64
	strIn(d, "orders").PipeAt("o1", "eur", at(4))
	strIn(d, "orders").PipeAt("o2", "usd", at(5))

	got := testutil.OutputTopic(d, "priced", serde.String(), serde.Int64()).ReadKeyValues()
	if want := []testutil.KeyValue[string, int64]{{Key: "o1", Value: 110}}; !reflect.DeepEqual(got, want) {
		t.Errorf("priced = %v, want %v", got, want)
	}
	if !slices.Equal(skipped, []string{"rates"}) {
		t.Errorf("deserialization handler saw %q, want one record of rates", skipped)
	}
	if n := d.Dropped("null-key"); n != 1 {
		t.Errorf("dropped %d keyless rows, want 1", n)
	}
}

// A processor of a stream task reads a global store but cannot write it.
func TestGlobalStoreIsReadOnlyForTasks(t *testing.T) {
	b := kstream.NewBuilder()
	orgs := kstream.GlobalTable(b, strStr, "orgs")
	flows := kstream.Stream(b, strStr, "flows")
	joined := kstream.JoinGlobal(flows, orgs, prefix16, func(ip, org string) string { return org })
	var writeErr error
	kstream.Process(joined, func() kstream.Processor[string, string, string, string] {
		return &writer{store: orgs.StoreName(), err: &writeErr}
	}, kstream.Named("writer"))
	kstream.Stores(b, "writer", orgs.StoreName())
	d := testutil.NewDriver(t, build(t, b))
	strIn(d, "orgs").Pipe("10.1", "acme")
	strIn(d, "flows").Pipe("f1", "10.1.0.1")
	if !errors.Is(writeErr, state.ErrReadOnly) {
		t.Errorf("a task's write to the global store = %v, want ErrReadOnly", writeErr)
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
}

type writer struct {
	store string
	err   *error
	ctx   kstream.ProcessorContext[string, string]
}

func (w *writer) Init(ctx kstream.ProcessorContext[string, string]) error { w.ctx = ctx; return nil }
func (w *writer) Close() error                                            { return nil }
func (w *writer) Process(r kstream.Record[string, string]) error {
	*w.err = w.ctx.Store(w.store).(state.KeyValueStore).Put([]byte(r.Key), []byte("x"))
	return nil
}

// The global store's source and processor are in no sub-topology and
// their topic in no task; the join stays in the stream's sub-topology,
// and two streams joining one global table stay in sub-topologies of
// their own.
func TestGlobalTableCompile(t *testing.T) {
	b := kstream.NewBuilder()
	orgs := kstream.GlobalTable(b, strStr, "orgs")
	join := func(ip, org string) string { return org }
	kstream.JoinGlobal(kstream.Stream(b, strStr, "flows"), orgs, prefix16, join).To("enriched")
	kstream.JoinGlobal(kstream.Stream(b, strStr, "logins"), orgs, prefix16, join, kstream.Named("login-join")).To("login-orgs")
	topo := build(t, b)
	c, err := topology.Compile(topo, "app")
	if err != nil {
		t.Fatal(err)
	}

	if got, want := c.SourceTopics(), []string{"flows", "logins"}; !slices.Equal(got, want) {
		t.Errorf("subscribed topics %q, want %q", got, want)
	}
	if len(c.Subtopologies) != 2 {
		t.Fatalf("%d sub-topologies, want 2", len(c.Subtopologies))
	}
	for _, st := range c.Subtopologies {
		if len(st.Stores) != 0 || len(st.Changelogs) != 0 {
			t.Errorf("sub-topology %d has stores %q and changelogs %v, want none: the global store is not a task's", st.ID, st.Stores, st.Changelogs)
		}
		for _, n := range st.Nodes {
			if n.Name == "KSTREAM-SOURCE-0000000001" || n.Name == "KTABLE-SOURCE-0000000002" {
				t.Errorf("sub-topology %d holds the global store's node %s", st.ID, n.Name)
			}
		}
	}
	if len(c.InternalTopics) != 0 {
		t.Errorf("internal topics %v, want none: the global topic is the store's changelog", c.InternalTopics)
	}
	if len(c.GlobalStores) != 1 {
		t.Fatalf("%d global stores, want 1", len(c.GlobalStores))
	}
	g := c.GlobalStores[0]
	if g.Topic != "orgs" || g.Store.Name != "orgs-STATE-STORE-0000000000" || g.Store.Logging || g.ID != 2 ||
		g.Source.Name != "KSTREAM-SOURCE-0000000001" || g.Processor.Name != "KTABLE-SOURCE-0000000002" {
		t.Errorf("global store %+v (source %s, processor %s)", *g, g.Source.Name, g.Processor.Name)
	}

	const want = `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000003 (topics: [flows])
      --> KSTREAM-LEFTJOIN-0000000004
    Processor: KSTREAM-LEFTJOIN-0000000004 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KSTREAM-SOURCE-0000000003
    Sink: KSTREAM-SINK-0000000005 (topic: enriched)
      <-- KSTREAM-LEFTJOIN-0000000004

   Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [logins])
      --> login-join
    Processor: login-join (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KSTREAM-SOURCE-0000000006
    Sink: KSTREAM-SINK-0000000008 (topic: login-orgs)
      <-- login-join

   Sub-topology: 2 for global store (will not generate tasks)
    Source: KSTREAM-SOURCE-0000000001 (topics: [orgs])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [orgs-STATE-STORE-0000000000])
      --> none
      <-- KSTREAM-SOURCE-0000000001

`
	diffLines(t, topo.Describe(), want)
}

// A named Consumed names the global table's nodes as Kafka Streams does.
func TestGlobalTableNames(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.GlobalTable(b, strStr.WithName("orgs-reader"), "orgs")
	kstream.Stream(b, strStr, "in").To("out")
	c, err := topology.Compile(build(t, b), "")
	if err != nil {
		t.Fatal(err)
	}
	g := c.GlobalStores[0]
	if g.Source.Name != "orgs-reader-source" || g.Processor.Name != "orgs-reader" || g.Store.Name != "orgs-STATE-STORE-0000000000" {
		t.Errorf("source %s, processor %s, store %s", g.Source.Name, g.Processor.Name, g.Store.Name)
	}
	// The indexes are used up all the same: the stream's source is 3.
	if n := c.Subtopologies[0].Nodes[0].Name; n != "KSTREAM-SOURCE-0000000003" {
		t.Errorf("stream source %s, want KSTREAM-SOURCE-0000000003", n)
	}
}
