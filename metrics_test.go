package kstreams

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kstreams-go/kstreams/testutil"
)

// TestMetricsAfterARun runs a word count and checks every documented
// metric is exported with its labels, and that no label carries a record
// key (labels stay bounded).
func TestMetricsAfterARun(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "text-input", 4)
	c.CreateTopic(t, "word-counts", 4)
	lines, truth, _ := wordCountLines(3000)
	produceLines(t, c, "text-input", lines)
	reg := prometheus.NewRegistry()
	r := start(t, wordCountTopology(t), Config{ApplicationID: "metrics", Brokers: c.Addrs(), StateDir: t.TempDir(),
		CommitInterval: 100 * time.Millisecond, Registerer: reg})
	waitForTable(t, "every word counted", r.app, truth)
	waitFor(t, "a commit", 10*time.Second, func() bool { return r.app.Stats().Commits.Load() > 0 })

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string][]string{}
	for _, f := range families {
		names := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				names[l.GetName()] = true
				if _, isWord := truth[l.GetValue()]; isWord {
					t.Errorf("metric %s has a label %s=%q holding a record key", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
		var ls []string
		for n := range names {
			ls = append(ls, n)
		}
		sort.Strings(ls)
		labels[f.GetName()] = ls
	}
	want := map[string]string{
		"kstreams_records_processed_total":     "",
		"kstreams_process_latency_seconds":     "task",
		"kstreams_commits_total":               "",
		"kstreams_commit_latency_seconds":      "",
		"kstreams_polls_total":                 "",
		"kstreams_polled_records_total":        "",
		"kstreams_consumer_lag_records":        "partition,topic",
		"kstreams_store_latency_seconds":       "op,store",
		"kstreams_e2e_latency_seconds":         "topic",
		"kstreams_restore_records_total":       "store",
		"kstreams_restore_remaining_records":   "store",
		"kstreams_rebalances_total":            "",
		"kstreams_rebalance_duration_seconds":  "",
		"kstreams_active_tasks":                "",
		"kstreams_standby_tasks":               "",
		"kstreams_app_state":                   "",
		"kstreams_records_skipped_total":       "",
		"kstreams_records_dead_lettered_total": "",
		"kstreams_transactions_aborted_total":  "",
		"kstreams_punctuate_latency_seconds":   "",
	}
	for name, ls := range want {
		got, ok := labels[name]
		if !ok {
			t.Errorf("metric %s not exported", name)
			continue
		}
		if strings.Join(got, ",") != ls {
			t.Errorf("metric %s labels %v, want %q", name, got, ls)
		}
	}
	for name := range labels {
		if !strings.HasPrefix(name, "kstreams_") {
			t.Errorf("metric %s is not named kstreams_…", name)
		}
	}
}
