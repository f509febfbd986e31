package kstreams

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
	"github.com/kstreams-go/kstreams/testutil"
)

// freeAddr returns a loopback host:port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// queryTopology counts words into "counts" (string keys) and words by
// length into "lengths" (int64 keys).
func queryTopology(t *testing.T) *Topology {
	t.Helper()
	b := kstream.NewBuilder()
	lines := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), "text-input")
	words := kstream.FlatMapValues(lines, func(line string) []string { return strings.Fields(line) })
	counts := kstream.Count(kstream.GroupBy(words, func(_, w string) string { return w }), kstream.MaterializedAs[string, int64]("counts"))
	counts.ToStream().To("word-counts", kstream.ProducedWith(serde.String(), serde.Int64()))
	byLen := kstream.GroupBy(words, func(_, w string) int64 { return int64(len(w)) }, kstream.GroupedWith(serde.Int64(), serde.String()))
	kstream.Count(byLen, kstream.MaterializedAs[int64, int64]("lengths"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

type httpAnswer struct {
	status   int
	servedBy string
	retry    string
	body     map[string]any
}

func get(t *testing.T, addr, path string) httpAnswer {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: read body: %v", addr, path, err)
	}
	a := httpAnswer{status: resp.StatusCode, servedBy: resp.Header.Get("X-Kstreams-Served-By"), retry: resp.Header.Get("Retry-After")}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("GET %s%s: %d, body is not a JSON object: %v: %q", addr, path, resp.StatusCode, err, raw)
	}
	return a
}

// waitForQueries waits until every word's count reads right from each
// app's local stores, together.
func waitForLocalCounts(t *testing.T, truth map[string]int64, apps ...*App) {
	t.Helper()
	waitFor(t, "every count readable from the local stores", 120*time.Second, func() bool {
		got := map[string]int64{}
		for _, a := range apps {
			s, err := Store[string, int64](a, "counts")
			if err != nil {
				t.Fatal(err)
			}
			kvs, err := s.All(0)
			if err != nil {
				return false
			}
			for _, kv := range kvs {
				got[kv.Key] = kv.Value
			}
		}
		if len(got) != len(truth) {
			return false
		}
		for w, n := range truth {
			if got[w] != n {
				return false
			}
		}
		return true
	})
}

