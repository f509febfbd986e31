package kstreams

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
	"github.com/kstreams-go/kstreams/testutil"
)

func wordCountTopology(t *testing.T) *Topology {
	t.Helper()
	b := kstream.NewBuilder()
	lines := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), "text-input")
	words := kstream.FlatMapValues(lines, func(line string) []string { return strings.Fields(line) })
	counts := kstream.Count(kstream.GroupBy(words, func(_, w string) string { return w }), kstream.MaterializedAs[string, int64]("counts"))
	counts.ToStream().To("word-counts", kstream.ProducedWith(serde.String(), serde.Int64()))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

type restoreCounter struct {
	mu       sync.Mutex
	restored int64
}

func (r *restoreCounter) OnRestoreStart(string, state.TopicPartition, int64, int64) {}
func (r *restoreCounter) OnBatchRestored(_ string, _ state.TopicPartition, _ int64, n int64) {
	r.mu.Lock()
	r.restored += n
	r.mu.Unlock()
}
func (r *restoreCounter) OnRestoreEnd(string, state.TopicPartition, int64) {}
func (r *restoreCounter) total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restored
}

// storeContents reads every task's "counts" store of a running app.
func storeContents(t *testing.T, a *App) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	a.gate.Lock()
	defer a.gate.Unlock()
	for _, r := range a.allRunners() {
		if r.stores == nil {
			continue
		}
		s := r.stores.Store("counts")
		if s == nil {
			continue
		}
		it, err := state.Typed(s, serde.String(), serde.Int64()).All()
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			out[it.Key()] = it.Value()
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestWordCountRestoresFromChangelog(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	topo := wordCountTopology(t)
	truth := map[string]int64{}
	var recs []*kgo.Record
	for i := 0; i < 2000; i++ {
		line := fmt.Sprintf("w%d w%d common", i%37, i%11)
		for _, w := range strings.Fields(line) {
			truth[w]++
		}
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(line)})
	}
	c.Produce(t, "text-input", recs...)
	dir := t.TempDir()
	cfg := Config{ApplicationID: "wc", Brokers: c.Addrs(), StateDir: dir, CommitInterval: 100 * time.Millisecond}

	a := start(t, topo, cfg)
	waitFor(t, "counts to match", 60*time.Second, func() bool { return fmt.Sprint(storeContents(t, a.app)) == fmt.Sprint(truth) })
	a.stop(t)

	// Clean restart: the checkpoint covers everything; nothing to restore.
	rc := &restoreCounter{}
	cfg.RestoreListener = rc
	a = start(t, topo, cfg)
	waitFor(t, "counts after a clean restart", 60*time.Second, func() bool { return fmt.Sprint(storeContents(t, a.app)) == fmt.Sprint(truth) })
	a.stop(t)
	if n := rc.total(); n != 0 {
		t.Errorf("clean restart restored %d records, want 0", n)
	}

	// State dir deleted: everything comes back from the changelog.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	rc2 := &restoreCounter{}
	cfg.RestoreListener = rc2
	a = start(t, topo, cfg)
	waitFor(t, "counts restored from the changelog", 60*time.Second, func() bool { return fmt.Sprint(storeContents(t, a.app)) == fmt.Sprint(truth) })
	a.stop(t)
	if rc2.total() == 0 {
		t.Errorf("restore after deleting the state dir restored nothing")
	}
	t.Logf("restored %d changelog records", rc2.total())
}

func TestStateDirLocked(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 1)
	c.CreateTopic(t, "word-counts", 1)
	dir := t.TempDir()
	cfg := Config{ApplicationID: "locked", Brokers: c.Addrs(), StateDir: dir, Logger: quietLogger()}
	a := start(t, wordCountTopology(t), cfg)
	waitFor(t, "first instance running", 30*time.Second, func() bool { return a.app.State() == Running })
	second, err := New(wordCountTopology(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = second.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "StateDir") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second instance on the same state dir: %v", err)
	}
	a.stop(t)
}

