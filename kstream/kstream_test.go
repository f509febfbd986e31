package kstream_test

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// t0 is the driver's default start time; record timestamps in these tests
// are offsets from it.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

var strStr = kstream.ConsumedWith(serde.String(), serde.String())

// build returns b's topology, failing the test on a builder error.
func build(t *testing.T, b *kstream.Builder) *kstream.Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return topo
}

func strIn(d *testutil.Driver, topic string) *testutil.TestInputTopic[string, string] {
	return testutil.InputTopic(d, topic, serde.String(), serde.String())
}

func strOut(d *testutil.Driver, topic string) *testutil.TestOutputTopic[string, string] {
	return testutil.OutputTopic(d, topic, serde.String(), serde.String())
}

// rec is an output record reduced to what the tests compare; TS is the
// offset in ms from t0.
type rec[K, V any] struct {
	Key   K
	Value V
	TS    int64
}

func readAll[K, V any](t *testing.T, o *testutil.TestOutputTopic[K, V]) []rec[K, V] {
	t.Helper()
	var out []rec[K, V]
	for _, r := range o.ReadRecords() {
		if r.Tombstone {
			t.Errorf("unexpected tombstone for key %v", r.Key)
		}
		out = append(out, rec[K, V]{r.Key, r.Value, r.Timestamp.Sub(t0).Milliseconds()})
	}
	return out
}

func wantRecs[K, V any](t *testing.T, topic string, got, want []rec[K, V]) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", topic, got, want)
	}
}

type kv = rec[string, string]

func TestStreamFromOneTopic(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Stream(b, strStr, "in").To("out")
	d := testutil.NewDriver(t, build(t, b))
	in, out := strIn(d, "in"), strOut(d, "out")

	in.PipeAt("a", "1", at(5))
	in.PipeAt("b", "2", at(3)) // out of order: passes through as it is
	in.Pipe("c", "3")          // no timestamp: the driver's wall clock

	wantRecs(t, "out", readAll(t, out), []kv{{"a", "1", 5}, {"b", "2", 3}, {"c", "3", 0}})

	in.Pipe("d", "4")
	if r, ok := out.ReadRecord(); !ok || r.Topic != "out" {
		t.Errorf("ReadRecord() = %+v, %v; want a record of topic out", r, ok)
	}
}

func TestStreamFromSeveralTopics(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Stream(b, strStr, "left", "right").To("out")
	d := testutil.NewDriver(t, build(t, b))
	left, right, out := strIn(d, "left"), strIn(d, "right"), strOut(d, "out")

	left.PipeAt("l1", "a", at(1))
	right.PipeAt("r1", "b", at(2))
	left.PipeAt("l2", "c", at(3))
	right.PipeAt("r2", "d", at(4))

	wantRecs(t, "out", readAll(t, out), []kv{
		{"l1", "a", 1}, {"r1", "b", 2}, {"l2", "c", 3}, {"r2", "d", 4},
	})
}

type event struct {
	ID   string `json:"id"`
	AtMS int64  `json:"at_ms"`
}

func TestConsumedTimestampExtractor(t *testing.T) {
	b := kstream.NewBuilder()
	var seen []int64 // record timestamps the extractor was given
	c := kstream.ConsumedWith(serde.String(), serde.JSON[event]()).
		WithTimestampExtractor(func(_ string, v event, recordTS time.Time) time.Time {
			seen = append(seen, recordTS.Sub(t0).Milliseconds())
			return at(v.AtMS)
		})
	events := kstream.Stream(b, c, "events")
	kstream.MapValues(events, func(v event) string { return v.ID }).To("ids")
	d := testutil.NewDriver(t, build(t, b))
	in := testutil.InputTopic(d, "events", serde.String(), serde.JSON[event]())
	out := strOut(d, "ids")

	in.PipeAt("k", event{ID: "e1", AtMS: 1000}, at(7))
	in.PipeAt("k", event{ID: "e2", AtMS: 50}, at(8))

	wantRecs(t, "ids", readAll(t, out), []kv{{"k", "e1", 1000}, {"k", "e2", 50}})
	if !reflect.DeepEqual(seen, []int64{7, 8}) {
		t.Errorf("extractor saw record timestamps %v, want [7 8]", seen)
	}
}

