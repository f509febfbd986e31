package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

func TestCategoriesAndPage(t *testing.T) {
	tests := []struct {
		name string
		edit Edit
		cats []string
		page string
	}{
		{"registered edit", Edit{Wiki: "enwiki", Title: "Apache Kafka", Action: "edit", User: "Editor001"},
			[]string{"editor:registered", "action:edit"}, "enwiki:Apache Kafka"},
		{"anonymous", Edit{Wiki: "dewiki", Title: "Berlin", Action: "edit", IsAnon: true, Country: "DE"},
			[]string{"editor:anonymous", "action:edit"}, "dewiki:Berlin"},
		{"a bot is a bot even when anonymous", Edit{Wiki: "wikidatawiki", Title: "Q42", Action: "edit", IsBot: true, IsAnon: true},
			[]string{"editor:bot", "action:edit"}, "wikidatawiki:Q42"},
		{"page creation", Edit{Wiki: "enwiki", Title: "Stream processing", Action: "new"},
			[]string{"editor:registered", "action:new"}, "enwiki:Stream processing"},
		{"action case and space fold", Edit{Wiki: "enwiki", Title: "X", Action: " LOG "},
			[]string{"editor:registered", "action:log"}, "enwiki:X"},
		{"no action", Edit{Wiki: "enwiki", Title: "X"},
			[]string{"editor:registered", "action:unknown"}, "enwiki:X"},
		{"namespace in the title", Edit{Wiki: "enwiki", Title: "Talk:Apache Kafka", Action: "edit"},
			[]string{"editor:registered", "action:edit"}, "enwiki:Talk:Apache Kafka"},
		{"no wiki", Edit{Title: "Berlin", Action: "edit"},
			[]string{"editor:registered", "action:edit"}, "Berlin"},
		{"no title: no page", Edit{Wiki: "enwiki", Action: "log", IsBot: true},
			[]string{"editor:bot", "action:log"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := categories(tt.edit); !slices.Equal(got, tt.cats) {
				t.Errorf("categories = %q, want %q", got, tt.cats)
			}
			if got := page(tt.edit); got != tt.page {
				t.Errorf("page = %q, want %q", got, tt.page)
			}
		})
	}
}

// at parses a time of the day of testStart, "15:04:05.000", as UTC.
func at(t *testing.T, clock string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.DateOnly+" 15:04:05.000", testStart.Format(time.DateOnly)+" "+clock)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestTopologyCounts runs buildTopology in the test driver on a few edits
// whose counts are worked out by hand: each counts under its editor kind
// and action, and under its page if it has a title, in the minute of its
// own time (a record's timestamp only when the edit has none).
func TestTopologyCounts(t *testing.T) {
	topo, err := buildTopology()
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo, testutil.WithApplicationID("wikiedits"))
	in := testutil.InputTopic(d, inputTopic, serde.String(), serde.JSON[Edit]())
	keys := serde.TimeWindowed(serde.String(), windowSize)
	catOut := testutil.OutputTopic(d, categoryTopic, keys, serde.Int64())
	pageOut := testutil.OutputTopic(d, pageTopic, keys, serde.Int64())

	recordTime := at(t, "09:21:30.000")
	for _, e := range []Edit{
		{Time: at(t, "09:20:05.000"), Wiki: "enwiki", Title: "Apache Kafka", Action: "edit", User: "Editor001"},
		{Time: at(t, "09:20:30.000"), Wiki: "enwiki", Title: "Apache Kafka", Action: "edit", User: "203.0.113.9", IsAnon: true, Country: "GB"},
		{Time: at(t, "09:20:59.999"), Wiki: "wikidatawiki", Title: "Q42", Action: "edit", User: "CiteFixBot", IsBot: true},
		{Time: at(t, "09:21:00.000"), Wiki: "enwiki", Title: "Apache Kafka", Action: "new", User: "Editor002"},
		{Time: at(t, "09:21:10.000"), Wiki: "dewiki", Title: "Berlin", Action: "LOG", User: "InterwikiBot", IsBot: true},
		{Time: at(t, "09:21:20.000"), Wiki: "enwiki", User: "Editor003"},
		{Wiki: "enwiki", Title: "Berlin", Action: "edit", User: "Editor004"}, // no time: the record's
	} {
		in.PipeAt(page(e), e, recordTime)
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}

	w := func(key, start string) kstream.Windowed[string] { return windowOf(key, at(t, start)) }
	wantCats := map[kstream.Windowed[string]]int64{
		w("editor:registered", "09:20:00.000"): 1,
		w("editor:anonymous", "09:20:00.000"):  1,
		w("editor:bot", "09:20:00.000"):        1,
		w("action:edit", "09:20:00.000"):       3,
		w("editor:registered", "09:21:00.000"): 3,
		w("editor:bot", "09:21:00.000"):        1,
		w("action:new", "09:21:00.000"):        1,
		w("action:log", "09:21:00.000"):        1,
		w("action:unknown", "09:21:00.000"):    1,
		w("action:edit", "09:21:00.000"):       1,
	}
	wantPages := map[kstream.Windowed[string]]int64{
		w("enwiki:Apache Kafka", "09:20:00.000"): 2,
		w("wikidatawiki:Q42", "09:20:00.000"):    1,
		w("enwiki:Apache Kafka", "09:21:00.000"): 1,
		w("dewiki:Berlin", "09:21:00.000"):       1,
		w("enwiki:Berlin", "09:21:00.000"):       1,
	}
	for _, tc := range []struct {
		out  *testutil.TestOutputTopic[kstream.Windowed[string], int64]
		want map[kstream.Windowed[string]]int64
	}{{catOut, wantCats}, {pageOut, wantPages}} {
		latest := map[kstream.Windowed[string]]int64{}
		for _, r := range tc.out.ReadRecords() {
			if ts := r.Timestamp.UnixMilli(); ts < r.Key.Start || ts >= r.Key.End {
				t.Errorf("count of %v stamped %v, outside its window", r.Key, r.Timestamp.UTC())
			}
			latest[r.Key] = r.Value
		}
		if !maps.Equal(latest, tc.want) {
			t.Errorf("latest counts:\n got %v\nwant %v", latest, tc.want)
		}
	}
}

