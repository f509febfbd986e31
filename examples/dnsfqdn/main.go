// Command dnsfqdn watches a DNS server's debug log: it parses each packet
// line of "dns-log" into its time, direction, client, response code and
// queried name (FQDN), counts the questions for each name per minute of
// the log's time in the window store "fqdn-counts", writing every new
// count to the topic "fqdn-counts", and flags the names that look
// malicious, a keyword such as "update-java" or a random-looking label
// such as a domain generation algorithm makes, on the topic "alerts".
//
// Usage:
//
//	go run ./examples/dnsfqdn [-brokers HOST:PORT,...] [-app-id dnsfqdn] [-state-dir DIR]
//	                          [-records N] [-commit-interval 1s] [-timeout 60s]
//	                          [-http HOST:PORT] [-standbys N] [-session-timeout 45s]
//
// Input records are lines of a Windows DNS server debug log with packet
// logging on (string value; the key is ignored), one line per record:
//
//	8/12/2017 9:35:32 AM 0490 PACKET 000000216EFFC910 UDP Snd 212.77.192.37 80a8 R Q [1080 NOERROR] A (3)ns1(3)ctc(3)gov(2)qa(0)
//
// A record's time is its line's (read as UTC); a line without one keeps
// the record's timestamp. Lines that are not packets (the log's header,
// blank lines, events) or do not parse are skipped, counted, and logged
// at debug level. Only the server's answers to clients (Snd, R) are
// looked at, so a question the log shows four times (the client's query,
// the server's own query to a forwarder, its answer, and the answer to
// the client) counts once.
//
// Windows are tumbling, one minute long, aligned to the minute. A line
// whose window ended 10 minutes or more (in log time) before the latest
// line the counting task has seen is too late: it is dropped, and counted
// in the metric kstreams_dropped_records_total{reason="late"}. A "fqdn-counts" record is keyed
// by the FQDN and its window in Kafka Streams' TimeWindowedSerializer
// layout, the FQDN's bytes then the window start as 8 big-endian bytes of
// epoch milliseconds, and holds the count as an 8-byte big-endian
// integer, Kafka's LongSerializer (kcat reads it with -s value=Q). The
// latest record of a name and window holds its count.
//
// An "alerts" record is keyed by the FQDN (a string) and holds a JSON
// object: why the name is suspicious, the client that asked, the time,
// the response code and the question type:
//
//	{"reason":"keyword update-java","client_ip":"10.1.0.66","timestamp":"2026-11-28T09:31:07Z","status":"NOERROR","type":"A"}
//
// Without -brokers (or KAFKA_BROKERS) it starts an embedded broker,
// creates the topics with 4 partitions, feeds -records lines of a
// synthetic log (default 1000) whose times span the eight minutes that
// start ten minutes ago, waits until every alert the log should raise
// and every count is in, prints the five names most asked for in each
// window, as "<window start, RFC 3339> <fqdn> <count>" lines (windows in
// time order, names by count then name), then the alerts as
// "ALERT <fqdn> <reason>" lines, one per name, in name order, and exits
// 0. Unless -state-dir is given, its
// state lives in a temporary directory removed on exit, as the embedded
// broker's topics are. With -records 0 it feeds nothing and runs until
// interrupted, for other clients (kcat) to feed it through the broker
// address it prints.
//
// With -brokers it creates the topics if they are missing, feeds -records
// lines (default 0) and runs until SIGINT or SIGTERM, when it commits
// what it processed and exits 0.
//
// With -http HOST:PORT the instance serves the interactive-query REST API
// and Prometheus metrics there, and advertises that address to the other
// instances of the application, so any of them answers for any name:
//
//	curl 'http://HOST:PORT/v1/stores/fqdn-counts/keys/www.google.com/windows?from=2026-11-28T09:00:00Z'
//
// The store keeps the last hour of windows. -standbys and
// -session-timeout are as in examples/wordcount: warm standby copies of
// each task's counts on other instances, and how long the group waits for
// a silent instance before moving its tasks.
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
	"strconv"
	"strings"
	"sync/atomic"
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
	inputTopic  = "dns-log"
	countsTopic = "fqdn-counts"
	alertsTopic = "alerts"
	storeName   = "fqdn-counts"

	windowSize = time.Minute
	// windowGrace is how long, in log time, a window takes late lines
	// after it ends. Lines arrive out of order: the tasks that parse the
	// partitions of dns-log go at their own pace, each sending its answers
	// on through the repartition topic, so the task that counts a name
	// gets the log's lines interleaved, and logs shipped from several
	// servers lag each other. The synthetic log spans 8 minutes, less than
	// the grace, so none of its lines is late whatever the interleaving.
	windowGrace = 10 * time.Minute
	// windowRetention is how long the store keeps a window for queries.
	windowRetention = time.Hour
)

