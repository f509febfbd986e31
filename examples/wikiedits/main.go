// Command wikiedits counts the edits of wikis per minute: it reads edit
// events (JSON, like Wikimedia's recent-changes feed) from "wiki-edits"
// and counts them in tumbling one-minute windows by category, who edited
// (bot, anonymous or registered) and what they did (edit, new, log,
// categorize), in the window store "category-counts", and per page in the
// window store "page-counts"; every new count also goes to the topic of
// the same name. Both stores answer queries over REST.
//
// Usage:
//
//	go run ./examples/wikiedits [-brokers HOST:PORT,...] [-app-id wikiedits] [-state-dir DIR]
//	                            [-records N] [-commit-interval 1s] [-timeout 60s]
//	                            [-http HOST:PORT] [-standbys N] [-session-timeout 45s] [-eos]
//
// Input records hold an Edit as JSON (the key is ignored):
//
//	{"timestamp":"2026-11-28T09:31:07Z","wiki":"enwiki","title":"Apache Kafka","action":"edit","user":"203.0.113.7","is_anon":true,"is_bot":false,"is_minor":false,"country":"GB","delta":-14}
//
// A record's time is its edit's timestamp; an edit without one keeps the
// record's timestamp. A record that is not JSON is skipped and logged.
// Every edit counts under two categories, "editor:<bot|anonymous|
// registered>" and "action:<action>", and, when it has a title, under its
// page, "<wiki>:<title>".
//
// Windows are tumbling, one minute long, aligned to the minute. An edit
// whose window ended 10 minutes or more (of edit time) before the latest
// edit the counting task has seen is too late: it is dropped, and counted
// in the metric kstreams_dropped_records_total{reason="late"}. A record of
// "category-counts" or "page-counts" is keyed by the category or page and
// its window in Kafka Streams' TimeWindowedSerializer layout, the key's
// bytes then the window start as 8 big-endian bytes of epoch
// milliseconds, and holds the count as an 8-byte big-endian integer,
// Kafka's LongSerializer (kcat reads it with -s value=Q). The latest
// record of a key and window holds its count.
//
// Without -brokers (or KAFKA_BROKERS) it starts an embedded broker,
// creates the topics with 4 partitions, feeds -records synthetic edits
// (default 1000) whose times span the five minutes that start six minutes
// ago, waits until every edit is counted, prints for each window, in time
// order, the count of each editor kind and of each action and the three
// pages most edited:
//
//	2026-11-28T10:23:00Z editors bot=51 anonymous=45 registered=123
//	2026-11-28T10:23:00Z actions edit=173 new=16 log=20 categorize=10
//	2026-11-28T10:23:00Z page 67 enwiki:Wikipedia:Sandbox
//
// (pages by count, then name) and exits 0. Unless -state-dir is given,
// its state lives in a temporary directory removed on exit, as the
// embedded broker's topics are. With -records 0 it feeds nothing and
// runs until interrupted, for other clients (kcat) to feed it through the
// broker address it prints.
//
// With -brokers it creates the topics if they are missing, feeds -records
// edits (default 0) and runs until SIGINT or SIGTERM, when it commits
// what it processed and exits 0.
//
// With -http HOST:PORT the instance serves the interactive-query REST API
// and Prometheus metrics there, and advertises that address to the other
// instances of the application, so any of them answers for any key:
//
//	curl 'http://HOST:PORT/v1/stores/category-counts/keys/editor:bot/windows'
//	curl 'http://HOST:PORT/v1/stores/page-counts/keys/enwiki:Apache%20Kafka/windows?from=2026-11-28T09:00:00Z'
//
// The stores keep the last hour of windows. -standbys, -session-timeout
// and -eos are as in examples/wordcount: warm standby copies of each
// task's counts on other instances, how long the group waits for a silent
// instance before moving its tasks, and exactly-once processing (read the
// outputs read_committed then, as this instance does).
//
// Logs go to stderr; stdout carries only the result lines.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/examples/internal/embedded"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

