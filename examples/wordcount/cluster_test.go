package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
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
)

const (
	clusterAppID     = "wordcount" // the binary's default -app-id
	clusterChangelog = clusterAppID + "-counts-changelog"
	servedByHeader   = "X-Kstreams-Served-By"
)

// TestClusterFailover runs the word count as it runs in production: a
// broker and three instances, each its own process, with the query API on,
// one standby per task and a short session timeout. It feeds 100 000 lines
// and then checks, through the REST API, that
//
//   - every word's count is exact when asked of one instance, which forwards
//     the words the others own;
//   - after instance 3 is killed with SIGKILL, the survivors answer every
//     word exactly again, having restored fewer records than the whole
//     changelog holds (kstreams_restore_records_total): their standbys had
//     the state;
//   - a fourth instance joins and gets active tasks, and every word is still
//     exact.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a broker and four wordcount processes")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 160*time.Second)
	defer cancel()
	start := time.Now()
	phase := func(name string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), name) }

	c := &cluster{t: t, dir: t.TempDir(), http: newHTTPClient()}
	c.build(ctx)
	phase("built devbroker and wordcount")
	c.startBroker(ctx)
	phase("broker listening on " + c.broker)

	adm := c.admin()
	if _, err := adm.CreateTopic(ctx, 4, -1, nil, inputTopic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create %s: %v", inputTopic, err)
	}
	inst := []*instance{c.startInstance(1), c.startInstance(2), c.startInstance(3)}

	lines, truth, total := clusterLines(100_000, 2000)
	c.produce(ctx, lines)
	phase(fmt.Sprintf("produced %d lines, %d words, %d distinct", len(lines), total, len(truth)))

	c.awaitCounted(ctx, inst[0], truth, total)
	phase("every word counted and committed")

	// 1. One instance answers for every word, forwarding what it does not own.
	tl := c.awaitWords(ctx, "all through instance 1", []*instance{inst[0]}, truth)
	if tl.servedElsewhere == 0 {
		t.Errorf("no answer of instance 1 came from another instance (header %s): forwarding never happened", servedByHeader)
	}
	phase(fmt.Sprintf("instance 1 answered %d words, %d of them served by another instance", len(truth), tl.servedElsewhere))
	c.checkErrorsAndRange(ctx, inst[0], truth)

	// 2. Kill instance 3; the survivors take its tasks over from standbys.
	survivors := inst[:2]
	restoredBefore := make([]float64, len(survivors))
	for i, in := range survivors {
		restoredBefore[i], _ = c.restoredRecords(ctx, in)
	}
	mdBefore := c.metadata(ctx, inst[0])
	t.Logf("before the kill: %s", c.describe(mdBefore))
	c.kill(inst[2])
	phase("killed instance 3 (SIGKILL)")
	failCtx, failCancel := context.WithTimeout(ctx, 60*time.Second)
	tl = c.awaitWords(failCtx, "after the kill, through instances 1 and 2", survivors, truth)
	failCancel()
	phase(fmt.Sprintf("instances 1 and 2 answer every word again (%d answers were 503 on the way)", tl.unavailable))

	// 3. The failover restored less than the whole changelog.
	var restored float64
	exposed := false
	for i, in := range survivors {
		after, ok := c.restoredRecords(ctx, in)
		exposed = exposed || ok
		t.Logf("instance %d: kstreams_restore_records_total %v before the kill, %v after (exposed: %v)", in.n, restoredBefore[i], after, ok)
		restored += after - restoredBefore[i]
	}
	if !exposed {
		// A counter appears once a restore has counted records on it; the
		// fourth instance below checks that it does.
		t.Logf("neither survivor exposes kstreams_restore_records_total: neither has restored a record since it started")
	}
	ends := c.endOffsets(ctx, clusterChangelog)
	var changelog int64
	for _, n := range ends {
		changelog += n
	}
	t.Logf("failover restored %v records; %s holds %d", restored, clusterChangelog, changelog)
	if restored >= float64(changelog) {
		t.Errorf("failover restored %v records, not fewer than the %d of the whole changelog %s: the standbys did not spare a full restore",
			restored, changelog, clusterChangelog)
	}
	// The killed instance's own stateful tasks are what a failover without
	// standbys restores in full: log how the restore compares with them.
	mdAfter := c.metadata(ctx, inst[0])
	t.Logf("after the failover: %s", c.describe(mdAfter))
	var moved []string
	var movedRecords int64
	for _, task := range mdBefore.statefulActive(inst[2].addr) {
		p := taskPartition(task)
		moved = append(moved, fmt.Sprintf("%s (%d records, taken by %s, standby before on %s)",
			task, ends[p], c.name(mdAfter.activeOwner(task)), c.name(mdBefore.standbyOwners(task)...)))
		movedRecords += ends[p]
	}
	t.Logf("instance 3's stateful tasks: %s; a restore without standbys reads their %d records, this one read %v",
		strings.Join(moved, ", "), movedRecords, restored)
	if movedRecords > 0 && restored >= float64(movedRecords) {
		t.Errorf("failover restored %v records, as many as the %d of instance 3's own changelog partitions: its tasks did not go to their standbys (%s)",
			restored, movedRecords, strings.Join(moved, ", "))
	}

	// 4. A fourth instance joins and takes active tasks.
	inst = append(inst, c.startInstance(4))
	live := []*instance{inst[0], inst[1], inst[3]}
	md := c.awaitBalanced(ctx, live)
	phase("instance 4 joined; every live instance owns an active task")
	c.awaitWords(ctx, "after instance 4 joined, through instances 1, 2 and 4", live, truth)
	phase("every word still exact")

	// Instance 4 started with no state, so it restored its stateful tasks
	// from their changelogs: its restore counter must show it, or step 3
	// measured nothing.
	if tasks := md.statefulActive(inst[3].addr); len(tasks) > 0 {
		var full int64
		for _, task := range tasks {
			full += ends[taskPartition(task)]
		}
		got, _ := c.restoredRecords(ctx, inst[3])
		t.Logf("instance 4 restored %v records for %v, whose changelog partitions hold %d", got, tasks, full)
		if got <= 0 {
			t.Errorf("instance 4 took %v with no state (%d changelog records), yet its kstreams_restore_records_total is %v", tasks, full, got)
		}
	}
}

