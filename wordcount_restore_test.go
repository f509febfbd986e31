package kstreams

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/statemgr"
	"github.com/kstreams-go/kstreams/state"
	"github.com/kstreams-go/kstreams/testutil"
)

// wordCountLines returns n deterministic lines of 1 to 4 lower-case words
// drawn with a Zipf distribution from 3000 ("the" and w1 ... w2999), the
// count of each word, and the number of words. Words are separated by
// single spaces, so strings.Fields and examples/wordcount split them alike.
func wordCountLines(n int) (lines []string, truth map[string]int64, words int) {
	rng := rand.New(rand.NewPCG(20, 26))
	zipf := rand.NewZipf(rng, 1.1, 1, 2999)
	truth = map[string]int64{}
	lines = make([]string, n)
	var sb strings.Builder
	for i := range lines {
		sb.Reset()
		for j := range 1 + rng.IntN(4) {
			w := "the"
			if k := zipf.Uint64(); k > 0 {
				w = fmt.Sprintf("w%d", k)
			}
			if j > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(w)
			truth[w]++
			words++
		}
		lines[i] = sb.String()
	}
	return lines, truth, words
}

// produceLines writes lines to topic, keyed by their number, and waits for
// every one to be acknowledged.
func produceLines(t testing.TB, c *testutil.Cluster, topic string, lines []string) {
	t.Helper()
	cl := c.Client(t, kgo.ProducerBatchMaxBytes(1<<20))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, l := range lines {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(l)},
			func(_ *kgo.Record, err error) {
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
		t.Fatalf("produce %d lines to %s: %v", len(lines), topic, firstErr)
	}
}

// restoreLog records, per changelog partition, where each restore started
// and how many records it restored.
type restoreLog struct {
	mu       sync.Mutex
	starts   map[state.TopicPartition]int64
	restored map[state.TopicPartition]int64
}

func newRestoreLog() *restoreLog {
	return &restoreLog{starts: map[state.TopicPartition]int64{}, restored: map[state.TopicPartition]int64{}}
}

func (r *restoreLog) OnRestoreStart(_ string, tp state.TopicPartition, start, _ int64) {
	r.mu.Lock()
	r.starts[tp] = start
	r.mu.Unlock()
}

func (r *restoreLog) OnBatchRestored(_ string, tp state.TopicPartition, _ int64, n int64) {
	r.mu.Lock()
	r.restored[tp] += n
	r.mu.Unlock()
}

func (r *restoreLog) OnRestoreEnd(string, state.TopicPartition, int64) {}

func (r *restoreLog) total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, v := range r.restored {
		n += v
	}
	return n
}

func (r *restoreLog) byPartition() map[state.TopicPartition]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.restored)
}

// changelogEnds lists the end offset of every partition of topic.
func changelogEnds(t *testing.T, c *testutil.Cluster, topic string) map[state.TopicPartition]int64 {
	t.Helper()
	ends, err := kadm.NewClient(c.Client(t)).ListEndOffsets(t.Context(), topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	out := map[state.TopicPartition]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		out[state.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	})
	return out
}

