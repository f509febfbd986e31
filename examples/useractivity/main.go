// Command useractivity scores what users do for risk: it reads activity
// events (JSON: user, action, amount, IP address, country, time) from
// "user-activity", enriches each with a risk weight for its action and
// country, keeps a score per user in the store "user-scores" (an
// exponential moving average of the risk of their activities, the
// user's baseline) and, after every activity, writes the user's new
// score to "alerts" when it is alertThreshold (6) or more, else to
// "scores".
//
// Usage:
//
//	go run ./examples/useractivity [-brokers HOST:PORT,...] [-app-id useractivity] [-state-dir DIR]
//	                               [-records N] [-commit-interval 1s] [-timeout 60s]
//	                               [-http HOST:PORT] [-standbys N] [-session-timeout 45s] [-eos]
//
// Input records hold an Activity as JSON; keep the user id as the key, so
// that a user's activities stay in order (their order makes the score):
//
//	{"user_id":"u-0019","action":"purchase","amount":1299,"ip":"198.51.100.77","country":"XX","timestamp":"2026-11-28T10:21:07Z"}
//
// The risk of an activity is its action's weight (view 0.1, login 1,
// failed_login 4, purchase 1 plus 1 per 100 spent) times its country's (1
// from the countries the service is sold in, 1.5 from others, 2 from an
// unknown place "XX", 3 through Tor "T1"). The score moves 30% of the way
// from where it was to each new activity's risk; a new user starts at 0.
// Activities without a user id are dropped; a record that is not JSON is
// skipped and logged.
//
// Output records on "scores" and "alerts" are keyed by the user id and
// hold a UserScore as JSON: the score, how many activities it is made
// of, and the latest activity with its risk:
//
//	{"user_id":"u-0007","score":6.1521,"events":10,"last":{"user_id":"u-0007","action":"failed_login","ip":"198.51.100.66","country":"T1","timestamp":"2026-11-28T10:28:01.44Z","risk":12}}
//
// Every activity makes exactly one output record, on one topic or the
// other, stamped with the activity's time.
//
// Without -brokers (or KAFKA_BROKERS) it starts an embedded broker,
// creates the topics with 4 partitions, feeds -records synthetic
// activities (default 1000) of 40 users, three of whom go astray (failed
// logins through Tor; an account taken over from an unknown place and
// used to buy; a spree of large purchases), spread over the eight
// minutes that start ten minutes ago, waits until every activity is
// scored, prints the alerts in time order,
//
//	ALERT 2026-11-28T10:28:01Z u-0007 score 6.15 after failed_login from 198.51.100.66 (T1)
//
// and exits 0. Unless -state-dir is given, its state lives in a temporary
// directory removed on exit, as the embedded broker's topics are. With
// -records 0 it feeds nothing and runs until interrupted, for other
// clients (kcat) to feed it through the broker address it prints.
//
// With -brokers it creates the topics if they are missing, feeds -records
// activities (default 0) and runs until SIGINT or SIGTERM, when it
// commits what it processed and exits 0.
//
// With -http HOST:PORT the instance serves the interactive-query REST API
// and Prometheus metrics there, and advertises that address to the other
// instances of the application, so any of them answers for any user:
//
//	curl http://HOST:PORT/v1/stores/user-scores/keys/u-0007
//
// -standbys, -session-timeout and -eos are as in examples/wordcount: warm
// standby copies of each task's scores on other instances, how long the
// group waits for a silent instance before moving its tasks, and
// exactly-once processing (read the outputs read_committed then, as this
// instance does).
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
	inputTopic  = "user-activity"
	scoresTopic = "scores"
	alertsTopic = "alerts"
	storeName   = "user-scores"
)