// clusterLines returns n seeded lines of 1 to 12 words drawn from a
// vocabulary of vocab made-up words, the count of every word and their sum.
// Lines start with a capital and end with a period, as text does; the
// counts come from splitWords, so they are what the app must count.
func clusterLines(n, vocab int) (lines []string, truth map[string]int64, total int64) {
	rng := rand.New(rand.NewPCG(2026, 11))
	seen := map[string]bool{}
	words := make([]string, 0, vocab)
	for len(words) < vocab {
		b := make([]byte, 3+rng.IntN(6))
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		if w := string(b); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	truth = map[string]int64{}
	lines = make([]string, n)
	var sb strings.Builder
	for i := range lines {
		sb.Reset()
		for j := range 1 + rng.IntN(12) {
			w := words[rng.IntN(len(words))]
			if j == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				sb.WriteByte(' ')
			}
			sb.WriteString(w)
		}
		sb.WriteByte('.')
		lines[i] = sb.String()
		for _, w := range splitWords(lines[i]) {
			truth[w]++
			total++
		}
	}
	return lines, truth, total
}

// cluster is the broker and the wordcount instances of one test, each a
// process of its own started from binaries built into dir.
type cluster struct {
	t         *testing.T
	dir       string
	http      *http.Client
	devbroker string // binary paths
	wordcount string
	broker    string // the broker's address
	procs     []*proc
	instances []*instance
}

type instance struct {
	n    int
	addr string // host:port of its query API
	proc *proc
}

func (in *instance) url(path string) string { return "http://" + in.addr + path }

// proc is a running process; its stdout and stderr go to log.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	done   chan struct{} // closed when it has exited
	err    error         // Wait's error, once done
	killed bool          // killed on purpose: its exit is no failure
}