// Alert is the value of an "alerts" record, whose key is the FQDN.
type Alert struct {
	Reason   string    `json:"reason"`
	ClientIP string    `json:"client_ip"`
	Time     time.Time `json:"timestamp"`
	Status   string    `json:"status"` // the answer's response code
	Type     string    `json:"type"`   // the question type
}

// buildTopology parses the log lines of "dns-log" with lp and keeps the
// answers to clients. It counts them per name and minute in the window
// store "fqdn-counts": grouping by name sends the answers through the
// repartition topic "<app-id>-fqdn-counts-repartition", so that every
// answer for a name reaches the task that owns its counts, and each new
// count goes to the topic "fqdn-counts". It writes an alert for each
// answer whose name looks suspicious to "alerts".
func buildTopology(lp *lineParser) (*kstreams.Topology, error) {
	b := kstream.NewBuilder()
	lines := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()).
		WithTimestampExtractor(eventTime), inputTopic)
	answers := kstream.FlatMapValues(lines, lp.parse).
		Filter(func(_ string, p Packet) bool { return p.AnswerToClient() })

	byName := kstream.GroupBy(answers, func(_ string, p Packet) string { return p.FQDN })
	counts := kstream.WindowedCount(kstream.WindowedBy(byName, kstream.TumblingWindows(windowSize, windowGrace)),
		kstream.Materialized[string, int64]{StoreName: storeName, Retention: windowRetention})
	counts.ToStream().To(countsTopic, kstream.ProducedWith(serde.TimeWindowed(serde.String(), windowSize), serde.Int64()))

	kstream.FlatMap(answers, alerts).To(alertsTopic, kstream.ProducedWith(serde.String(), serde.JSON[Alert]()))
	return b.Build()
}

// eventTime is the time of a log line, or recordTime for a line without
// one, so that windows follow the log's clock, not the shipper's.
func eventTime(_, line string, recordTime time.Time) time.Time {
	if t, err := lineTime(line); err == nil {
		return t
	}
	return recordTime
}

// alerts returns the alert p raises, keyed by its name, or none.
func alerts(_ string, p Packet) []kstream.KeyValue[string, Alert] {
	s, ok := Suspicious(p.FQDN)
	if !ok {
		return nil
	}
	return []kstream.KeyValue[string, Alert]{{Key: p.FQDN, Value: Alert{
		Reason: s.String(), ClientIP: p.Remote, Time: p.Time, Status: p.Status, Type: p.Type,
	}}}
}

// lineParser parses log lines in the topology, skipping the lines that do
// not parse: a debug log mixes packets with headers and events, and a
// shipper may cut a line, so one bad line must not stop the application.
// It is used from every task's goroutine.
type lineParser struct {
	log     *slog.Logger
	skipped atomic.Int64
}

// parse returns the packet of line, or none when line does not parse.
func (lp *lineParser) parse(line string) []Packet {
	p, err := ParseLine(line)
	if err != nil {
		lp.skipped.Add(1)
		lp.log.Debug("skipping log line", "err", err, "line", line)
		return nil
	}
	return []Packet{p}
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
		fmt.Fprintf(os.Stderr, "dnsfqdn: %v\n", err)
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
	// external: the brokers come from -brokers or KAFKA_BROKERS, not from
	// an embedded broker started for this run.
	external bool
	// untilDone: wait until the fed log is fully processed, print the
	// results and return (on the embedded broker), rather than run until
	// interrupted.
	untilDone bool
}