const (
	inputTopic    = "wiki-edits"
	categoryTopic = "category-counts"
	pageTopic     = "page-counts"
	categoryStore = "category-counts"
	pageStore     = "page-counts"

	windowSize = time.Minute
	// windowGrace is how long, in edit time, a window takes late edits
	// after it ends. Edits arrive out of order: a feed delivers them a
	// little late and unordered, and the tasks that read the partitions
	// of wiki-edits go at their own pace, each sending its edits on
	// through the repartition topics, so the task that counts a key gets
	// the partitions' edits interleaved. The synthetic feed spans 5
	// minutes, less than the grace, so none of its edits is late whatever
	// the interleaving.
	windowGrace = 10 * time.Minute
	// windowRetention is how long the stores keep a window for queries.
	windowRetention = time.Hour
)

// buildTopology counts the edits of "wiki-edits" per minute: by category
// in the window store "category-counts" (keyed by the category, so the
// edits go through the repartition topic
// "<app-id>-category-counts-repartition" to the task that owns their
// category's counts), and by page in "page-counts" (through
// "<app-id>-page-counts-repartition"). Every new count goes to the topic
// of the store's name.
func buildTopology() (*kstreams.Topology, error) {
	b := kstream.NewBuilder()
	edits := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.JSON[Edit]()).
		WithTimestampExtractor(eventTime), inputTopic)
	windows := kstream.TumblingWindows(windowSize, windowGrace)
	windowedKeys := kstream.ProducedWith(serde.TimeWindowed(serde.String(), windowSize), serde.Int64())

	// Only the category travels on: the count needs nothing else.
	byCategory := kstream.FlatMap(edits, func(_ string, e Edit) []kstream.KeyValue[string, string] {
		cats := categories(e)
		out := make([]kstream.KeyValue[string, string], len(cats))
		for i, c := range cats {
			out[i] = kstream.KeyValue[string, string]{Key: c, Value: c}
		}
		return out
	})
	categoryCounts := kstream.WindowedCount(kstream.WindowedBy(kstream.GroupByKey(byCategory), windows),
		kstream.Materialized[string, int64]{StoreName: categoryStore, Retention: windowRetention})
	categoryCounts.ToStream().To(categoryTopic, windowedKeys)

	titled := edits.Filter(func(_ string, e Edit) bool { return page(e) != "" })
	byPage := kstream.GroupBy(titled, func(_ string, e Edit) string { return page(e) })
	pageCounts := kstream.WindowedCount(kstream.WindowedBy(byPage, windows),
		kstream.Materialized[string, int64]{StoreName: pageStore, Retention: windowRetention})
	pageCounts.ToStream().To(pageTopic, windowedKeys)
	return b.Build()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, let a second one kill the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintf(os.Stderr, "wikiedits: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	brokers        string
	appID          string
	stateDir       string
	records        int
	commitInterval time.Duration
	timeout        time.Duration
	// httpAddr is where the query API and /metrics are served, and the
	// endpoint advertised to the other instances; "" serves nothing.
	httpAddr       string
	standbys       int
	sessionTimeout time.Duration
	eos            bool // exactly-once (kstreams.ExactlyOnceV2)
	// external: the brokers come from -brokers or KAFKA_BROKERS, not from
	// an embedded broker started for this run.
	external bool
	// untilDone: wait until every fed edit is counted, print the counts
	// and return (on the embedded broker), rather than run until
	// interrupted.
	untilDone bool
}

