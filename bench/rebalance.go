package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
)

// The rebalance scenario: how long the tasks stand still when a second
// instance joins.
//
// A producer writes -rebalance-rate records per second (keys "key-<i mod
// -keys>", each stamped with its produce time as the record timestamp) to
// the input topic for the whole round. Instance A counts them alone with
// stringCountTopology; the write cache is off (NoCache), so every input
// record's new count reaches the output topic as soon as the task
// processes it, carrying the input's timestamp, and a task that processes
// shows up on its output partition within milliseconds. Once A has
// processed min(-records, 5 s of input) records, instance B is created on
// an empty state directory and its Run called: the join. The group then
// rebalances (eagerly: A gives up all four tasks, B gets two of them and
// restores their stores from the changelogs).
//
// A consumer reads the output topic throughout and notes when each
// partition's records arrive. For each of the -partitions tasks (one
// sub-topology, so task n writes output partition n), the longest
// interval between two arrivals from the last one before the join onwards
// is the time that task stood still (stall); the arrival that ends it is
// when the task processes again. pause is that moment minus the join;
// pause_max is the largest over the tasks (the join until every task
// processes again) and pause_p50_over_tasks their median (the upper
// middle one of four). Also printed: the join until B is Running
// (partitions assigned), and after_notice, from the moment A noticed the
// rebalance (its state left Running, at its first heartbeat after the
// join) until every task processes again. On stderr, per round: those
// and, per task, the first output of an input produced after the join (A
// keeps processing until it notices, so that one comes within
// milliseconds and says nothing about the pause).
//
// A learns of the rebalance at its next heartbeat, so the pause depends on
// where in A's heartbeat interval the join falls; round r of R joins r/R
// of an interval later after the warm-up, so that the rounds sample that
// phase evenly.
//
// A round ends when A and B are both Running again and every output
// partition has carried a record whose input was produced after that;
// the producer then stops, and the round checks that the output's latest
// count of every key is the number of records produced with it: nothing
// lost or counted twice across the rebalance. -rebalance-heartbeat sets
// the instances' group heartbeat interval (kgo.HeartbeatInterval through
// Config.ClientOptions). Every round uses a fresh
// embedded cluster; the medians over -rounds rounds are printed.
func rebalanceScenario(o options, brokers string) error {
	var rs []rebalanceResult
	for round := 0; round < max(1, o.rounds); round++ {
		r, err := rebalanceRound(o, brokers, round)
		if err != nil {
			return err
		}
		rs = append(rs, r)
		fmt.Fprintf(os.Stderr, "  round %d: %s\n", round, r)
	}
	pick := func(f func(rebalanceResult) time.Duration) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = millis(f(r))
		}
		return median(xs)
	}
	hb := ""
	if o.heartbeat > 0 {
		hb = fmt.Sprintf(" heartbeat=%v", o.heartbeat)
	}
	fmt.Printf("scenario=rebalance rate=%d rec/s warmup=%d records%s pause_max=%.0fms pause_p50_over_tasks=%.0fms stall_max=%.0fms join_to_running=%.0fms after_notice=%.0fms\n",
		o.rebalanceRate, warmupRecords(o), hb,
		pick(func(r rebalanceResult) time.Duration { return slices.Max(r.pause) }),
		pick(func(r rebalanceResult) time.Duration { return medianDuration(r.pause) }),
		pick(func(r rebalanceResult) time.Duration { return slices.Max(r.stall) }),
		pick(func(r rebalanceResult) time.Duration { return r.joinToRunning }),
		pick(func(r rebalanceResult) time.Duration { return r.afterNotice }))
	return nil
}

func warmupRecords(o options) int { return min(o.records, 5*o.rebalanceRate) }

type rebalanceResult struct {
	joinToRunning time.Duration   // B's Run called until B is Running
	noticed       time.Duration   // the join until A's state left Running
	afterNotice   time.Duration   // A's state left Running until every task processes again
	settled       time.Duration   // the join until A and B are both Running
	pause         []time.Duration // per task: the join until it processes again
	stall         []time.Duration // per task: the longest time without output
	firstAfter    []time.Duration // per task: the join until the first output of post-join input
}

func (r rebalanceResult) String() string {
	ms := func(ds []time.Duration) string {
		s := make([]string, len(ds))
		for i, d := range ds {
			s[i] = fmt.Sprintf("%.0f", millis(d))
		}
		return "[" + strings.Join(s, " ") + "]ms"
	}
	return fmt.Sprintf("pause_max=%.0fms pause=%s stall=%s join_to_running=%.0fms A_noticed=%.0fms after_notice=%.0fms both_running=%.0fms first_output_of_post_join_input=%s",
		millis(slices.Max(r.pause)), ms(r.pause), ms(r.stall), millis(r.joinToRunning), millis(r.noticed), millis(r.afterNotice), millis(r.settled), ms(r.firstAfter))
}

// defaultHeartbeat is franz-go's default group heartbeat interval.
const defaultHeartbeat = 3 * time.Second

