package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/examples/internal/eoscheck"
	"github.com/kstreams-go/kstreams/serde"
)

const (
	eosLines    = 300_000
	eosKillGap  = 2 * time.Second // between two SIGKILLs
	eosFeedTime = 20 * time.Second
)

// TestEOSCountUnderKills runs the word count with -eos as three processes on
// a devbroker process, and SIGKILLs one of them (in turn) every 2s, or as
// soon after as it has joined the group, restarting it at once on its state
// directory, while 300 000 lines are produced over 20s. Once the input is
// all produced the killing stops; then, read read_committed, the latest
// count of every word in word-counts, and in the changelog
// wordcount-counts-changelog, must be its true count: no line counted twice
// or lost, whatever was killed mid-transaction. A count read that exceeds
// the truth, or that goes down, fails the test, with the record that showed
// it.
func TestEOSCountUnderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a broker and three wordcount processes, killed over and over")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 240*time.Second)
	defer cancel()
	start := time.Now()
	phase := func(format string, args ...any) {
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	c := &cluster{t: t, dir: t.TempDir(), http: newHTTPClient()}
	c.build(ctx)
	phase("built devbroker and wordcount")
	c.startBroker(ctx)
	phase("broker listening on %s", c.broker)
	adm := c.admin()
	for _, topic := range []string{inputTopic, outputTopic} {
		if _, err := adm.CreateTopic(ctx, 4, -1, nil, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Fatalf("create %s: %v", topic, err)
		}
	}

	lines, truth, total := clusterLines(eosLines, 2000)
	rd := newCountReader(t, c.broker, truth)
	inst := make([]*instance, 3)
	runs := make([]int, 3) // incarnations of each instance
	for i := range inst {
		inst[i] = c.startEOSInstance(i+1, 0)
	}
	phase("%d lines to feed, %d words, %d distinct; 3 instances started", len(lines), total, len(truth))

	// Feed in batches, paced over eosFeedTime, while this goroutine kills
	// an instance, in turn, every eosKillGap and restarts it at once. An
	// instance is killed only once it has joined the group: kfake never
	// expires a member killed inside its first JoinGroup (see joined).
	var feedErr error
	fed := make(chan struct{})
	go func() { feedErr = feedPaced(ctx, c.broker, lines, eosFeedTime); close(fed) }()
	kills := 0
	var held time.Duration // kills put off until the victim had joined
	next := time.Now().Add(eosKillGap)
kill:
	for {
		select {
		case <-fed:
			break kill
		case <-ctx.Done():
			t.Fatalf("feeding the lines: %v", ctx.Err())
		case <-time.After(time.Until(next)):
		}
		c.checkAlive()
		i := kills % len(inst)
		for !joined(inst[i].proc) {
			select {
			case <-fed:
				break kill
			case <-ctx.Done():
				t.Fatalf("feeding the lines: %v", ctx.Err())
			case <-time.After(100 * time.Millisecond):
				held += 100 * time.Millisecond
			}
		}
		c.kill(inst[i])
		runs[i]++
		inst[i] = c.startEOSInstance(i+1, runs[i])
		kills++
		next = time.Now().Add(eosKillGap)
	}
	if feedErr != nil {
		t.Fatalf("feeding the lines: %v", feedErr)
	}
	phase("fed %d lines; %d SIGKILLs and restarts (put off %v in all until the victim had joined); counted so far: %s", len(lines), kills, held, rd.progress())

	// Wait until every word's count is exact and the group has committed
	// all the input, or until a count past the truth shows it never will be.
	wctx, wcancel := context.WithTimeout(ctx, 150*time.Second)
	defer wcancel()
	var last string
	logged := time.Now()
	for {
		c.checkAlive()
		lag, lerr := eoscheck.InputLag(wctx, adm, clusterAppID, inputTopic)
		exact, over, quiet := rd.status()
		last = fmt.Sprintf("%s; input not committed: %d (%v)", rd.progress(), lag, lerr)
		if lerr == nil && lag == 0 && (exact || over && quiet > 5*time.Second) {
			break
		}
		if time.Since(logged) >= 5*time.Second {
			phase("%s; %s", last, openTxns(wctx, adm, c.procs))
			logged = time.Now()
		}
		if !eoscheck.Wait(wctx, 500*time.Millisecond) {
			t.Errorf("counts not exact in time: %v; last: %s", wctx.Err(), last)
			break
		}
	}
	phase("settled: %s", last)
	// Nothing may follow: no transaction left open on the output, and a
	// quiet spell in which no record arrives.
	if err := eoscheck.AwaitStable(wctx, adm, outputTopic, clusterChangelog); err != nil {
		t.Errorf("%v", err)
	}
	rd.awaitQuiet(wctx, 2*time.Second)
	rd.close()
	phase("output stable and read")

	got := rd.latestCounts()
	rd.report(t, "word-counts")
	if all, err := eoscheck.CountUncommitted(ctx, c.broker, 2*time.Second, outputTopic); err != nil {
		t.Errorf("reading %s read_uncommitted: %v", outputTopic, err)
	} else {
		t.Logf("%s holds %d records read_uncommitted, %d read_committed: %d written by transactions that aborted",
			outputTopic, all, rd.records(), all-rd.records())
	}
	diffCounts(t, outputTopic+" (read_committed)", got, truth)

	changelog, err := eoscheck.ReadLatest(ctx, c.broker, clusterChangelog, 3*time.Second)
	if err != nil {
		t.Fatalf("reading %s: %v", clusterChangelog, err)
	}
	diffCounts(t, clusterChangelog+" (read_committed)", changelog, truth)
	phase("changelog read: %d words", len(changelog))

	kcatCheck(ctx, t, c.broker, got)
	logSummary(t, c.procs)
	phase("done")
}