// TestStatelessOperators pipes the same input through each operator that
// maps strings to strings and checks the exact output, timestamps included
// (every operator keeps the input record's timestamp).
func TestStatelessOperators(t *testing.T) {
	input := []kv{{"a", "x", 1}, {"bb", "yy", 2}, {"c", "", 3}, {"dd", "zzz", 4}}
	upper := strings.ToUpper
	tests := []struct {
		name string
		op   func(s *kstream.KStream[string, string]) *kstream.KStream[string, string]
		want []kv
	}{
		{
			name: "Map",
			op: func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
				return kstream.Map(s, func(k, v string) (string, string) { return v, k })
			},
			want: []kv{{"x", "a", 1}, {"yy", "bb", 2}, {"", "c", 3}, {"zzz", "dd", 4}},
		},
		{
			name: "MapValues",
			op: func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
				return kstream.MapValues(s, upper)
			},
			want: []kv{{"a", "X", 1}, {"bb", "YY", 2}, {"c", "", 3}, {"dd", "ZZZ", 4}},
		},
		{
			name: "MapValuesWithKey",
			op: func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
				return kstream.MapValuesWithKey(s, func(k, v string) string { return k + "=" + v })
			},
			want: []kv{{"a", "a=x", 1}, {"bb", "bb=yy", 2}, {"c", "c=", 3}, {"dd", "dd=zzz", 4}},
		},
		{
			name: "SelectKey",
			op: func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
				return kstream.SelectKey(s, func(k, v string) string { return k + v })
			},
			want: []kv{{"ax", "x", 1}, {"bbyy", "yy", 2}, {"c", "", 3}, {"ddzzz", "zzz", 4}},
		},
		{
			name: "Filter",
			op: func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
				return s.Filter(func(k, v string) bool { return len(k) == 2 })
			},
			want: []kv{{"bb", "yy", 2}, {"dd", "zzz", 4}},
		},
		{
			name: "FilterNot",
			op: func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
				return s.FilterNot(func(k, v string) bool { return len(k) == 2 })
			},
			want: []kv{{"a", "x", 1}, {"c", "", 3}},
		},
		{
			// One value becomes as many records as it has characters: one,
			// two, none (the empty value) and three.
			name: "FlatMap",
			op: func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
				return kstream.FlatMap(s, func(k, v string) []kstream.KeyValue[string, string] {
					var out []kstream.KeyValue[string, string]
					for i, c := range v {
						out = append(out, kstream.KeyValue[string, string]{Key: fmt.Sprintf("%s%d", k, i), Value: string(c)})
					}
					return out
				})
			},
			want: []kv{
				{"a0", "x", 1},
				{"bb0", "y", 2}, {"bb1", "y", 2},
				{"dd0", "z", 4}, {"dd1", "z", 4}, {"dd2", "z", 4},
			},
		},
		{
			name: "FlatMapValues",
			op: func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
				return kstream.FlatMapValues(s, func(v string) []string { return strings.Split(v, "")[:min(len(v), 2)] })
			},
			want: []kv{{"a", "x", 1}, {"bb", "y", 2}, {"bb", "y", 2}, {"dd", "z", 4}, {"dd", "z", 4}},
		},
		{
			name: "FlatMapValuesWithKey",
			op: func(s *kstream.KStream[string, string]) *kstream.KStream[string, string] {
				return kstream.FlatMapValuesWithKey(s, func(k, v string) []string {
					if v == "" {
						return nil
					}
					return []string{k, v}
				})
			},
			want: []kv{
				{"a", "a", 1}, {"a", "x", 1},
				{"bb", "bb", 2}, {"bb", "yy", 2},
				{"dd", "dd", 4}, {"dd", "zzz", 4},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tt.op(kstream.Stream(b, strStr, "in")).To("out")
			d := testutil.NewDriver(t, build(t, b))
			in, out := strIn(d, "in"), strOut(d, "out")
			for _, r := range input {
				in.PipeAt(r.Key, r.Value, at(r.TS))
			}
			if err := d.Err(); err != nil {
				t.Fatal(err)
			}
			wantRecs(t, "out", readAll(t, out), tt.want)
		})
	}
}

