package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// scored is an output record as the tests compare it.
type scored struct {
	user   string
	score  float64
	events int64
	ts     time.Time
}

func scoredOf(t *testing.T, out *testutil.TestOutputTopic[string, UserScore]) []scored {
	t.Helper()
	var got []scored
	for _, r := range out.ReadRecords() {
		if r.Key != r.Value.UserID {
			t.Errorf("record keyed %q holds the score of %q", r.Key, r.Value.UserID)
		}
		got = append(got, scored{r.Key, r.Value.Score, r.Value.Events, r.Timestamp.UTC()})
	}
	return got
}

func sameScored(a, b scored) bool {
	return a.user == b.user && math.Abs(a.score-b.score) < 1e-9 && a.events == b.events && a.ts.Equal(b.ts)
}

// TestTopologyScoresAndAlerts runs buildTopology in the test driver on two
// users' interleaved activities, whose scores are worked out by hand:
// each activity makes one record, on alerts when the user's score is 6 or
// more, else on scores, stamped with the activity's time; an activity
// without a user makes none; the store holds each user's latest score.
func TestTopologyScoresAndAlerts(t *testing.T) {
	topo, err := buildTopology()
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo, testutil.WithApplicationID("useractivity"))
	in := testutil.InputTopic(d, inputTopic, serde.String(), serde.JSON[Activity]())
	scores := testutil.OutputTopic(d, scoresTopic, serde.String(), serde.JSON[UserScore]())
	alerts := testutil.OutputTopic(d, alertsTopic, serde.String(), serde.JSON[UserScore]())

	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	recordTime := t0.Add(time.Hour)
	for _, a := range []Activity{
		{UserID: "alice", Action: "view", IP: "192.0.2.1", Country: "US", Time: at(1)},                     // 0.1: 0.03
		{UserID: "bob", Action: "failed_login", IP: "198.51.100.66", Country: "T1", Time: at(2)},           // 12: 3.6
		{UserID: "bob", Action: "failed_login", IP: "198.51.100.66", Country: "T1", Time: at(3)},           // 12: 6.12, alert
		{UserID: "alice", Action: "purchase", Amount: 250, IP: "192.0.2.1", Country: "US", Time: at(4)},    // 3.5: 1.071
		{Action: "view", IP: "192.0.2.9", Country: "US", Time: at(5)},                                      // no user: dropped
		{UserID: "bob", Action: "login", IP: "198.51.100.66", Country: "T1", Time: at(6)},                  // 3: 5.184
		{UserID: "bob", Action: "purchase", Amount: 1000, IP: "198.51.100.66", Country: "T1", Time: at(7)}, // 33: 13.5288, alert
		{UserID: "carol", Action: "login", IP: "192.0.2.3", Country: "DE"},                                 // 1: 0.3, at the record's time
		{UserID: "bob", Action: "view", IP: "192.0.2.2", Country: "GB", Time: at(9)},                       // 0.1: 9.5002, alert
		{UserID: "alice", Action: "purchase", Amount: 10, IP: "192.0.2.1", Country: "US", Time: at(10)},    // 1.1: 1.0797
		{UserID: "bob", Action: "view", IP: "192.0.2.2", Country: "GB", Time: at(11)},                      // 0.1: 6.6801, alert
		{UserID: "bob", Action: "view", IP: "192.0.2.2", Country: "GB", Time: at(12)},                      // 0.1: 4.7061
	} {
		in.PipeAt(a.UserID, a, recordTime)
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}

	wantScores := []scored{
		{"alice", 0.03, 1, at(1)},
		{"bob", 3.6, 1, at(2)},
		{"alice", 1.071, 2, at(4)},
		{"bob", 5.184, 3, at(6)},
		{"carol", 0.3, 1, recordTime},
		{"alice", 1.0797, 3, at(10)},
		{"bob", 4.7061, 7, at(12)},
	}
	wantAlerts := []scored{
		{"bob", 6.12, 2, at(3)},
		{"bob", 13.5288, 4, at(7)},
		{"bob", 9.5002, 5, at(9)},
		{"bob", 6.6801, 6, at(11)},
	}
	if got := scoredOf(t, scores); !slices.EqualFunc(got, wantScores, sameScored) {
		t.Errorf("%s:\n got %+v\nwant %+v", scoresTopic, got, wantScores)
	}
	if got := scoredOf(t, alerts); !slices.EqualFunc(got, wantAlerts, sameScored) {
		t.Errorf("%s:\n got %+v\nwant %+v", alertsTopic, got, wantAlerts)
	}

	store := testutil.StoreView(d, storeName, serde.String(), serde.JSON[UserScore]())
	for user, want := range map[string]scored{
		"alice": {"alice", 1.0797, 3, at(10)},
		"bob":   {"bob", 4.7061, 7, at(12)},
		"carol": {"carol", 0.3, 1, time.Time{}},
	} {
		s, found, err := store.Get(user)
		if err != nil || !found {
			t.Fatalf("store %s: %q: found %v, %v", storeName, user, found, err)
		}
		if got := (scored{s.UserID, s.Score, s.Events, s.Last.Time}); !sameScored(got, want) {
			t.Errorf("store %s: %q holds %+v, want %+v", storeName, user, got, want)
		}
	}
	if _, found, _ := store.Get(""); found {
		t.Errorf("store %s holds a score for the empty user id", storeName)
	}
	if d.Produced("useractivity-user-scores-changelog") == 0 {
		t.Error("nothing written to the changelog useractivity-user-scores-changelog")
	}
}