// TestTopologySyntheticFeed runs buildTopology in the test driver on the
// synthetic feed and checks that the latest count of each key and minute
// on both output topics, and in both window stores, are the feed's, as
// counted here. The records' own timestamps, an hour later, play no part.
func TestTopologySyntheticFeed(t *testing.T) {
	topo, err := buildTopology()
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo, testutil.WithApplicationID("wikiedits"))
	in := testutil.InputTopic(d, inputTopic, serde.String(), serde.JSON[Edit]())
	keys := serde.TimeWindowed(serde.String(), windowSize)
	catOut := testutil.OutputTopic(d, categoryTopic, keys, serde.Int64())
	pageOut := testutil.OutputTopic(d, pageTopic, keys, serde.Int64())

	edits := synthEdits(2000, testStart)
	wantCats := map[kstream.Windowed[string]]int64{}
	wantPages := map[kstream.Windowed[string]]int64{}
	for i, e := range edits {
		in.PipeAt(strconv.Itoa(i), e, testStart.Add(time.Hour))
		for _, c := range categories(e) {
			wantCats[windowOf(c, e.Time)]++
		}
		wantPages[windowOf(page(e), e.Time)]++
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if len(wantPages) < 5*len(pages)/2 {
		t.Fatalf("only %d pages and windows in the feed; the test wants more", len(wantPages))
	}

	for _, tc := range []struct {
		topic, store string
		out          *testutil.TestOutputTopic[kstream.Windowed[string], int64]
		want         map[kstream.Windowed[string]]int64
	}{
		{categoryTopic, categoryStore, catOut, wantCats},
		{pageTopic, pageStore, pageOut, wantPages},
	} {
		latest := map[kstream.Windowed[string]]int64{}
		for _, r := range tc.out.ReadRecords() {
			if r.Value <= latest[r.Key] {
				t.Errorf("%s: count of %v went from %d to %d", tc.topic, r.Key, latest[r.Key], r.Value)
			}
			latest[r.Key] = r.Value
		}
		if !maps.Equal(latest, tc.want) {
			t.Errorf("latest counts on %s differ from the feed's:\n got %v\nwant %v", tc.topic, latest, tc.want)
		}
		if got := storedCounts(t, d, tc.store); !maps.Equal(got, tc.want) {
			t.Errorf("store %s differs from the feed's counts:\n got %v\nwant %v", tc.store, got, tc.want)
		}
		if d.Produced("wikiedits-"+tc.store+"-changelog") == 0 {
			t.Errorf("nothing written to the changelog wikiedits-%s-changelog", tc.store)
		}
	}
	if n := d.Dropped("late"); n != 0 {
		t.Errorf("%d edits dropped as late", n)
	}

	want := expect(edits)
	if !maps.Equal(want.categories, wantCats) || !maps.Equal(want.pages, wantPages) {
		t.Error("expect differs from the counts made here")
	}
	if want.categorySum != 2*int64(len(edits)) || want.pageSum != int64(len(edits)) {
		t.Errorf("expect's sums %d and %d, want %d and %d", want.categorySum, want.pageSum, 2*len(edits), len(edits))
	}
}