func TestMapChangesTypes(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr, "words")
	lengths := kstream.Map(s, func(k, v string) (int64, string) { return int64(len(v)), k })
	// No serdes given: int64 keys default to serde.Int64, strings to String.
	lengths.To("by-length")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "words")
	out := testutil.OutputTopic(d, "by-length", serde.Int64(), serde.String())

	in.PipeAt("w1", "hello", at(1))
	in.PipeAt("w2", "hi", at(2))

	wantRecs(t, "by-length", readAll(t, out), []rec[int64, string]{{5, "w1", 1}, {2, "w2", 2}})
}

func TestPeek(t *testing.T) {
	b := kstream.NewBuilder()
	var peeked []string
	kstream.Stream(b, strStr, "in").
		Peek(func(k, v string) { peeked = append(peeked, k+":"+v) }).
		To("out")
	d := testutil.NewDriver(t, build(t, b))
	in, out := strIn(d, "in"), strOut(d, "out")

	in.PipeAt("a", "1", at(1))
	in.PipeAt("b", "2", at(2))

	if want := []string{"a:1", "b:2"}; !reflect.DeepEqual(peeked, want) {
		t.Errorf("peeked %q, want %q", peeked, want)
	}
	wantRecs(t, "out", readAll(t, out), []kv{{"a", "1", 1}, {"b", "2", 2}})
}