// buildTopology enriches the activities of "user-activity" with their
// risk, groups them by user id (through the repartition topic
// "<app-id>-user-scores-repartition", so every activity of a user reaches
// the task that owns the user's score) and folds each into the user's
// score in the store "user-scores". After each activity the user's new
// score goes to "alerts" when it is alertThreshold or more, else to
// "scores".
func buildTopology() (*kstreams.Topology, error) {
	b := kstream.NewBuilder()
	activity := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.JSON[Activity]()).
		WithTimestampExtractor(eventTime), inputTopic)
	enriched := kstream.MapValues(activity.Filter(func(_ string, a Activity) bool { return a.UserID != "" }), enrich)
	byUser := kstream.GroupBy(enriched, func(_ string, e Enriched) string { return e.UserID })
	scores := kstream.Aggregate(byUser, func() UserScore { return UserScore{} }, score,
		kstream.Materialized[string, UserScore]{
			StoreName: storeName,
			// Every score must go downstream: with the cache, a user's
			// updates between two commits would collapse into the last,
			// and an alert among them would be lost.
			CachingDisabled: true,
		})
	branches := scores.ToStream().Split(kstream.Named("score-")).
		Branch(func(_ string, s UserScore) bool { return s.Score >= alertThreshold }, kstream.Named("alert")).
		DefaultBranch(kstream.Named("ok"))
	produced := kstream.ProducedWith(serde.String(), serde.JSON[UserScore]())
	branches["score-alert"].To(alertsTopic, produced)
	branches["score-ok"].To(scoresTopic, produced)
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
		fmt.Fprintf(os.Stderr, "useractivity: %v\n", err)
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
	// untilDone: wait until every fed activity is scored, print the alerts
	// and return (on the embedded broker), rather than run until
	// interrupted.
	untilDone bool
}

