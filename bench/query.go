package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/internal/rest"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

// The query scenario: latency of interactive queries by key.
//
// Two instances of one application count the pre-produced input (the
// count scenario's input, -records records over -keys keys) into the
// store "counts" with string keys, each serving the query API on its own
// ApplicationServer port (ServeQueries). Once a range scan through
// instance A returns every key with its expected count, -query-clients
// goroutines sharing one http.Client make -query-requests GETs of
// /v1/stores/counts/keys/{key} to A, each for a key drawn at random.
// QueryMetadataForKey on A says which keys A owns (answered locally) and
// which B owns (forwarded by A to B, one hop); every answer is checked
// against that (X-Kstreams-Served-By) and against the expected count.
// A request's latency runs from the client's Get to the end of reading
// the body.
//
// The baseline is the same clients making the same number of requests to
// a net/http server (rest.NewServer, the same timeouts) whose handler
// looks the key up in a Go map and writes the same JSON: what the HTTP
// stack alone costs on this machine. Each round runs both, alternating
// which goes first, on the same running cluster and apps; the medians of
// the rounds are printed.
func queryScenario(o options, brokers string) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	o, closeCluster, err := cluster(o, brokers)
	if err != nil {
		return err
	}
	defer closeCluster()
	adm, closeAdm, err := admin(o)
	if err != nil {
		return err
	}
	defer closeAdm()
	in, out := "query-in", "query-out"
	if err := createTopics(ctx, adm, o.partitions, in, out); err != nil {
		return err
	}
	if err := fill(ctx, o, in); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	want := expectedCounts(o)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	addrA, err := freeAddr()
	if err != nil {
		return err
	}
	addrB, err := freeAddr()
	if err != nil {
		return err
	}
	// The app forwards with an http.Client on http.DefaultTransport; with
	// KSTREAMS_BENCH_DEBUG=1 its dials are counted, to show how many
	// forwards open a connection. Set before the apps start, which read it.
	var dials atomic.Int64
	if tr, ok := http.DefaultTransport.(*http.Transport); ok && debug {
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dial(ctx, network, addr)
		}
	}

	start := func(name, addr string) (*instance, error) {
		topo, err := stringCountTopology(in, out)
		if err != nil {
			return nil, err
		}
		return launch(ctx, name, topo, kstreams.Config{ApplicationID: "bench-query", Brokers: o.brokers,
			ApplicationServer: addr, ServeQueries: true})
	}
	a, err := start("A", addrA)
	if err != nil {
		return err
	}
	defer a.stop()
	b, err := start("B", addrB)
	if err != nil {
		return err
	}
	defer b.stop()

	client := &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        4 * o.queryClients,
			MaxIdleConnsPerHost: 2 * o.queryClients,
			IdleConnTimeout:     time.Minute,
		},
		Timeout: 10 * time.Second,
	}
	defer client.CloseIdleConnections()
	t0 := time.Now()
	if err := waitSplit(ctx, a, b); err != nil {
		return err
	}
	if err := waitCounted(ctx, client, addrA, want); err != nil {
		return err
	}
	if debug {
		fmt.Fprintf(os.Stderr, "  query: every key counted and readable through A %v after B started\n", time.Since(t0).Round(time.Millisecond))
	}

	// Which keys A answers itself and which it forwards to B.
	forwarded := make([]bool, len(keys))
	nLocal := 0
	for i, k := range keys {
		md, err := kstreams.QueryMetadataForKey(a.app, countsStore, k)
		if err != nil {
			return fmt.Errorf("QueryMetadataForKey(%q): %w", k, err)
		}
		switch {
		case md.Local:
			nLocal++
		case md.Active != addrB:
			return fmt.Errorf("QueryMetadataForKey(%q): owner %q, neither A (%s) nor B (%s)", k, md.Active, addrA, addrB)
		}
		forwarded[i] = !md.Local
	}
	if nLocal == 0 || nLocal == len(keys) {
		return fmt.Errorf("instance A owns %d of %d keys: no comparison of local and forwarded lookups", nLocal, len(keys))
	}

	baseAddr, stopBase, err := serveMap(want)
	if err != nil {
		return err
	}
	defer stopBase()

	targets := []queryTarget{
		{name: "baseline", addr: baseAddr, servedBy: func(int) string { return baseAddr }},
		{name: "kstreams", addr: addrA, forwarded: forwarded, servedBy: func(i int) string {
			if forwarded[i] {
				return addrB
			}
			return addrA
		}},
	}
	var runs [3][]queryResult // baseline, local, forwarded
	for round := 0; round < max(1, o.rounds); round++ {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, t := range order {
			if (o.only == "ours" && t == 0) || (o.only == "baseline" && t == 1) {
				continue
			}
			res, err := hammer(ctx, client, targets[t], keys, want, o.queryRequests, o.queryClients, uint64(round))
			if err != nil {
				return fmt.Errorf("%s: %w", targets[t].name, err)
			}
			if t == 0 {
				runs[0] = append(runs[0], res[0])
				fmt.Fprintf(os.Stderr, "  round %d: baseline %s\n", round, res[0])
				continue
			}
			runs[1], runs[2] = append(runs[1], res[0]), append(runs[2], res[1])
			fmt.Fprintf(os.Stderr, "  round %d: local %s; forwarded %s; together %.0f rps\n",
				round, res[0], res[1], res[0].rps+res[1].rps)
			if debug {
				fmt.Fprintf(os.Stderr, "  round %d: connections dialled by the app's forwarding client so far: %d\n", round, dials.Load())
			}
		}
	}
	for i, name := range []string{"query-baseline", "query-local", "query-forwarded"} {
		if len(runs[i]) == 0 {
			continue
		}
		r := medianResult(runs[i])
		fmt.Printf("scenario=%s clients=%d requests=%d p50=%.0fµs p99=%.0fµs rps=%.0f\n",
			name, o.queryClients, r.requests, r.p50, r.p99, r.rps)
	}
	return nil
}