func TestForeach(t *testing.T) {
	b := kstream.NewBuilder()
	var seen []string
	kstream.Stream(b, strStr, "in").Foreach(func(k, v string) { seen = append(seen, k+":"+v) })
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	in.Pipe("a", "1")
	in.Pipe("b", "2")

	if want := []string{"a:1", "b:2"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("Foreach saw %q, want %q", seen, want)
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestMerge(t *testing.T) {
	b := kstream.NewBuilder()
	left := kstream.Stream(b, strStr, "left")
	right := kstream.MapValues(kstream.Stream(b, strStr, "right"), strings.ToUpper)
	left.Merge(right).To("out")
	d := testutil.NewDriver(t, build(t, b))
	l, r, out := strIn(d, "left"), strIn(d, "right"), strOut(d, "out")

	l.PipeAt("l", "a", at(1))
	r.PipeAt("r", "b", at(2))
	l.PipeAt("l", "c", at(3))

	wantRecs(t, "out", readAll(t, out), []kv{{"l", "a", 1}, {"r", "B", 2}, {"l", "c", 3}})
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func hasPrefix(p string) func(string, string) bool {
	return func(_, v string) bool { return strings.HasPrefix(v, p) }
}

func TestSplitNamedBranches(t *testing.T) {
	b := kstream.NewBuilder()
	branches := kstream.Stream(b, strStr, "in").
		Split(kstream.Named("route-")).
		Branch(hasPrefix("a"), kstream.Named("a")).
		Branch(hasPrefix("ab"), kstream.Named("ab")). // never matches: "a" wins first
		Branch(hasPrefix("b"), kstream.Named("b")).
		DefaultBranch(kstream.Named("other"))
	if got, want := keys(branches), []string{"route-a", "route-ab", "route-b", "route-other"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("branch names %q, want %q", got, want)
	}
	for _, name := range []string{"a", "ab", "b", "other"} {
		branches["route-"+name].To("out-" + name)
	}
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	in.PipeAt("1", "abc", at(1)) // matches a and ab: first match wins
	in.PipeAt("2", "bcd", at(2))
	in.PipeAt("3", "xyz", at(3))
	in.PipeAt("4", "a", at(4))

	wantRecs(t, "out-a", readAll(t, strOut(d, "out-a")), []kv{{"1", "abc", 1}, {"4", "a", 4}})
	wantRecs(t, "out-ab", readAll(t, strOut(d, "out-ab")), nil)
	wantRecs(t, "out-b", readAll(t, strOut(d, "out-b")), []kv{{"2", "bcd", 2}})
	wantRecs(t, "out-other", readAll(t, strOut(d, "out-other")), []kv{{"3", "xyz", 3}})
}

func TestSplitUnnamedBranches(t *testing.T) {
	t.Run("named split", func(t *testing.T) {
		b := kstream.NewBuilder()
		branches := kstream.Stream(b, strStr, "in").
			Split(kstream.Named("p-")).
			Branch(hasPrefix("a")).
			Branch(hasPrefix("b")).
			DefaultBranch()
		if got, want := keys(branches), []string{"p-0", "p-1", "p-2"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("branch names %q, want %q", got, want)
		}
		branches["p-1"].To("out-1")
		branches["p-2"].To("out-2")
		branches["p-0"].To("out-0")
		d := testutil.NewDriver(t, build(t, b))
		in := strIn(d, "in")
		in.PipeAt("k1", "a1", at(1))
		in.PipeAt("k2", "b1", at(2))
		in.PipeAt("k3", "c1", at(3))
		wantRecs(t, "out-1", readAll(t, strOut(d, "out-1")), []kv{{"k1", "a1", 1}})
		wantRecs(t, "out-2", readAll(t, strOut(d, "out-2")), []kv{{"k2", "b1", 2}})
		wantRecs(t, "out-0", readAll(t, strOut(d, "out-0")), []kv{{"k3", "c1", 3}})
	})
	t.Run("generated split name", func(t *testing.T) {
		b := kstream.NewBuilder()
		branches := kstream.Stream(b, strStr, "in"). // index 0
								Split(). // index 1
								Branch(hasPrefix("a")).
								DefaultBranch()
		want := []string{"KSTREAM-BRANCH-00000000010", "KSTREAM-BRANCH-00000000011"}
		if got := keys(branches); !reflect.DeepEqual(got, want) {
			t.Fatalf("branch names %q, want %q", got, want)
		}
	})
}

func TestSplitNoDefaultBranchDropsUnmatched(t *testing.T) {
	b := kstream.NewBuilder()
	branches := kstream.Stream(b, strStr, "in").
		Split(kstream.Named("s-")).
		Branch(hasPrefix("a"), kstream.Named("a")).
		Branch(hasPrefix("b"), kstream.Named("b")).
		NoDefaultBranch()
	if got, want := keys(branches), []string{"s-a", "s-b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("branch names %q, want %q", got, want)
	}
	branches["s-a"].To("out-a")
	branches["s-b"].To("out-b")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	in.PipeAt("1", "a", at(1))
	in.PipeAt("2", "c", at(2)) // matches nothing: dropped
	in.PipeAt("3", "b", at(3))

	wantRecs(t, "out-a", readAll(t, strOut(d, "out-a")), []kv{{"1", "a", 1}})
	wantRecs(t, "out-b", readAll(t, strOut(d, "out-b")), []kv{{"3", "b", 3}})
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestToWithProducedSerdes(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr, "in")
	kstream.MapValues(s, func(v string) int64 { return int64(len(v)) }).
		To("lengths", kstream.ProducedWith(serde.String(), serde.Int64()))
	// The Produced serde wins over the stream's own.
	shout := serde.Func(
		func(_ string, v string) ([]byte, error) { return []byte(strings.ToUpper(v) + "!"), nil },
		func(_ string, b []byte) (string, error) { return string(b), nil },
	)
	s.To("shouted", kstream.Produced[string, string]{ValueSerde: shout})
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	in.PipeAt("a", "xyz", at(1))
	in.PipeAt("b", "", at(2))

	lengths := testutil.OutputTopic(d, "lengths", serde.String(), serde.Int64())
	wantRecs(t, "lengths", readAll(t, lengths), []rec[string, int64]{{"a", 3, 1}, {"b", 0, 2}})
	wantRecs(t, "shouted", readAll(t, strOut(d, "shouted")), []kv{{"a", "XYZ!", 1}, {"b", "!", 2}})
}

func TestToTopicFunc(t *testing.T) {
	b := kstream.NewBuilder()
	var metaTopics []string
	kstream.Stream(b, strStr, "in").ToTopicFunc(func(k, v string, m kstream.RecordMetadata) string {
		metaTopics = append(metaTopics, fmt.Sprintf("%s-%d@%d", m.Topic, m.Partition, m.Offset))
		return "to-" + k
	})
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	in.PipeAt("x", "1", at(1))
	in.PipeAt("y", "2", at(2))
	in.PipeAt("x", "3", at(3))

	wantRecs(t, "to-x", readAll(t, strOut(d, "to-x")), []kv{{"x", "1", 1}, {"x", "3", 3}})
	wantRecs(t, "to-y", readAll(t, strOut(d, "to-y")), []kv{{"y", "2", 2}})
	if want := []string{"in-0@0", "in-0@1", "in-0@2"}; !reflect.DeepEqual(metaTopics, want) {
		t.Errorf("extractor saw metadata %q, want %q", metaTopics, want)
	}
}

func TestToTopicFuncEmptyTopicFails(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Stream(b, strStr, "in").ToTopicFunc(
		func(k, v string, _ kstream.RecordMetadata) string { return "" },
		kstream.Produced[string, string]{Name: "route"},
	)
	d := testutil.NewDriver(t, build(t, b))
	strIn(d, "in").Pipe("k", "v")
	err := d.Err()
	if err == nil || !strings.Contains(err.Error(), "node route") || !strings.Contains(err.Error(), "empty topic name") {
		t.Fatalf("Err() = %v, want an empty topic name error naming node route", err)
	}
}

func TestProducedPartitioner(t *testing.T) {
	type call struct {
		Topic, Key, Value string
		N                 int32
	}
	var calls []call
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr, "in")
	s.To("out", kstream.Produced[string, string]{}.WithPartitioner(func(topic, k, v string, n int32) (int32, bool) {
		calls = append(calls, call{topic, k, v, n})
		return 0, k == "a" // the other keys fall back to the default partitioner
	}))
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	in.PipeAt("a", "1", at(1))
	in.PipeAt("b", "2", at(2))

	want := []call{{"out", "a", "1", 1}, {"out", "b", "2", 1}}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("partitioner calls %+v, want %+v", calls, want)
	}
	wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{{"a", "1", 1}, {"b", "2", 2}})
}

