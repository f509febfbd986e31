package kstreams

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// TestWindowStoreRestoredAndQueried counts events per key in 1-minute
// windows over kfake, reads the windows through the typed API and REST,
// then restarts on an empty state directory: the window store comes back
// from its changelog with the same windows.
func TestWindowStoreRestoredAndQueried(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "events", 4)
	c.CreateTopic(t, "windowed-counts", 4)
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	truth := map[string]map[int64]int64{} // key -> window start -> count
	var recs []*kgo.Record
	for i := range 3000 {
		key := fmt.Sprintf("k%d", i%7)
		ts := base.Add(time.Duration(i) * 300 * time.Millisecond) // 15 minutes
		start := ts.Truncate(time.Minute).UnixMilli()
		if truth[key] == nil {
			truth[key] = map[int64]int64{}
		}
		truth[key][start]++
		recs = append(recs, &kgo.Record{Topic: "events", Key: []byte(key), Value: []byte("v"), Timestamp: ts})
	}
	c.Produce(t, "events", recs...)

	b := kstream.NewBuilder()
	g := kstream.GroupByKey(kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), "events"))
	kstream.WindowedCount(kstream.WindowedBy(g, kstream.TumblingWindows(time.Minute, time.Hour)),
		kstream.MaterializedAs[string, int64]("wcounts")).
		ToStream().To("windowed-counts", kstream.ProducedWith(serde.TimeWindowed(serde.String(), time.Minute), serde.Int64()))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	check := func(a *App) bool {
		s, err := WindowStore[string, int64](a, "wcounts")
		if err != nil {
			t.Fatal(err)
		}
		for key, wins := range truth {
			got, err := s.Fetch(key, base, base.Add(time.Hour))
			if err != nil || len(got) != len(wins) {
				return false
			}
			for _, w := range got {
				if w.Value != wins[w.Start.UnixMilli()] || w.End.Sub(w.Start) != time.Minute {
					return false
				}
			}
		}
		return true
	}
	addr := freeAddr(t)
	cfg := Config{ApplicationID: "wq", Brokers: c.Addrs(), StateDir: t.TempDir(), CommitInterval: 200 * time.Millisecond,
		ApplicationServer: addr, ServeQueries: true}
	first := start(t, topo, cfg)
	waitFor(t, "every window counted", 60*time.Second, func() bool { return check(first.app) })

	from := base.Format(time.RFC3339)
	ans := get(t, addr, "/v1/stores/wcounts/keys/k3/windows?from="+from+"&to="+fmt.Sprint(base.Add(time.Hour).UnixMilli()))
	wins, _ := ans.body["windows"].([]any)
	if ans.status != http.StatusOK || len(wins) != len(truth["k3"]) {
		t.Fatalf("GET windows of k3: %d %v; want %d windows", ans.status, ans.body, len(truth["k3"]))
	}
	for _, w := range wins {
		m := w.(map[string]any)
		if m["value"] != float64(truth["k3"][int64(m["startMs"].(float64))]) {
			t.Fatalf("window %v: want %d", m, truth["k3"][int64(m["startMs"].(float64))])
		}
	}
	ans = get(t, addr, "/v1/stores")
	if fmt.Sprint(ans.body["stores"]) != "[map[keyType:string kind:window name:wcounts valueType:int64]]" {
		t.Fatalf("GET /v1/stores: %v", ans.body)
	}
	first.stop(t)

	// A fresh state directory: everything comes back from the changelog.
	restored := &restoreCounter{}
	cfg.StateDir = t.TempDir()
	cfg.RestoreListener = restored
	second := start(t, topo, cfg)
	waitFor(t, "every window restored", 60*time.Second, func() bool { return check(second.app) })
	if restored.total() == 0 {
		t.Fatal("the windows are there but nothing was restored")
	}
	if p := second.app.Stats().Processed.Load(); p != 0 {
		t.Fatalf("processed %d records after the restart; the committed input should have been skipped", p)
	}
}