const defaultRecords = 1000

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("wikiedits", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.brokers, "brokers", "", "comma-separated seed brokers (default: $KAFKA_BROKERS, else an embedded broker)")
	fs.StringVar(&o.appID, "app-id", "wikiedits", "application id: the consumer group, and the prefix of the internal topics and of the state directory")
	fs.StringVar(&o.stateDir, "state-dir", "", "directory for local state (default: a temporary directory on the embedded broker, else the kstreams default under the temp dir)")
	fs.IntVar(&o.records, "records", defaultRecords, "synthetic edits to feed; with -brokers the default is 0")
	fs.DurationVar(&o.commitInterval, "commit-interval", time.Second, "how often processed input offsets are committed and the stores checkpointed (default with -eos: 100ms)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "on the embedded broker, how long to wait for every edit to be counted")
	fs.StringVar(&o.httpAddr, "http", "", "host:port to serve the query API (/v1/) and Prometheus metrics (/metrics) on, advertised to the other instances (default: serve nothing)")
	fs.IntVar(&o.standbys, "standbys", 0, "standby replicas: warm copies of each task's stores kept on other instances")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", 45*time.Second, "how long the group waits for a silent instance before moving its tasks; heartbeats go every third of it, at most 3s apart")
	fs.BoolVar(&o.eos, "eos", false, "exactly-once processing: outputs, changelogs and input offsets commit in one transaction (read the outputs read_committed)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.external = embedded.External(o.brokers)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.external && !set["records"] {
		o.records = 0
	}
	if o.eos && !set["commit-interval"] {
		// Each commit ends a transaction, and read_committed readers see
		// nothing of it before: kstreams' default under exactly-once.
		o.commitInterval = 100 * time.Millisecond
	}
	o.untilDone = !o.external && o.records > 0
	switch {
	case o.records < 0:
		return o, fmt.Errorf("-records %d: must not be negative", o.records)
	case o.commitInterval <= 0:
		return o, fmt.Errorf("-commit-interval %v: must be positive", o.commitInterval)
	case o.timeout <= 0:
		return o, fmt.Errorf("-timeout %v: must be positive", o.timeout)
	case o.standbys < 0:
		return o, fmt.Errorf("-standbys %d: must not be negative", o.standbys)
	case o.sessionTimeout <= 0:
		return o, fmt.Errorf("-session-timeout %v: must be positive", o.sessionTimeout)
	}
	if err := embedded.CheckHTTPAddr(o.httpAddr); err != nil {
		return o, err
	}
	return o, nil
}

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	brokers, stopBroker, err := embedded.Brokers(o.brokers)
	if err != nil {
		return err
	}
	defer stopBroker()
	if !o.external && o.stateDir == "" {
		dir, cleanup, err := embedded.TempStateDir("wikiedits")
		if err != nil {
			return err
		}
		defer cleanup()
		o.stateDir = dir
	}
	return runOn(ctx, brokers, o, stdout, slog.New(slog.NewTextHandler(stderr, nil)))
}

// runOn runs the application against brokers.
func runOn(ctx context.Context, brokers []string, o options, stdout io.Writer, log *slog.Logger) error {
	topo, err := buildTopology()
	if err != nil {
		return fmt.Errorf("build topology: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("client for %v: %w", brokers, err)
	}
	defer cl.Close()
	if err := embedded.CreateTopics(ctx, kadm.NewClient(cl), []string{inputTopic, categoryTopic, pageTopic}, log); err != nil {
		return err
	}

	app, err := kstreams.New(topo, kstreams.Config{
		ApplicationID:       o.appID,
		Brokers:             brokers,
		StateDir:            o.stateDir,
		CommitInterval:      o.commitInterval,
		Logger:              log,
		ProcessingGuarantee: guarantee(o.eos),
		// A feed has the odd broken event; one must not stop the counts.
		OnDeserializationError: kstreams.LogAndContinue,

		ApplicationServer:  o.httpAddr,
		ServeQueries:       o.httpAddr != "",
		NumStandbyReplicas: o.standbys,
		ClientOptions:      embedded.GroupOptions(o.sessionTimeout),
	})
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	var runErr error
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		runErr = app.Run(appCtx)
	}()
	// stopAndWait stops the app, which commits what it processed, and
	// returns its error; err from the caller wins.
	stopAndWait := func(err error) error {
		stopApp()
		<-runDone
		if err == nil && runErr != nil {
			err = fmt.Errorf("app %s: %w", o.appID, runErr)
		}
		return err
	}

	edits := synthEdits(o.records, synthStart(time.Now()))
	want := expect(edits)
	if len(edits) > 0 {
		start := time.Now()
		if err := feed(ctx, cl, edits); err != nil {
			return stopAndWait(err)
		}
		log.Info("fed synthetic edits", "topic", inputTopic, "edits", len(edits),
			"from", edits[0].Time, "took", time.Since(start).Round(time.Millisecond))
	}

	if !o.untilDone {
		log.Info("running until interrupted", "brokers", brokers, "app_id", o.appID)
		select {
		case <-ctx.Done():
		case <-runDone:
		}
		return stopAndWait(nil)
	}

	log.Info("waiting for every edit to be counted", "edits", len(edits), "timeout", o.timeout)
	got, err := awaitResults(ctx, brokers, want, o.timeout, isolation(o.eos), runDone, log)
	if err := stopAndWait(err); err != nil {
		return err
	}
	got.print(stdout)
	return nil
}