func TestProducedPartitionerOutOfRange(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Stream(b, strStr, "in").To("out", kstream.Produced[string, string]{Name: "sink"}.
		WithPartitioner(func(_, _, _ string, n int32) (int32, bool) { return n, true }))
	d := testutil.NewDriver(t, build(t, b))
	strIn(d, "in").Pipe("a", "1")
	err := d.Err()
	if err == nil || !strings.Contains(err.Error(), "returned partition 1 of 1") {
		t.Fatalf("Err() = %v, want a partition-out-of-range error", err)
	}
}

func TestRepartitionNamed(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr, "in")
	rekeyed := kstream.SelectKey(s, func(k, v string) string { return v })
	again := rekeyed.Repartition(kstream.Repartitioned[string, string]{Name: "by-value"})
	kstream.MapValuesWithKey(again, func(k, v string) string { return k + "!" }).To("out")
	d := testutil.NewDriver(t, build(t, b), testutil.WithApplicationID("app"))
	in := strIn(d, "in")

	in.PipeAt("k1", "v1", at(1))
	in.PipeAt("k2", "v2", at(2))

	wantRecs(t, "repartition topic", readAll(t, strOut(d, "app-by-value-repartition")),
		[]kv{{"v1", "v1", 1}, {"v2", "v2", 2}})
	wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{{"v1", "v1!", 1}, {"v2", "v2!", 2}})
}

func TestRepartitionGeneratedName(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr, "in")                            // 0
	s = kstream.SelectKey(s, func(k, v string) string { return v }) // 1
	s.Repartition().To("out")                                       // REPARTITION 2, its source 3, sink 4
	d := testutil.NewDriver(t, build(t, b), testutil.WithApplicationID("app"))

	strIn(d, "in").PipeAt("k", "v", at(9))

	const topic = "app-KSTREAM-REPARTITION-0000000002-repartition"
	wantRecs(t, topic, readAll(t, strOut(d, topic)), []kv{{"v", "v", 9}})
	wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{{"v", "v", 9}})
}

func TestRepartitionPartitioner(t *testing.T) {
	b := kstream.NewBuilder()
	var topics []string
	kstream.Stream(b, strStr, "in").
		Repartition(kstream.Repartitioned[string, string]{
			Name:          "spread",
			NumPartitions: 4,
			Partitioner: func(topic, k, v string, n int32) (int32, bool) {
				topics = append(topics, fmt.Sprintf("%s/%d", topic, n))
				return 0, true
			},
		}).
		To("out")
	d := testutil.NewDriver(t, build(t, b))

	strIn(d, "in").PipeAt("k", "v", at(1))

	// The partitioner sees the resolved internal topic name.
	if want := []string{"test-app-spread-repartition/1"}; !reflect.DeepEqual(topics, want) {
		t.Errorf("partitioner called with %q, want %q", topics, want)
	}
	wantRecs(t, "out", readAll(t, strOut(d, "out")), []kv{{"k", "v", 1}})
}

