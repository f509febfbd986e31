package kstreams

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/statemgr"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// enrichTopology left-joins "flows" (flow id -> source IP) with the global
// table "orgs" (/16 prefix -> organisation) into "enriched" as
// "<ip>@<org>", "<ip>@unknown" when no row matches.
func enrichTopology(t *testing.T) *Topology {
	t.Helper()
	b := kstream.NewBuilder()
	str := kstream.ConsumedWith(serde.String(), serde.String())
	orgs := kstream.GlobalTable(b, str, "orgs", kstream.MaterializedAs[string, string]("orgs"))
	flows := kstream.Stream(b, str, "flows")
	prefix := func(_, ip string) string {
		parts := strings.SplitN(ip, ".", 3)
		return parts[0] + "." + parts[1]
	}
	kstream.LeftJoinGlobal(flows, orgs, prefix, func(ip string, org *string) string {
		if org == nil {
			return ip + "@unknown"
		}
		return ip + "@" + *org
	}).To("enriched")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// produceFlows writes flows "f<i>" for i in [from, to), each from an IP
// under the prefix prefixOf(i).
func produceFlows(t *testing.T, c *testutil.Cluster, from, to int, prefixOf func(i int) string) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "f%d", i), Value: fmt.Appendf(nil, "%s.%d.%d", prefixOf(i), i%7, i%11)})
	}
	c.Produce(t, "flows", recs...)
}

// enriched reads "enriched" until every flow in [0, n) has an output and
// returns the outputs of each flow.
func enriched(t *testing.T, c *testutil.Cluster, n int) map[string][]string {
	t.Helper()
	var out map[string][]string
	waitFor(t, fmt.Sprintf("outputs of %d flows", n), 60*time.Second, func() bool {
		out = map[string][]string{}
		for _, r := range c.ConsumeAll(t, "enriched", -1, 300*time.Millisecond) {
			out[string(r.Key)] = append(out[string(r.Key)], string(r.Value))
		}
		return len(out) >= n
	})
	return out
}

// Two instances each hold the whole global table before they process a
// record, keep it updated while they run, and a restarted instance reads
// on from its checkpoint rather than from the start of the topic.
func TestGlobalTableTwoInstances(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "orgs", 3)
	c.CreateTopic(t, "flows", 4)
	c.CreateTopic(t, "enriched", 4)
	const prefixes = 30
	var rows []*kgo.Record
	for i := range prefixes {
		rows = append(rows, &kgo.Record{Key: fmt.Appendf(nil, "10.%d", i), Value: fmt.Appendf(nil, "org-%d", i)})
	}
	c.Produce(t, "orgs", rows...)

	topo := enrichTopology(t)
	cfg := Config{ApplicationID: "enrich", Brokers: c.Addrs(), CommitInterval: 100 * time.Millisecond}
	cfg1, cfg2 := cfg, cfg
	cfg1.StateDir, cfg2.StateDir = t.TempDir(), t.TempDir()
	a1 := start(t, topo, cfg1)
	a2 := start(t, topo, cfg2)
	prefixOf := func(i int) string { return fmt.Sprintf("10.%d", i%prefixes) }
	// Right after start: whichever instance gets these must already hold
	// every row.
	produceFlows(t, c, 0, 200, prefixOf)
	waitFor(t, "both instances to run tasks", 30*time.Second, func() bool {
		return a1.app.taskCount() > 0 && a2.app.taskCount() > 0
	})
	produceFlows(t, c, 200, 400, prefixOf)
	out := enriched(t, c, 400)
	for i := range 400 {
		key, want := fmt.Sprintf("f%d", i), fmt.Sprintf("10.%d.%d.%d@org-%d", i%prefixes, i%7, i%11, i%prefixes)
		for _, got := range out[key] {
			if got != want {
				t.Errorf("flow %s enriched as %q, want %q", key, got, want)
			}
		}
	}
	for i, r := range []*running{a1, a2} {
		if n := r.app.Stats().Processed.Load(); n == 0 {
			t.Errorf("instance %d processed nothing", i+1)
		}
		if n := r.app.Stats().GlobalRestored.Load(); n != prefixes {
			t.Errorf("instance %d restored %d global rows before joining, want %d", i+1, n, prefixes)
		}
	}

	// An update while running reaches both instances' stores.
	c.Produce(t, "orgs", &kgo.Record{Key: []byte("10.5"), Value: []byte("org-5-renamed")})
	waitFor(t, "both instances to apply the update", 30*time.Second, func() bool {
		return a1.app.Stats().GlobalUpdated.Load() == 1 && a2.app.Stats().GlobalUpdated.Load() == 1
	})
	before := []int64{a1.app.Stats().Processed.Load(), a2.app.Stats().Processed.Load()}
	produceFlows(t, c, 400, 440, func(int) string { return "10.5" })
	out = enriched(t, c, 440)
	for i := 400; i < 440; i++ {
		key, want := fmt.Sprintf("f%d", i), fmt.Sprintf("10.5.%d.%d@org-5-renamed", i%7, i%11)
		for _, got := range out[key] {
			if got != want {
				t.Errorf("flow %s enriched as %q, want %q", key, got, want)
			}
		}
	}
	if a1.app.Stats().Processed.Load() == before[0] || a2.app.Stats().Processed.Load() == before[1] {
		t.Errorf("flows after the update processed by one instance only (processed %v -> %d, %d)",
			before, a1.app.Stats().Processed.Load(), a2.app.Stats().Processed.Load())
	}
	checkGlobalQueries(t, a1.app, a2.app)

	// Restart the first instance with two changes made while it is down:
	// it restores just those from its checkpoint.
	a1.stop(t)
	cp := filepath.Join(cfg1.StateDir, "enrich", "global", statemgr.CheckpointFile)
	if _, err := os.Stat(cp); err != nil {
		t.Fatalf("no global checkpoint after a clean stop: %v", err)
	}
	c.Produce(t, "orgs",
		&kgo.Record{Key: []byte("10.7"), Value: []byte("org-7-v2")},
		&kgo.Record{Key: []byte("10.9")}) // a tombstone
	a1 = start(t, topo, cfg1)
	waitFor(t, "the restarted instance to run tasks", 30*time.Second, func() bool { return a1.app.taskCount() > 0 })
	if n := a1.app.Stats().GlobalRestored.Load(); n != 2 {
		t.Errorf("restarted instance restored %d global records, want 2: only what came after its checkpoint", n)
	}
	waitFor(t, "the running instance to apply both changes", 30*time.Second, func() bool {
		return a2.app.Stats().GlobalUpdated.Load() == 3
	})
	produceFlows(t, c, 440, 480, func(i int) string { return []string{"10.7", "10.9"}[i%2] })
	out = enriched(t, c, 480)
	for i := 440; i < 480; i++ {
		key, want := fmt.Sprintf("f%d", i), fmt.Sprintf("10.7.%d.%d@org-7-v2", i%7, i%11)
		if i%2 == 1 {
			want = fmt.Sprintf("10.9.%d.%d@unknown", i%7, i%11)
		}
		for _, got := range out[key] {
			if got != want {
				t.Errorf("flow %s enriched as %q, want %q", key, got, want)
			}
		}
	}
	a1.stop(t)
	a2.stop(t)
}