func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// build compiles cmd/devbroker and examples/wordcount into c.dir.
func (c *cluster) build(ctx context.Context) {
	c.t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		c.t.Fatalf("the go command is needed to build the processes: %v", err)
	}
	bctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	binDir := filepath.Join(c.dir, "bin")
	cmd := exec.CommandContext(bctx, goBin, "build", "-o", binDir+string(filepath.Separator),
		"github.com/kstreams-go/kstreams/cmd/devbroker", "github.com/kstreams-go/kstreams/examples/wordcount")
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("go build: %v\n%s", err, out)
	}
	c.devbroker = filepath.Join(binDir, "devbroker")
	c.wordcount = filepath.Join(binDir, "wordcount")
}

// start runs bin with args, its output going to a file named for the
// process; t.Cleanup kills it and, if the test failed, logs its last lines.
func (c *cluster) start(name string, stdout io.Writer, bin string, args ...string) *proc {
	c.t.Helper()
	logPath := filepath.Join(c.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	p := &proc{name: name, log: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = f
	p.cmd.Stdout = f
	if stdout != nil {
		p.cmd.Stdout = io.MultiWriter(f, stdout)
	}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	c.t.Cleanup(func() {
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			c.t.Errorf("%s (pid %d) still running 10s after SIGKILL", name, p.cmd.Process.Pid)
		}
		if c.t.Failed() {
			c.t.Logf("last lines of %s (%s):\n%s", name, logPath, tail(logPath, 30))
		}
	})
	return p
}

// startBroker starts devbroker on a free port and waits for its ready line.
func (c *cluster) startBroker(ctx context.Context) {
	c.t.Helper()
	ready := &lineWatcher{prefix: "listening on ", found: make(chan string, 1)}
	p := c.start("devbroker", ready, c.devbroker, "-addr", "127.0.0.1:0", "-partitions", "4")
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	select {
	case addrs := <-ready.found:
		c.broker = strings.Split(addrs, ",")[0]
	case <-p.done:
		c.t.Fatalf("devbroker exited before it was ready: %v\n%s", p.err, tail(p.log, 30))
	case <-wctx.Done():
		c.t.Fatalf("devbroker not ready: %v\n%s", wctx.Err(), tail(p.log, 30))
	}
}

// startInstance starts wordcount instance n with its own state directory
// and query port.
func (c *cluster) startInstance(n int) *instance {
	c.t.Helper()
	in := &instance{n: n, addr: freeAddr(c.t)}
	in.proc = c.start(fmt.Sprintf("wordcount-%d", n), nil, c.wordcount,
		"-brokers", c.broker,
		"-http", in.addr,
		"-state-dir", filepath.Join(c.dir, fmt.Sprintf("state-%d", n)),
		"-standbys", "1",
		"-session-timeout", "6s",
		"-commit-interval", "500ms",
		"-records", "0",
	)
	c.instances = append(c.instances, in)
	return in
}

// name names the instances at endpoints for the log.
func (c *cluster) name(endpoints ...string) string {
	var names []string
	for _, e := range endpoints {
		n := e
		for _, in := range c.instances {
			if in.addr == e {
				n = fmt.Sprintf("instance %d", in.n)
			}
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, " and ")
}

// describe says which instance runs which tasks.
func (c *cluster) describe(md metadata) string {
	var parts []string
	for _, in := range md.Instances {
		parts = append(parts, fmt.Sprintf("%s active %v standby %v", c.name(in.Endpoint), in.Active, in.Standby))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// kill sends SIGKILL to in and waits for it to die.
func (c *cluster) kill(in *instance) {
	c.t.Helper()
	in.proc.killed = true
	if err := in.proc.cmd.Process.Kill(); err != nil {
		c.t.Fatalf("kill instance %d: %v", in.n, err)
	}
	<-in.proc.done
}

// checkAlive fails the test if a process not killed on purpose has exited.
func (c *cluster) checkAlive() {
	c.t.Helper()
	for _, p := range c.procs {
		select {
		case <-p.done:
			if !p.killed {
				c.t.Fatalf("%s exited: %v\n%s", p.name, p.err, tail(p.log, 30))
			}
		default:
		}
	}
}

func (c *cluster) admin() *kadm.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.broker))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// produce writes lines to the input topic, keyed by their number.
func (c *cluster) produce(ctx context.Context, lines []string) {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.broker), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		recs[i] = &kgo.Record{Topic: inputTopic, Key: []byte(strconv.Itoa(i)), Value: []byte(l)}
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		c.t.Fatalf("produce %d lines: %v", len(lines), err)
	}
}