const defaultRecords = 1000

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("dnsfqdn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.brokers, "brokers", "", "comma-separated seed brokers (default: $KAFKA_BROKERS, else an embedded broker)")
	fs.StringVar(&o.appID, "app-id", "dnsfqdn", "application id: the consumer group, and the prefix of the internal topics and of the state directory")
	fs.StringVar(&o.stateDir, "state-dir", "", "directory for local state (default: a temporary directory on the embedded broker, else the kstreams default under the temp dir)")
	fs.IntVar(&o.records, "records", defaultRecords, "synthetic log lines to feed; with -brokers the default is 0")
	fs.DurationVar(&o.commitInterval, "commit-interval", time.Second, "how often processed input offsets are committed and the store checkpointed")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "on the embedded broker, how long to wait for the fed log to be processed")
	fs.StringVar(&o.httpAddr, "http", "", "host:port to serve the query API (/v1/) and Prometheus metrics (/metrics) on, advertised to the other instances (default: serve nothing)")
	fs.IntVar(&o.standbys, "standbys", 0, "standby replicas: warm copies of each task's store kept on other instances")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", 45*time.Second, "how long the group waits for a silent instance before moving its tasks; heartbeats go every third of it, at most 3s apart")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.external = embedded.External(o.brokers)
	recordsSet := false
	fs.Visit(func(f *flag.Flag) { recordsSet = recordsSet || f.Name == "records" })
	if o.external && !recordsSet {
		o.records = 0
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
		dir, cleanup, err := embedded.TempStateDir("dnsfqdn")
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
	lp := &lineParser{log: log}
	topo, err := buildTopology(lp)
	if err != nil {
		return fmt.Errorf("build topology: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("client for %v: %w", brokers, err)
	}
	defer cl.Close()
	if err := embedded.CreateTopics(ctx, kadm.NewClient(cl), []string{inputTopic, countsTopic, alertsTopic}, log); err != nil {
		return err
	}

	app, err := kstreams.New(topo, kstreams.Config{
		ApplicationID:  o.appID,
		Brokers:        brokers,
		StateDir:       o.stateDir,
		CommitInterval: o.commitInterval,
		Logger:         log,

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
		if n := lp.skipped.Load(); n > 0 {
			log.Info("skipped log lines that are not packets or did not parse", "lines", n)
		}
		if err == nil && runErr != nil {
			err = fmt.Errorf("app %s: %w", o.appID, runErr)
		}
		return err
	}

	lines := synthLines(o.records, synthStart(time.Now()))
	want := expect(lines)
	if len(lines) > 0 {
		start := time.Now()
		if err := feed(ctx, cl, lines); err != nil {
			return stopAndWait(err)
		}
		log.Info("fed a synthetic log", "topic", inputTopic, "lines", len(lines), "answers", want.answers,
			"alerts", len(want.alerts), "took", time.Since(start).Round(time.Millisecond))
	}

	if !o.untilDone {
		log.Info("running until interrupted", "brokers", brokers, "app_id", o.appID)
		select {
		case <-ctx.Done():
		case <-runDone:
		}
		return stopAndWait(nil)
	}

	log.Info("waiting for the log to be processed", "answers", want.answers, "alerts", len(want.alerts), "timeout", o.timeout)
	got, err := awaitResults(ctx, brokers, want, o.timeout, runDone, log)
	if err := stopAndWait(err); err != nil {
		return err
	}
	got.print(stdout)
	return nil
}

// feed writes lines to the input topic, keyed by their number so they
// spread over the partitions, and waits for the brokers to acknowledge
// them all.
func feed(ctx context.Context, cl *kgo.Client, lines []string) error {
	recs := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		recs[i] = &kgo.Record{Topic: inputTopic, Key: []byte(strconv.Itoa(i)), Value: []byte(l)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d lines to %s: %w", len(recs), inputTopic, err)
	}
	return nil
}

// results is what the topology makes of a log.
type results struct {
	// answers is how many answers to clients the log holds: what the
	// counts add up to.
	answers int64
	// counts is the count of each name in each window.
	counts map[kstream.Windowed[string]]int64
	// alerts are the alert records, in no particular order.
	alerts []alertRecord
}

type alertRecord struct {
	fqdn   string
	reason string
}

// windowOf returns the window of the count of fqdn at t.
func windowOf(fqdn string, t time.Time) kstream.Windowed[string] {
	ms, size := t.UnixMilli(), windowSize.Milliseconds()
	start := ms - ms%size
	return kstream.Windowed[string]{Key: fqdn, Start: start, End: start + size}
}

// expect computes what the topology should make of lines: none of them
// is late when they span less than windowGrace.
func expect(lines []string) results {
	r := results{counts: map[kstream.Windowed[string]]int64{}}
	for _, l := range lines {
		p, err := ParseLine(l)
		if err != nil || !p.AnswerToClient() {
			continue
		}
		r.answers++
		r.counts[windowOf(p.FQDN, p.Time)]++
		for _, kv := range alerts("", p) {
			r.alerts = append(r.alerts, alertRecord{kv.Key, kv.Value.Reason})
		}
	}
	return r
}

// topPerWindow is how many names print lists for each window.
const topPerWindow = 5

// print writes the result lines: for each window, in time order, its
// topPerWindow names most asked for, "<window start> <fqdn> <count>",
// by count then name; then "ALERT <fqdn> <reason>" once per alerted
// name, in name order.
func (r results) print(w io.Writer) {
	byStart := map[int64][]kstream.Windowed[string]{}
	for k := range r.counts {
		byStart[k.Start] = append(byStart[k.Start], k)
	}
	for _, start := range slices.Sorted(maps.Keys(byStart)) {
		names := byStart[start]
		slices.SortFunc(names, func(a, b kstream.Windowed[string]) int {
			return cmp.Or(cmp.Compare(r.counts[b], r.counts[a]), strings.Compare(a.Key, b.Key))
		})
		for _, k := range names[:min(topPerWindow, len(names))] {
			fmt.Fprintf(w, "%s %s %d\n", time.UnixMilli(start).UTC().Format(time.RFC3339), k.Key, r.counts[k])
		}
	}

	alerts := slices.Clone(r.alerts)
	slices.SortFunc(alerts, func(a, b alertRecord) int {
		return cmp.Or(strings.Compare(a.fqdn, b.fqdn), strings.Compare(a.reason, b.reason))
	})
	for _, a := range slices.Compact(alerts) {
		fmt.Fprintf(w, "ALERT %s %s\n", a.fqdn, a.reason)
	}
}

// awaitResults reads the output topics from the start, keeping the
// latest count of each name and window, until the counts add up to
// want.answers and as many alerts as want's have arrived: a count only
// grows, so then every answer fed is counted. It fails when timeout
// passes first, when ctx ends, or when the app stops (runDone).
func awaitResults(ctx context.Context, brokers []string, want results, timeout time.Duration, runDone <-chan struct{}, log *slog.Logger) (results, error) {
	got := results{counts: map[kstream.Windowed[string]]int64{}}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(countsTopic, alertsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return got, fmt.Errorf("consumer of %s and %s: %w", countsTopic, alertsTopic, err)
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

	keySerde, countSerde := serde.TimeWindowed(serde.String(), windowSize), serde.Int64()
	alertSerde := serde.JSON[Alert]()
	done := func() bool { return got.answers >= want.answers && len(got.alerts) >= len(want.alerts) }
	for !done() {
		fs := cl.PollFetches(waitCtx)
		var badErr error
		fs.EachRecord(func(r *kgo.Record) {
			if badErr != nil {
				return
			}
			badErr = got.add(r, keySerde, countSerde, alertSerde)
		})
		if badErr != nil {
			return got, badErr
		}
		if done() {
			break
		}
		if waitCtx.Err() != nil {
			progress := fmt.Sprintf("counted %d of %d answers (%d names and windows), %d of %d alerts",
				got.answers, want.answers, len(got.counts), len(got.alerts), len(want.alerts))
			select {
			case <-runDone:
				return got, fmt.Errorf("app stopped before the log was processed; %s", progress)
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
	if got.answers > want.answers || len(got.alerts) > len(want.alerts) {
		// Only a replay after a failure counts a line twice.
		log.Warn("more counted than fed: some lines were processed twice",
			"answers", got.answers, "fed", want.answers, "alerts", len(got.alerts), "want_alerts", len(want.alerts))
	}
	return got, nil
}

// add adds an output record to r: the latest count of a name and window,
// or an alert.
func (r *results) add(rec *kgo.Record, keys serde.Serde[kstream.Windowed[string]], counts serde.Serde[int64], alerts serde.Serde[Alert]) error {
	where := func(err error) error {
		return fmt.Errorf("%s-%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	if rec.Topic == alertsTopic {
		a, err := alerts.Deserialize(rec.Topic, rec.Value)
		if err != nil {
			return where(fmt.Errorf("alert for %q: %w", rec.Key, err))
		}
		r.alerts = append(r.alerts, alertRecord{string(rec.Key), a.Reason})
		return nil
	}
	k, err := keys.Deserialize(rec.Topic, rec.Key)
	if err != nil {
		return where(fmt.Errorf("windowed key %q: %w", rec.Key, err))
	}
	n, err := counts.Deserialize(rec.Topic, rec.Value)
	if err != nil {
		return where(fmt.Errorf("count of %v: %w", k, err))
	}
	r.answers += n - r.counts[k]
	r.counts[k] = n
	return nil
}