// countsStore is the store the query and rebalance scenarios count into.
const countsStore = "counts"

// stringCountTopology is the count scenario's topology with string keys,
// so that the query API parses and prints them as text: GroupByKey+Count
// into the Pebble store "counts", its updates (8-byte big-endian counts)
// written to out.
func stringCountTopology(in, out string) (*kstreams.Topology, error) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.Bytes()), in)
	kstream.Count(kstream.GroupByKey(s), kstream.MaterializedAs[string, int64](countsStore)).
		ToStream().
		To(out, kstream.ProducedWith(serde.String(), serde.Int64()))
	return b.Build()
}

// expectedCounts is what fill writes: record i has key "key-<i mod keys>".
func expectedCounts(o options) map[string]int64 {
	want := map[string]int64{}
	for i := 0; i < min(o.keys, o.records); i++ {
		n := int64(o.records / o.keys)
		if i < o.records%o.keys {
			n++
		}
		want[fmt.Sprintf("key-%d", i)] = n
	}
	return want
}

// cluster returns o with o.brokers set: a fresh embedded cluster (closed
// by the returned function) unless brokers names real ones.
func cluster(o options, brokers string) (options, func(), error) {
	if brokers != "" {
		o.brokers = strings.Split(brokers, ",")
		return o, func() {}, nil
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(int(o.partitions)))
	if err != nil {
		return o, nil, fmt.Errorf("embedded broker: %w", err)
	}
	o.brokers = c.ListenAddrs()
	return o, c.Close, nil
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// instance is an app started by launch, with the times of its state
// changes.
type instance struct {
	name    string
	app     *kstreams.App
	runAt   time.Time  // just before Run was called
	err     chan error // Run's result
	dir     string
	changed chan struct{}

	mu     sync.Mutex
	states []stateChange
}

type stateChange struct {
	at    time.Time
	state kstreams.State
}

// launch creates an app on a fresh state directory and calls Run; it does
// not wait for anything. KSTREAMS_BENCH_DEBUG=1 shows the app's log.
func launch(ctx context.Context, name string, topo *kstreams.Topology, cfg kstreams.Config) (*instance, error) {
	dir, err := os.MkdirTemp("", "kstreams-bench-")
	if err != nil {
		return nil, err
	}
	in := &instance{name: name, err: make(chan error, 1), dir: dir, changed: make(chan struct{}, 1)}
	cfg.StateDir = dir
	cfg.Logger = quiet()
	if debug {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("instance", name)
	}
	cfg.StateListener = func(_, s kstreams.State) {
		in.mu.Lock()
		in.states = append(in.states, stateChange{at: time.Now(), state: s})
		in.mu.Unlock()
		select {
		case in.changed <- struct{}{}:
		default:
		}
	}
	app, err := kstreams.New(topo, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	in.app = app
	in.runAt = time.Now()
	go func() { in.err <- app.Run(ctx) }()
	return in, nil
}

// waitFor waits until cond holds over the app's state changes so far and
// returns what cond returned.
func (in *instance) waitFor(ctx context.Context, what string, cond func([]stateChange) (time.Time, bool)) (time.Time, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		in.mu.Lock()
		at, ok := cond(in.states)
		in.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("instance %s: waiting for %s: %w", in.name, what, ctx.Err())
		case err := <-in.err:
			in.err <- err
			return time.Time{}, fmt.Errorf("instance %s stopped while waiting for %s: %v", in.name, what, err)
		case <-in.changed:
		case <-t.C:
		}
	}
}

