package kstreams

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
	"github.com/kstreams-go/kstreams/testutil"
)

// wordcountProcess is examples/wordcount running as a child process.
type wordcountProcess struct {
	cmd  *exec.Cmd
	log  string // its stdout and stderr
	done chan struct{}
	err  error // Wait's result, once done is closed
}

func startWordcount(t *testing.T, bin, logPath string, args ...string) *wordcountProcess {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &wordcountProcess{cmd: exec.Command(bin, args...), log: logPath, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns how it did.
func (p *wordcountProcess) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.dumpLog(t)
		t.Fatalf("wordcount (pid %d) still running after %v", p.cmd.Process.Pid, timeout)
		return nil
	}
}

func (p *wordcountProcess) dumpLog(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Logf("read %s: %v", p.log, err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	t.Logf("last lines of %s:\n%s", filepath.Base(p.log), strings.Join(lines, "\n"))
}

// latestValues reads topic from the start and returns the latest int64
// value of each key.
func latestValues(t *testing.T, c *testutil.Cluster, topic string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range c.ConsumeAll(t, topic, -1, 500*time.Millisecond) {
		n, err := serde.Int64().Deserialize(topic, r.Value)
		if err != nil {
			t.Fatalf("%s-%d@%d: value of %q: %v", r.Topic, r.Partition, r.Offset, r.Key, err)
		}
		out[string(r.Key)] = n
	}
	return out
}

// TestWordCountSurvivesKill9 runs examples/wordcount as a process, kills it
// with SIGKILL while it counts 50 000 lines, and starts it again on the
// same state directory. At-least-once: every word's final count is at
// least its true count (lines processed but not committed before the kill
// are counted again). And the stores agree with their changelog: after a
// clean SIGTERM stop, the Pebble stores left on disk hold exactly the
// changelog's latest value of every word, and so does the output topic.
func TestWordCountSurvivesKill9(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build examples/wordcount")
	}
	bin := filepath.Join(t.TempDir(), "wordcount")
	build := exec.Command(goBin, "build", "-o", bin, "./examples/wordcount")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/wordcount: %v\n%s", err, out)
	}

	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	logs := t.TempDir()
	stateDir := t.TempDir()
	args := []string{"-brokers", strings.Join(c.Addrs(), ","), "-state-dir", stateDir,
		"-records", "0", "-commit-interval", "200ms"}
	lines, truth, _ := wordCountLines(50_000)

	first := startWordcount(t, bin, filepath.Join(logs, "first.log"), args...)
	// Feed the lines in batches while the process runs.
	producer := c.Client(t)
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < len(lines) && t.Context().Err() == nil; i += 2500 {
			produceLinesFrom(t, producer, lines, i, min(i+2500, len(lines)))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { <-produced })
	waitFor(t, "the first counts in word-counts", 60*time.Second, func() bool {
		return len(c.ConsumeAll(t, "word-counts", 1, 100*time.Millisecond)) > 0
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := first.wait(t, 10*time.Second); !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first wordcount: %v, want killed by SIGKILL", err)
	}
	t.Logf("killed the first process with %d words in word-counts", len(latestValues(t, c, "word-counts")))

	second := startWordcount(t, bin, filepath.Join(logs, "second.log"), args...)
	<-produced
	if t.Failed() {
		return
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		got := latestValues(t, c, "word-counts")
		short := 0
		for w, n := range truth {
			if got[w] < n {
				short++
			}
		}
		if short == 0 {
			break
		}
		if time.Now().After(deadline) {
			second.dumpLog(t)
			t.Fatalf("timed out: %d of %d words are counted short", short, len(truth))
		}
		select {
		case <-second.done:
			second.dumpLog(t)
			t.Fatalf("the restarted wordcount exited: %v", second.err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.wait(t, 60*time.Second); err != nil {
		second.dumpLog(t)
		t.Fatalf("wordcount stopped by SIGTERM: %v, want exit status 0", err)
	}

	// At-least-once: nothing is lost, some lines may count twice.
	output := latestValues(t, c, "word-counts")
	var extra int64
	for w, n := range truth {
		if output[w] < n {
			t.Errorf("word %q counted %d times, want at least %d", w, output[w], n)
		}
		extra += output[w] - n
	}
	for w := range output {
		if _, ok := truth[w]; !ok {
			t.Errorf("word %q counted but never fed", w)
		}
	}
	t.Logf("%d words counted twice after the kill", extra)

	changelog := latestValues(t, c, "wordcount-counts-changelog")
	if !maps.Equal(changelog, output) {
		t.Errorf("latest values differ between the changelog (%d words) and word-counts (%d words)", len(changelog), len(output))
	}

	// The stores the process left on disk, read the way it wrote them.
	stored := map[string]int64{}
	dirs, err := filepath.Glob(filepath.Join(stateDir, "wordcount", "*", "pebble"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 4 {
		t.Fatalf("want the Pebble directories of 4 tasks, found %q", dirs)
	}
	for _, dir := range dirs {
		db, err := state.OpenPebble(dir, state.PebbleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		it, err := state.Typed(db.Store("counts"), serde.String(), serde.Int64()).All()
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			if _, dup := stored[it.Key()]; dup {
				t.Errorf("word %q is in more than one task's store", it.Key())
			}
			stored[it.Key()] = it.Value()
		}
		if err := errors.Join(it.Err(), it.Close(), db.Close()); err != nil {
			t.Fatal(err)
		}
	}
	if !maps.Equal(stored, changelog) {
		diff := 0
		for w, n := range changelog {
			if stored[w] != n {
				if diff < 10 {
					t.Errorf("word %q: store holds %d, changelog %d", w, stored[w], n)
				}
				diff++
			}
		}
		t.Errorf("the stores hold %d words, the changelog %d; %d differ", len(stored), len(changelog), diff)
	}
}

// produceLinesFrom writes lines[from:to] to text-input, keyed by their
// number, from a goroutine other than the test's: it reports failures
// with Errorf.
func produceLinesFrom(t *testing.T, cl *kgo.Client, lines []string, from, to int) {
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: "text-input", Key: []byte(fmt.Sprint(i)), Value: []byte(lines[i])})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Errorf("produce lines %d to %d: %v", from, to, err)
	}
}