// endOffsets returns the end offset of each partition of topic: the
// number of records ever written to it, as nothing is deleted here.
func (c *cluster) endOffsets(ctx context.Context, topic string) map[int32]int64 {
	c.t.Helper()
	ends, err := c.admin().ListEndOffsets(ctx, topic)
	if err != nil {
		c.t.Fatalf("end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			c.t.Fatalf("end offset of %s-%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// awaitCounted waits until the counts read through in's range API add up to
// total over every word of truth, and until the group has committed all its
// input: the counts must be durable before an instance is killed, or the
// survivors would count the uncommitted lines again (at-least-once).
func (c *cluster) awaitCounted(ctx context.Context, in *instance, truth map[string]int64, total int64) {
	c.t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	adm := c.admin()
	var last string
	for {
		c.checkAlive()
		counts, err := c.rangeAll(wctx, in)
		var sum int64
		for _, v := range counts {
			sum += v
		}
		switch {
		case err != nil:
			last = err.Error()
		case sum != total || len(counts) != len(truth):
			last = fmt.Sprintf("range over %s: %d words counted %d times; want %d words %d times", in.addr, len(counts), sum, len(truth), total)
		default:
			lag, lerr := committedLag(wctx, adm, clusterAppID)
			if lerr == nil && lag == 0 {
				return
			}
			last = fmt.Sprintf("counted; group %s: %d records not committed (%v)", clusterAppID, lag, lerr)
		}
		if !eoscheck.Wait(wctx, 250*time.Millisecond) {
			c.t.Fatalf("words not all counted: %v; last: %s", wctx.Err(), last)
		}
	}
}

// committedLag is how far group's committed offsets are behind the end of
// the topics it has committed on, which must include the input topic and
// a repartition topic.
func committedLag(ctx context.Context, adm *kadm.Client, group string) (int64, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return -1, err
	}
	topics := committed.Offsets().TopicsSet().Topics()
	if !slices.Contains(topics, inputTopic) || !slices.ContainsFunc(topics, func(s string) bool { return strings.HasSuffix(s, "-repartition") }) {
		return -1, fmt.Errorf("commits on %v only", topics)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return -1, err
	}
	var lag int64
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil && err == nil {
			err = fmt.Errorf("end offset of %s-%d: %w", e.Topic, e.Partition, e.Err)
		}
		done := int64(0)
		if o, ok := committed.Lookup(e.Topic, e.Partition); ok {
			done = o.At
		}
		lag += e.Offset - done
	})
	return lag, err
}

// tally counts the answers of one awaitWords.
type tally struct {
	answers         int
	unavailable     int // 503s, retried
	servedElsewhere int // 200s whose X-Kstreams-Served-By is not the instance asked
	odd             []string
}