// TestTopologySyntheticStream runs buildTopology in the test driver on the
// synthetic stream and checks every output record against scores kept
// here, one moving average per user: one record per activity, on alerts
// exactly when the score is 6 or more, and the users alerted on are the
// anomalous ones, each of them.
func TestTopologySyntheticStream(t *testing.T) {
	topo, err := buildTopology()
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo, testutil.WithApplicationID("useractivity"))
	in := testutil.InputTopic(d, inputTopic, serde.String(), serde.JSON[Activity]())
	scoresOut := testutil.OutputTopic(d, scoresTopic, serde.String(), serde.JSON[UserScore]())
	alertsOut := testutil.OutputTopic(d, alertsTopic, serde.String(), serde.JSON[UserScore]())

	const n = 2000
	activity := synthActivity(n, testStart)
	ema := map[string]float64{}
	events := map[string]int64{}
	var wantScores, wantAlerts []scored
	for i, a := range activity {
		in.PipeAt(strconv.Itoa(i), a, testStart.Add(time.Hour))
		ema[a.UserID] = 0.3*riskOf(a) + 0.7*ema[a.UserID]
		events[a.UserID]++
		s := scored{a.UserID, ema[a.UserID], events[a.UserID], a.Time}
		if s.score >= 6 {
			wantAlerts = append(wantAlerts, s)
		} else {
			wantScores = append(wantScores, s)
		}
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	// The topology rounds each score to four decimals; these are not
	// rounded, so they may differ by a little.
	near := func(a, b scored) bool {
		return a.user == b.user && math.Abs(a.score-b.score) < 1e-3 && a.events == b.events && a.ts.Equal(b.ts)
	}
	gotScores, gotAlerts := scoredOf(t, scoresOut), scoredOf(t, alertsOut)
	if !slices.EqualFunc(gotScores, wantScores, near) {
		t.Errorf("%s differs from the scores made here (%d records, want %d)", scoresTopic, len(gotScores), len(wantScores))
	}
	if !slices.EqualFunc(gotAlerts, wantAlerts, near) {
		t.Errorf("%s:\n got %+v\nwant %+v", alertsTopic, gotAlerts, wantAlerts)
	}

	alerted := map[string]bool{}
	for _, s := range gotAlerts {
		alerted[s.user] = true
	}
	wantAlerted := map[string]bool{}
	for _, an := range anomalies {
		wantAlerted[userID(an.user)] = true
	}
	if !maps.Equal(alerted, wantAlerted) {
		t.Errorf("alerted on %v, want the anomalous users %v", slices.Sorted(maps.Keys(alerted)), slices.Sorted(maps.Keys(wantAlerted)))
	}

	// expect, which the embedded run checks its output against, agrees.
	want := expect(activity)
	if want.records != n || len(want.alerts) != len(gotAlerts) {
		t.Errorf("expect: %d records and %d alerts, want %d and %d", want.records, len(want.alerts), n, len(gotAlerts))
	}
	for _, s := range gotAlerts {
		if e, ok := want.alerts[alertKey{s.user, s.events}]; !ok || e.Score != math.Round(s.score*1e4)/1e4 {
			t.Errorf("expect: alert %+v is %+v (found %v)", s, e, ok)
		}
	}
}