func rebalanceRound(o options, brokers string, round int) (rebalanceResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	o, closeCluster, err := cluster(o, brokers)
	if err != nil {
		return rebalanceResult{}, err
	}
	defer closeCluster()
	adm, closeAdm, err := admin(o)
	if err != nil {
		return rebalanceResult{}, err
	}
	defer closeAdm()
	in, out := "rebalance-in", "rebalance-out"
	if err := createTopics(ctx, adm, o.partitions, in, out); err != nil {
		return rebalanceResult{}, err
	}
	watch, err := watchOutput(ctx, o, out)
	if err != nil {
		return rebalanceResult{}, err
	}
	defer watch.stop()
	prod, err := produceSteadily(ctx, o, in)
	if err != nil {
		return rebalanceResult{}, err
	}
	defer prod.stop(ctx)

	start := func(name string) (*instance, error) {
		topo, err := stringCountTopology(in, out)
		if err != nil {
			return nil, err
		}
		cfg := kstreams.Config{ApplicationID: "bench-rebalance", Brokers: o.brokers, StateStoreCacheMaxBytes: kstreams.NoCache}
		if o.heartbeat > 0 {
			cfg.ClientOptions = []kgo.Opt{kgo.HeartbeatInterval(o.heartbeat)}
		}
		return launch(ctx, name, topo, cfg)
	}
	a, err := start("A")
	if err != nil {
		return rebalanceResult{}, err
	}
	defer a.stop()
	if _, err := a.waitFor(ctx, "Running", runningAfter(a.runAt)); err != nil {
		return rebalanceResult{}, err
	}
	warm := int64(warmupRecords(o))
	for a.app.Stats().Processed.Load() < warm || !watch.allSeen(o.partitions) {
		select {
		case <-ctx.Done():
			return rebalanceResult{}, fmt.Errorf("warm-up: A processed %d of %d records, output seen on every partition: %v: %w",
				a.app.Stats().Processed.Load(), warm, watch.allSeen(o.partitions), ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
		if err := prod.failed(); err != nil {
			return rebalanceResult{}, err
		}
	}
	// A learns of the rebalance at its next heartbeat, so the pause
	// depends on where in A's heartbeat interval the join falls: move the
	// join by round/rounds of an interval, so the rounds sample it evenly.
	hb := o.heartbeat
	if hb <= 0 {
		hb = defaultHeartbeat
	}
	select {
	case <-ctx.Done():
		return rebalanceResult{}, ctx.Err()
	case <-time.After(hb * time.Duration(round) / time.Duration(max(1, o.rounds))):
	}

	b, err := start("B")
	if err != nil {
		return rebalanceResult{}, err
	}
	defer b.stop()
	join := b.runAt
	bRunning, err := b.waitFor(ctx, "Running", runningAfter(join))
	if err != nil {
		return rebalanceResult{}, err
	}
	noticed, err := a.waitFor(ctx, "the rebalance", stateAfter(join, kstreams.Rebalancing))
	if err != nil {
		return rebalanceResult{}, err
	}
	aRunning, err := a.waitFor(ctx, "Running again", runningAfter(noticed))
	if err != nil {
		return rebalanceResult{}, err
	}
	settled := bRunning
	if aRunning.After(settled) {
		settled = aRunning
	}
	if err := watch.waitFresh(ctx, o.partitions, settled); err != nil {
		return rebalanceResult{}, err
	}
	produced, err := prod.stop(ctx)
	if err != nil {
		return rebalanceResult{}, err
	}
	if err := watch.waitCounts(ctx, produced); err != nil {
		return rebalanceResult{}, err
	}
	for _, in := range []*instance{a, b} {
		in.mu.Lock()
		n := 0
		for _, c := range in.states {
			if c.state == kstreams.Rebalancing {
				n++
			}
		}
		in.mu.Unlock()
		if debug {
			fmt.Fprintf(os.Stderr, "  instance %s: %d rebalances\n", in.name, n)
		}
	}
	watch.stop()

	r := rebalanceResult{joinToRunning: bRunning.Sub(join), noticed: noticed.Sub(join), settled: settled.Sub(join)}
	watch.mu.Lock()
	defer watch.mu.Unlock()
	for p := int32(0); p < o.partitions; p++ {
		arr := watch.arrivals[p]
		// From the last arrival before the join on.
		i0 := 0
		for i, x := range arr {
			if x.at.After(join) {
				break
			}
			i0 = i
		}
		var stall time.Duration
		var resume time.Time
		for i := i0 + 1; i < len(arr); i++ {
			if gap := arr[i].at.Sub(arr[i-1].at); gap > stall {
				stall, resume = gap, arr[i].at
			}
		}
		var first time.Duration = -1
		for _, x := range arr {
			if x.at.After(join) && x.maxTs > join.UnixMilli() {
				first = x.at.Sub(join)
				break
			}
		}
		r.pause = append(r.pause, resume.Sub(join))
		r.stall = append(r.stall, stall)
		r.firstAfter = append(r.firstAfter, first)
	}
	r.afterNotice = slices.Max(r.pause) - r.noticed
	return r, nil
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// steadyProducer writes records at a fixed rate until stopped.
type steadyProducer struct {
	cancel   context.CancelFunc
	done     chan struct{}
	produced map[string]int64 // by key; the producer goroutine's until done

	mu  sync.Mutex
	err error
}

// produceSteadily writes o.rebalanceRate records a second to topic: every
// millisecond, as many as are due since it started. Each record's
// timestamp is the time it was handed to the client.
func produceSteadily(ctx context.Context, o options, topic string) (*steadyProducer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...))
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &steadyProducer{cancel: cancel, done: make(chan struct{}), produced: map[string]int64{}}
	pad := []byte(strings.Repeat("x", max(1, o.valueSize)))
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = fmt.Errorf("produce: %w", err)
			}
			p.mu.Unlock()
		}
	}
	go func() {
		defer close(p.done)
		defer cl.Close()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		start := time.Now()
		sent := 0
	loop:
		for {
			select {
			case <-pctx.Done():
				break loop
			case <-t.C:
			}
			due := int(time.Since(start).Seconds() * float64(o.rebalanceRate))
			for ; sent < due; sent++ {
				k := fmt.Sprintf("key-%d", sent%o.keys)
				p.produced[k]++
				cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(k), Value: pad, Timestamp: time.Now()}, promise)
			}
		}
		if err := cl.Flush(ctx); err != nil {
			promise(nil, err)
		}
	}()
	return p, nil
}

