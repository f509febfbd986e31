// Command bench measures kstreams against raw franz-go doing the same work
// on the same broker in the same run, and prints one line per scenario:
//
//	scenario=stateless records=… ours=… rec/s baseline=… rec/s ratio=…
//	scenario=count records=… ours=… rec/s baseline=… rec/s ratio=…
//	scenario=eos records=… ours=… rec/s baseline=… rec/s ratio=…   (kstreams ExactlyOnceV2 against kstreams at-least-once)
//	scenario=restore records=… ours=… rec/s baseline=… rec/s ratio=…
//	scenario=memory keys=… ours=… MB baseline=… MB
//	scenario=query-baseline|query-local|query-forwarded clients=… requests=… p50=…µs p99=…µs rps=…
//	scenario=rebalance rate=… rec/s pause_max=…ms pause_p50_over_tasks=…ms …
//	scenario=windowed records=… ours=… rec/s baseline=… rec/s ratio=…   (kstreams windowed count against kstreams count)
//	scenario=latency-stateless|latency-count rate=… rec/s records=… p50=…ms p99=…ms
//
// By default it starts an embedded kfake cluster; -brokers points it at a
// real one. Each side reads the same pre-produced input topic from the
// start, with its own consumer group; each scenario's file says when its
// clocks start and stop. The memory scenario runs each side in a child
// process of this program (the hidden -memory-child flag) and reports its
// peak RSS.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

type options struct {
	brokers    []string
	records    int
	valueSize  int
	keys       int
	partitions int32
	scenario   string
	timeout    time.Duration
	rounds     int
	only       string
	// memoryKeys is the memory scenario's distinct keys (one record each).
	memoryKeys int
	cpuProfile string
	trace      string
	// queryClients and queryRequests size the query scenario's load.
	queryClients  int
	queryRequests int
	// rebalanceRate is the rebalance scenario's input rate (records/s).
	rebalanceRate int
	// heartbeat is the rebalance scenario's group heartbeat interval
	// (0: franz-go's default).
	heartbeat time.Duration
	// eosCommitInterval is the eos scenario's CommitInterval on its
	// ExactlyOnceV2 side (0: the library's default, 100ms).
	eosCommitInterval time.Duration
	// latencyRate is the latency scenario's fixed input rate (records/s).
	latencyRate int
}