// startEOSInstance starts incarnation run of wordcount instance n with
// -eos, on the state directory of instance n.
func (c *cluster) startEOSInstance(n, run int) *instance {
	c.t.Helper()
	in := &instance{n: n}
	in.proc = c.start(fmt.Sprintf("wordcount-%d.%d", n, run), nil, c.wordcount,
		"-brokers", c.broker,
		"-eos",
		"-records", "0",
		"-session-timeout", "6s",
		"-state-dir", filepath.Join(c.dir, fmt.Sprintf("state-%d", n)),
	)
	return in
}

// feedPaced writes lines to the input topic, keyed by their number, in
// batches spread evenly over d (or longer, if the broker is slower).
func feedPaced(ctx context.Context, broker string, lines []string, d time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	const batches = 60
	size := (len(lines) + batches - 1) / batches
	start := time.Now()
	for b := 0; b*size < len(lines); b++ {
		if !eoscheck.Wait(ctx, time.Until(start.Add(time.Duration(b)*d/batches))) {
			return ctx.Err()
		}
		lo, hi := b*size, min((b+1)*size, len(lines))
		recs := make([]*kgo.Record, 0, hi-lo)
		for i := lo; i < hi; i++ {
			recs = append(recs, &kgo.Record{Topic: inputTopic, Key: []byte(strconv.Itoa(i)), Value: []byte(lines[i])})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("lines %d to %d: %w", lo, hi, err)
		}
	}
	return nil
}

// countReader reads word-counts read_committed from the start, in the
// background, keeping each word's latest count and the records that break
// exactly-once: a count above the truth, or one not above the count
// before it (a committed count only grows).
type countReader struct {
	cl     *kgo.Client
	truth  map[string]int64
	total  int64
	done   chan struct{}
	mu     sync.Mutex
	latest map[string]int64
	where  map[string]string // where each latest count was read
	sum    int64
	recs   int
	lastAt time.Time
	over   []string
	down   []string
	errs   []string
}

func newCountReader(t *testing.T, broker string, truth map[string]int64) *countReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker),
		kgo.ConsumeTopics(outputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	r := &countReader{cl: cl, truth: truth, done: make(chan struct{}),
		latest: map[string]int64{}, where: map[string]string{}, lastAt: time.Now()}
	for _, n := range truth {
		r.total += n
	}
	go r.run()
	t.Cleanup(r.close)
	return r
}