func TestPrint(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	r := newResults()
	alert := func(user string, events int64, score float64, a Activity) {
		a.UserID = user
		r.alerts[alertKey{user, events}] = UserScore{UserID: user, Score: score, Events: events, Last: enrich(a)}
	}
	alert("u-2", 5, 13.5288, Activity{Action: "purchase", Amount: 1000, IP: "198.51.100.1", Country: "T1", Time: at("2026-11-28T10:00:07Z")})
	alert("u-1", 2, 6.12, Activity{Action: "failed_login", IP: "198.51.100.66", Country: "T1", Time: at("2026-11-28T10:00:07Z")})
	alert("u-1", 1, 6.005, Activity{Action: "view", IP: "192.0.2.1", Country: "US", Time: at("2026-11-28T10:00:03Z")})
	var buf bytes.Buffer
	r.print(&buf)
	want := `ALERT 2026-11-28T10:00:03Z u-1 score 6.00 after view from 192.0.2.1 (US)
ALERT 2026-11-28T10:00:07Z u-1 score 6.12 after failed_login from 198.51.100.66 (T1)
ALERT 2026-11-28T10:00:07Z u-2 score 13.53 after purchase of 1000.00 from 198.51.100.1 (T1)
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
// several, and the defaults.
func TestParseFlagsServing(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	o, err := parseFlags([]string{"-brokers", "127.0.0.1:9092", "-http", "localhost:8080", "-standbys", "2", "-session-timeout", "6s", "-app-id", "ua2", "-state-dir", "/tmp/x"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.httpAddr != "localhost:8080" || o.standbys != 2 || o.sessionTimeout != 6*time.Second || o.appID != "ua2" || o.stateDir != "/tmp/x" {
		t.Errorf("got %+v", o)
	}
	if o, _ := parseFlags(nil, &bytes.Buffer{}); o.appID != "useractivity" || o.sessionTimeout != 45*time.Second || o.commitInterval != time.Second || o.timeout != time.Minute || o.eos {
		t.Errorf("defaults: got %+v", o)
	}
}

// TestParseFlagsEOS checks -eos: it picks exactly-once and, unless
// -commit-interval says otherwise, commits every 100ms.
func TestParseFlagsEOS(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		eos    bool
		commit time.Duration
	}{
		{"at-least-once by default", nil, false, time.Second},
		{"eos", []string{"-eos"}, true, 100 * time.Millisecond},
		{"eos keeps an explicit commit interval", []string{"-eos", "-commit-interval", "2s"}, true, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", "")
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if o.eos != tt.eos || o.commitInterval != tt.commit {
				t.Errorf("eos %v, commit interval %v; want %v, %v", o.eos, o.commitInterval, tt.eos, tt.commit)
			}
			want := kstreams.AtLeastOnce
			if tt.eos {
				want = kstreams.ExactlyOnceV2
			}
			if g := guarantee(o.eos); g != want {
				t.Errorf("guarantee %v, want %v", g, want)
			}
		})
	}
}

// TestRunEmbedded runs the example as `go run ./examples/useractivity
// -records 500` does, on its own embedded broker, and checks the alerts it
// prints against those of the activities it fed; with -eos too, which
// reads the outputs read_committed.
func TestRunEmbedded(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"at-least-once", []string{"-commit-interval", "200ms"}},
		{"eos", []string{"-eos"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", "")
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			var stdout bytes.Buffer
			before := time.Now()
			if err := run(ctx, append([]string{"-records", "500"}, tc.args...), &stdout, testWriter{t}); err != nil {
				t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
			}
			after := time.Now()
			if n := strings.Count(stdout.String(), "ALERT "); n < len(anomalies) {
				t.Errorf("%d alerts printed, want at least one per anomalous user", n)
			}
			// The stream starts from the clock when run made it; it may
			// have crossed a minute since before.
			var wants []string
			for _, now := range []time.Time{before, after} {
				var want bytes.Buffer
				expect(synthActivity(500, synthStart(now))).print(&want)
				if stdout.String() == want.String() {
					return
				}
				wants = append(wants, want.String())
			}
			t.Errorf("printed:\n%s\nwant:\n%s", stdout.String(), strings.Join(wants, "\nor\n"))
		})
	}
}