// TestInteractiveQueriesAcrossInstances runs two instances serving the
// query API and checks local typed access, key metadata against where the
// producer put each key, every key through one instance's REST API
// (forwarding the other's), paging over the whole store, the metadata, and
// the API's error answers.
func TestInteractiveQueriesAcrossInstances(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, _ := wordCountLines(5000)
	lengths := map[int64]int64{}
	for w, n := range truth {
		lengths[int64(len(w))] += n
	}
	produceLines(t, c, "text-input", lines)

	topo := queryTopology(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	cfg := func(addr string) Config {
		return Config{ApplicationID: "iq", Brokers: c.Addrs(), StateDir: t.TempDir(), CommitInterval: 200 * time.Millisecond,
			ApplicationServer: addr, ServeQueries: true}
	}
	a := start(t, topo, cfg(addrA)).app
	b := start(t, topo, cfg(addrB)).app
	waitFor(t, "both instances running with tasks", 60*time.Second, func() bool {
		return a.State() == Running && b.State() == Running && a.taskCount() > 0 && b.taskCount() > 0
	})
	waitForLocalCounts(t, truth, a, b)

	// Where the producer put each word's count is where the metadata says
	// the word lives, and only the owner reads it locally.
	partOf := map[string]int32{}
	for _, r := range c.ConsumeAll(t, "word-counts", -1, time.Second) {
		partOf[string(r.Key)] = r.Partition
	}
	byEndpoint := map[string]*App{addrA: a, addrB: b}
	for w, n := range truth {
		md, err := QueryMetadataForKey(a, "counts", w)
		if err != nil {
			t.Fatalf("QueryMetadataForKey(%q): %v", w, err)
		}
		if md.Partition != partOf[w] {
			t.Fatalf("word %q: metadata says partition %d, the producer wrote it to %d", w, md.Partition, partOf[w])
		}
		owner, other := byEndpoint[md.Active], a
		if owner == nil {
			t.Fatalf("word %q: active endpoint %q is neither instance", w, md.Active)
		}
		if owner == a {
			other = b
		}
		if md.Local != (owner == a) {
			t.Fatalf("word %q: Local %v, but the owner is %s", w, md.Local, md.Active)
		}
		got, found, err := mustStore(t, owner).Get(w)
		if err != nil || !found || got != n {
			t.Fatalf("word %q on its owner: %d %v %v, want %d", w, got, found, err, n)
		}
		_, _, err = mustStore(t, other).Get(w)
		var nq *NotQueryableError
		if !errors.As(err, &nq) || nq.Reason != ReasonMoved || nq.Owner != md.Active {
			t.Fatalf("word %q on the other instance: err %v, want NotQueryableError moved to %s", w, err, md.Active)
		}
	}

	// Every word through A's REST API; B's answers come forwarded.
	forwarded := 0
	for w, n := range truth {
		ans := get(t, addrA, "/v1/stores/counts/keys/"+url.PathEscape(w))
		if ans.status != http.StatusOK || ans.body["key"] != w || ans.body["value"] != float64(n) {
			t.Fatalf("GET counts/%s via A: %d %v, want %d", w, ans.status, ans.body, n)
		}
		if ans.servedBy == addrB {
			forwarded++
		}
	}
	if forwarded == 0 || forwarded == len(truth) {
		t.Fatalf("%d of %d words answered by B; want some, not all", forwarded, len(truth))
	}
	for l, n := range lengths {
		ans := get(t, addrB, fmt.Sprintf("/v1/stores/lengths/keys/%d", l))
		if ans.status != http.StatusOK || ans.body["key"] != float64(l) || ans.body["value"] != float64(n) {
			t.Fatalf("GET lengths/%d via B: %d %v, want %d", l, ans.status, ans.body, n)
		}
	}

	// Paging through the whole store from B: every word once, in order.
	var seen []string
	from := ""
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("paging did not end")
		}
		path := "/v1/stores/counts/keys?limit=500"
		if from != "" {
			path += "&from=" + url.QueryEscape(from)
		}
		ans := get(t, addrB, path)
		if ans.status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, ans.status, ans.body)
		}
		items, _ := ans.body["items"].([]any)
		for _, it := range items {
			m := it.(map[string]any)
			w := m["key"].(string)
			if m["value"] != float64(truth[w]) {
				t.Fatalf("range: %q = %v, want %d", w, m["value"], truth[w])
			}
			seen = append(seen, w)
		}
		next, more := ans.body["next"].(string)
		if !more {
			break
		}
		if len(items) != 500 {
			t.Fatalf("page %d has %d items and a next key; want 500", page, len(items))
		}
		from = next
	}
	if len(seen) != len(truth) || !sort.StringsAreSorted(seen) {
		t.Fatalf("paged %d words (sorted %v), want %d in order", len(seen), sort.StringsAreSorted(seen), len(truth))
	}
	ans := get(t, addrA, "/v1/stores/counts/keys?limit=5&from=w1&to=w2")
	if items, _ := ans.body["items"].([]any); ans.status != http.StatusOK || len(items) != 5 || ans.body["next"] == nil {
		t.Fatalf("range with limit 5: %d %v", ans.status, ans.body)
	}

	// The stores and the cluster map.
	ans = get(t, addrA, "/v1/stores")
	stores, _ := json.Marshal(ans.body["stores"])
	if want := `[{"keyType":"string","kind":"keyvalue","name":"counts","valueType":"int64"},{"keyType":"int64","kind":"keyvalue","name":"lengths","valueType":"int64"}]`; string(stores) != want {
		t.Fatalf("GET /v1/stores: %s, want %s", stores, want)
	}
	md := a.Metadata()
	tasks := map[string]string{}
	for _, in := range md.Instances {
		for _, task := range in.Active {
			if prev, dup := tasks[task]; dup {
				t.Fatalf("task %s active on %s and %s", task, prev, in.Endpoint)
			}
			tasks[task] = in.Endpoint
		}
	}
	if len(md.Instances) != 2 || len(tasks) != 12 || md.Self != addrA || md.State != "RUNNING" {
		t.Fatalf("metadata: %+v; want 2 instances sharing 12 tasks", md)
	}
	ans = get(t, addrB, "/v1/metadata")
	if insts, _ := ans.body["instances"].([]any); ans.status != http.StatusOK || len(insts) != 2 || ans.body["self"] != addrB {
		t.Fatalf("GET /v1/metadata via B: %d %v", ans.status, ans.body)
	}

	// Errors: unknown store, a key the store's key type cannot hold, a bad
	// limit, a window fetch on a key-value store.
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/v1/stores/nope/keys/x", http.StatusNotFound},
		{"/v1/stores/nope/keys", http.StatusNotFound},
		{"/v1/stores/lengths/keys/abc", http.StatusBadRequest},
		{"/v1/stores/counts/keys?limit=0", http.StatusBadRequest},
		{"/v1/stores/counts/keys?limit=x", http.StatusBadRequest},
		{"/v1/stores/counts/keys/the/windows", http.StatusBadRequest},
		{"/v1/stores/counts/keys/no-such-word", http.StatusNotFound},
	} {
		ans := get(t, addrA, tc.path)
		if ans.status != tc.status || ans.body["error"] == nil {
			t.Errorf("GET %s: %d %v, want %d with an error", tc.path, ans.status, ans.body, tc.status)
		}
	}
	if _, err := Store[int64, int64](a, "counts"); err == nil {
		t.Error("Store[int64, int64] of a string-keyed store: no error")
	}
	if _, err := Store[string, int64](a, "nope"); !errors.Is(err, ErrUnknownStore) {
		t.Errorf("Store of an unknown store: %v, want ErrUnknownStore", err)
	}

	// The metrics are served beside the queries.
	resp, err := http.Get("http://" + addrA + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"kstreams_records_processed_total", "kstreams_active_tasks", "kstreams_commits_total"} {
		if !strings.Contains(string(metrics), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func mustStore(t *testing.T, a *App) *ReadOnlyStore[string, int64] {
	t.Helper()
	s, err := Store[string, int64](a, "counts")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gatedRestore holds every restore at its start until released; started
// is closed once `want` changelog partitions are waiting.
type gatedRestore struct {
	want     int
	started  chan struct{}
	mu       sync.Mutex
	waiting  map[state.TopicPartition]bool
	release  chan struct{}
	restored restoreCounter
}

func (g *gatedRestore) OnRestoreStart(_ string, tp state.TopicPartition, _, _ int64) {
	g.mu.Lock()
	g.waiting[tp] = true
	if len(g.waiting) == g.want {
		close(g.started)
	}
	g.mu.Unlock()
	<-g.release
}

func (g *gatedRestore) OnBatchRestored(s string, tp state.TopicPartition, end, n int64) {
	g.restored.OnBatchRestored(s, tp, end, n)
}

func (g *gatedRestore) OnRestoreEnd(string, state.TopicPartition, int64) {}

// TestQueriesAnswer503WhileRestoring: a new instance whose stores are
// restoring answers 503 with Retry-After, directly and forwarded, and the
// counts once the restore is done.
func TestQueriesAnswer503WhileRestoring(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, _ := wordCountLines(2000)
	produceLines(t, c, "text-input", lines)
	topo := wordCountTopology(t)

	// A first instance counts everything and stops, leaving the changelog.
	first := start(t, topo, Config{ApplicationID: "iq503", Brokers: c.Addrs(), StateDir: t.TempDir(), CommitInterval: 200 * time.Millisecond})
	waitForLocalCounts(t, truth, first.app)
	first.stop(t)

	gate := &gatedRestore{want: 4, started: make(chan struct{}), waiting: map[state.TopicPartition]bool{}, release: make(chan struct{})}
	addr := freeAddr(t)
	a := start(t, topo, Config{ApplicationID: "iq503", Brokers: c.Addrs(), StateDir: t.TempDir(), CommitInterval: 200 * time.Millisecond,
		ApplicationServer: addr, ServeQueries: true, RestoreListener: gate}).app
	select {
	case <-gate.started:
	case <-time.After(60 * time.Second):
		close(gate.release)
		t.Fatal("no restore started")
	}
	released := false
	defer func() {
		if !released {
			close(gate.release)
		}
	}()
	ans := get(t, addr, "/v1/stores/counts/keys/the")
	if ans.status != http.StatusServiceUnavailable || ans.retry == "" || !strings.Contains(fmt.Sprint(ans.body["error"]), "restoring") {
		t.Fatalf("GET while restoring: %d Retry-After %q %v; want 503 restoring with Retry-After", ans.status, ans.retry, ans.body)
	}
	ans = get(t, addr, "/v1/stores/counts/keys?limit=10")
	if ans.status != http.StatusServiceUnavailable || ans.retry == "" {
		t.Fatalf("range while restoring: %d Retry-After %q %v; want 503", ans.status, ans.retry, ans.body)
	}
	var nq *NotQueryableError
	if _, _, err := mustStore(t, a).Get("the"); !errors.As(err, &nq) || nq.Reason != ReasonRestoring {
		t.Fatalf("typed Get while restoring: %v, want NotQueryableError restoring", err)
	}

	close(gate.release)
	released = true
	waitFor(t, "the restored count answered", 60*time.Second, func() bool {
		ans := get(t, addr, "/v1/stores/counts/keys/the")
		return ans.status == http.StatusOK && ans.body["value"] == float64(truth["the"])
	})
	waitForLocalCounts(t, truth, a)
	if gate.restored.total() == 0 {
		t.Fatal("the stores answered without restoring anything")
	}
}