// feed writes edits to the input topic, keyed by their page so they
// spread over the partitions and stamped with their time, and waits for
// the brokers to acknowledge them all.
func feed(ctx context.Context, cl *kgo.Client, edits []Edit) error {
	ser := serde.JSON[Edit]()
	recs := make([]*kgo.Record, len(edits))
	for i, e := range edits {
		v, err := ser.Serialize(inputTopic, e)
		if err != nil {
			return err
		}
		recs[i] = &kgo.Record{Topic: inputTopic, Key: []byte(page(e)), Value: v, Timestamp: e.Time}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d edits to %s: %w", len(recs), inputTopic, err)
	}
	return nil
}

// results is what the topology makes of edits: the count of each category
// and of each page in each window, and what each set of counts adds up to.
type results struct {
	categories  map[kstream.Windowed[string]]int64
	pages       map[kstream.Windowed[string]]int64
	categorySum int64
	pageSum     int64
}

func newResults() results {
	return results{categories: map[kstream.Windowed[string]]int64{}, pages: map[kstream.Windowed[string]]int64{}}
}

// windowOf returns the window of the count of key at t.
func windowOf(key string, t time.Time) kstream.Windowed[string] {
	ms, size := t.UnixMilli(), windowSize.Milliseconds()
	start := ms - ms%size
	return kstream.Windowed[string]{Key: key, Start: start, End: start + size}
}

// expect computes what the topology should make of edits: none of them is
// late when they span less than windowGrace.
func expect(edits []Edit) results {
	r := newResults()
	for _, e := range edits {
		for _, c := range categories(e) {
			r.categories[windowOf(c, e.Time)]++
			r.categorySum++
		}
		if p := page(e); p != "" {
			r.pages[windowOf(p, e.Time)]++
			r.pageSum++
		}
	}
	return r
}

// topPages is how many pages print lists for each window.
const topPages = 3

// print writes the result lines for each window, in time order: the count
// of each editor kind, "<window start> editors bot=N anonymous=N
// registered=N"; of each action, "<window start> actions edit=N new=N
// log=N categorize=N" followed by any other action in name order; and its
// topPages most edited pages, "<window start> page <count> <page>", by
// count then name.
func (r results) print(w io.Writer) {
	type window struct {
		categories map[string]int64
		pages      []kstream.Windowed[string]
	}
	windows := map[int64]*window{}
	get := func(start int64) *window {
		if windows[start] == nil {
			windows[start] = &window{categories: map[string]int64{}}
		}
		return windows[start]
	}
	for k, n := range r.categories {
		get(k.Start).categories[k.Key] = n
	}
	for k := range r.pages {
		win := get(k.Start)
		win.pages = append(win.pages, k)
	}
	for _, start := range slices.Sorted(maps.Keys(windows)) {
		win := windows[start]
		at := time.UnixMilli(start).UTC().Format(time.RFC3339)

		var sb strings.Builder
		fmt.Fprintf(&sb, "%s editors", at)
		for _, kind := range editorKinds {
			fmt.Fprintf(&sb, " %s=%d", kind, win.categories[editorPrefix+kind])
		}
		fmt.Fprintf(&sb, "\n%s actions", at)
		actions := slices.Clone(knownActions)
		for _, c := range slices.Sorted(maps.Keys(win.categories)) {
			if a, ok := strings.CutPrefix(c, actionPrefix); ok && !slices.Contains(knownActions, a) {
				actions = append(actions, a)
			}
		}
		for _, a := range actions {
			fmt.Fprintf(&sb, " %s=%d", a, win.categories[actionPrefix+a])
		}
		fmt.Fprintln(w, sb.String())

		slices.SortFunc(win.pages, func(a, b kstream.Windowed[string]) int {
			return cmp.Or(cmp.Compare(r.pages[b], r.pages[a]), strings.Compare(a.Key, b.Key))
		})
		for _, k := range win.pages[:min(topPages, len(win.pages))] {
			fmt.Fprintf(w, "%s page %d %s\n", at, r.pages[k], k.Key)
		}
	}
}

