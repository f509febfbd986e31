package testutil_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/testutil"
)

func TestClusterProduceConsume(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "events", 3)

	var recs []*kgo.Record
	var want []string
	for i := range 10 {
		v := fmt.Sprintf("v%d", i)
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte(v)})
		want = append(want, v)
	}
	c.Produce(t, "events", recs...)

	got := c.ConsumeAll(t, "events", 10, 10*time.Second)
	var vals []string
	for _, r := range got {
		if r.Topic != "events" {
			t.Errorf("record from topic %q, want events", r.Topic)
		}
		vals = append(vals, string(r.Value))
	}
	slices.Sort(vals)
	if !slices.Equal(vals, want) {
		t.Errorf("consumed %v, want %v", vals, want)
	}
}

// TestClusterOptions checks that WithBrokers and WithPartitions reach kfake:
// a topic auto-created by Produce gets the default partition count, and
// metadata lists every broker.
func TestClusterOptions(t *testing.T) {
	c := testutil.NewCluster(t, testutil.WithBrokers(3), testutil.WithPartitions(2))
	if n := len(c.Addrs()); n != 3 {
		t.Fatalf("Addrs() has %d brokers, want 3", n)
	}
	c.Produce(t, "auto", &kgo.Record{Value: []byte("x")})

	adm := kadm.NewClient(c.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Brokers); n != 3 {
		t.Errorf("metadata lists %d brokers, want 3", n)
	}
	if n := len(md.Topics["auto"].Partitions); n != 2 {
		t.Errorf("auto-created topic has %d partitions, want 2", n)
	}
	if got := c.ConsumeAll(t, "auto", 1, 10*time.Second); len(got) != 1 {
		t.Errorf("consumed %d records, want 1", len(got))
	}
}

// TestConsumeAllTimeout checks that ConsumeAll returns what it has when the
// timeout passes instead of failing or hanging.
func TestConsumeAllTimeout(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "sparse", 1)
	c.Produce(t, "sparse", &kgo.Record{Value: []byte("only")})

	start := time.Now()
	got := c.ConsumeAll(t, "sparse", 5, 500*time.Millisecond)
	if len(got) != 1 {
		t.Errorf("consumed %d records, want 1", len(got))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ConsumeAll took %v with a 500ms timeout", d)
	}
}

func TestCreateTopicWithConfig(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopicWithConfig(t, "changelog", 1, map[string]string{"cleanup.policy": "compact"})

	adm := kadm.NewClient(c.Client(t))
	rcs, err := adm.DescribeTopicConfigs(context.Background(), "changelog")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("changelog", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range rc.Configs {
		if cfg.Key == "cleanup.policy" {
			if cfg.MaybeValue() != "compact" {
				t.Errorf("cleanup.policy = %q, want compact", cfg.MaybeValue())
			}
			return
		}
	}
	t.Error("cleanup.policy not in topic configs")
}

// TestKfakeCompact pins how kfake's Compact behaves, since changelog tests
// lean on it: the partition's last batch is the "active segment" and is never
// cleaned, and keys are deduplicated only among the batches before it. So a
// key whose newest value is in the last batch keeps one older value too.
// Tombstones go only once older than delete.retention.ms (default one day).
func TestKfakeCompact(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopicWithConfig(t, "changelog", 1, map[string]string{
		"cleanup.policy":      "compact",
		"delete.retention.ms": "0",
	})
	// One Produce call per record, so each record is its own batch.
	for _, kv := range [][2]string{{"a", "1"}, {"a", "2"}, {"b", "1"}, {"c", "1"}, {"c", ""}, {"a", "3"}} {
		r := &kgo.Record{Key: []byte(kv[0])}
		if kv[1] != "" {
			r.Value = []byte(kv[1])
		} // else a tombstone
		c.Produce(t, "changelog", r)
	}
	c.Kfake().Compact()

	var got []string
	// want 0 reads until the timeout, so a record Compact failed to drop shows.
	for _, r := range c.ConsumeAll(t, "changelog", 0, time.Second) {
		got = append(got, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.Offset))
	}
	want := []string{"a=2@1", "b=1@2", "a=3@5"}
	if !slices.Equal(got, want) {
		t.Errorf("after Compact got %v, want %v", got, want)
	}
}