// waitForTable waits until the "counts" stores of a hold exactly want.
func waitForTable(t *testing.T, what string, a *App, want map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		got := storeContents(t, a)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: the stores hold %d words, want %d (state %v, processed %d)",
				what, len(got), len(want), a.State(), a.Stats().Processed.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForTasks waits until a runs every task of the word count topology
// (4 stateless, 4 with stores), each restored.
func waitForTasks(t *testing.T, a *App) {
	t.Helper()
	waitFor(t, "all 8 tasks restored and running", 60*time.Second, func() bool {
		if a.State() != Running {
			return false
		}
		// Exclusively: a runner sets its task holding the gate shared.
		a.gate.Lock()
		defer a.gate.Unlock()
		rs := a.allRunners()
		for _, r := range rs {
			if r.task == nil {
				return false
			}
		}
		return len(rs) == 8
	})
}

// TestWordCountRestore counts the words of 200 000 lines, then restarts the
// application three ways: with its state directory deleted (every store
// comes back from the changelog and no input is processed again), after a
// clean stop (the checkpoint covers everything: nothing restored), and
// with checkpoints set back 100 records (exactly the tail after them is
// restored). Each time the table equals the words' true counts.
func TestWordCountRestore(t *testing.T) {
	const nLines = 200_000
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, words := wordCountLines(nLines)
	produceLines(t, c, "text-input", lines)
	topo := wordCountTopology(t)
	dir := t.TempDir()
	cfg := Config{ApplicationID: "wcr", Brokers: c.Addrs(), StateDir: dir, CommitInterval: 200 * time.Millisecond}
	const changelog = "wcr-counts-changelog"

	began := time.Now()
	a := start(t, topo, cfg)
	// Lines, then words through the repartition topic.
	waitFor(t, "every line and word processed", 600*time.Second, func() bool {
		return a.app.Stats().Processed.Load() >= int64(nLines+words)
	})
	waitForTable(t, "the counts of 200 000 lines", a.app, truth)
	a.stop(t)
	t.Logf("counted %d words (%d distinct) of %d lines in %v", words, len(truth), nLines, time.Since(began).Round(time.Millisecond))
	ends := changelogEnds(t, c, changelog)
	var endSum int64
	for tp, end := range ends {
		if end < 100 {
			t.Fatalf("changelog %s-%d holds %d records; the test needs at least 100 in each partition", tp.Topic, tp.Partition, end)
		}
		endSum += end
	}

	t.Run("state dir deleted", func(t *testing.T) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		rl := newRestoreLog()
		cfg := cfg
		cfg.RestoreListener = rl
		a := start(t, topo, cfg)
		waitForTasks(t, a.app)
		waitForTable(t, "the counts restored from the changelog", a.app, truth)
		// A few commit intervals for anything replayed to show up.
		time.Sleep(time.Second)
		if n := a.app.Stats().Processed.Load(); n != 0 {
			t.Errorf("the restarted instance processed %d records; every input offset was committed", n)
		}
		a.stop(t)
		if n := rl.total(); n != endSum {
			t.Errorf("restored %d records, want the whole changelog: %d", n, endSum)
		}
		t.Logf("restored %d changelog records", rl.total())
	})

	t.Run("clean restart", func(t *testing.T) {
		rl := newRestoreLog()
		cfg := cfg
		cfg.RestoreListener = rl
		a := start(t, topo, cfg)
		waitForTasks(t, a.app)
		waitForTable(t, "the counts after a clean restart", a.app, truth)
		a.stop(t)
		if n := rl.total(); n != 0 {
			t.Errorf("clean restart restored %d records (%v), want 0: the checkpoints cover the changelog", n, rl.byPartition())
		}
		if n := a.app.Stats().Processed.Load(); n != 0 {
			t.Errorf("the restarted instance processed %d records, want 0", n)
		}
	})

	t.Run("checkpoint behind the changelog", func(t *testing.T) {
		paths, err := filepath.Glob(filepath.Join(dir, cfg.ApplicationID, "*", statemgr.CheckpointFile))
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 4 {
			t.Fatalf("want a checkpoint in each of the 4 stateful tasks' directories, found %q", paths)
		}
		want := map[state.TopicPartition]int64{}
		wantStarts := map[state.TopicPartition]int64{}
		for _, p := range paths {
			cp, err := state.ReadCheckpoint(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(cp) != 1 {
				t.Fatalf("checkpoint %s: %v, want one entry", p, cp)
			}
			for tp, off := range cp {
				if off != ends[tp] {
					t.Errorf("checkpoint %s says %s-%d@%d after a clean stop, want the end offset %d", p, tp.Topic, tp.Partition, off, ends[tp])
				}
				back := ends[tp] - 100
				cp[tp] = back
				want[tp] = ends[tp] - back
				wantStarts[tp] = back
			}
			if err := state.WriteCheckpoint(p, cp); err != nil {
				t.Fatal(err)
			}
		}
		rl := newRestoreLog()
		cfg := cfg
		cfg.RestoreListener = rl
		a := start(t, topo, cfg)
		waitForTasks(t, a.app)
		waitForTable(t, "the counts after restoring the tail", a.app, truth)
		a.stop(t)
		if got := rl.byPartition(); !maps.Equal(got, want) {
			t.Errorf("restored per changelog partition %v, want end - checkpoint: %v", got, want)
		}
		rl.mu.Lock()
		if !maps.Equal(rl.starts, wantStarts) {
			t.Errorf("restores started at %v, want the checkpoints %v", rl.starts, wantStarts)
		}
		rl.mu.Unlock()
		if n := a.app.Stats().Processed.Load(); n != 0 {
			t.Errorf("the restarted instance processed %d records, want 0", n)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the app's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWordCountCorruptStoreIsRestored garbles one task's Pebble directory
// between two runs: the task must log a warning, wipe the directory and
// restore its store in full from the changelog, and the others restore
// nothing; the table still equals the true counts.
func TestWordCountCorruptStoreIsRestored(t *testing.T) {
	const nLines = 20_000
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, words := wordCountLines(nLines)
	produceLines(t, c, "text-input", lines)
	topo := wordCountTopology(t)
	dir := t.TempDir()
	cfg := Config{ApplicationID: "wcc", Brokers: c.Addrs(), StateDir: dir, CommitInterval: 200 * time.Millisecond}

	a := start(t, topo, cfg)
	waitFor(t, "every line and word processed", 120*time.Second, func() bool {
		return a.app.Stats().Processed.Load() >= int64(nLines+words)
	})
	waitForTable(t, "the counts", a.app, truth)
	a.stop(t)
	ends := changelogEnds(t, c, "wcc-counts-changelog")

	// Task 1_2 holds partition 2 of the changelog.
	pebbleDir := filepath.Join(dir, cfg.ApplicationID, "1_2", "pebble")
	var garbled []string
	for _, pattern := range []string{"MANIFEST-*", "OPTIONS-*"} {
		files, err := filepath.Glob(filepath.Join(pebbleDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(f, bytes.Repeat([]byte("not a pebble file\x00\xff"), 64), 0o644); err != nil {
				t.Fatal(err)
			}
			garbled = append(garbled, filepath.Base(f))
		}
	}
	if len(garbled) < 2 {
		t.Fatalf("want a MANIFEST and an OPTIONS file in %s, garbled %q", pebbleDir, garbled)
	}
	t.Logf("garbled %q in %s", garbled, pebbleDir)

	var logs syncBuffer
	rl := newRestoreLog()
	cfg.RestoreListener = rl
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	a = start(t, topo, cfg)
	waitForTasks(t, a.app)
	waitForTable(t, "the counts after the corrupt store is restored", a.app, truth)
	a.stop(t)

	if !strings.Contains(logs.String(), "cannot open the task's Pebble store") || !strings.Contains(logs.String(), "task=1_2") {
		t.Errorf("no warning about the corrupt store of task 1_2 in the logs:\n%s", logs.String())
	}
	tp := state.TopicPartition{Topic: "wcc-counts-changelog", Partition: 2}
	want := map[state.TopicPartition]int64{tp: ends[tp]}
	if got := rl.byPartition(); !maps.Equal(got, want) {
		t.Errorf("restored per changelog partition %v, want all of partition 2 only: %v", got, want)
	}
	if n := a.app.Stats().Processed.Load(); n != 0 {
		t.Errorf("the restarted instance processed %d records, want 0", n)
	}
}