// awaitResults reads the output topics from the start at isolation level
// iso, keeping the latest count of each key and window, until the counts
// add up to want's: a count only grows, so then every edit fed is
// counted. It fails when timeout passes first, when ctx ends, or when the
// app stops (runDone).
func awaitResults(ctx context.Context, brokers []string, want results, timeout time.Duration, iso kgo.IsolationLevel, runDone <-chan struct{}, log *slog.Logger) (results, error) {
	got := newResults()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(categoryTopic, pageTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
	)
	if err != nil {
		return got, fmt.Errorf("consumer of %s and %s: %w", categoryTopic, pageTopic, err)
	}
	defer cl.Close()

	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		select {
		case <-runDone:
			cancel()
		case <-waitCtx.Done():
		}
	}()

	done := func() bool { return got.categorySum >= want.categorySum && got.pageSum >= want.pageSum }
	for !done() {
		fs := cl.PollFetches(waitCtx)
		var badErr error
		fs.EachRecord(func(r *kgo.Record) {
			if badErr == nil {
				badErr = got.add(r)
			}
		})
		if badErr != nil {
			return got, badErr
		}
		if done() {
			break
		}
		if waitCtx.Err() != nil {
			progress := fmt.Sprintf("category counts add up to %d of %d, page counts to %d of %d",
				got.categorySum, want.categorySum, got.pageSum, want.pageSum)
			select {
			case <-runDone:
				return got, fmt.Errorf("app stopped before every edit was counted; %s", progress)
			default:
			}
			if ctx.Err() != nil {
				return got, fmt.Errorf("interrupted; %s", progress)
			}
			return got, fmt.Errorf("timed out after %v; %s", timeout, progress)
		}
		fs.EachError(func(topic string, p int32, err error) {
			// kgo keeps retrying after reporting, so these are worth
			// seeing but not fatal: the timeout bounds the wait.
			log.Warn("consuming output", "topic", topic, "partition", p, "err", err)
		})
	}
	if got.categorySum > want.categorySum || got.pageSum > want.pageSum {
		// Only a replay after a failure counts an edit twice.
		log.Warn("more counted than fed: some edits were counted twice",
			"categories", got.categorySum, "want_categories", want.categorySum, "pages", got.pageSum, "want_pages", want.pageSum)
	}
	return got, nil
}

// add adds an output record to r: the latest count of a category or page
// in a window.
func (r *results) add(rec *kgo.Record) error {
	where := func(err error) error {
		return fmt.Errorf("%s-%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	k, err := serde.TimeWindowed(serde.String(), windowSize).Deserialize(rec.Topic, rec.Key)
	if err != nil {
		return where(fmt.Errorf("windowed key %q: %w", rec.Key, err))
	}
	n, err := serde.Int64().Deserialize(rec.Topic, rec.Value)
	if err != nil {
		return where(fmt.Errorf("count of %v: %w", k, err))
	}
	counts, sum := r.categories, &r.categorySum
	if rec.Topic == pageTopic {
		counts, sum = r.pages, &r.pageSum
	}
	*sum += n - counts[k]
	counts[k] = n
	return nil
}

// guarantee is the processing guarantee of -eos.
func guarantee(eos bool) kstreams.ProcessingGuarantee {
	if eos {
		return kstreams.ExactlyOnceV2
	}
	return kstreams.AtLeastOnce
}

// isolation is how the output is read: under exactly-once, only what
// committed transactions wrote, as a downstream consumer must.
func isolation(eos bool) kgo.IsolationLevel {
	if eos {
		return kgo.ReadCommitted()
	}
	return kgo.ReadUncommitted()
}
