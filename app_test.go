package kstreams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// passThrough builds in -> MapValues(tag) -> out.
func passThrough(t *testing.T, in, out string) *Topology {
	t.Helper()
	b := kstream.NewBuilder()
	s := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), in)
	kstream.MapValues(s, func(v string) string { return "seen-" + v }).To(out)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

type running struct {
	app  *App
	done chan error
}

func start(t *testing.T, topo *Topology, cfg Config) *running {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	app, err := New(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{app: app, done: make(chan error, 1)}
	go func() { r.done <- app.Run(context.Background()) }()
	t.Cleanup(func() { app.Close() })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.app.Close()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func produceRange(t *testing.T, c *testutil.Cluster, topic string, from, to int) {
	t.Helper()
	cl := c.Client(t, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := from; i < to; i++ {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{
			Topic: topic,
			Key:   []byte("k-" + strconv.Itoa(i%997)),
			Value: []byte(strconv.Itoa(i)),
		}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
}

// countOutputs reads every record of topic and counts each input number.
func countOutputs(t *testing.T, c *testutil.Cluster, topic string, want int, timeout time.Duration) map[int]int {
	t.Helper()
	recs := c.ConsumeAll(t, topic, want, timeout)
	seen := map[int]int{}
	for _, r := range recs {
		v := strings.TrimPrefix(string(r.Value), "seen-")
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("unexpected output value %q", r.Value)
		}
		seen[n]++
	}
	return seen
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const scaleRecords = 100_000

// Two instances share the work; the second joins half-way. After a clean
// shutdown every input record is in the output exactly once.
func TestTwoInstancesExactlyOnceAfterCleanShutdown(t *testing.T) {
	c := testutil.NewCluster(t, testutil.WithPartitions(4))
	c.CreateTopic(t, "in", 4)
	c.CreateTopic(t, "out", 4)
	topo := passThrough(t, "in", "out")
	cfg := Config{ApplicationID: "scale", Brokers: c.Addrs(), CommitInterval: 200 * time.Millisecond}

	cfg1 := cfg
	cfg1.StateDir = t.TempDir()
	a1 := start(t, topo, cfg1)
	produceRange(t, c, "in", 0, scaleRecords/2)
	waitFor(t, "first instance to process a quarter", 60*time.Second, func() bool {
		return a1.app.Stats().Processed.Load() >= scaleRecords/4
	})

	cfg2 := cfg
	cfg2.StateDir = t.TempDir()
	a2 := start(t, topo, cfg2)
	waitFor(t, "the second instance to get tasks", 30*time.Second, func() bool { return a2.app.taskCount() > 0 })
	produceRange(t, c, "in", scaleRecords/2, scaleRecords)
	waitFor(t, "all records processed", 120*time.Second, func() bool {
		return a1.app.Stats().Processed.Load()+a2.app.Stats().Processed.Load() >= scaleRecords
	})
	if a2.app.Stats().Processed.Load() == 0 {
		t.Errorf("second instance processed nothing")
	}
	a1.stop(t)
	a2.stop(t)

	seen := countOutputs(t, c, "out", scaleRecords, 60*time.Second)
	for i := 0; i < scaleRecords; i++ {
		if seen[i] != 1 {
			t.Fatalf("input %d appears %d times in the output", i, seen[i])
		}
	}
	if len(seen) != scaleRecords {
		t.Fatalf("output holds %d distinct inputs, want %d", len(seen), scaleRecords)
	}
	t.Logf("instance 1 processed %d, instance 2 processed %d", a1.app.Stats().Processed.Load(), a2.app.Stats().Processed.Load())
}

// One instance dies without committing; the survivor takes its tasks over
// and every input still reaches the output at least once.
func TestInstanceKilledMidRunAtLeastOnce(t *testing.T) {
	c := testutil.NewCluster(t, testutil.WithPartitions(4))
	c.CreateTopic(t, "in", 4)
	c.CreateTopic(t, "out", 4)
	topo := passThrough(t, "in", "out")
	cfg := Config{ApplicationID: "crash", Brokers: c.Addrs(), CommitInterval: 300 * time.Millisecond}

	cfg1 := cfg
	cfg1.StateDir = t.TempDir()
	a1 := start(t, topo, cfg1)
	cfg2 := cfg
	cfg2.StateDir = t.TempDir()
	a2 := start(t, topo, cfg2)
	waitFor(t, "both instances to run tasks", 30*time.Second, func() bool {
		return a1.app.taskCount() > 0 && a2.app.taskCount() > 0
	})

	produceRange(t, c, "in", 0, scaleRecords/2)
	waitFor(t, "the second instance to be mid-run", 60*time.Second, func() bool {
		return a2.app.Stats().Processed.Load() >= scaleRecords/8
	})
	a2.app.abort()
	<-a2.done
	produceRange(t, c, "in", scaleRecords/2, scaleRecords)

	seen := map[int]int{}
	waitFor(t, "every input in the output", 120*time.Second, func() bool {
		seen = countOutputs(t, c, "out", -1, 500*time.Millisecond)
		return len(seen) == scaleRecords
	})
	a1.stop(t)
	dups := 0
	for i := 0; i < scaleRecords; i++ {
		if seen[i] == 0 {
			t.Fatalf("input %d is missing from the output", i)
		}
		dups += seen[i] - 1
	}
	t.Logf("replayed after the crash: %d duplicates", dups)
}

func TestConfigErrorsNameTheField(t *testing.T) {
	topo := passThrough(t, "in", "out")
	cases := []struct {
		cfg   Config
		field string
	}{
		{Config{Brokers: []string{"x:1"}}, "ApplicationID"},
		{Config{ApplicationID: "a b", Brokers: []string{"x:1"}}, "ApplicationID"},
		{Config{ApplicationID: "a"}, "Brokers"},
		{Config{ApplicationID: "a", Brokers: []string{""}}, "Brokers"},
		{Config{ApplicationID: "a", Brokers: []string{"x:1"}, CommitInterval: -time.Second}, "CommitInterval"},
		{Config{ApplicationID: "a", Brokers: []string{"x:1"}, OnDeserializationError: DeadLetterQueue}, "DeadLetterTopic"},
		{Config{ApplicationID: "a", Brokers: []string{"x:1"}, ReplicationFactor: -2}, "ReplicationFactor"},
	}
	for _, tc := range cases {
		_, err := New(topo, tc.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("config %+v: got %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
}

func TestCopartitioningCheckedAtStart(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "left", 4)
	c.CreateTopic(t, "right", 3)
	b := kstream.NewBuilder()
	l := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), "left")
	r := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), "right")
	l.Merge(r).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(topo, Config{ApplicationID: "copart", Brokers: c.Addrs(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	err = app.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "left") || !strings.Contains(err.Error(), "right") || !strings.Contains(err.Error(), "co-partitioned") {
		t.Fatalf("want a co-partitioning error naming both topics, got %v", err)
	}
	if app.State() != Error {
		t.Fatalf("state %v, want ERROR", app.State())
	}
}

func TestRepartitionTopicCreatedAndUsed(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "words", 4)
	c.CreateTopic(t, "out", 4)
	b := kstream.NewBuilder()
	s := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), "words")
	kstream.SelectKey(s, func(_, v string) string { return v }).
		Repartition(kstream.Repartitioned[string, string]{Name: "by-word", NumPartitions: 2}).
		To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, topo, Config{ApplicationID: "rep", Brokers: c.Addrs(), StateDir: t.TempDir(), CommitInterval: 100 * time.Millisecond})
	for i := 0; i < 50; i++ {
		c.Produce(t, "words", &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("w%d", i%5))})
	}
	out := c.ConsumeAll(t, "out", 50, 30*time.Second)
	if len(out) != 50 {
		t.Fatalf("got %d outputs, want 50", len(out))
	}
	rep := c.ConsumeAll(t, "rep-by-word-repartition", 50, 10*time.Second)
	parts := map[string]int32{}
	for _, r := range rep {
		if p, ok := parts[string(r.Key)]; ok && p != r.Partition {
			t.Fatalf("key %s on partitions %d and %d of the repartition topic", r.Key, p, r.Partition)
		}
		parts[string(r.Key)] = r.Partition
		if r.Partition > 1 {
			t.Fatalf("repartition topic has partition %d, want 2 partitions", r.Partition)
		}
	}
	a.stop(t)
}

// fetchCommitted returns the group's committed offset for a partition, or -1.
func fetchCommitted(t *testing.T, cl *kgo.Client, group, topic string, partition int32) int64 {
	t.Helper()
	adm := kadm.NewClient(cl)
	resp, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := resp.Lookup(topic, partition)
	if !ok {
		return -1
	}
	return o.At
}