// awaitWords asks every word of truth, round-robin over hosts, until each
// has been answered with its true count, retrying 503s (which must carry
// Retry-After). A wrong count, a 404, another status or a missing
// X-Kstreams-Served-By header is an error, retried all the same so the log
// shows whether it lasts.
func (c *cluster) awaitWords(ctx context.Context, what string, hosts []*instance, truth map[string]int64) tally {
	c.t.Helper()
	pending := make([]string, 0, len(truth))
	for w := range truth {
		pending = append(pending, w)
	}
	slices.Sort(pending)
	var tl tally
	var mu sync.Mutex
	odd := func(format string, args ...any) {
		tl.odd = append(tl.odd, fmt.Sprintf(format, args...))
	}
	for {
		c.checkAlive()
		var retryAfter time.Duration
		var next []string
		work := make(chan int)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := range work {
					w, in := pending[i], hosts[i%len(hosts)]
					a := c.getKey(ctx, in, w)
					mu.Lock()
					tl.answers++
					switch {
					case a.err != nil:
						odd("GET %s: %v", a.url, a.err)
					case a.servedBy == "":
						odd("GET %s: %d %s without %s", a.url, a.status, a.body, servedByHeader)
					case a.status == http.StatusServiceUnavailable:
						tl.unavailable++
						ra, err := strconv.Atoi(a.retryAfter)
						if err != nil || ra < 0 {
							odd("GET %s: 503 with Retry-After %q", a.url, a.retryAfter)
						}
						retryAfter = max(retryAfter, time.Duration(ra)*time.Second)
					case a.status != http.StatusOK:
						odd("GET %s: %d %s (served by %s)", a.url, a.status, a.body, a.servedBy)
					case a.value != truth[w]:
						odd("GET %s: count %d, want %d (served by %s)", a.url, a.value, truth[w], a.servedBy)
					default:
						if a.servedBy != in.addr {
							tl.servedElsewhere++
						}
						mu.Unlock()
						continue
					}
					next = append(next, w)
					mu.Unlock()
				}
			})
		}
	feed:
		for i := range pending {
			select {
			case work <- i:
			case <-ctx.Done():
				break feed
			}
		}
		close(work)
		wg.Wait()
		slices.Sort(next)
		pending = next
		if len(pending) == 0 || ctx.Err() != nil {
			break
		}
		if !eoscheck.Wait(ctx, min(max(retryAfter, 100*time.Millisecond), time.Second)) {
			break
		}
	}
	if n := len(tl.odd); n > 0 {
		c.t.Errorf("%s: %d unexpected answers of %d, the first: %s", what, n, tl.answers, strings.Join(tl.odd[:min(n, 10)], "\n\t"))
	}
	if len(pending) > 0 {
		c.t.Fatalf("%s: %d of %d words still not answered with their count (%v); %d answers, %d of them 503",
			what, len(pending), len(truth), ctx.Err(), tl.answers, tl.unavailable)
	}
	c.t.Logf("%s: %d answers, %d of them 503, %d served by another instance than the one asked", what, tl.answers, tl.unavailable, tl.servedElsewhere)
	return tl
}

// answer is one response to GET /v1/stores/counts/keys/<word>.
type answer struct {
	url        string
	err        error
	status     int
	body       string
	value      int64
	servedBy   string
	retryAfter string
}

func (c *cluster) getKey(ctx context.Context, in *instance, word string) answer {
	a := answer{url: in.url("/v1/stores/" + storeName + "/keys/" + url.PathEscape(word))}
	var body []byte
	var h http.Header
	a.status, h, body, a.err = c.get(ctx, a.url)
	if a.err != nil {
		return a
	}
	a.body = string(body)
	a.servedBy = h.Get(servedByHeader)
	a.retryAfter = h.Get("Retry-After")
	if a.status == http.StatusOK {
		var kv struct {
			Key   string `json:"key"`
			Value *int64 `json:"value"`
		}
		switch err := json.Unmarshal(body, &kv); {
		case err != nil:
			a.err = fmt.Errorf("200 %s: %w", body, err)
		case kv.Key != word || kv.Value == nil:
			a.err = fmt.Errorf("200 %s: want key %q and a value", body, word)
		default:
			a.value = *kv.Value
		}
	}
	return a
}

