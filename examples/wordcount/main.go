// Command wordcount is Kafka Streams' canonical word count: it splits the
// lines of "text-input" into words and keeps a running count of each word
// in a state store, "counts", writing every new count to "word-counts".
//
// Usage:
//
//	go run ./examples/wordcount [-brokers HOST:PORT,...] [-app-id wordcount] [-state-dir DIR]
//	                            [-records N] [-commit-interval 1s] [-timeout 60s]
//	                            [-http HOST:PORT] [-standbys N] [-session-timeout 45s] [-eos]
//
// A word is a run of letters and digits, lower-cased: "Hello, hello!" is
// the word "hello" twice. Input records are lines of text (string key and
// value; the key is ignored). Output records are keyed by the word (a
// string) and hold its count as an 8-byte big-endian integer, Kafka's
// LongSerializer, which kcat reads with -s value=Q.
//
// Without -brokers (or KAFKA_BROKERS) it starts an embedded broker, creates
// the topics with 4 partitions, feeds -records synthetic lines (default
// 1000), waits until every word fed is counted, prints the ten most
// frequent words as "<word> <count>" lines (ties in word order) and exits
// 0. Unless -state-dir is given, its state lives in a temporary directory
// removed on exit, as the embedded broker's topics are. With -records 0 it
// feeds nothing and runs until interrupted, for other clients (kcat) to
// feed it through the broker address it prints.
//
// With -brokers it creates the topics if they are missing, feeds -records
// lines (default 0) and runs until SIGINT or SIGTERM, when it commits what
// it processed and exits 0. Its counts survive a crash: kill -9 it, start
// it again, and it restores the store from its changelog topic,
// "<app-id>-counts-changelog", and carries on from the last committed
// input offset.
//
// Delivery is at-least-once: after a crash, the lines processed since the
// last commit are counted again. With -eos it is exactly-once
// (kstreams.ExactlyOnceV2): the counts, the changelog records and the
// input offsets of each commit go to Kafka in one transaction, so a
// consumer of "word-counts" that reads read_committed (kcat -X
// isolation.level=read_committed) sees every line counted once, crash or
// not. The commit interval then defaults to 100ms, as each commit is what
// makes the output visible to those readers. The output and the store are
// the same in both modes.
//
// With -http HOST:PORT the instance serves the interactive-query REST API
// and Prometheus metrics there, and advertises that address to the other
// instances of the application, so any of them answers for any word:
//
//	curl http://HOST:PORT/v1/stores/counts/keys/hello   # {"key":"hello","value":42}
//	curl http://HOST:PORT/v1/metadata                   # which instance owns which task
//	curl http://HOST:PORT/metrics
//
// -standbys N keeps N warm copies of each task's counts on other instances,
// so when an instance dies the one that takes its tasks over restores only
// the tail of the changelog. -session-timeout is how long the group waits
// for a silent instance before moving its tasks (default 45s, Kafka's;
// heartbeats go every third of it, or every 3s if that is sooner).
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
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/examples/internal/embedded"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

const (
	inputTopic  = "text-input"
	outputTopic = "word-counts"
	storeName   = "counts"
)

// buildTopology counts words: lines are split into words, re-keyed by word
// (through the repartition topic "<app-id>-counts-repartition", so every
// occurrence of a word reaches the task that owns its count) and counted
// in the store "counts"; every change of a count goes to "word-counts".
func buildTopology() (*kstreams.Topology, error) {
	b := kstream.NewBuilder()
	lines := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.String()), inputTopic)
	words := kstream.FlatMapValues(lines, splitWords)
	counts := kstream.Count(kstream.GroupBy(words, func(_, word string) string { return word }),
		kstream.MaterializedAs[string, int64](storeName))
	counts.ToStream().To(outputTopic, kstream.ProducedWith(serde.String(), serde.Int64()))
	return b.Build()
}