func (r *countReader) run() {
	defer close(r.done)
	ser := serde.Int64()
	for {
		fs := r.cl.PollFetches(context.Background())
		if fs.IsClientClosed() {
			return
		}
		r.mu.Lock()
		fs.EachError(func(topic string, p int32, err error) {
			r.errs = append(r.errs, fmt.Sprintf("%s-%d: %v", topic, p, err))
		})
		fs.EachRecord(func(rec *kgo.Record) {
			r.recs++
			r.lastAt = time.Now()
			at := fmt.Sprintf("%s-%d@%d", rec.Topic, rec.Partition, rec.Offset)
			w := string(rec.Key)
			n, err := ser.Deserialize(rec.Topic, rec.Value)
			if err != nil {
				r.errs = append(r.errs, fmt.Sprintf("%s: count of %q: %v", at, w, err))
				return
			}
			prev, ok := r.latest[w]
			if ok && n <= prev {
				r.down = append(r.down, fmt.Sprintf("%s: %q counted %d after %d (at %s)", at, w, n, prev, r.where[w]))
			}
			if n > r.truth[w] {
				r.over = append(r.over, fmt.Sprintf("%s: %q counted %d, truth %d", at, w, n, r.truth[w]))
			}
			r.sum += n - prev
			r.latest[w] = n
			r.where[w] = at
		})
		r.mu.Unlock()
	}
}

func (r *countReader) close() {
	r.cl.Close()
	<-r.done
}

// status says whether every count is exact, whether some count went past
// the truth, and how long it has been since the last record arrived.
func (r *countReader) status() (exact, over bool, quiet time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Equal(r.latest, r.truth), len(r.over) > 0, time.Since(r.lastAt)
}

func (r *countReader) progress() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%d of %d words counted, %d of %d distinct, from %d records of %s; %d counts past the truth, %d not growing",
		r.sum, r.total, len(r.latest), len(r.truth), r.recs, outputTopic, len(r.over), len(r.down))
}

// awaitQuiet waits until no record has arrived for d.
func (r *countReader) awaitQuiet(ctx context.Context, d time.Duration) {
	for {
		r.mu.Lock()
		q := time.Since(r.lastAt)
		r.mu.Unlock()
		if q >= d || !eoscheck.Wait(ctx, d-q) {
			return
		}
	}
}

func (r *countReader) records() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recs
}

func (r *countReader) latestCounts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.latest)
}

// report fails t with the records that broke exactly-once, and logs the
// fetch errors seen.
func (r *countReader) report(t *testing.T, what string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.over); n > 0 {
		t.Errorf("%s: %d counts read_committed exceed the truth (a line counted twice); the first: %s", what, n, strings.Join(r.over[:min(n, 20)], "\n\t"))
	}
	if n := len(r.down); n > 0 {
		t.Errorf("%s: %d counts read_committed do not grow; the first: %s", what, n, strings.Join(r.down[:min(n, 20)], "\n\t"))
	}
	if n := len(r.errs); n > 0 {
		t.Logf("%s: %d fetch errors (retried), the first: %s", what, n, strings.Join(r.errs[:min(n, 5)], "\n\t"))
	}
}