func main() {
	var o options
	var brokers string
	flag.StringVar(&brokers, "brokers", "", "comma-separated brokers (default: an embedded kfake cluster)")
	flag.IntVar(&o.records, "records", 1_000_000, "input records per scenario")
	flag.IntVar(&o.valueSize, "value-size", 100, "approximate value size in bytes")
	flag.IntVar(&o.keys, "keys", 10_000, "distinct keys")
	var parts int
	flag.IntVar(&parts, "partitions", 4, "partitions of every topic")
	flag.StringVar(&o.scenario, "scenario", "all", "scenario to run: "+strings.Join(scenarioOrder, ", ")+" or all (in that order)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per scenario; the two sides alternate who goes first, and the median is reported")
	flag.StringVar(&o.only, "only", "", "run one side only (ours or baseline), for profiling")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a scenario after this long")
	flag.IntVar(&o.memoryKeys, "memory-keys", 0, "distinct keys the memory scenario counts (default: min(10000000, 10*records))")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file; the memory scenario's child processes write theirs to this name plus .ours and .baseline")
	flag.StringVar(&o.trace, "trace", "", "write a runtime execution trace of the whole run to this file (go tool trace; -pprof=sync shows where goroutines blocked)")
	flag.IntVar(&o.queryClients, "query-clients", 32, "concurrent HTTP clients of the query scenario")
	flag.IntVar(&o.queryRequests, "query-requests", 100_000, "requests per round of each side of the query scenario; when not given, min(100000, max(1000, records))")
	flag.IntVar(&o.rebalanceRate, "rebalance-rate", 10_000, "input records per second of the rebalance scenario")
	flag.DurationVar(&o.heartbeat, "rebalance-heartbeat", 0, "group heartbeat interval of the rebalance scenario's instances, through Config.ClientOptions (default: franz-go's, 3s)")
	flag.DurationVar(&o.eosCommitInterval, "eos-commit-interval", 0, "CommitInterval of the eos scenario's exactly-once side (default: the library's, 100ms)")
	flag.IntVar(&o.latencyRate, "latency-rate", 10_000, "input records per second of the latency scenario")
	// -memory-child runs one side of the memory scenario: this program
	// re-executes itself so that side's peak RSS is its own.
	child := flag.String("memory-child", "", "")
	flag.Usage = usage
	flag.Parse()
	o.partitions = int32(parts)
	if !flagSet("query-requests") {
		o.queryRequests = min(o.queryRequests, max(1000, o.records))
	}
	if o.memoryKeys <= 0 {
		o.memoryKeys = min(10_000_000, 10*o.records)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if o.trace != "" && *child == "" {
		f, err := os.Create(o.trace)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := trace.Start(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	var err error
	if *child != "" {
		o.brokers = strings.Split(brokers, ",")
		err = memoryChild(o, *child)
	} else {
		err = run(o, brokers)
	}
	pprof.StopCPUProfile()
	trace.Stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// side runs one side of a scenario and returns how long its work took.
type side func(ctx context.Context) (time.Duration, error)

// scenario prepares topics and input on o.brokers and returns both sides.
type scenario func(ctx context.Context, o options) (ours, baseline side, err error)

// scenarios are the timed scenarios; memory, which measures peak RSS in
// child processes, is run apart.
var scenarios = map[string]scenario{
	"stateless": stateless,
	"count":     count,
	"eos":       eosCount,
	"restore":   restore,
	"windowed":  windowed,
}

var scenarioOrder = []string{"stateless", "count", "eos", "restore", "windowed", "memory", "query", "rebalance", "latency"}

// reporters are scenarios that are not one rate against another: they
// run their own rounds and print their own lines.
var reporters = map[string]func(o options, brokers string) error{
	"query":     queryScenario,
	"rebalance": rebalanceScenario,
	"latency":   latencyScenario,
}

// flagSet says whether the flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// usage is flag's default usage without the hidden -memory-child flag.
func usage() {
	fmt.Fprintf(flag.CommandLine.Output(), "Usage of %s:\n", os.Args[0])
	all := flag.CommandLine
	shown := flag.NewFlagSet("", flag.ContinueOnError)
	shown.SetOutput(all.Output())
	all.VisitAll(func(f *flag.Flag) {
		if f.Name != "memory-child" {
			shown.Var(f.Value, f.Name, f.Usage)
		}
	})
	shown.PrintDefaults()
}

func run(o options, brokers string) error {
	if o.scenario != "all" && o.scenario != "memory" {
		_, reporter := reporters[o.scenario]
		if _, ok := scenarios[o.scenario]; !ok && !reporter {
			return fmt.Errorf("unknown scenario %q", o.scenario)
		}
	}
	for _, name := range scenarioOrder {
		if o.scenario != "all" && o.scenario != name {
			continue
		}
		if name == "memory" {
			ours, base, err := memoryScenario(o, brokers)
			if err != nil {
				return fmt.Errorf("scenario memory: %w", err)
			}
			fmt.Printf("scenario=memory keys=%d ours=%.0f MB baseline=%.0f MB\n", o.memoryKeys, mb(ours.peakKB), mb(base.peakKB))
			continue
		}
		if report, ok := reporters[name]; ok {
			if err := report(o, brokers); err != nil {
				return fmt.Errorf("scenario %s: %w", name, err)
			}
			continue
		}
		res, err := rounds(o, brokers, scenarios[name])
		if err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
		fmt.Printf("scenario=%s records=%d ours=%.0f rec/s baseline=%.0f rec/s ratio=%.2f\n",
			name, o.records, res.ours, res.baseline, res.ours/res.baseline)
	}
	return nil
}

type result struct{ ours, baseline float64 }

// rounds runs a scenario o.rounds times and returns the median rates. On
// the embedded broker every round gets a fresh cluster, because the
// in-process broker's heap (all records ever written) slows whatever runs
// later; within a round the two sides alternate who goes first.
func rounds(o options, brokers string, sc scenario) (result, error) {
	var oursRates, baseRates []float64
	for round := 0; round < max(1, o.rounds); round++ {
		ours, base, err := oneRound(o, brokers, sc, round)
		if err != nil {
			return result{}, err
		}
		oursRates, baseRates = append(oursRates, ours), append(baseRates, base)
		fmt.Fprintf(os.Stderr, "  round %d: ours=%.0f rec/s baseline=%.0f rec/s\n", round, ours, base)
	}
	return result{ours: median(oursRates), baseline: median(baseRates)}, nil
}

func oneRound(o options, brokers string, sc scenario, round int) (ours, base float64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(int(o.partitions)))
		if err != nil {
			return 0, 0, fmt.Errorf("embedded broker: %w", err)
		}
		defer c.Close()
		o.brokers = c.ListenAddrs()
	} else {
		o.brokers = strings.Split(brokers, ",")
	}
	oursSide, baseSide, err := sc(ctx, o)
	if err != nil {
		return 0, 0, err
	}
	sides := []struct {
		name string
		fn   side
		out  *float64
	}{{"kstreams", oursSide, &ours}, {"baseline", baseSide, &base}}
	if round%2 == 1 {
		sides[0], sides[1] = sides[1], sides[0]
	}
	for _, s := range sides {
		if (o.only == "ours" && s.name != "kstreams") || (o.only == "baseline" && s.name != "baseline") {
			*s.out = 1
			continue
		}
		d, err := s.fn(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", s.name, err)
		}
		*s.out = float64(o.records) / d.Seconds()
	}
	return ours, base, nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// debug turns on progress output on stderr (KSTREAMS_BENCH_DEBUG=1).
var debug = os.Getenv("KSTREAMS_BENCH_DEBUG") != ""

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func admin(o options) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

func createTopics(ctx context.Context, adm *kadm.Client, partitions int32, topics ...string) error {
	resp, err := adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return err
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("create %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// fill writes n records of about size bytes with keys drawn from keys
// distinct values.
func fill(ctx context.Context, o options, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(200_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	pad := strings.Repeat("x", max(0, o.valueSize-12))
	var firstErr error
	for i := 0; i < o.records; i++ {
		r := &kgo.Record{
			Topic: topic,
			Key:   fmt.Appendf(nil, "key-%d", i%o.keys),
			Value: fmt.Appendf(nil, "%d|%s", i, pad),
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return firstErr
}

// waitForEnd polls the end offsets of topic until they sum to want.
func waitForEnd(ctx context.Context, adm *kadm.Client, topic string, want int64) error {
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			var sum int64
			ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
			if sum >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d records in %s: %w", want, topic, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends := map[int32]int64{}
	var firstErr error
	listed.Each(func(l kadm.ListedOffset) {
		if l.Err != nil && firstErr == nil {
			firstErr = fmt.Errorf("end offset of %s-%d: %w", l.Topic, l.Partition, l.Err)
		}
		ends[l.Partition] = l.Offset
	})
	if len(ends) == 0 && firstErr == nil {
		firstErr = fmt.Errorf("no end offsets for %s", topic)
	}
	return ends, firstErr
}

// readAll reads every record of topic up to its current end offsets.
func readAll(ctx context.Context, o options, topic string, fn func(*kgo.Record)) (int64, error) {
	adm, closeAdm, err := admin(o)
	if err != nil {
		return 0, err
	}
	defer closeAdm()
	ends, err := endOffsets(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	return readTo(ctx, o, topic, ends, fn)
}

// readTo reads the partitions of topic directly (no consumer group) from
// the start until each reaches its end offset in ends, calling fn for
// every record below it, and returns how many it read.
func readTo(ctx context.Context, o options, topic string, ends map[int32]int64, fn func(*kgo.Record)) (int64, error) {
	parts := map[int32]kgo.Offset{}
	for p, end := range ends {
		if end > 0 {
			parts[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(parts) == 0 {
		return 0, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var n int64
	done := map[int32]bool{}
	left := len(parts)
	for left > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("read %s: %d records, %d partitions not at their end: %w", topic, n, left, err)
		}
		if err := fetches.Err(); err != nil {
			return n, fmt.Errorf("read %s: %w", topic, err)
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			end := ends[fp.Partition]
			for _, r := range fp.Records {
				if r.Offset < end {
					fn(r)
					n++
				}
			}
			if !done[fp.Partition] && fp.Records[len(fp.Records)-1].Offset+1 >= end {
				done[fp.Partition] = true
				left--
			}
		})
	}
	return n, nil
}