// splitWords returns the words of line: its runs of letters and digits,
// each lower-cased. Splitting comes first because lower-casing may turn a
// letter into a letter plus a combining mark ("İ" becomes "i̇"), which
// would otherwise split the word.
func splitWords(line string) []string {
	words := strings.FieldsFunc(line, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for i, w := range words {
		words[i] = strings.ToLower(w)
	}
	return words
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
		fmt.Fprintf(os.Stderr, "wordcount: %v\n", err)
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
	// untilCounted: wait until every fed word is counted, print the top
	// words and return (on the embedded broker), rather than run until
	// interrupted.
	untilCounted bool
}

const defaultRecords = 1000

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("wordcount", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.brokers, "brokers", "", "comma-separated seed brokers (default: $KAFKA_BROKERS, else an embedded broker)")
	fs.StringVar(&o.appID, "app-id", "wordcount", "application id: the consumer group, and the prefix of the internal topics and of the state directory")
	fs.StringVar(&o.stateDir, "state-dir", "", "directory for local state (default: a temporary directory on the embedded broker, else the kstreams default under the temp dir)")
	fs.IntVar(&o.records, "records", defaultRecords, "synthetic lines to feed; with -brokers the default is 0")
	fs.DurationVar(&o.commitInterval, "commit-interval", time.Second, "how often processed input offsets are committed and the store checkpointed (default with -eos: 100ms)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "on the embedded broker, how long to wait for every word to be counted")
	fs.StringVar(&o.httpAddr, "http", "", "host:port to serve the query API (/v1/) and Prometheus metrics (/metrics) on, advertised to the other instances (default: serve nothing)")
	fs.IntVar(&o.standbys, "standbys", 0, "standby replicas: warm copies of each task's store kept on other instances")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", 45*time.Second, "how long the group waits for a silent instance before moving its tasks; heartbeats go every third of it, at most 3s apart")
	fs.BoolVar(&o.eos, "eos", false, "exactly-once processing: outputs, changelog and input offsets commit in one transaction (read the outputs read_committed)")
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
	o.untilCounted = !o.external && o.records > 0
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
		dir, cleanup, err := embedded.TempStateDir("wordcount")
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
	if err := embedded.CreateTopics(ctx, kadm.NewClient(cl), []string{inputTopic, outputTopic}, log); err != nil {
		return err
	}

	app, err := kstreams.New(topo, kstreams.Config{
		ApplicationID:       o.appID,
		Brokers:             brokers,
		StateDir:            o.stateDir,
		CommitInterval:      o.commitInterval,
		Logger:              log,
		ProcessingGuarantee: guarantee(o.eos),

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

	lines := synthLines(o.records)
	words := 0
	for _, l := range lines {
		words += len(splitWords(l))
	}
	if len(lines) > 0 {
		start := time.Now()
		if err := feed(ctx, cl, lines); err != nil {
			return stopAndWait(err)
		}
		log.Info("fed synthetic lines", "topic", inputTopic, "lines", len(lines), "words", words,
			"took", time.Since(start).Round(time.Millisecond))
	}

	if !o.untilCounted {
		log.Info("running until interrupted", "brokers", brokers, "app_id", o.appID)
		select {
		case <-ctx.Done():
		case <-runDone:
		}
		return stopAndWait(nil)
	}

	log.Info("waiting for every word to be counted", "words", words, "topic", outputTopic, "timeout", o.timeout)
	counts, err := awaitCounts(ctx, brokers, int64(words), o.timeout, isolation(o.eos), runDone, log)
	if err := stopAndWait(err); err != nil {
		return err
	}
	for _, wc := range top(counts, 10) {
		fmt.Fprintf(stdout, "%s %d\n", wc.word, wc.count)
	}
	return nil
}

// vocabulary is what synthetic lines are made of; synthLines draws from it
// with a Zipf distribution, so a few words are common and most are rare,
// as in real text.
var vocabulary = strings.Fields(`the of and to a in is it you that he was for on are with as
	his they be at one have this from or had by word but what some we can out other were all
	there when up use your how said an each she which do their time if will way about many then
	them write would like so these her long make thing see him two has look more day could go
	come did number sound no most people my over know water than call first who may down side
	been now find stream table kafka count`)

// synthLines returns n lines of 1 to 12 words from a seeded generator, so
// every run feeds the same lines. Each starts with a capital and ends with
// a punctuation mark, and some words carry a comma, to show that case and
// punctuation do not make new words.
func synthLines(n int) []string {
	rng := rand.New(rand.NewPCG(3, 14))
	zipf := rand.NewZipf(rng, 1.2, 1, uint64(len(vocabulary)-1))
	ends := []string{".", "!", "?", "..."}
	out := make([]string, n)
	var sb strings.Builder
	for i := range out {
		sb.Reset()
		words := 1 + rng.IntN(12)
		for j := range words {
			w := vocabulary[zipf.Uint64()]
			if j == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				sb.WriteByte(' ')
			}
			sb.WriteString(w)
			if j < words-1 && rng.IntN(8) == 0 {
				sb.WriteByte(',')
			}
		}
		sb.WriteString(ends[rng.IntN(len(ends))])
		out[i] = sb.String()
	}
	return out
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

// awaitCounts reads the output topic from the start at isolation level
// iso, keeping the latest count of each word, until the counts add up to
// words: a count only grows, so then every word fed is counted. It fails
// when timeout passes first, when ctx ends, or when the app stops
// (runDone).
func awaitCounts(ctx context.Context, brokers []string, words int64, timeout time.Duration, iso kgo.IsolationLevel, runDone <-chan struct{}, log *slog.Logger) (map[string]int64, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(outputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
	)
	if err != nil {
		return nil, fmt.Errorf("consumer of %s: %w", outputTopic, err)
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

	ser := serde.Int64()
	counts := map[string]int64{}
	var sum int64
	for sum < words {
		fs := cl.PollFetches(waitCtx)
		var badErr error
		fs.EachRecord(func(r *kgo.Record) {
			n, err := ser.Deserialize(r.Topic, r.Value)
			if err != nil {
				badErr = fmt.Errorf("%s-%d@%d: count of %q: %w", r.Topic, r.Partition, r.Offset, r.Key, err)
				return
			}
			w := string(r.Key)
			sum += n - counts[w]
			counts[w] = n
		})
		if badErr != nil {
			return counts, badErr
		}
		if sum >= words {
			break
		}
		if waitCtx.Err() != nil {
			got := fmt.Sprintf("counted %d of %d words (%d distinct)", sum, words, len(counts))
			select {
			case <-runDone:
				return counts, fmt.Errorf("app stopped before every word was counted; %s", got)
			default:
			}
			if ctx.Err() != nil {
				return counts, fmt.Errorf("interrupted; %s", got)
			}
			return counts, fmt.Errorf("timed out after %v; %s", timeout, got)
		}
		fs.EachError(func(topic string, p int32, err error) {
			// kgo keeps retrying after reporting, so these are worth
			// seeing but not fatal: the timeout bounds the wait.
			log.Warn("consuming output", "topic", topic, "partition", p, "err", err)
		})
	}
	if sum > words {
		// Only a replay after a failure counts a line twice.
		log.Warn("more words counted than fed: some lines were counted twice", "counted", sum, "fed", words)
	}
	return counts, nil
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

type wordCount struct {
	word  string
	count int64
}

// top returns the n most frequent words, ties in word order.
func top(counts map[string]int64, n int) []wordCount {
	all := make([]wordCount, 0, len(counts))
	for w, c := range counts {
		all = append(all, wordCount{w, c})
	}
	slices.SortFunc(all, func(a, b wordCount) int {
		return cmp.Or(cmp.Compare(b.count, a.count), strings.Compare(a.word, b.word))
	})
	return all[:min(n, len(all))]
}
