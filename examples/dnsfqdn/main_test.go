package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// TestTopologyAlerts runs buildTopology in the test driver: answers to
// clients for suspicious names raise one alert each, keyed by the name and
// stamped with the line's time; queries, the server's own recursion and
// harmless names raise none; lines that do not parse are counted and
// skipped without stopping anything.
func TestTopologyAlerts(t *testing.T) {
	lp := &lineParser{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	topo, err := buildTopology(lp)
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo, testutil.WithApplicationID("dnsfqdn"))
	in := testutil.InputTopic(d, inputTopic, serde.String(), serde.String())
	out := testutil.OutputTopic(d, alertsTopic, serde.String(), serde.JSON[Alert]())

	at := func(s string) time.Time {
		tm, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	lines := []string{
		"DNS Server log file creation at 11/28/2026 9:20:00 AM",
		"11/28/2026 9:20:01 AM 0490 PACKET  00006FBD98740386 UDP Rcv 10.1.0.66       4a8f   Q [0001   D   NOERROR] A      (11)update-java(3)com(0)",
		"11/28/2026 9:20:01 AM 0490 PACKET  00006FBD98740387 UDP Snd 8.8.8.8         1111   Q [0001   D   NOERROR] A      (11)update-java(3)com(0)",
		"11/28/2026 9:20:01 AM 0490 PACKET  00006FBD98740388 UDP Rcv 8.8.8.8         1111 R Q [8081   DR  NOERROR] A      (11)update-java(3)com(0)",
		"11/28/2026 9:20:02 AM 0490 PACKET  00006FBD98740389 UDP Snd 10.1.0.66       4a8f R Q [8081   DR  NOERROR] A      (11)update-java(3)com(0)",
		"",
		"11/28/2026 9:21:30 AM 0B08 PACKET  000034D4A199FC3A UDP Snd 10.1.0.36       4a90 R Q [8081   DR  NOERROR] AAAA   (3)www(6)google(3)com(0)",
		"11/28/2026 9:21:31 AM 0B08 PACKET  000034D4A199FC3B UDP Snd 10.1.0.36       4a91 R Q [8081   DR  NOERROR] A      (4)mail(7)example(3)org(0)",
		"11/28/2026 9:21:40 AM 0B08 PACKET  000034D4A199FC3C UDP Snd 10.1.0.36       4a92 R Q [8081   DR  NOERROR] A      (4)mail(7)exam",
		"11/28/2026 9:22:05 PM 1A2C PACKET  000034D4A199FC3D TCP Snd 10.1.0.77       4a93 R Q [8381   DR NXDOMAIN] A      (20)X7K2QZ9VBW4MJT1LP8RC(3)biz(0)",
		"11/28/2026 9:22:06 AM 1A2C EVENT   The DNS server has started.",
		"11/28/2026 9:23:00 AM 1A2C PACKET  000034D4A199FC3E UDP Snd 10.1.0.12       4a94 R Q [8081   DR  NOERROR] MX     (3)cdn(12)adobe-update(3)net(0)",
	}
	for i, l := range lines {
		if i == 4 {
			// A line without a key, as kcat -P writes them.
			in.PipeRaw(nil, []byte(l), at("2026-11-28 12:00:00"))
			continue
		}
		in.PipeAt(string(rune('a'+i)), l, at("2026-11-28 12:00:00"))
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}

	type alert struct {
		fqdn  string
		value Alert
		ts    time.Time
	}
	want := []alert{
		{"update-java.com", Alert{Reason: "keyword update-java", ClientIP: "10.1.0.66", Time: at("2026-11-28 09:20:02"), Status: "NOERROR", Type: "A"}, at("2026-11-28 09:20:02")},
		{"x7k2qz9vbw4mjt1lp8rc.biz", Alert{Reason: `entropy 4.32 bits/char in "x7k2qz9vbw4mjt1lp8rc"`, ClientIP: "10.1.0.77", Time: at("2026-11-28 21:22:05"), Status: "NXDOMAIN", Type: "A"}, at("2026-11-28 21:22:05")},
		{"cdn.adobe-update.net", Alert{Reason: "keyword adobe-update", ClientIP: "10.1.0.12", Time: at("2026-11-28 09:23:00"), Status: "NOERROR", Type: "MX"}, at("2026-11-28 09:23:00")},
	}
	var got []alert
	for _, r := range out.ReadRecords() {
		got = append(got, alert{r.Key, r.Value, r.Timestamp.UTC()})
	}
	if !slices.EqualFunc(got, want, func(a, b alert) bool {
		return a.fqdn == b.fqdn && a.value.Reason == b.value.Reason && a.value.ClientIP == b.value.ClientIP &&
			a.value.Time.Equal(b.value.Time) && a.value.Status == b.value.Status && a.value.Type == b.value.Type &&
			a.ts.Equal(b.ts)
	}) {
		t.Errorf("alerts:\n got %+v\nwant %+v", got, want)
	}
	if got := lp.skipped.Load(); got != 4 {
		t.Errorf("skipped %d lines, want 4 (header, empty, cut, event)", got)
	}
}

// TestTopologyCountsPerWindow runs buildTopology in the test driver on a
// synthetic log and checks that the latest count of each name and minute
// on fqdn-counts, and the window store fqdn-counts, hold exactly the
// answers of that minute counted here. The records' own timestamps, an
// hour later, play no part: windows follow the log's time.
func TestTopologyCountsPerWindow(t *testing.T) {
	lp := &lineParser{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	topo, err := buildTopology(lp)
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo, testutil.WithApplicationID("dnsfqdn"))
	in := testutil.InputTopic(d, inputTopic, serde.String(), serde.String())
	keySerde := serde.TimeWindowed(serde.String(), windowSize)
	out := testutil.OutputTopic(d, countsTopic, keySerde, serde.Int64())

	lines := synthLines(2000, testStart)
	for i, l := range lines {
		in.PipeAt(strconv.Itoa(i), l, testStart.Add(time.Hour))
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	want := expect(lines)
	if len(want.counts) < 8*5 {
		t.Fatalf("only %d names and windows in the log; the test wants more", len(want.counts))
	}

	latest := map[kstream.Windowed[string]]int64{}
	for _, r := range out.ReadRecords() {
		k := r.Key
		if r.Value != latest[k]+1 {
			t.Errorf("count of %v went from %d to %d, want one more", k, latest[k], r.Value)
		}
		if ts := r.Timestamp.UnixMilli(); ts < k.Start || ts >= k.End {
			t.Errorf("count of %v stamped %v, outside its window", k, r.Timestamp.UTC())
		}
		if k.End-k.Start != windowSize.Milliseconds() || k.Start%windowSize.Milliseconds() != 0 {
			t.Errorf("window %v: want a minute, on the minute", k)
		}
		latest[k] = r.Value
	}
	if !maps.Equal(latest, want.counts) {
		t.Errorf("latest counts on %s differ from the log's:\n got %v\nwant %v", countsTopic, latest, want.counts)
	}

	store := testutil.WindowStore(d, storeName)
	if store == nil {
		t.Fatalf("no window store %s", storeName)
	}
	it, err := store.All()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[kstream.Windowed[string]]int64{}
	for it.Next() {
		n, err := serde.Int64().Deserialize(storeName, it.Value())
		if err != nil {
			t.Fatal(err)
		}
		stored[kstream.Windowed[string]{Key: string(it.Key()), Start: it.Start(), End: it.Start() + windowSize.Milliseconds()}] = n
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(stored, want.counts) {
		t.Errorf("store %s differs from the log's counts:\n got %v\nwant %v", storeName, stored, want.counts)
	}
	if d.Produced("dnsfqdn-fqdn-counts-changelog") == 0 {
		t.Error("nothing written to the changelog dnsfqdn-fqdn-counts-changelog")
	}
	if n := d.Dropped("late"); n != 0 {
		t.Errorf("%d lines dropped as late", n)
	}
}

// TestTopologyLateLines checks the grace: once the log has reached 9:30,
// the window 9:19-9:20 is closed (it ended 10 minutes ago) and a line for
// it is dropped, while 9:20-9:21 still takes lines.
func TestTopologyLateLines(t *testing.T) {
	lp := &lineParser{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	topo, err := buildTopology(lp)
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo)
	in := testutil.InputTopic(d, inputTopic, serde.String(), serde.String())
	out := testutil.OutputTopic(d, countsTopic, serde.TimeWindowed(serde.String(), windowSize), serde.Int64())
	answer := func(clock string) string {
		return "11/28/2026 " + clock + " AM 0490 PACKET 000000216EFFC910 UDP Snd 10.1.0.5 80a8 R Q [8081 DR NOERROR] A (7)example(3)com(0)"
	}
	for _, clock := range []string{"9:30:00", "9:19:59", "9:20:00", "9:20:59"} {
		in.Pipe("k", answer(clock))
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, kv := range out.ReadKeyValues() {
		got[kv.Key.StartTime().UTC().Format("15:04")] = kv.Value
	}
	if want := map[string]int64{"09:30": 1, "09:20": 2}; !maps.Equal(got, want) {
		t.Errorf("counts by window %v, want %v", got, want)
	}
	if n := d.Dropped("late"); n != 1 {
		t.Errorf("%d lines dropped as late, want 1", n)
	}
}

// TestAlertJSON pins the alert's wire form, which the README shows.
func TestAlertJSON(t *testing.T) {
	a := Alert{Reason: "keyword update-java", ClientIP: "10.1.0.66", Time: time.Date(2026, 11, 28, 9, 31, 7, 0, time.UTC), Status: "NOERROR", Type: "A"}
	b, err := serde.JSON[Alert]().Serialize(alertsTopic, a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"reason":"keyword update-java","client_ip":"10.1.0.66","timestamp":"2026-11-28T09:31:07Z","status":"NOERROR","type":"A"}`
	if got := strings.TrimSpace(string(b)); got != want {
		t.Errorf("alert JSON\n got %s\nwant %s", got, want)
	}
}

func TestPrint(t *testing.T) {
	w := func(name, start string) kstream.Windowed[string] {
		return windowOf(name, testStart.Add(mustDuration(t, start)))
	}
	r := results{counts: map[kstream.Windowed[string]]int64{
		w("b.example", "1m"): 3, w("a.example", "1m30s"): 3, w("c.example", "1m"): 9,
		w("d.example", "1m"): 1, w("e.example", "1m"): 1, w("f.example", "1m"): 1, w("g.example", "1m"): 1,
		w("a.example", "0s"): 1,
	}, alerts: []alertRecord{
		{"update-java.com", "keyword update-java"},
		{"b.example", "x"},
		{"update-java.com", "keyword update-java"},
		{"a.example", "y"},
	}}
	var buf bytes.Buffer
	r.print(&buf)
	want := `2026-11-28T09:20:00Z a.example 1
2026-11-28T09:21:00Z c.example 9
2026-11-28T09:21:00Z a.example 3
2026-11-28T09:21:00Z b.example 3
2026-11-28T09:21:00Z d.example 1
2026-11-28T09:21:00Z e.example 1
ALERT a.example y
ALERT b.example x
ALERT update-java.com keyword update-java
`
	if buf.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name      string
		env       string
		args      []string
		records   int
		untilDone bool
		wantErr   bool
	}{
		{"embedded defaults", "", nil, 1000, true, false},
		{"embedded records", "", []string{"-records", "50"}, 50, true, false},
		{"embedded without records runs until interrupted", "", []string{"-records", "0"}, 0, false, false},
		{"brokers feed nothing by default", "", []string{"-brokers", "127.0.0.1:9092"}, 0, false, false},
		{"brokers with records", "", []string{"-brokers", "127.0.0.1:9092", "-records", "200"}, 200, false, false},
		{"KAFKA_BROKERS counts as brokers", "127.0.0.1:9092", nil, 0, false, false},
		{"negative records", "", []string{"-records", "-1"}, 0, false, true},
		{"zero commit interval", "", []string{"-commit-interval", "0s"}, 0, false, true},
		{"zero timeout", "", []string{"-timeout", "0s"}, 0, false, true},
		{"stray argument", "", []string{"extra"}, 0, false, true},
		{"negative standbys", "", []string{"-standbys", "-1"}, 0, false, true},
		{"zero session timeout", "", []string{"-session-timeout", "0s"}, 0, false, true},
		{"http without port", "", []string{"-http", "127.0.0.1"}, 0, false, true},
		{"http on port 0", "", []string{"-http", "127.0.0.1:0"}, 0, false, true},
		{"http on a wildcard host", "", []string{"-http", "0.0.0.0:8080"}, 0, false, true},
		{"http without host", "", []string{"-http", ":8080"}, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", tt.env)
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if err == nil && (o.records != tt.records || o.untilDone != tt.untilDone) {
				t.Errorf("records %d, untilDone %v; want %d, %v", o.records, o.untilDone, tt.records, tt.untilDone)
			}
		})
	}
}

// TestParseFlagsServing checks the flags of an instance in a cluster of
// several: the query address, standbys and session timeout.
func TestParseFlagsServing(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	o, err := parseFlags([]string{"-brokers", "127.0.0.1:9092", "-http", "localhost:8080", "-standbys", "2", "-session-timeout", "6s", "-app-id", "dns2", "-state-dir", "/tmp/x"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.httpAddr != "localhost:8080" || o.standbys != 2 || o.sessionTimeout != 6*time.Second || o.appID != "dns2" || o.stateDir != "/tmp/x" {
		t.Errorf("got %+v", o)
	}
	if o, _ := parseFlags(nil, &bytes.Buffer{}); o.appID != "dnsfqdn" || o.sessionTimeout != 45*time.Second || o.commitInterval != time.Second || o.timeout != time.Minute {
		t.Errorf("defaults: got %+v", o)
	}
}

// TestRunEmbedded runs the example as `go run ./examples/dnsfqdn -records
// 500` does, on its own embedded broker, and checks what it prints against
// what the fed log should make.
func TestRunEmbedded(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	before := time.Now()
	if err := run(ctx, []string{"-records", "500", "-commit-interval", "200ms"}, &stdout, testWriter{t}); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
	}
	after := time.Now()
	// The log starts from the clock when run fed it; it may have crossed
	// a minute since before.
	var wants []string
	for _, now := range []time.Time{before, after} {
		var want bytes.Buffer
		expect(synthLines(500, synthStart(now))).print(&want)
		if stdout.String() == want.String() {
			return
		}
		wants = append(wants, want.String())
	}
	t.Errorf("printed:\n%s\nwant:\n%s", stdout.String(), strings.Join(wants, "\nor\n"))
}

// TestRunAgainstCluster runs the example with -brokers and -http against
// an in-process cluster over the wire, as a long-running instance: it
// feeds the log, and then the latest counts on fqdn-counts are the log's,
// as are the windows of a name read from the store fqdn-counts through
// the REST API; it returns nil once its context is cancelled.
func TestRunAgainstCluster(t *testing.T) {
	c := testutil.NewCluster(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr := freeAddr(t)
	args := []string{
		"-brokers", strings.Join(c.Addrs(), ","),
		"-records", "600",
		"-app-id", "dnsfqdn-test",
		"-state-dir", t.TempDir(),
		"-commit-interval", "200ms",
		"-http", addr,
	}
	before := time.Now()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &bytes.Buffer{}, testWriter{t}) }()

	// The log starts from the clock when run fed it.
	wantFor := func(now time.Time) results { return expect(synthLines(600, synthStart(now))) }
	var want, got results
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = latestCounts(t, c)
		matched := false
		for _, w := range []results{wantFor(before), wantFor(time.Now())} {
			if maps.Equal(got.counts, w.counts) {
				want, matched = w, true
			}
		}
		if matched || time.Now().After(deadline) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before the log was counted: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if want.counts == nil {
		t.Fatalf("latest counts in %s:\n got %v\nwant %v", countsTopic, got.counts, wantFor(before).counts)
	}

	// The store holds the same counts: ask it for every window of the most
	// asked name.
	const name = "www.google.com"
	var wantWindows []restWindow
	for k, n := range want.counts {
		if k.Key == name {
			wantWindows = append(wantWindows, restWindow{StartMs: k.Start, EndMs: k.End, Value: n})
		}
	}
	if len(wantWindows) < 8 {
		t.Fatalf("%s is in %d windows of the log; the test wants it in every one", name, len(wantWindows))
	}
	slices.SortFunc(wantWindows, func(a, b restWindow) int { return cmp.Compare(a.StartMs, b.StartMs) })
	url := "http://" + addr + "/v1/stores/" + storeName + "/keys/" + name + "/windows?from=" +
		time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	var gotWindows []restWindow
	for {
		gotWindows = getWindows(t, url)
		if slices.Equal(gotWindows, wantWindows) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(gotWindows, wantWindows) {
		t.Errorf("GET %s:\n got %+v\nwant %+v", url, gotWindows, wantWindows)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

// restWindow is one window of the REST API's windows endpoint.
type restWindow struct {
	StartMs int64 `json:"startMs"`
	EndMs   int64 `json:"endMs"`
	Value   int64 `json:"value"`
}

// getWindows asks the REST API for windows; an error (the server is not up
// yet, the task is not running yet) is logged and yields none.
func getWindows(t *testing.T, url string) []restWindow {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Logf("GET %s: %v", url, err)
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Logf("GET %s: %s %s %v", url, resp.Status, body, err)
		return nil
	}
	var out struct{ Windows []restWindow }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s: %s: %v", url, body, err)
	}
	return out.Windows
}

// latestCounts reads fqdn-counts and returns the latest count of each name
// and window.
func latestCounts(t *testing.T, c *testutil.Cluster) results {
	t.Helper()
	r := results{counts: map[kstream.Windowed[string]]int64{}}
	for _, rec := range c.ConsumeAll(t, countsTopic, -1, 300*time.Millisecond) {
		if err := r.add(rec, serde.TimeWindowed(serde.String(), windowSize), serde.Int64(), serde.JSON[Alert]()); err != nil {
			t.Fatal(err)
		}
	}
	return r
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

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testWriter sends the example's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
