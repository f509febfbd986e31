package kstreams

import (
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// committedValues reads topic read_committed and returns each key's latest
// int64 value.
func committedValues(t *testing.T, c *testutil.Cluster, topic string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range c.ConsumeAll(t, topic, -1, time.Second, kgo.FetchIsolationLevel(kgo.ReadCommitted())) {
		n, err := serde.Int64().Deserialize(topic, r.Value)
		if err != nil {
			t.Fatalf("%s-%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		out[string(r.Key)] = n
	}
	return out
}

// TestEOSAbortRollsBackStores forces a transaction to abort mid-commit (the
// broker refuses its offset commit once) while a word count runs under
// ExactlyOnceV2. The tasks roll back to the committed state and process the
// aborted records again: every count ends exactly right, in the stores and
// on the output topic read read_committed, never counted twice.
func TestEOSAbortRollsBackStores(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, _ := wordCountLines(20_000)
	half := len(lines) / 2
	firstTruth := map[string]int64{}
	for _, l := range lines[:half] {
		for _, w := range strings.Fields(l) {
			firstTruth[w]++
		}
	}
	produceLines(t, c, "text-input", lines[:half])

	a := start(t, wordCountTopology(t), Config{ApplicationID: "eos-abort", Brokers: c.Addrs(), StateDir: t.TempDir(),
		ProcessingGuarantee: ExactlyOnceV2}).app
	waitForTable(t, "the first half counted", a, firstTruth)

	// Refuse the next offset commit: the transaction must abort.
	var refused atomic.Int32
	c.Kfake().ControlKey(int16(kmsg.TxnOffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.TxnOffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.ConcurrentTransactions.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		refused.Add(1)
		return resp, nil, true
	})
	produceLines(t, c, "text-input", lines[half:])
	waitFor(t, "an aborted transaction", 60*time.Second, func() bool { return a.Stats().Aborts.Load() > 0 })
	if refused.Load() != 1 {
		t.Fatalf("%d offset commits refused, want 1", refused.Load())
	}
	waitForTable(t, "every word counted exactly once after the abort", a, truth)
	waitFor(t, "the output topic, read_committed, agreeing", 60*time.Second, func() bool {
		return maps.Equal(committedValues(t, c, "word-counts"), truth)
	})
	// The changelog, read_committed, holds the same.
	if got := committedValues(t, c, "eos-abort-counts-changelog"); !maps.Equal(got, truth) {
		t.Fatalf("changelog read_committed holds %d words, differing from the truth", len(got))
	}
}

// TestEOSKilledInstanceExactlyOnce runs two instances under ExactlyOnceV2,
// kills one mid-run (no commit, no clean hand-over), and lets the other
// finish: read_committed, every word's count is exactly its true count.
func TestEOSKilledInstanceExactlyOnce(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, _ := wordCountLines(40_000)
	produceLines(t, c, "text-input", lines)
	topo := wordCountTopology(t)
	cfg := func() Config {
		return Config{ApplicationID: "eos-kill", Brokers: c.Addrs(), StateDir: t.TempDir(), ProcessingGuarantee: ExactlyOnceV2,
			ClientOptions: []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}}
	}
	a := start(t, topo, cfg())
	b := start(t, topo, cfg())
	waitFor(t, "both processing", 60*time.Second, func() bool {
		return a.app.Stats().Processed.Load() > 1000 && b.app.Stats().Processed.Load() > 1000
	})
	b.app.abort()
	waitFor(t, "the survivor counting every word exactly once", 120*time.Second, func() bool {
		return maps.Equal(committedValues(t, c, "word-counts"), truth)
	})
	a.stop(t)
}

// TestRepartitionTopicsPurged: in both modes, records of a repartition
// topic below the committed offsets are deleted (the topic's start offset
// moves up), and the counts stay right.
func TestRepartitionTopicsPurged(t *testing.T) {
	for _, g := range []ProcessingGuarantee{AtLeastOnce, ExactlyOnceV2} {
		t.Run(g.String(), func(t *testing.T) {
			c := testutil.NewCluster(t)
			c.CreateTopic(t, "text-input", 4)
			c.CreateTopic(t, "word-counts", 4)
			lines, truth, _ := wordCountLines(5000)
			produceLines(t, c, "text-input", lines)
			app := "purge-" + strings.ReplaceAll(g.String(), "_", "-")
			a := start(t, wordCountTopology(t), Config{ApplicationID: app, Brokers: c.Addrs(), StateDir: t.TempDir(),
				ProcessingGuarantee: g, CommitInterval: 100 * time.Millisecond, RepartitionPurgeInterval: 50 * time.Millisecond}).app
			waitForTable(t, "every word counted", a, truth)
			adm := kadm.NewClient(c.Client(t))
			topic := app + "-counts-repartition"
			waitFor(t, "the repartition topic purged", 30*time.Second, func() bool {
				starts, err := adm.ListStartOffsets(t.Context(), topic)
				if err != nil {
					return false
				}
				ends, err := adm.ListEndOffsets(t.Context(), topic)
				if err != nil {
					return false
				}
				purged := true
				starts.Each(func(o kadm.ListedOffset) {
					end, _ := ends.Lookup(o.Topic, o.Partition)
					// Everything below the committed offset, which under
					// EOS is past the last record (a commit marker follows).
					purged = purged && o.Offset > 0 && o.Offset >= end.Offset-1
				})
				return purged
			})
		})
	}
}

// TestEOSZombieCannotCommit makes one instance a zombie: the broker stops
// answering its heartbeats, so the group gives its tasks to the other
// instance while it keeps processing. Its transaction must not commit (its
// offset commit carries a stale generation): read_committed, every count
// is exactly right.
func TestEOSZombieCannotCommit(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, _ := wordCountLines(20_000)
	half := len(lines) / 2
	produceLines(t, c, "text-input", lines[:half])
	topo := wordCountTopology(t)
	cfg := func() Config {
		return Config{ApplicationID: "eos-zombie", Brokers: c.Addrs(), StateDir: t.TempDir(), ProcessingGuarantee: ExactlyOnceV2,
			ClientOptions: []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(300 * time.Millisecond)}}
	}
	zombie := start(t, topo, cfg()).app
	other := start(t, topo, cfg()).app
	waitFor(t, "both instances with tasks", 60*time.Second, func() bool {
		return zombie.State() == Running && other.State() == Running && zombie.taskCount() > 0 && other.taskCount() > 0
	})
	member, _ := zombie.client.GroupMetadata()
	var swallowed atomic.Int32
	stop := make(chan struct{})
	c.Kfake().ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case <-stop:
			c.Kfake().DropControl()
			return nil, nil, false
		default:
		}
		c.Kfake().KeepControl()
		if req.(*kmsg.HeartbeatRequest).MemberID != member {
			return nil, nil, false
		}
		swallowed.Add(1)
		return nil, nil, true // no answer: the zombie's session runs out
	})
	produceLines(t, c, "text-input", lines[half:])
	waitFor(t, "the other instance owning every task", 60*time.Second, func() bool { return other.taskCount() == 8 })
	close(stop)
	if swallowed.Load() == 0 {
		t.Fatal("no heartbeat of the zombie was swallowed")
	}
	waitFor(t, "every word counted exactly once", 120*time.Second, func() bool {
		return maps.Equal(committedValues(t, c, "word-counts"), truth)
	})
}
