package kstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/state"
	"github.com/kstreams-go/kstreams/testutil"
)

// opsServer serves the app as Handler will once it calls routeOps: the
// query API and the operators' routes on one mux.
func opsServer(t *testing.T, a *App) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/", a.Handler())
	a.routeOps(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// fetch GETs path and returns the status, Content-Type and body.
func fetch(t *testing.T, addr, path string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

type readyAnswer struct {
	Ready  bool   `json:"ready"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

func readyz(t *testing.T, addr string) (int, readyAnswer) {
	t.Helper()
	code, ctype, body := fetch(t, addr, "/readyz")
	var a readyAnswer
	if err := json.Unmarshal(body, &a); err != nil || ctype != "application/json" {
		t.Fatalf("GET /readyz: %d %s %q is not JSON: %v", code, ctype, body, err)
	}
	return code, a
}

// /healthz is 200 in every state but the two final ones.
func TestHealthzByState(t *testing.T) {
	for _, tc := range []struct {
		state State
		code  int
		body  string
	}{
		{Created, 200, "ok\n"},
		{Rebalancing, 200, "ok\n"},
		{Running, 200, "ok\n"},
		{PendingShutdown, 200, "ok\n"},
		{NotRunning, 503, "not running: state NOT_RUNNING\n"},
		{Error, 503, "not running: state ERROR\n"},
	} {
		t.Run(tc.state.String(), func(t *testing.T) {
			a, err := New(passThrough(t, "in", "out"), Config{ApplicationID: "healthz", Brokers: []string{"127.0.0.1:1"}, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			a.state.Store(int32(tc.state))
			code, ctype, body := fetch(t, opsServer(t, a), "/healthz")
			if code != tc.code || string(body) != tc.body || !strings.HasPrefix(ctype, "text/plain") {
				t.Errorf("GET /healthz in %s: %d %s %q, want %d %q", tc.state, code, ctype, body, tc.code, tc.body)
			}
		})
	}
}

// Handler serves the operators' routes once http.go calls routeOps.
func TestHandlerServesOpsRoutes(t *testing.T) {
	a, err := New(passThrough(t, "in", "out"), Config{ApplicationID: "opsroutes", Brokers: []string{"127.0.0.1:1"}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	if code, _, _ := fetch(t, addr, "/healthz"); code == http.StatusNotFound {
		t.Skip("Handler does not call routeOps yet (http.go)")
	}
	for _, path := range []string{"/healthz", "/v1/status", "/v1/topology", "/"} {
		if code, _, body := fetch(t, addr, path); code != http.StatusOK {
			t.Errorf("GET %s: %d %q, want 200", path, code, body)
		}
	}
	if code, _ := readyz(t, addr); code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz before Run: %d, want 503", code)
	}
}

// A restoring instance is alive but not ready; once its stores are
// restored and its tasks process, it is ready; once stopped, it is
// neither.
func TestReadyzWhileRestoringThenRunning(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, _ := wordCountLines(1000)
	produceLines(t, c, "text-input", lines)
	topo := wordCountTopology(t)
	cfg := Config{ApplicationID: "readyz", Brokers: c.Addrs(), CommitInterval: 200 * time.Millisecond}

	// A first instance counts everything and stops, leaving the changelog.
	cfg.StateDir = t.TempDir()
	first := start(t, topo, cfg)
	waitForLocalCounts(t, truth, first.app)
	first.stop(t)

	gate := &gatedRestore{want: 4, started: make(chan struct{}), waiting: map[state.TopicPartition]bool{}, release: make(chan struct{})}
	released := false
	defer func() {
		if !released {
			close(gate.release)
		}
	}()
	cfg.StateDir, cfg.RestoreListener, cfg.Logger = t.TempDir(), gate, quietLogger()
	a, err := New(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := opsServer(t, a)
	if code, ans := readyz(t, addr); code != 503 || ans.Ready || ans.State != "CREATED" || !strings.Contains(ans.Reason, "not started") {
		t.Errorf("GET /readyz before Run: %d %+v, want 503 not started", code, ans)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	defer a.Close()
	select {
	case <-gate.started:
	case <-time.After(60 * time.Second):
		t.Fatal("no restore started")
	}
	code, ans := readyz(t, addr)
	if code != 503 || ans.Ready || ans.Reason == "" {
		t.Errorf("GET /readyz while restoring: %d %+v, want 503 with a reason", code, ans)
	}
	if ans.State == "RUNNING" && !strings.Contains(ans.Reason, "restoring counts") {
		t.Errorf("GET /readyz while restoring: reason %q does not name the restoring store", ans.Reason)
	}
	if code, _, body := fetch(t, addr, "/healthz"); code != 200 {
		t.Errorf("GET /healthz while restoring: %d %q, want 200", code, body)
	}
	t.Logf("while restoring: %d %+v", code, ans)

	close(gate.release)
	released = true
	waitFor(t, "/readyz to answer 200", 60*time.Second, func() bool {
		code, ans := readyz(t, addr)
		return code == 200 && ans.Ready && ans.State == "RUNNING"
	})
	if !a.Ready() {
		t.Error("/readyz answered 200 but Ready() is false")
	}

	a.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if code, ans := readyz(t, addr); code != 503 || !strings.Contains(ans.Reason, "stopped") {
		t.Errorf("GET /readyz after Close: %d %+v, want 503 stopped", code, ans)
	}
	if code, _, body := fetch(t, addr, "/healthz"); code != 503 {
		t.Errorf("GET /healthz after Close: %d %q, want 503", code, body)
	}
}

// runningWordCount starts a word count on a new cluster, with input, and
// waits until every count is in its stores.
func runningWordCount(t *testing.T, appID string) (*App, *Topology) {
	t.Helper()
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, _ := wordCountLines(500)
	produceLines(t, c, "text-input", lines)
	topo := wordCountTopology(t)
	a := start(t, topo, Config{ApplicationID: appID, Brokers: c.Addrs(), StateDir: t.TempDir(), CommitInterval: 200 * time.Millisecond}).app
	waitForLocalCounts(t, truth, a)
	return a, topo
}

func TestStatusAndTopologyEndpoints(t *testing.T) {
	a, topo := runningWordCount(t, "opsstatus")
	addr := opsServer(t, a)
	waitFor(t, "the app to be ready", 30*time.Second, a.Ready)
	waitFor(t, "a commit", 30*time.Second, func() bool { return a.Stats().Commits.Load() > 0 })

	code, ctype, body := fetch(t, addr, "/v1/status")
	var s Status
	if err := json.Unmarshal(body, &s); code != 200 || ctype != "application/json" || err != nil {
		t.Fatalf("GET /v1/status: %d %s %v: %s", code, ctype, err, body)
	}
	if s.ApplicationID != "opsstatus" || s.State != "RUNNING" || s.ProcessID == "" || s.Processed == 0 || s.Commits == 0 {
		t.Errorf("status = %+v, want opsstatus RUNNING with records processed and commits", s)
	}
	// Two sub-topologies (lines to words, words counted) on 4 partitions.
	var ids []string
	for _, task := range s.Tasks {
		ids = append(ids, task.ID)
		if task.Standby || !task.Running || len(task.Partitions) != 1 {
			t.Errorf("task %+v: want an active running task with its one input partition", task)
		}
		for _, r := range task.Restores {
			if !r.Done {
				t.Errorf("task %s: restore %+v not done", task.ID, r)
			}
		}
	}
	if want := []string{"0_0", "0_1", "0_2", "0_3", "1_0", "1_1", "1_2", "1_3"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("tasks %v, want %v", ids, want)
	}
	if want := []StoreStatus{{Name: "counts", Kind: "keyvalue", Changelog: "opsstatus-counts-changelog"}}; !reflect.DeepEqual(s.Stores, want) {
		t.Errorf("stores %+v, want %+v", s.Stores, want)
	}

	code, ctype, body = fetch(t, addr, "/v1/topology")
	var g topology.Graph
	if err := json.Unmarshal(body, &g); code != 200 || ctype != "application/json" || err != nil {
		t.Fatalf("GET /v1/topology: %d %s %v: %s", code, ctype, err, body)
	}
	if want := topo.Graph(); !reflect.DeepEqual(g, want) {
		t.Errorf("GET /v1/topology = %+v, want %+v", g, want)
	}
}

// processorNames are the topology's processor nodes.
func processorNames(topo *Topology) []string {
	var out []string
	for _, st := range topo.Graph().Subtopologies {
		for _, n := range st.Nodes {
			if n.Kind == "processor" {
				out = append(out, n.Name)
			}
		}
	}
	return out
}

func TestStatusPage(t *testing.T) {
	a, topo := runningWordCount(t, "opspage")
	addr := opsServer(t, a)
	waitFor(t, "the app to be ready", 30*time.Second, a.Ready)

	code, ctype, body := fetch(t, addr, "/")
	if code != 200 || ctype != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", code, ctype)
	}
	page := string(body)
	want := []string{"<svg", `<span class="state s-RUNNING">RUNNING</span>`, "opspage-counts-changelog", `<script>`}
	for _, name := range processorNames(topo) {
		want = append(want, fmt.Sprintf(`<g class="node processor" data-name="%s">`, name))
	}
	for _, id := range []string{"0_0", "0_3", "1_0", "1_3"} {
		want = append(want, fmt.Sprintf(`<tr data-task="%s" class="local">`, id))
	}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("GET / lacks %q", w)
		}
	}
	// Nothing is fetched from elsewhere: no URL but the SVG namespace,
	// no script or style from a file.
	if n, svg := strings.Count(page, "://"), strings.Count(page, `xmlns="http://www.w3.org/2000/svg"`); n != svg || strings.Contains(page, " src=") {
		t.Errorf("GET / names %d URLs (%d SVG namespaces) or loads a file", n, svg)
	}

	_, _, live := fetch(t, addr, "/?part=live")
	if bytes.Contains(live, []byte("<svg")) || !bytes.Contains(live, []byte(`<tr data-task="1_2" class="local">`)) {
		t.Errorf("GET /?part=live: want the task table without the picture, got\n%s", live)
	}
	if code, _, _ := fetch(t, addr, "/nothing-here"); code != http.StatusNotFound {
		t.Errorf("GET /nothing-here: %d, want 404 from the query API", code)
	}
}

// The page of one instance lists the tasks of both, those of the other
// with a link to its page.
func TestStatusPageListsEveryInstancesTasks(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	topo := wordCountTopology(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	cfg := func(addr string) Config {
		return Config{ApplicationID: "opstwo", Brokers: c.Addrs(), StateDir: t.TempDir(), CommitInterval: 200 * time.Millisecond,
			ApplicationServer: addr, ServeQueries: true}
	}
	a := start(t, topo, cfg(addrA)).app
	b := start(t, topo, cfg(addrB)).app
	waitFor(t, "both instances to hold tasks", 60*time.Second, func() bool {
		md := a.Metadata()
		return len(md.Instances) == 2 && len(md.Instances[0].Active) > 0 && len(md.Instances[1].Active) > 0 && a.Ready() && b.Ready()
	})
	_, _, body := fetch(t, opsServer(t, a), "/")
	page := string(body)
	local := strings.Count(page, `class="local"`)
	remote := strings.Count(page, fmt.Sprintf(`<a href="http://%s/">%s</a>`, addrB, addrB))
	if local == 0 || remote == 0 || local+remote != 8 {
		t.Errorf("the page of %s lists %d local tasks and %d of %s, want 8 in all, some of each", addrA, local, remote, addrB)
	}
	if n := strings.Count(page, addrA+` <span class="muted">(this instance)</span>`); n != local {
		t.Errorf("%d of %d local tasks are owned by %s (this instance)", n, local, addrA)
	}
}

// chromium runs headless Chromium as the machine notes say it must run
// here: as root without its sandbox, and without the background traffic
// this closed network refuses.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// The status page renders in a real browser: the picture has a node for
// every processor, the script refreshed the task table from the server,
// and a screenshot shows the drawn boxes in their colours.
func TestStatusPageInChromium(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		if os.Getenv("KSTREAMS_REQUIRE_CHROMIUM") != "" {
			t.Fatal("KSTREAMS_REQUIRE_CHROMIUM is set but chromium is not installed")
		}
		t.Skip("chromium is not installed (apt-get install chromium): the status page is not checked in a browser")
	}
	a, topo := runningWordCount(t, "opschromium")
	addr := opsServer(t, a)
	waitFor(t, "the app to be ready", 30*time.Second, a.Ready)
	url := "http://" + addr + "/"

	// --virtual-time-budget lets the page's 2s refresh run before the
	// DOM is dumped.
	dom := string(chromium(t, "--dump-dom", url))
	for _, name := range processorNames(topo) {
		if !strings.Contains(dom, fmt.Sprintf(`<g class="node processor" data-name="%s">`, name)) {
			t.Errorf("the rendered DOM has no SVG node for processor %q", name)
		}
	}
	for _, w := range []string{`<section id="live" data-refreshes="`, `<tr data-task="1_3" class="local">`, `<span class="ts ts-running">running</span>`} {
		if !strings.Contains(dom, w) {
			t.Errorf("the rendered DOM lacks %q (the script's refresh)", w)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	chromium(t, "--window-size=1200,1600", "--hide-scrollbars", "--screenshot="+shot, url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 1600 {
		t.Errorf("screenshot is %v, want 1200x1600", b)
	}
	// The boxes' fills, each over far more pixels than its legend swatch.
	colours := countColours(img)
	for _, c := range []struct {
		what string
		rgb  [3]uint8
	}{
		{"processor", [3]uint8{0xdb, 0xea, 0xfe}},
		{"source", [3]uint8{0xdc, 0xfc, 0xe7}},
		{"sink", [3]uint8{0xfe, 0xf3, 0xc7}},
		{"topic", [3]uint8{0xf1, 0xf5, 0xf9}},
		{"store", [3]uint8{0xf3, 0xe8, 0xff}},
	} {
		if n := colours[c.rgb]; n < 1500 {
			t.Errorf("screenshot: %d pixels of the %s fill #%x, want the drawn boxes (>= 1500)", n, c.what, c.rgb)
		}
	}
	if len(colours) < 50 {
		t.Errorf("screenshot has %d colours: not a rendered page", len(colours))
	}
	if t.Failed() {
		keep := filepath.Join(os.TempDir(), "kstreams-status.png")
		if raw, err := os.ReadFile(shot); err == nil && os.WriteFile(keep, raw, 0o644) == nil {
			t.Logf("screenshot kept at %s", keep)
		}
	}
}

func countColours(img image.Image) map[[3]uint8]int {
	out := map[[3]uint8]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			out[[3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}]++
		}
	}
	return out
}