// runningAfter is a waitFor condition: the first change to Running after t.
func runningAfter(t time.Time) func([]stateChange) (time.Time, bool) {
	return stateAfter(t, kstreams.Running)
}

func stateAfter(t time.Time, s kstreams.State) func([]stateChange) (time.Time, bool) {
	return func(cs []stateChange) (time.Time, bool) {
		for _, c := range cs {
			if c.state == s && !c.at.Before(t) {
				return c.at, true
			}
		}
		return time.Time{}, false
	}
}

// stop closes the app, removes its state and returns Run's error. It may
// be called more than once.
func (in *instance) stop() error {
	in.app.Close()
	err := <-in.err
	in.err <- err
	return errors.Join(err, os.RemoveAll(in.dir))
}

// waitSplit waits until both instances are Running and see each other
// with tasks of their own.
func waitSplit(ctx context.Context, a, b *instance) error {
	for {
		split := true
		for _, in := range []*instance{a, b} {
			md := in.app.Metadata()
			split = split && in.app.State() == kstreams.Running && len(md.Instances) == 2 &&
				len(md.Instances[0].Active) > 0 && len(md.Instances[1].Active) > 0
		}
		if split {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for both instances to run tasks: %w (A sees %+v, B sees %+v)", ctx.Err(), a.app.Metadata(), b.app.Metadata())
		case err := <-a.err:
			a.err <- err
			return fmt.Errorf("instance A stopped: %v", err)
		case err := <-b.err:
			b.err <- err
			return fmt.Errorf("instance B stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitCounted pages through a range scan of the store through the
// instance at addr until it returns exactly want.
func waitCounted(ctx context.Context, client *http.Client, addr string, want map[string]int64) error {
	var last error
	for {
		got, err := scanCounts(ctx, client, addr)
		if err == nil {
			err = sameCounts(got, want)
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for every key to be counted: %w (last answer: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func scanCounts(ctx context.Context, client *http.Client, addr string) (map[string]int64, error) {
	got := map[string]int64{}
	from := ""
	for {
		u := "http://" + addr + "/v1/stores/" + countsStore + "/keys?limit=1000"
		if from != "" {
			u += "&from=" + url.QueryEscape(from)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
		}
		var page struct {
			Items []struct {
				Key   string `json:"key"`
				Value int64  `json:"value"`
			} `json:"items"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("GET %s: %w", u, err)
		}
		for _, it := range page.Items {
			got[it.Key] = it.Value
		}
		if page.Next == "" {
			return got, nil
		}
		from = page.Next
	}
}

func sameCounts(got, want map[string]int64) error {
	var bad, missing int
	for k, n := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing++
		case g != n:
			bad++
		}
	}
	if bad > 0 || missing > 0 || len(got) != len(want) {
		return fmt.Errorf("%d keys with counts, %d missing, %d with the wrong count, %d expected", len(got), missing, bad, len(want))
	}
	return nil
}

// serveMap serves GET /v1/stores/counts/keys/{key} from a Go map with the
// query API's JSON, on a server made as the app makes its own.
func serveMap(counts map[string]int64) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	prefix := "/v1/stores/" + countsStore + "/keys/"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := strings.TrimPrefix(r.URL.Path, prefix)
		n, ok := counts[k]
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(rest.HeaderServedBy, addr)
		if !ok || len(k) == len(r.URL.Path) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not found"}` + "\n"))
			return
		}
		b, _ := json.Marshal(keyCount{Key: k, Value: n})
		_, _ = w.Write(append(b, '\n'))
	})
	srv := rest.NewServer(addr, h)
	go func() { _ = srv.Serve(ln) }()
	return addr, func() { _ = srv.Close() }, nil
}

type keyCount struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

// queryTarget is what hammer queries.
type queryTarget struct {
	name string
	addr string
	// forwarded says which keys (by index) the instance forwards; nil:
	// none.
	forwarded []bool
	// servedBy is the endpoint that must answer for key i.
	servedBy func(i int) string
}

// queryResult is one class of requests of one run.
type queryResult struct {
	requests int
	p50, p99 float64 // µs
	rps      float64 // this class's requests per second of the run
}

func (r queryResult) String() string {
	return fmt.Sprintf("%d requests p50=%.0fµs p99=%.0fµs rps=%.0f", r.requests, r.p50, r.p99, r.rps)
}

func medianResult(rs []queryResult) queryResult {
	pick := func(f func(queryResult) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	return queryResult{
		requests: int(pick(func(r queryResult) float64 { return float64(r.requests) })),
		p50:      pick(func(r queryResult) float64 { return r.p50 }),
		p99:      pick(func(r queryResult) float64 { return r.p99 }),
		rps:      pick(func(r queryResult) float64 { return r.rps }),
	}
}

// hammer makes requests GETs of random keys from clients goroutines, after
// a warm-up of a few requests per client that opens the connections, and
// returns the latencies of the local [0] and forwarded [1] requests. Any
// answer other than 200 with the expected count from the expected
// instance fails the run.
func hammer(ctx context.Context, client *http.Client, t queryTarget, keys []string, want map[string]int64,
	requests, clients int, seed uint64) ([2]queryResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	get := func(i int) (time.Duration, error) {
		u := "http://" + t.addr + "/v1/stores/" + countsStore + "/keys/" + url.PathEscape(keys[i])
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("GET %s: read: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %s (served by %q, Retry-After %q): %s", u, resp.Status,
				resp.Header.Get(rest.HeaderServedBy), resp.Header.Get("Retry-After"), strings.TrimSpace(string(body)))
		}
		if by := resp.Header.Get(rest.HeaderServedBy); by != t.servedBy(i) {
			return 0, fmt.Errorf("GET %s: served by %q, want %q", u, by, t.servedBy(i))
		}
		var kc keyCount
		if err := json.Unmarshal(body, &kc); err != nil {
			return 0, fmt.Errorf("GET %s: %w: %s", u, err, body)
		}
		if kc.Key != keys[i] || kc.Value != want[keys[i]] {
			return 0, fmt.Errorf("GET %s: %s, want count %d", u, strings.TrimSpace(string(body)), want[keys[i]])
		}
		return d, nil
	}
	var wg sync.WaitGroup
	// Warm-up: open every client's connection (and A's to B) before the
	// clock starts.
	for g := 0; g < clients; g++ {
		wg.Go(func() {
			for i := 0; i < 5; i++ {
				if _, err := get((g*5 + i) % len(keys)); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return [2]queryResult{}, fmt.Errorf("warm-up: %w", err)
	}

	var next atomic.Int64
	lat := make([][2][]time.Duration, clients)
	start := time.Now()
	for g := 0; g < clients; g++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			mine := &lat[g]
			for next.Add(1) <= int64(requests) {
				i := rng.IntN(len(keys))
				d, err := get(i)
				if err != nil {
					cancel(err)
					return
				}
				class := 0
				if t.forwarded != nil && t.forwarded[i] {
					class = 1
				}
				mine[class] = append(mine[class], d)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return [2]queryResult{}, err
	}
	var res [2]queryResult
	for class := range res {
		var all []time.Duration
		for g := range lat {
			all = append(all, lat[g][class]...)
		}
		if len(all) == 0 {
			continue
		}
		slices.Sort(all)
		res[class] = queryResult{
			requests: len(all),
			p50:      micros(percentile(all, 0.50)),
			p99:      micros(percentile(all, 0.99)),
			rps:      float64(len(all)) / wall.Seconds(),
		}
	}
	return res, nil
}

// percentile is the nearest-rank q-quantile of sorted ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	i := int(float64(len(ds))*q+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
