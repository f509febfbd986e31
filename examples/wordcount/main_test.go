package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"spaces", "the quick  brown fox", []string{"the", "quick", "brown", "fox"}},
		{"case folds", "Hello HELLO hello", []string{"hello", "hello", "hello"}},
		{"punctuation separates", "Hello, world! (again)...", []string{"hello", "world", "again"}},
		{"no space after punctuation", "one,two;three.four", []string{"one", "two", "three", "four"}},
		{"apostrophe and hyphen split", "don't stop-gap", []string{"don", "t", "stop", "gap"}},
		{"digits are word characters", "Route 66 and 4x4s", []string{"route", "66", "and", "4x4s"}},
		{"underscore splits", "snake_case", []string{"snake", "case"}},
		{"non-ASCII letters", "Grüße, Ærø — ÇA VA", []string{"grüße", "ærø", "ça", "va"}},
		{"dotted capital I stays one word", "İstanbul", []string{strings.ToLower("İstanbul")}},
		{"tabs and newlines", "a\tb\nc", []string{"a", "b", "c"}},
		{"nothing but punctuation", " ,.!? ", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitWords(tt.line); !slices.Equal(got, tt.want) {
				t.Errorf("splitWords(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

// TestTopologyCountsWords runs buildTopology in the test driver: the store
// and the latest output record of each word hold its exact count, whatever
// the case and punctuation around it.
func TestTopologyCountsWords(t *testing.T) {
	topo, err := buildTopology()
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo, testutil.WithApplicationID("wordcount"))
	in := testutil.InputTopic(d, inputTopic, serde.String(), serde.String())
	out := testutil.OutputTopic(d, outputTopic, serde.String(), serde.Int64())

	in.Pipe("1", "Hello, world!")
	in.Pipe("2", "HELLO... hello? World-wide web.")
	in.Pipe("3", "")
	in.Pipe("4", "web 2.0, web")
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"hello": 3, "world": 2, "wide": 1, "web": 3, "2": 1, "0": 1}

	latest := map[string]int64{}
	for _, kv := range out.ReadKeyValues() {
		if kv.Value <= latest[kv.Key] {
			t.Errorf("count of %q went from %d to %d", kv.Key, latest[kv.Key], kv.Value)
		}
		latest[kv.Key] = kv.Value
	}
	if !maps.Equal(latest, want) {
		t.Errorf("latest output counts %v, want %v", latest, want)
	}

	store := testutil.StoreView(d, storeName, serde.String(), serde.Int64())
	it, err := store.All()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int64{}
	for it.Next() {
		stored[it.Key()] = it.Value()
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(stored, want) {
		t.Errorf("store %q holds %v, want %v", storeName, stored, want)
	}
	if d.Produced("wordcount-counts-changelog") == 0 {
		t.Error("nothing written to the changelog wordcount-counts-changelog")
	}
}

func TestSynthLines(t *testing.T) {
	a, b := synthLines(300), synthLines(300)
	if !slices.Equal(a, b) {
		t.Fatal("two runs made different lines; the generator must be seeded")
	}
	counts := truth(a)
	if counts["the"] <= counts["count"] {
		t.Errorf("want a skewed distribution: %q %d times, %q %d times", "the", counts["the"], "count", counts["count"])
	}
	for _, l := range a {
		if l == strings.ToLower(l) || !strings.ContainsAny(l, ".!?") {
			t.Fatalf("line %q: want a capital and an end mark", l)
		}
	}
}

func TestTop(t *testing.T) {
	counts := map[string]int64{"b": 2, "a": 2, "c": 5, "d": 1}
	got := top(counts, 3)
	want := []wordCount{{"c", 5}, {"a", 2}, {"b", 2}}
	if !slices.Equal(got, want) {
		t.Errorf("top 3 = %v, want %v", got, want)
	}
	if got := top(counts, 10); len(got) != 4 {
		t.Errorf("top 10 of 4 words has %d entries", len(got))
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name         string
		env          string
		args         []string
		records      int
		untilCounted bool
		wantErr      bool
	}{
		{"embedded defaults", "", nil, 1000, true, false},
		{"embedded records", "", []string{"-records", "50"}, 50, true, false},
		{"embedded without records runs until interrupted", "", []string{"-records", "0"}, 0, false, false},
		{"brokers feed nothing by default", "", []string{"-brokers", "127.0.0.1:9092"}, 0, false, false},
		{"brokers with records", "", []string{"-brokers", "127.0.0.1:9092", "-records", "200"}, 200, false, false},
		{"KAFKA_BROKERS counts as brokers", "127.0.0.1:9092", nil, 0, false, false},
		{"negative records", "", []string{"-records", "-1"}, 0, false, true},
		{"zero commit interval", "", []string{"-commit-interval", "0s"}, 0, false, true},
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
			if err == nil && (o.records != tt.records || o.untilCounted != tt.untilCounted) {
				t.Errorf("records %d, untilCounted %v; want %d, %v", o.records, o.untilCounted, tt.records, tt.untilCounted)
			}
		})
	}
}