// storedCounts reads every window of a window store of counts.
func storedCounts(t *testing.T, d *testutil.Driver, name string) map[kstream.Windowed[string]]int64 {
	t.Helper()
	store := testutil.WindowStore(d, name)
	if store == nil {
		t.Fatalf("no window store %s", name)
	}
	it, err := store.All()
	if err != nil {
		t.Fatal(err)
	}
	out := map[kstream.Windowed[string]]int64{}
	for it.Next() {
		n, err := serde.Int64().Deserialize(name, it.Value())
		if err != nil {
			t.Fatal(err)
		}
		out[kstream.Windowed[string]{Key: string(it.Key()), Start: it.Start(), End: it.Start() + windowSize.Milliseconds()}] = n
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTopologyLateEdits checks the grace: once the edits have reached
// 9:30, the window 9:19-9:20 is closed (it ended 10 minutes ago) and an
// edit for it is dropped, by both counts, while 9:20-9:21 still takes
// edits.
func TestTopologyLateEdits(t *testing.T) {
	topo, err := buildTopology()
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo)
	in := testutil.InputTopic(d, inputTopic, serde.String(), serde.JSON[Edit]())
	out := testutil.OutputTopic(d, pageTopic, serde.TimeWindowed(serde.String(), windowSize), serde.Int64())
	for _, clock := range []string{"09:30:00.000", "09:19:59.999", "09:20:00.000", "09:20:59.999"} {
		in.Pipe("k", Edit{Time: at(t, clock), Wiki: "enwiki", Title: "Berlin", Action: "edit"})
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, kv := range out.ReadKeyValues() {
		got[kv.Key.StartTime().UTC().Format("15:04")] = kv.Value
	}
	if want := map[string]int64{"09:30": 1, "09:20": 2}; !maps.Equal(got, want) {
		t.Errorf("page counts by window %v, want %v", got, want)
	}
	// Dropped by the page count and by the category count, twice (its
	// editor kind and its action).
	if n := d.Dropped("late"); n != 3 {
		t.Errorf("%d counts dropped as late, want 3", n)
	}
}

// TestEditJSON pins the edit's wire form, which the README and the
// package doc show.
func TestEditJSON(t *testing.T) {
	const wire = `{"timestamp":"2026-11-28T09:31:07Z","wiki":"enwiki","title":"Apache Kafka","action":"edit","user":"203.0.113.7","is_anon":true,"is_bot":false,"is_minor":false,"country":"GB","delta":-14}`
	e := Edit{Time: time.Date(2026, 11, 28, 9, 31, 7, 0, time.UTC), Wiki: "enwiki", Title: "Apache Kafka",
		Action: "edit", User: "203.0.113.7", IsAnon: true, Country: "GB", Delta: -14}
	b, err := serde.JSON[Edit]().Serialize(inputTopic, e)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != wire {
		t.Errorf("edit JSON\n got %s\nwant %s", b, wire)
	}
	back, err := serde.JSON[Edit]().Deserialize(inputTopic, []byte(wire))
	if err != nil {
		t.Fatal(err)
	}
	if back != e {
		t.Errorf("read back %+v, want %+v", back, e)
	}
}

func TestPrint(t *testing.T) {
	w := func(key, start string) kstream.Windowed[string] { return windowOf(key, at(t, start)) }
	r := results{categories: map[kstream.Windowed[string]]int64{
		w("editor:bot", "09:20:00.000"): 2, w("editor:registered", "09:20:00.000"): 5,
		w("action:edit", "09:20:00.000"): 6, w("action:external", "09:20:00.000"): 1,
		w("editor:anonymous", "09:21:00.000"): 1, w("action:new", "09:21:00.000"): 1,
	}, pages: map[kstream.Windowed[string]]int64{
		w("enwiki:B", "09:20:00.000"): 2, w("enwiki:A", "09:20:00.000"): 2, w("dewiki:Z", "09:20:00.000"): 3,
		w("enwiki:C", "09:20:00.000"): 1, w("frwiki:Paris", "09:21:00.000"): 1,
	}}
	var buf bytes.Buffer
	r.print(&buf)
	want := `2026-11-28T09:20:00Z editors bot=2 anonymous=0 registered=5
2026-11-28T09:20:00Z actions edit=6 new=0 log=0 categorize=0 external=1
2026-11-28T09:20:00Z page 3 dewiki:Z
2026-11-28T09:20:00Z page 2 enwiki:A
2026-11-28T09:20:00Z page 2 enwiki:B
2026-11-28T09:21:00Z editors bot=0 anonymous=1 registered=0
2026-11-28T09:21:00Z actions edit=0 new=1 log=0 categorize=0
2026-11-28T09:21:00Z page 1 frwiki:Paris
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
	o, err := parseFlags([]string{"-brokers", "127.0.0.1:9092", "-http", "localhost:8080", "-standbys", "2", "-session-timeout", "6s", "-app-id", "wiki2", "-state-dir", "/tmp/x"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.httpAddr != "localhost:8080" || o.standbys != 2 || o.sessionTimeout != 6*time.Second || o.appID != "wiki2" || o.stateDir != "/tmp/x" {
		t.Errorf("got %+v", o)
	}
	if o, _ := parseFlags(nil, &bytes.Buffer{}); o.appID != "wikiedits" || o.sessionTimeout != 45*time.Second || o.commitInterval != time.Second || o.timeout != time.Minute || o.eos {
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

// TestRunEmbedded runs the example as `go run ./examples/wikiedits
// -records 500` does, on its own embedded broker, and checks what it
// prints against the counts of the edits it fed; with -eos too, which
// reads the counts read_committed.
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
			// The feed starts from the clock when run made it; it may
			// have crossed a minute since before.
			var wants []string
			for _, now := range []time.Time{before, after} {
				var want bytes.Buffer
				expect(synthEdits(500, synthStart(now))).print(&want)
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
// record that is not JSON ahead of the feed: that record is skipped, the
// latest counts on both output topics are the feed's, as are the windows
// read from both stores through the REST API, and run returns nil once
// its context is cancelled.
func TestRunAgainstCluster(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, inputTopic, 4)
	c.Produce(t, inputTopic, &kgo.Record{Key: []byte("enwiki:Berlin"), Value: []byte(`{"title": "Berl`)})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr := freeAddr(t)
	args := []string{
		"-brokers", strings.Join(c.Addrs(), ","),
		"-records", "600",
		"-app-id", "wikiedits-test",
		"-state-dir", t.TempDir(),
		"-commit-interval", "200ms",
		"-http", addr,
	}
	before := time.Now()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &bytes.Buffer{}, testWriter{t}) }()

	// The feed starts from the clock when run made it.
	wantFor := func(now time.Time) results { return expect(synthEdits(600, synthStart(now))) }
	var want, got results
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = latestCounts(t, c)
		matched := false
		for _, w := range []results{wantFor(before), wantFor(time.Now())} {
			if maps.Equal(got.categories, w.categories) && maps.Equal(got.pages, w.pages) {
				want, matched = w, true
			}
		}
		if matched || time.Now().After(deadline) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before the edits were counted: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if want.categories == nil {
		w := wantFor(before)
		t.Fatalf("latest counts:\n got %v\n     %v\nwant %v\n     %v", got.categories, got.pages, w.categories, w.pages)
	}

	// The stores hold the same counts: ask each for every window of a key,
	// one of them a title that needs escaping in the URL.
	for _, q := range []struct {
		store, key string
		counts     map[kstream.Windowed[string]]int64
	}{
		{categoryStore, "editor:bot", want.categories},
		{pageStore, "frwiki:Wikipédia:Bac à sable", want.pages},
	} {
		var wantWindows []restWindow
		for k, n := range q.counts {
			if k.Key == q.key {
				wantWindows = append(wantWindows, restWindow{StartMs: k.Start, EndMs: k.End, Value: n})
			}
		}
		if len(wantWindows) < 5 {
			t.Fatalf("%s is in %d windows of the feed; the test wants it in every one", q.key, len(wantWindows))
		}
		slices.SortFunc(wantWindows, func(a, b restWindow) int { return cmp.Compare(a.StartMs, b.StartMs) })
		u := "http://" + addr + "/v1/stores/" + q.store + "/keys/" + url.PathEscape(q.key) + "/windows?from=" +
			time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		var gotWindows []restWindow
		for {
			gotWindows = getWindows(t, u)
			if slices.Equal(gotWindows, wantWindows) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !slices.Equal(gotWindows, wantWindows) {
			t.Errorf("GET %s:\n got %+v\nwant %+v", u, gotWindows, wantWindows)
		}
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
func getWindows(t *testing.T, u string) []restWindow {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Logf("GET %s: %v", u, err)
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Logf("GET %s: %s %s %v", u, resp.Status, body, err)
		return nil
	}
	var out struct{ Windows []restWindow }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s: %s: %v", u, body, err)
	}
	return out.Windows
}

// latestCounts reads both output topics and returns the latest count of
// each key and window.
func latestCounts(t *testing.T, c *testutil.Cluster) results {
	t.Helper()
	r := newResults()
	for _, topic := range []string{categoryTopic, pageTopic} {
		for _, rec := range c.ConsumeAll(t, topic, -1, 300*time.Millisecond) {
			if err := r.add(rec); err != nil {
				t.Fatal(err)
			}
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

// testWriter sends the example's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