// checkGlobalQueries checks that each instance answers queries of the
// global store "orgs" from its own whole copy, typed and over REST.
func checkGlobalQueries(t *testing.T, apps ...*App) {
	t.Helper()
	for i, a := range apps {
		s, err := Store[string, string](a, "orgs")
		if err != nil {
			t.Fatal(err)
		}
		if v, found, err := s.Get("10.5"); err != nil || !found || v != "org-5-renamed" {
			t.Errorf("instance %d: Get(10.5) = %q, %v, %v; want org-5-renamed", i+1, v, found, err)
		}
		if all, err := s.All(0); err != nil || len(all) != 30 {
			t.Errorf("instance %d: All() holds %d rows (err %v), want 30", i+1, len(all), err)
		}
		md, err := QueryMetadataForKey(a, "orgs", "10.5")
		if err != nil || !md.Local || md.Partition != -1 {
			t.Errorf("instance %d: QueryMetadataForKey = %+v, %v; want local, partition -1", i+1, md, err)
		}
		srv := httptest.NewServer(a.Handler())
		addr := srv.Listener.Addr().String()
		for path, want := range map[string]string{
			"/v1/stores":                     `"name":"orgs"`,
			"/v1/stores/orgs/keys/10.5":      "org-5-renamed",
			"/v1/stores/orgs/keys?limit=100": "org-29",
		} {
			if code, _, body := fetch(t, addr, path); code != 200 || !strings.Contains(string(body), want) {
				t.Errorf("instance %d: GET %s = %d %s, want 200 with %s", i+1, path, code, body, want)
			}
		}
		srv.Close()
	}
}

// Under ExactlyOnceV2 the global table is read read_committed: an aborted
// row never reaches it, the restore stops at the last stable offset
// rather than wait for a transaction left open, and that transaction's
// row arrives once it commits.
func TestGlobalTableReadCommitted(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "orgs", 2)
	c.CreateTopic(t, "flows", 2)
	c.CreateTopic(t, "enriched", 2)
	txn := c.Client(t, kgo.TransactionalID("orgs-writer"))
	// write produces one row in a transaction of its own, left open
	// unless end says how to end it.
	write := func(key, value string, end ...kgo.TransactionEndTry) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := txn.ProduceSync(t.Context(), &kgo.Record{Topic: "orgs", Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, e := range end {
			if err := txn.EndTransaction(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("10.1", "acme", kgo.TryCommit)
	write("10.2", "aborted", kgo.TryAbort)
	write("10.3", "initech", kgo.TryCommit)
	write("10.4", "pending")

	a := start(t, enrichTopology(t), Config{ApplicationID: "enrich-eos", Brokers: c.Addrs(), StateDir: t.TempDir(),
		ProcessingGuarantee: ExactlyOnceV2}).app
	waitFor(t, "the instance to run tasks", 30*time.Second, func() bool { return a.taskCount() > 0 })
	if n := a.Stats().GlobalRestored.Load(); n != 2 {
		t.Errorf("restored %d global records, want the 2 committed ones", n)
	}
	s, err := Store[string, string](a, "orgs")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"10.1": "acme", "10.2": "", "10.3": "initech", "10.4": ""} {
		if v, _, err := s.Get(key); err != nil || v != want {
			t.Errorf("Get(%s) = %q, %v; want %q", key, v, err, want)
		}
	}
	if err := txn.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the committed row to arrive", 30*time.Second, func() bool {
		v, _, err := s.Get("10.4")
		return err == nil && v == "pending"
	})
}