// TestParseFlagsServing checks the flags of an instance in a cluster of
// several: the query address, standbys and session timeout.
func TestParseFlagsServing(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		http     string
		standbys int
		session  time.Duration
	}{
		{"defaults", nil, "", 0, 45 * time.Second},
		{"http", []string{"-http", "127.0.0.1:8080"}, "127.0.0.1:8080", 0, 45 * time.Second},
		{"http by name", []string{"-http", "localhost:8080"}, "localhost:8080", 0, 45 * time.Second},
		{"standbys", []string{"-standbys", "2"}, "", 2, 45 * time.Second},
		{"session timeout", []string{"-session-timeout", "6s"}, "", 0, 6 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", "")
			o, err := parseFlags(append([]string{"-brokers", "127.0.0.1:9092"}, tt.args...), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if o.httpAddr != tt.http || o.standbys != tt.standbys || o.sessionTimeout != tt.session {
				t.Errorf("http %q, standbys %d, session timeout %v; want %q, %d, %v",
					o.httpAddr, o.standbys, o.sessionTimeout, tt.http, tt.standbys, tt.session)
			}
		})
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
		{"eos=false", []string{"-eos=false"}, false, time.Second},
		{"eos keeps an explicit commit interval", []string{"-eos", "-commit-interval", "2s"}, true, 2 * time.Second},
		{"commit interval before eos", []string{"-commit-interval", "1s", "-eos"}, true, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", "")
			o, err := parseFlags(append([]string{"-brokers", "127.0.0.1:9092"}, tt.args...), &bytes.Buffer{})
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

// TestRunEmbedded runs the example as `go run ./examples/wordcount -records
// 500` does, on its own embedded broker, and checks the ten lines it prints
// against counts made here.
func TestRunEmbedded(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	if err := run(ctx, []string{"-records", "500", "-commit-interval", "200ms"}, &stdout, testWriter{t}); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
	}
	var want strings.Builder
	for _, wc := range top(truth(synthLines(500)), 10) {
		fmt.Fprintf(&want, "%s %d\n", wc.word, wc.count)
	}
	if stdout.String() != want.String() {
		t.Errorf("printed:\n%s\nwant:\n%s", stdout.String(), want.String())
	}
}

// TestRunAgainstCluster runs the example with -brokers against an
// in-process cluster over the wire, as a long-running instance: it feeds
// the lines, counts them, and returns nil once its context is cancelled.
// Every word's latest count in word-counts is then exact.
func TestRunAgainstCluster(t *testing.T) {
	c := testutil.NewCluster(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	args := []string{
		"-brokers", strings.Join(c.Addrs(), ","),
		"-records", "300",
		"-app-id", "wordcount-test",
		"-state-dir", t.TempDir(),
		"-commit-interval", "200ms",
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &bytes.Buffer{}, testWriter{t}) }()

	want := truth(synthLines(300))
	deadline := time.Now().Add(60 * time.Second)
	var got map[string]int64
	for {
		got = latestCounts(t, c)
		if maps.Equal(got, want) || time.Now().After(deadline) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before the words were counted: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("latest counts in %s:\n got %v\nwant %v", outputTopic, got, want)
	}
}

// truth counts the words of lines.
func truth(lines []string) map[string]int64 {
	out := map[string]int64{}
	for _, l := range lines {
		for _, w := range splitWords(l) {
			out[w]++
		}
	}
	return out
}

// latestCounts reads word-counts and returns the latest count of each word.
func latestCounts(t *testing.T, c *testutil.Cluster) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range c.ConsumeAll(t, outputTopic, -1, 300*time.Millisecond) {
		n, err := serde.Int64().Deserialize(outputTopic, r.Value)
		if err != nil {
			t.Fatalf("count of %q: %v", r.Key, err)
		}
		out[string(r.Key)] = n
	}
	return out
}

// testWriter sends the example's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