func TestRepartitionSerdes(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, strStr, "in")
	counts := kstream.Map(s, func(k, v string) (int64, event) { return int64(len(k)), event{ID: v, AtMS: 7} })
	counts.Repartition(kstream.Repartitioned[int64, event]{Name: "r", KeySerde: serde.Int64(), ValueSerde: serde.JSON[event]()}).
		To("out", kstream.ProducedWith(serde.Int64(), serde.JSON[event]()))
	d := testutil.NewDriver(t, build(t, b))

	strIn(d, "in").PipeAt("abc", "e", at(1))

	rep := testutil.OutputTopic(d, "test-app-r-repartition", serde.Int64(), serde.JSON[event]())
	wantRecs(t, "repartition", readAll(t, rep), []rec[int64, event]{{3, event{"e", 7}, 1}})
	out := testutil.OutputTopic(d, "out", serde.Int64(), serde.JSON[event]())
	wantRecs(t, "out", readAll(t, out), []rec[int64, event]{{3, event{"e", 7}, 1}})
}

func TestTombstonesPassThrough(t *testing.T) {
	b := kstream.NewBuilder()
	var filterSaw []string
	s := kstream.Stream(b, strStr, "in").
		Filter(func(k, v string) bool { filterSaw = append(filterSaw, v); return true }).
		Peek(func(string, string) {})
	s = kstream.SelectKey(s, func(k, v string) string { return "new-" + k })
	s.Merge(kstream.Stream(b, strStr, "other")).
		Repartition(kstream.Repartitioned[string, string]{Name: "r"}).
		To("out")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in")

	in.PipeTombstone("k")
	in.Pipe("k", "v")

	got := strOut(d, "out").ReadRecords()
	if len(got) != 2 {
		t.Fatalf("got %d records, want 2", len(got))
	}
	if !got[0].Tombstone || got[0].Key != "new-k" {
		t.Errorf("record 0 = %+v, want a tombstone with key new-k", got[0])
	}
	if got[1].Tombstone || got[1].Key != "new-k" || got[1].Value != "v" {
		t.Errorf("record 1 = %+v, want new-k=v", got[1])
	}
	if !reflect.DeepEqual(filterSaw, []string{"", "v"}) {
		t.Errorf("filter saw %q, want the zero value for the tombstone", filterSaw)
	}
}

var errBoom = errors.New("boom")

func TestProcessingErrorNamesNodeAndOffset(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Stream(b, strStr, "in").To("ok")
	kstream.Process(kstream.Stream(b, strStr, "in2"), func() kstream.Processor[string, string, string, string] {
		return &funcProc[string, string, string, string]{process: func(ctx kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
			if r.Value == "bad" {
				return fmt.Errorf("value %q: %w", r.Value, errBoom)
			}
			ctx.Forward(r)
			return nil
		}}
	}, kstream.Named("checker")).To("out")
	d := testutil.NewDriver(t, build(t, b))
	in := strIn(d, "in2")

	in.Pipe("k", "good")
	in.Pipe("k", "bad")
	in.Pipe("k", "after") // ignored: the driver stopped

	err := d.Err()
	if !errors.Is(err, errBoom) {
		t.Fatalf("Err() = %v, want it to wrap errBoom", err)
	}
	var ne *task.NodeError
	if !errors.As(err, &ne) {
		t.Fatalf("Err() = %v (%T), want a *task.NodeError", err, err)
	}
	if ne.Node != "checker" || ne.Meta.Topic != "in2" || ne.Meta.Offset != 1 || ne.Task.String() != "1_0" {
		t.Errorf("NodeError = %+v, want node checker, topic in2, offset 1, task 1_0", ne)
	}
	for _, s := range []string{"task 1_0", "node checker", "topic in2 partition 0 offset 1", "boom"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if got := strOut(d, "out").ReadValues(); !reflect.DeepEqual(got, []string{"good"}) {
		t.Errorf("out = %q, want only the record before the failure", got)
	}
}

func TestDeserializationErrorFails(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.Int64()), "numbers").To("out")
	d := testutil.NewDriver(t, build(t, b))
	in := testutil.InputTopic(d, "numbers", serde.String(), serde.Int64())

	in.Pipe("ok", 1)
	in.PipeRaw([]byte("k"), []byte{1, 2, 3}, time.Time{})

	err := d.Err()
	var de *task.DeserializationError
	if !errors.As(err, &de) {
		t.Fatalf("Err() = %v (%T), want a *task.DeserializationError", err, err)
	}
	var le *serde.LengthError
	if !errors.As(err, &le) || le.Want != 8 || le.Got != 3 {
		t.Errorf("Err() = %v, want it to wrap a LengthError (want 8, got 3)", err)
	}
	if de.IsKey || de.Record.Offset != 1 {
		t.Errorf("DeserializationError for key=%v offset %d, want value at offset 1", de.IsKey, de.Record.Offset)
	}
	if want := "deserialize value of record at topic numbers partition 0 offset 1"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	out := testutil.OutputTopic(d, "out", serde.String(), serde.Int64())
	wantRecs(t, "out", readAll(t, out), []rec[string, int64]{{"ok", 1, 0}})
}