func (c *cluster) get(ctx context.Context, u string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// rangePage is the body of GET /v1/stores/{store}/keys.
type rangePage struct {
	Items []struct {
		Key   string `json:"key"`
		Value int64  `json:"value"`
	} `json:"items"`
	Next *string `json:"next"`
}

// rangeAll reads the whole store through in's range API, a page at a time.
func (c *cluster) rangeAll(ctx context.Context, in *instance) (map[string]int64, error) {
	counts := map[string]int64{}
	q := url.Values{"limit": {"500"}}
	last := ""
	for {
		u := in.url("/v1/stores/" + storeName + "/keys?" + q.Encode())
		status, _, body, err := c.get(ctx, u)
		if err != nil {
			return counts, err
		}
		if status != http.StatusOK {
			return counts, fmt.Errorf("GET %s: %d %s", u, status, body)
		}
		var p rangePage
		if err := json.Unmarshal(body, &p); err != nil {
			return counts, fmt.Errorf("GET %s: %w in %s", u, err, body)
		}
		for _, it := range p.Items {
			// Whether next is the first key of the next page or the last
			// of this one, a key seen already is skipped.
			if len(counts) > 0 && it.Key <= last {
				continue
			}
			counts[it.Key] = it.Value
			last = it.Key
		}
		if p.Next == nil {
			return counts, nil
		}
		if len(p.Items) == 0 {
			return counts, fmt.Errorf("GET %s: no items but next %q", u, *p.Next)
		}
		q.Set("from", *p.Next)
	}
}

// checkErrorsAndRange checks two answers besides single keys: an unknown
// store is a 404 with a JSON error, and a range with a limit returns the
// store's first keys in key order, with a cursor to the rest.
func (c *cluster) checkErrorsAndRange(ctx context.Context, in *instance, truth map[string]int64) {
	c.t.Helper()
	u := in.url("/v1/stores/nope/keys/x")
	status, _, body, err := c.get(ctx, u)
	var e struct {
		Error string `json:"error"`
	}
	switch {
	case err != nil:
		c.t.Errorf("GET %s: %v", u, err)
	case status != http.StatusNotFound:
		c.t.Errorf("GET %s: %d %s, want 404", u, status, body)
	case json.Unmarshal(body, &e) != nil || e.Error == "":
		c.t.Errorf("GET %s: 404 %s, want a JSON object with an error", u, body)
	}

	u = in.url("/v1/stores/" + storeName + "/keys?limit=5")
	status, _, body, err = c.get(ctx, u)
	var p rangePage
	switch {
	case err != nil:
		c.t.Errorf("GET %s: %v", u, err)
		return
	case status != http.StatusOK:
		c.t.Errorf("GET %s: %d %s, want 200", u, status, body)
		return
	case json.Unmarshal(body, &p) != nil:
		c.t.Errorf("GET %s: 200 %s, want a page of items", u, body)
		return
	}
	words := make([]string, 0, len(truth))
	for w := range truth {
		words = append(words, w)
	}
	slices.Sort(words) // string keys sort as their bytes do
	var want, got strings.Builder
	for _, w := range words[:5] {
		fmt.Fprintf(&want, "%s=%d ", w, truth[w])
	}
	for _, it := range p.Items {
		fmt.Fprintf(&got, "%s=%d ", it.Key, it.Value)
	}
	if got.String() != want.String() {
		c.t.Errorf("GET %s: items %s; want the first 5 words, %s", u, got.String(), want.String())
	}
	if p.Next == nil || *p.Next == "" {
		c.t.Errorf("GET %s: no next cursor in %s", u, body)
	}
}

// restoredRecords is in's kstreams_restore_records_total, summed over its
// label sets, and whether /metrics has any sample of it.
func (c *cluster) restoredRecords(ctx context.Context, in *instance) (float64, bool) {
	c.t.Helper()
	u := in.url("/metrics")
	status, _, body, err := c.get(ctx, u)
	if err != nil || status != http.StatusOK {
		c.t.Fatalf("GET %s: %d %v\n%.2000s", u, status, err, body)
	}
	v, n, err := promSum(body, "kstreams_restore_records_total")
	if err != nil {
		c.t.Fatalf("GET %s: %v", u, err)
	}
	return v, n > 0
}

// promSum sums the n samples of metric in a Prometheus text exposition.
func promSum(text []byte, metric string) (sum float64, n int, err error) {
	for line := range strings.Lines(string(text)) {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, metric)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return 0, 0, fmt.Errorf("bad sample %q", line)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest) // value [timestamp]
		if len(f) == 0 {
			return 0, 0, fmt.Errorf("bad sample %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("bad sample %q: %w", line, err)
		}
		sum += v
		n++
	}
	return sum, n, nil
}