const defaultRecords = 1000

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("useractivity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.brokers, "brokers", "", "comma-separated seed brokers (default: $KAFKA_BROKERS, else an embedded broker)")
	fs.StringVar(&o.appID, "app-id", "useractivity", "application id: the consumer group, and the prefix of the internal topics and of the state directory")
	fs.StringVar(&o.stateDir, "state-dir", "", "directory for local state (default: a temporary directory on the embedded broker, else the kstreams default under the temp dir)")
	fs.IntVar(&o.records, "records", defaultRecords, "synthetic activities to feed; with -brokers the default is 0")
	fs.DurationVar(&o.commitInterval, "commit-interval", time.Second, "how often processed input offsets are committed and the store checkpointed (default with -eos: 100ms)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "on the embedded broker, how long to wait for every activity to be scored")
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
		dir, cleanup, err := embedded.TempStateDir("useractivity")
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
	if err := embedded.CreateTopics(ctx, kadm.NewClient(cl), []string{inputTopic, scoresTopic, alertsTopic}, log); err != nil {
		return err
	}

	app, err := kstreams.New(topo, kstreams.Config{
		ApplicationID:       o.appID,
		Brokers:             brokers,
		StateDir:            o.stateDir,
		CommitInterval:      o.commitInterval,
		Logger:              log,
		ProcessingGuarantee: guarantee(o.eos),
		// One broken event must not stop the scoring of everyone else.
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

	activity := synthActivity(o.records, synthStart(time.Now()))
	want := expect(activity)
	if len(activity) > 0 {
		start := time.Now()
		if err := feed(ctx, cl, activity); err != nil {
			return stopAndWait(err)
		}
		log.Info("fed synthetic activity", "topic", inputTopic, "activities", len(activity), "users", synthUsers,
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

	log.Info("waiting for every activity to be scored", "activities", want.records, "timeout", o.timeout)
	got, err := awaitResults(ctx, brokers, want, o.timeout, isolation(o.eos), runDone, log)
	if err := stopAndWait(err); err != nil {
		return err
	}
	got.print(stdout)
	return nil
}

// feed writes activities to the input topic, keyed by user id (so that a
// user's activities stay in order, on one partition) and stamped with
// their time, and waits for the brokers to acknowledge them all.
func feed(ctx context.Context, cl *kgo.Client, activity []Activity) error {
	ser := serde.JSON[Activity]()
	recs := make([]*kgo.Record, len(activity))
	for i, a := range activity {
		v, err := ser.Serialize(inputTopic, a)
		if err != nil {
			return err
		}
		recs[i] = &kgo.Record{Topic: inputTopic, Key: []byte(a.UserID), Value: v, Timestamp: a.Time}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d activities to %s: %w", len(recs), inputTopic, err)
	}
	return nil
}

// results is what the topology makes of a stream of activities.
type results struct {
	// records is how many records "scores" and "alerts" hold together:
	// one per activity with a user id.
	records int64
	// alerts are the "alerts" records, by user and their number of
	// activities, which tells a replayed record from a new one.
	alerts map[alertKey]UserScore
}

type alertKey struct {
	user   string
	events int64
}

func newResults() results { return results{alerts: map[alertKey]UserScore{}} }

// expect computes what the topology should make of activity, a user's
// activities in the order given.
func expect(activity []Activity) results {
	r := newResults()
	scores := map[string]UserScore{}
	for _, a := range activity {
		if a.UserID == "" {
			continue
		}
		s := score(a.UserID, enrich(a), scores[a.UserID])
		scores[a.UserID] = s
		r.records++
		if s.Score >= alertThreshold {
			r.alerts[alertKey{s.UserID, s.Events}] = s
		}
	}
	return r
}

// print writes one line per alert, in time order (then by user):
//
//	ALERT <time> <user> score <score> after <action> [of <amount>] from <ip> (<country>)
func (r results) print(w io.Writer) {
	alerts := make([]UserScore, 0, len(r.alerts))
	for _, s := range r.alerts {
		alerts = append(alerts, s)
	}
	slices.SortFunc(alerts, func(a, b UserScore) int {
		return cmp.Or(a.Last.Time.Compare(b.Last.Time), strings.Compare(a.UserID, b.UserID), cmp.Compare(a.Events, b.Events))
	})
	for _, s := range alerts {
		what := s.Last.Action
		if s.Last.Action == "purchase" {
			what += fmt.Sprintf(" of %.2f", s.Last.Amount)
		}
		fmt.Fprintf(w, "ALERT %s %s score %.2f after %s from %s (%s)\n",
			s.Last.Time.UTC().Format(time.RFC3339), s.UserID, s.Score, what, s.Last.IP, s.Last.Country)
	}
}

// awaitResults reads the output topics from the start at isolation level
// iso until they hold as many records as want, one per activity, keeping
// the alerts. It fails when timeout passes first, when ctx ends, or when
// the app stops (runDone).
func awaitResults(ctx context.Context, brokers []string, want results, timeout time.Duration, iso kgo.IsolationLevel, runDone <-chan struct{}, log *slog.Logger) (results, error) {
	got := newResults()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(scoresTopic, alertsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
	)
	if err != nil {
		return got, fmt.Errorf("consumer of %s and %s: %w", scoresTopic, alertsTopic, err)
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

	for got.records < want.records {
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
		if got.records >= want.records {
			break
		}
		if waitCtx.Err() != nil {
			progress := fmt.Sprintf("%d of %d activities scored, %d alerts", got.records, want.records, len(got.alerts))
			select {
			case <-runDone:
				return got, fmt.Errorf("app stopped before every activity was scored; %s", progress)
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
	if got.records > want.records {
		// Only a replay after a failure scores an activity twice.
		log.Warn("more scores than activities fed: some were scored twice", "scores", got.records, "fed", want.records)
	}
	return got, nil
}

// add adds an output record to r.
func (r *results) add(rec *kgo.Record) error {
	s, err := serde.JSON[UserScore]().Deserialize(rec.Topic, rec.Value)
	if err != nil {
		return fmt.Errorf("%s-%d@%d: score of %q: %w", rec.Topic, rec.Partition, rec.Offset, rec.Key, err)
	}
	r.records++
	if rec.Topic == alertsTopic {
		r.alerts[alertKey{s.UserID, s.Events}] = s
	}
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