func TestDeserializationHandlerSkips(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.Int64()), "numbers").To("out")
	var skipped []int64
	d := testutil.NewDriver(t, build(t, b), testutil.WithDeserializationHandler(func(e *task.DeserializationError) error {
		skipped = append(skipped, e.Record.Offset)
		return nil
	}))
	in := testutil.InputTopic(d, "numbers", serde.String(), serde.Int64())

	in.PipeRaw([]byte("k"), []byte{1}, time.Time{})
	in.Pipe("ok", 2)

	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(skipped, []int64{0}) {
		t.Errorf("skipped offsets %v, want [0]", skipped)
	}
	out := testutil.OutputTopic(d, "out", serde.String(), serde.Int64())
	wantRecs(t, "out", readAll(t, out), []rec[string, int64]{{"ok", 2, 0}})
}

func TestBuilderErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *kstream.Builder)
		want  []string
	}{
		{
			name: "duplicate Named",
			build: func(b *kstream.Builder) {
				s := kstream.Stream(b, strStr, "in")
				s.Filter(func(string, string) bool { return true }, kstream.Named("f")).
					Filter(func(string, string) bool { return true }, kstream.Named("f")).
					To("out")
			},
			want: []string{`"f"`, "already added"},
		},
		{
			name: "duplicate name across kinds",
			build: func(b *kstream.Builder) {
				kstream.Stream(b, strStr.WithName("x"), "in").
					To("out", kstream.Produced[string, string]{}.WithName("x"))
			},
			want: []string{`"x"`, "already added"},
		},
		{
			name: "branch after default",
			build: func(b *kstream.Builder) {
				bs := kstream.Stream(b, strStr, "in").Split(kstream.Named("s-"))
				bs.Branch(hasPrefix("a"))
				bs.DefaultBranch()
				bs.Branch(hasPrefix("b"))
			},
			want: []string{"split s-", "after the default branch"},
		},
		{
			name: "duplicate branch name",
			build: func(b *kstream.Builder) {
				kstream.Stream(b, strStr, "in").Split(kstream.Named("s-")).
					Branch(hasPrefix("a"), kstream.Named("x")).
					Branch(hasPrefix("b"), kstream.Named("x")).
					NoDefaultBranch()
			},
			want: []string{`"s-x" already added`},
		},
		{
			name: "topic read twice",
			build: func(b *kstream.Builder) {
				kstream.Stream(b, strStr, "in")
				kstream.Stream(b, strStr, "other", "in")
			},
			want: []string{`topic "in" is already read by source "KSTREAM-SOURCE-0000000000"`},
		},
		{
			name: "duplicate repartition name",
			build: func(b *kstream.Builder) {
				s := kstream.Stream(b, strStr, "in")
				s.Repartition(kstream.Repartitioned[string, string]{Name: "r"})
				s.Repartition(kstream.Repartitioned[string, string]{Name: "r"})
			},
			want: []string{`"r-repartition" already declared`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tt.build(b)
			topo, err := b.Build()
			if err == nil {
				t.Fatalf("Build() = %v, nil; want an error", topo)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}