// metadata is the body of GET /v1/metadata.
type metadata struct {
	Self      string `json:"self"`
	ProcessID string `json:"processId"`
	State     string `json:"state"`
	Instances []struct {
		ProcessID  string             `json:"processId"`
		Endpoint   string             `json:"endpoint"`
		Active     []string           `json:"active"`
		Standby    []string           `json:"standby"`
		Partitions map[string][]int32 `json:"partitions"`
		Stores     []string           `json:"stores"`
	} `json:"instances"`
}

func (md metadata) activeOwner(task string) string {
	for _, in := range md.Instances {
		if slices.Contains(in.Active, task) {
			return in.Endpoint
		}
	}
	return "nobody"
}

func (md metadata) standbyOwners(task string) []string {
	var out []string
	for _, in := range md.Instances {
		if slices.Contains(in.Standby, task) {
			out = append(out, in.Endpoint)
		}
	}
	return out
}

// statefulActive lists the active tasks of the instance at endpoint in
// sub-topology 1, the one with the store.
func (md metadata) statefulActive(endpoint string) []string {
	var out []string
	for _, in := range md.Instances {
		if in.Endpoint != endpoint {
			continue
		}
		for _, task := range in.Active {
			if strings.HasPrefix(task, "1_") {
				out = append(out, task)
			}
		}
	}
	return out
}

// taskPartition is the partition of a task "<sub-topology>_<partition>".
func taskPartition(task string) int32 {
	_, p, _ := strings.Cut(task, "_")
	n, _ := strconv.Atoi(p)
	return int32(n)
}

// metadata reads in's GET /v1/metadata.
func (c *cluster) metadata(ctx context.Context, in *instance) metadata {
	c.t.Helper()
	u := in.url("/v1/metadata")
	status, _, body, err := c.get(ctx, u)
	var md metadata
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal(body, &md)
	}
	if err != nil || status != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s %v", u, status, body, err)
	}
	return md
}

// awaitBalanced waits until, as the first live instance sees it, the group
// is exactly live, each of them the active owner of at least one task, and
// every task (2 sub-topologies of 4 partitions) has exactly one active
// owner; it returns the metadata that shows it.
func (c *cluster) awaitBalanced(ctx context.Context, live []*instance) metadata {
	c.t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var want []string
	for _, in := range live {
		want = append(want, in.addr)
	}
	slices.Sort(want)
	var last string
	for {
		c.checkAlive()
		u := live[0].url("/v1/metadata")
		status, _, body, err := c.get(wctx, u)
		last = fmt.Sprintf("GET %s: %d %s %v", u, status, body, err)
		var md metadata
		if err == nil && status == http.StatusOK && json.Unmarshal(body, &md) == nil {
			var endpoints, actives []string
			idle := false
			for _, in := range md.Instances {
				endpoints = append(endpoints, in.Endpoint)
				actives = append(actives, in.Active...)
				idle = idle || len(in.Active) == 0
			}
			slices.Sort(endpoints)
			slices.Sort(actives)
			if md.State == "RUNNING" && slices.Equal(endpoints, want) && !idle &&
				slices.Equal(actives, []string{"0_0", "0_1", "0_2", "0_3", "1_0", "1_1", "1_2", "1_3"}) {
				c.t.Logf("balanced: %s", c.describe(md))
				return md
			}
		}
		if !eoscheck.Wait(wctx, 250*time.Millisecond) {
			c.t.Fatalf("instances %v never each got an active task: %v; last: %s", want, wctx.Err(), last)
		}
	}
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// lineWatcher is an io.Writer that sends, once, the rest of the first line
// written to it that starts with prefix.
type lineWatcher struct {
	prefix string
	found  chan string
	buf    []byte
	sent   bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	if w.sent {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := strings.TrimSpace(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
		if rest, ok := strings.CutPrefix(line, w.prefix); ok {
			w.found <- rest
			w.sent = true
			return len(p), nil
		}
	}
}