// TestRunAgainstCluster runs the example with -brokers and -http against
// an in-process cluster over the wire, as a long-running instance, with a
// record that is not JSON ahead of the stream: that record is skipped,
// the alerts topic ends up holding the stream's alerts, the REST API
// answers with each anomalous user's latest score, and run returns nil
// once its context is cancelled.
func TestRunAgainstCluster(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, inputTopic, 4)
	c.Produce(t, inputTopic, &kgo.Record{Key: []byte("u-0007"), Value: []byte(`{"user_id": "u-00`)})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr := freeAddr(t)
	const n = 600
	args := []string{
		"-brokers", strings.Join(c.Addrs(), ","),
		"-records", strconv.Itoa(n),
		"-app-id", "useractivity-test",
		"-state-dir", t.TempDir(),
		"-commit-interval", "200ms",
		"-http", addr,
	}
	before := time.Now()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &bytes.Buffer{}, testWriter{t}) }()

	// The stream starts from the clock when run made it.
	var activity []Activity
	var got, want results
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = newResults()
		for _, topic := range []string{scoresTopic, alertsTopic} {
			for _, rec := range c.ConsumeAll(t, topic, -1, 300*time.Millisecond) {
				if err := got.add(rec); err != nil {
					t.Fatal(err)
				}
			}
		}
		matched := false
		for _, now := range []time.Time{before, time.Now()} {
			a := synthActivity(n, synthStart(now))
			if w := expect(a); got.records == w.records && maps.EqualFunc(got.alerts, w.alerts, sameScore) {
				activity, want, matched = a, w, true
			}
		}
		if matched || time.Now().After(deadline) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before the activities were scored: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if activity == nil {
		var gotOut, wantOut bytes.Buffer
		got.print(&gotOut)
		expect(synthActivity(n, synthStart(before))).print(&wantOut)
		t.Fatalf("%d records; alerts:\n%s\nwant %d records; alerts:\n%s", got.records, gotOut.String(), n, wantOut.String())
	}
	if len(want.alerts) == 0 {
		t.Fatal("the stream raises no alerts; the test wants some")
	}

	// The store holds every user's latest score: ask for the anomalous
	// users'.
	latest := map[string]UserScore{}
	for _, a := range activity {
		latest[a.UserID] = score(a.UserID, enrich(a), latest[a.UserID])
	}
	for _, an := range anomalies {
		user := userID(an.user)
		u := "http://" + addr + "/v1/stores/" + storeName + "/keys/" + user
		var s UserScore
		for {
			s = getScore(t, u)
			if sameScore(s, latest[user]) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !sameScore(s, latest[user]) {
			t.Errorf("GET %s:\n got %+v\nwant %+v", u, s, latest[user])
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

// sameScore compares scores, times by instant.
func sameScore(a, b UserScore) bool {
	ta, tb := a.Last.Time, b.Last.Time
	a.Last.Time, b.Last.Time = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}

// getScore asks the REST API for a user's score; an error (the server is
// not up yet, the task is not running yet) is logged and yields none.
func getScore(t *testing.T, u string) UserScore {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Logf("GET %s: %v", u, err)
		return UserScore{}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Logf("GET %s: %s %s %v", u, resp.Status, body, err)
		return UserScore{}
	}
	var out struct {
		Key   string
		Value UserScore
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s: %s: %v", u, body, err)
	}
	return out.Value
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

// testWriter sends the example's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
