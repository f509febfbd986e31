// Command bench measures kstreams against raw franz-go doing the same work
// on the same broker in the same run, and prints one line per scenario:
//
//	scenario=stateless ours=… rec/s baseline=… rec/s ratio=…
//
// By default it starts an embedded kfake cluster; -brokers points it at a
// real one. Each side reads the same pre-produced input topic from the
// start, with its own consumer group, and the clock runs from the moment
// the group assigned partitions until every expected output record is
// acknowledged (the output topic's end offsets reach the expected count).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
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
	flag.StringVar(&o.scenario, "scenario", "all", "scenario to run: stateless or all")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per scenario; the two sides alternate who goes first, and the median is reported")
	flag.StringVar(&o.only, "only", "", "run one side only (ours or baseline), for profiling")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a scenario after this long")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	o.partitions = int32(parts)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(o, brokers); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// side runs one side of a scenario and returns how long its work took.
type side func(ctx context.Context) (time.Duration, error)

// scenario prepares topics and input on o.brokers and returns both sides.
type scenario func(ctx context.Context, o options) (ours, baseline side, err error)

var scenarios = map[string]scenario{
	"stateless": stateless,
}

var scenarioOrder = []string{"stateless"}

func run(o options, brokers string) error {
	if o.scenario != "all" {
		if _, ok := scenarios[o.scenario]; !ok {
			return fmt.Errorf("unknown scenario %q", o.scenario)
		}
	}
	for _, name := range scenarioOrder {
		if o.scenario != "all" && o.scenario != name {
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