func (p *steadyProducer) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// stop stops producing, waits until every record is acknowledged and
// returns how many were produced of each key.
func (p *steadyProducer) stop(ctx context.Context) (map[string]int64, error) {
	p.cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("stopping the producer: %w", ctx.Err())
	}
	return p.produced, p.failed()
}

// outputWatch reads a count output topic from the start, noting when each
// partition's records arrive and the latest count of every key.
type outputWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	arrivals map[int32][]arrival
	latest   map[string]int64
	err      error
}

// arrival is one fetch of a partition's records: when the poll returned
// it and the latest input timestamp among them (ms).
type arrival struct {
	at    time.Time
	maxTs int64
}

func watchOutput(ctx context.Context, o options, topic string) (*outputWatch, error) {
	parts := map[int32]kgo.Offset{}
	for p := int32(0); p < o.partitions; p++ {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &outputWatch{cancel: cancel, done: make(chan struct{}), arrivals: map[int32][]arrival{}, latest: map[string]int64{}}
	go func() {
		defer close(w.done)
		defer cl.Close()
		for {
			fetches := cl.PollFetches(wctx)
			if wctx.Err() != nil {
				return
			}
			now := time.Now()
			w.mu.Lock()
			if err := fetches.Err(); err != nil && w.err == nil {
				w.err = fmt.Errorf("read %s: %w", topic, err)
			}
			fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
				if len(fp.Records) == 0 {
					return
				}
				var maxTs int64
				for _, r := range fp.Records {
					maxTs = max(maxTs, r.Timestamp.UnixMilli())
					if len(r.Value) == 8 {
						w.latest[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
					} else if w.err == nil {
						w.err = fmt.Errorf("%s-%d@%d: value of %d bytes, not an 8-byte count", r.Topic, r.Partition, r.Offset, len(r.Value))
					}
				}
				w.arrivals[fp.Partition] = append(w.arrivals[fp.Partition], arrival{at: now, maxTs: maxTs})
			})
			w.mu.Unlock()
		}
	}()
	return w, nil
}

func (w *outputWatch) stop() {
	w.cancel()
	<-w.done
}

// allSeen says whether every partition has had output.
func (w *outputWatch) allSeen(partitions int32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := int32(0); p < partitions; p++ {
		if len(w.arrivals[p]) == 0 {
			return false
		}
	}
	return true
}

// waitUntil polls cond (called under w.mu) until it holds or fails.
func (w *outputWatch) waitUntil(ctx context.Context, what string, cond func() (ok bool, state string, err error)) error {
	for {
		w.mu.Lock()
		ok, state, err := cond()
		if w.err != nil {
			err = w.err
		}
		w.mu.Unlock()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s (%s): %w", what, state, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitFresh waits until every partition has carried output of an input
// produced after t.
func (w *outputWatch) waitFresh(ctx context.Context, partitions int32, t time.Time) error {
	return w.waitUntil(ctx, "output of fresh input on every partition", func() (bool, string, error) {
		var stale []string
		for p := int32(0); p < partitions; p++ {
			arr := w.arrivals[p]
			if len(arr) == 0 || arr[len(arr)-1].maxTs <= t.UnixMilli() {
				stale = append(stale, fmt.Sprint(p))
			}
		}
		return len(stale) == 0, "partitions without: " + strings.Join(stale, ","), nil
	})
}

// waitCounts waits until the latest output count of every key is want's,
// and fails as soon as one is higher (counted twice).
func (w *outputWatch) waitCounts(ctx context.Context, want map[string]int64) error {
	return w.waitUntil(ctx, "the output's counts to add up", func() (bool, string, error) {
		for k, n := range w.latest {
			if n > want[k] {
				return false, "", fmt.Errorf("output counts %s %d times, %d were produced", k, n, want[k])
			}
		}
		err := sameCounts(w.latest, want)
		return err == nil, fmt.Sprint(err), nil
	})
}
