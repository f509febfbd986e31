package kstreams

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

func int64Topology(t *testing.T) *Topology {
	t.Helper()
	b := kstream.NewBuilder()
	kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.Int64()), "nums").
		Filter(func(_ string, v int64) bool { return v >= 0 }).
		To("nums-out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// produceWithMalformed writes 1, 2, a 3-byte value (not an int64), 3, all to
// partition 0 so their order is fixed, and returns the bad record's offset.
func produceWithMalformed(t *testing.T, c *testutil.Cluster) int64 {
	t.Helper()
	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	vals := [][]byte{be64(1), be64(2), []byte("bad"), be64(3)}
	var badOffset int64
	for i, v := range vals {
		r := &kgo.Record{Topic: "nums", Partition: 0, Key: []byte("k"), Value: v,
			Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			badOffset = r.Offset
		}
	}
	return badOffset
}

func setupBadInput(t *testing.T) *testutil.Cluster {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "nums", 2)
	c.CreateTopic(t, "nums-out", 2)
	c.CreateTopic(t, "nums-dlq", 1)
	return c
}

func TestMalformedRecordFailsByDefault(t *testing.T) {
	c := setupBadInput(t)
	bad := produceWithMalformed(t, c)
	app, err := New(int64Topology(t), Config{ApplicationID: "bad-fail", Brokers: c.Addrs(), StateDir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = app.Run(ctx)
	var de *task.DeserializationError
	if !errors.As(err, &de) {
		t.Fatalf("Run returned %v, want a deserialization error", err)
	}
	for _, want := range []string{"topic nums", "partition 0", "offset " + itoa(bad)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// The records before the bad one were processed; the bad one was not
	// committed, so a restart meets it again rather than skipping it.
	out := c.ConsumeAll(t, "nums-out", 2, 10*time.Second)
	if len(out) != 2 {
		t.Fatalf("got %d outputs before the failure, want 2", len(out))
	}
	adm := c.Client(t)
	offs := fetchCommitted(t, adm, "bad-fail", "nums", 0)
	if offs > bad {
		t.Fatalf("committed offset %d is past the bad record at %d", offs, bad)
	}
}

func TestMalformedRecordLogAndContinue(t *testing.T) {
	c := setupBadInput(t)
	produceWithMalformed(t, c)
	a := start(t, int64Topology(t), Config{ApplicationID: "bad-log", Brokers: c.Addrs(), StateDir: t.TempDir(),
		OnDeserializationError: LogAndContinue, CommitInterval: 100 * time.Millisecond})
	out := c.ConsumeAll(t, "nums-out", 3, 20*time.Second)
	if len(out) != 3 {
		t.Fatalf("got %d outputs, want 3 (the good records)", len(out))
	}
	waitFor(t, "the skip to be counted", 10*time.Second, func() bool { return a.app.Stats().Skipped.Load() == 1 })
	a.stop(t)
}

func TestMalformedRecordDeadLetterQueue(t *testing.T) {
	c := setupBadInput(t)
	bad := produceWithMalformed(t, c)
	a := start(t, int64Topology(t), Config{ApplicationID: "bad-dlq", Brokers: c.Addrs(), StateDir: t.TempDir(),
		OnDeserializationError: DeadLetterQueue, DeadLetterTopic: "nums-dlq", CommitInterval: 100 * time.Millisecond})
	out := c.ConsumeAll(t, "nums-out", 3, 20*time.Second)
	if len(out) != 3 {
		t.Fatalf("got %d outputs, want 3", len(out))
	}
	dlq := c.ConsumeAll(t, "nums-dlq", 1, 20*time.Second)
	if len(dlq) != 1 {
		t.Fatalf("got %d dead letters, want 1", len(dlq))
	}
	d := dlq[0]
	if string(d.Value) != "bad" || string(d.Key) != "k" {
		t.Errorf("dead letter holds key %q value %q, want the raw bytes k/bad", d.Key, d.Value)
	}
	h := map[string]string{}
	for _, x := range d.Headers {
		h[x.Key] = string(x.Value)
	}
	want := map[string]string{
		"origin":                     "test",
		"__streams.errors.topic":     "nums",
		"__streams.errors.partition": "0",
		"__streams.errors.offset":    itoa(bad),
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	if !strings.Contains(h["__streams.errors.message"], "deserialize value") {
		t.Errorf("error message header %q does not say what failed", h["__streams.errors.message"])
	}
	waitFor(t, "the dead letter to be counted", 10*time.Second, func() bool { return a.app.Stats().DeadLettered.Load() == 1 })
	a.stop(t)
}

// A sink topic that does not exist is a produce error franz-go cannot
// retry away: the app stops with an error naming it instead of dropping
// records.
func TestProduceErrorStopsTheApp(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "in", 1)
	b := kstream.NewBuilder()
	kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), "in").To("no-such-topic")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c.Produce(t, "in", &kgo.Record{Value: []byte("x")})
	app, err := New(topo, Config{ApplicationID: "prod-err", Brokers: c.Addrs(), StateDir: t.TempDir(), Logger: quietLogger(),
		CommitInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = app.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "produce") {
		t.Fatalf("Run returned %v, want a produce error", err)
	}
	if offs := fetchCommitted(t, c.Client(t), "prod-err", "in", 0); offs > 0 {
		t.Fatalf("offset %d committed although its output failed", offs)
	}
}