// diffCounts fails t, listing some differences, unless got equals truth.
func diffCounts(t *testing.T, what string, got, truth map[string]int64) {
	t.Helper()
	if maps.Equal(got, truth) {
		t.Logf("%s: all %d words hold their true count", what, len(truth))
		return
	}
	var over, under, missing, extra []string
	var overBy, underBy int64
	for w, n := range truth {
		g, ok := got[w]
		switch {
		case !ok:
			missing = append(missing, w)
			underBy += n
		case g > n:
			over = append(over, fmt.Sprintf("%s %d (truth %d)", w, g, n))
			overBy += g - n
		case g < n:
			under = append(under, fmt.Sprintf("%s %d (truth %d)", w, g, n))
			underBy += n - g
		}
	}
	for w := range got {
		if _, ok := truth[w]; !ok {
			extra = append(extra, w)
		}
	}
	for _, s := range [][]string{over, under, missing, extra} {
		slices.Sort(s)
	}
	t.Errorf("%s: of %d words, %d over the truth (by %d in all), %d under (by %d, missing words included), %d missing, %d never fed\n\tover: %s\n\tunder: %s\n\tmissing: %s\n\tnever fed: %s",
		what, len(truth), len(over), overBy, len(under), underBy, len(missing), len(extra),
		strings.Join(over[:min(len(over), 10)], ", "), strings.Join(under[:min(len(under), 10)], ", "),
		strings.Join(missing[:min(len(missing), 10)], ", "), strings.Join(extra[:min(len(extra), 10)], ", "))
}

// kcatCheck reads word-counts with kcat, read_committed, and wants the same
// latest counts as the Go reader got. Without kcat on PATH it only logs.
func kcatCheck(ctx context.Context, t *testing.T, broker string, want map[string]int64) {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Logf("kcat not on PATH, its check skipped: %v", err)
		return
	}
	kctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(kctx, kcat, "-C", "-b", broker, "-t", outputTopic,
		"-X", "isolation.level=read_committed", "-s", "value=Q", "-e", "-q", "-f", `%k %s\n`)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("%v: %v\n%s", cmd.Args, err, stderr.String())
		return
	}
	got := map[string]int64{}
	lines := 0
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		lines++
		w, n, ok := strings.Cut(sc.Text(), " ")
		v, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil {
			t.Errorf("kcat line %d %q: want %q", lines, sc.Text(), "<word> <count>")
			return
		}
		got[w] = v
	}
	if !maps.Equal(got, want) {
		diffCounts(t, "kcat's "+outputTopic+" against the Go reader's", got, want)
		return
	}
	t.Logf("kcat read %d records of %s, read_committed: the same latest count of all %d words", lines, outputTopic, len(got))
}

// logSummary logs how many times the processes logged each warning and
// error message: evidence of what the kills made the library do.
func logSummary(t *testing.T, procs []*proc) {
	t.Helper()
	msgs := map[string]int{}
	for _, p := range procs {
		b, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
				continue
			}
			_, msg, _ := strings.Cut(line, "msg=")
			if q, err := strconv.QuotedPrefix(msg); err == nil {
				msg, _ = strconv.Unquote(q)
			} else {
				msg, _, _ = strings.Cut(strings.TrimSpace(msg), " ")
			}
			msgs[msg]++
		}
	}
	var lines []string
	for m, n := range msgs {
		lines = append(lines, fmt.Sprintf("%6d %s", n, m))
	}
	slices.Sort(lines)
	slices.Reverse(lines)
	t.Logf("warnings and errors logged by the %d processes:\n%s", len(procs), strings.Join(lines, "\n"))
}

// joined reports whether p has logged an assignment, so has been answered
// a JoinGroup and a SyncGroup and heartbeats. kfake (the broker here) arms
// a member's session timer only when a response reaches it; a member killed
// while its first JoinGroup waits in the broker never gets one, so it is
// never expired: once the join completes without it, it keeps its
// partitions, unprocessed, in a stable group, and a later rebalance waits
// the whole rebalance timeout (60s) for it, during which kfake expires the
// live members waiting in JoinGroup instead. Kafka expires such a member
// after its session timeout.
func joined(p *proc) bool {
	b, err := os.ReadFile(p.log)
	return err == nil && bytes.Contains(b, []byte(`msg="tasks assigned"`))
}

// openTxns names the open transactions and the processes holding them.
func openTxns(ctx context.Context, adm *kadm.Client, ps []*proc) string {
	named := make([]eoscheck.Proc, len(ps))
	for i, p := range ps {
		named[i] = eoscheck.Proc{Name: p.name, Pid: p.cmd.Process.Pid, Killed: p.killed}
	}
	return eoscheck.OpenTxns(ctx, adm, named)
}