// A task that moves to another instance leaves its state on disk for
// StateCleanupDelay (it may come back), then it is removed.
func TestStateOfMovedTasksCleanedUpAfterDelay(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	for i := 0; i < 40; i++ {
		c.Produce(t, "text-input", &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("w%d", i))})
	}
	topo := wordCountTopology(t)
	dir1 := t.TempDir()
	cfg := Config{ApplicationID: "cleanup", Brokers: c.Addrs(), CommitInterval: 100 * time.Millisecond,
		StateCleanupDelay: 300 * time.Millisecond}
	cfg1 := cfg
	cfg1.StateDir = dir1
	a1 := start(t, topo, cfg1)
	taskDirs := func() []string {
		entries, _ := os.ReadDir(dir1 + "/cleanup")
		var out []string
		for _, e := range entries {
			if e.IsDir() {
				out = append(out, e.Name())
			}
		}
		return out
	}
	// Sub-topology 1 (the count after the repartition) has 4 tasks with state.
	waitFor(t, "four stateful task dirs", 30*time.Second, func() bool { return len(taskDirs()) == 4 })
	cfg2 := cfg
	cfg2.StateDir = t.TempDir()
	a2 := start(t, topo, cfg2)
	waitFor(t, "the second instance to take tasks", 30*time.Second, func() bool { return a2.app.taskCount() > 0 })
	waitFor(t, "state of moved tasks removed", 30*time.Second, func() bool {
		dirs := taskDirs()
		a1.app.mu.Lock()
		owned := 0
		for id := range a1.app.runners {
			if id.Subtopology == 1 {
				owned++
			}
		}
		a1.app.mu.Unlock()
		return len(dirs) == owned && owned < 4
	})
	a2.stop(t)
	a1.stop(t)
}

// With a standby replica, the instance that takes over a task after its
// owner dies restores only the changelog tail its standby had not seen.
func TestStandbyMakesFailoverRestoreOnlyTheTail(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 2)
	c.CreateTopic(t, "word-counts", 2)
	topo := wordCountTopology(t)
	truth := map[string]int64{}
	var recs []*kgo.Record
	for i := 0; i < 3000; i++ {
		line := fmt.Sprintf("w%d x%d", i, i%50)
		for _, w := range strings.Fields(line) {
			truth[w]++
		}
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(line)})
	}
	cfg := Config{ApplicationID: "standby", Brokers: c.Addrs(), CommitInterval: 100 * time.Millisecond, NumStandbyReplicas: 1}
	rc1, rc2 := &restoreCounter{}, &restoreCounter{}
	cfg1, cfg2 := cfg, cfg
	cfg1.StateDir, cfg1.RestoreListener = t.TempDir(), rc1
	cfg2.StateDir, cfg2.RestoreListener = t.TempDir(), rc2
	a1 := start(t, topo, cfg1)
	a2 := start(t, topo, cfg2)
	// The instance to kill owns stateful tasks whose standbys are on the
	// other one.
	var victim, survivor *running
	var survivorRC *restoreCounter
	waitFor(t, "stateful tasks with standbys on the other instance", 30*time.Second, func() bool {
		for _, pair := range []struct {
			v, s *running
			rc   *restoreCounter
		}{{a1, a2, rc2}, {a2, a1, rc1}} {
			pair.v.app.mu.Lock()
			stateful := 0
			for id := range pair.v.app.runners {
				if id.Subtopology == 1 {
					stateful++
				}
			}
			pair.v.app.mu.Unlock()
			pair.s.app.mu.Lock()
			standbys := len(pair.s.app.standbys)
			pair.s.app.mu.Unlock()
			if stateful > 0 && standbys > 0 {
				victim, survivor, survivorRC = pair.v, pair.s, pair.rc
				return true
			}
		}
		return false
	})
	c.Produce(t, "text-input", recs...)
	merged := func() map[string]int64 {
		m := storeContents(t, a1.app)
		for k, v := range storeContents(t, a2.app) {
			m[k] = v
		}
		return m
	}
	waitFor(t, "counts to match", 60*time.Second, func() bool { return fmt.Sprint(merged()) == fmt.Sprint(truth) })
	// Let the standbys catch up, then kill the owner.
	time.Sleep(1500 * time.Millisecond)
	before := survivorRC.total()
	victim.app.abort()
	<-victim.done
	waitFor(t, "the survivor to own every stateful task", 60*time.Second, func() bool {
		survivor.app.gate.Lock() // r.task is set under the gate
		defer survivor.app.gate.Unlock()
		n := 0
		for _, r := range survivor.app.allRunners() {
			id := r.id
			if id.Subtopology == 1 && r.task != nil {
				n++
			}
		}
		return n == 2
	})
	waitFor(t, "counts after failover", 60*time.Second, func() bool {
		return fmt.Sprint(storeContents(t, survivor.app)) == fmt.Sprint(truth)
	})
	restored := survivorRC.total() - before
	var changelog int64
	for _, r := range c.ConsumeAll(t, "standby-counts-changelog", -1, time.Second) {
		_ = r
		changelog++
	}
	t.Logf("failover restored %d records; the changelog holds %d", restored, changelog)
	if restored >= changelog/2 {
		t.Fatalf("failover restored %d records, not fewer than the dead instance's half of the changelog (%d total)", restored, changelog)
	}
	survivor.stop(t)
}
