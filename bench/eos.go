package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kstreams-go/kstreams"
)

// The eos scenario: what exactly-once costs. The count scenario's
// pipeline (countTopology: GroupByKey+Count into the Pebble store
// "counts", changelog and 10 MiB cache on, every update written to an
// output topic) runs twice in each round over the same pre-produced input,
// each side with its own application id, state directory and output
// topic:
//
//   - ours: ProcessingGuarantee ExactlyOnceV2, every other setting the
//     default (so a 100ms commit interval, or -eos-commit-interval: one
//     transaction per interval, each flushing the cache into the
//     changelog and the output);
//   - baseline: the default config (AtLeastOnce, 30s commit interval),
//     i.e. the count scenario's kstreams side.
//
// Both clocks run from the moment the app is Running (partitions
// assigned) until all three of these hold:
//
//  1. Stats().Processed has reached the input count;
//  2. Close has returned: its final commit flushes the cache, waits for
//     every produced record to be acknowledged and commits the offsets;
//     under ExactlyOnceV2 that commit is the last transaction's EndTxn;
//  3. a read_committed reader would see all of it: the application's
//     committed group offsets equal the input's end offsets, and on every
//     partition of the output the last stable offset equals the high
//     watermark.
//
// Why 3, and why it is the right completion test: under ExactlyOnceV2 the
// input offsets are committed inside the transaction (TxnOffsetCommit),
// and a broker answers EndTxn once the commit is decided in its
// transaction log; the markers that make the transaction's records visible
// to read_committed consumers, and its offsets visible in the group, are
// written after that (asynchronously in Apache Kafka). A group offset at
// the input's end therefore means the transaction holding the last
// input's outputs has committed, and the output's last stable offset at
// its high watermark means no open or undecided transaction is left on
// the output, so a read_committed reader sees every count. Under
// at-least-once both hold as soon as Close has returned (offsets are
// committed after the outputs are acknowledged, and nothing is
// transactional); both sides pay the same admin round trips for the
// check. Each side's output is then read back, the EOS side's with
// read_committed, and its latest counts checked against the input.
func eosCount(ctx context.Context, o options) (ours, baseline side, err error) {
	adm, closeAdm, err := admin(o)
	if err != nil {
		return nil, nil, err
	}
	defer closeAdm()
	in, outEOS, outALOS := "eos-in", "eos-ours", "eos-base"
	if err := createTopics(ctx, adm, o.partitions, in, outEOS, outALOS); err != nil {
		return nil, nil, err
	}
	if err := fill(ctx, o, in); err != nil {
		return nil, nil, fmt.Errorf("fill: %w", err)
	}
	records := int64(o.records)
	keys := min(o.keys, o.records)
	ours = func(ctx context.Context) (time.Duration, error) {
		return countGuarantee(ctx, o, kstreams.ExactlyOnceV2, in, outEOS, records, keys)
	}
	baseline = func(ctx context.Context) (time.Duration, error) {
		return countGuarantee(ctx, o, kstreams.AtLeastOnce, in, outALOS, records, keys)
	}
	return ours, baseline, nil
}

// countGuarantee runs the count pipeline from in to out under guarantee g
// and returns the time from Running to a complete read_committed view
// (see eosCount), after checking the output.
func countGuarantee(ctx context.Context, o options, g kstreams.ProcessingGuarantee, in, out string, records int64, keys int) (time.Duration, error) {
	adm, closeAdm, err := admin(o)
	if err != nil {
		return 0, err
	}
	defer closeAdm()
	inEnds, err := endOffsets(ctx, adm, in)
	if err != nil {
		return 0, err
	}
	topo, err := countTopology(in, out)
	if err != nil {
		return 0, err
	}
	group := "bench-" + out
	// Once before the clock: the admin client finds the group's
	// coordinator and the output's leaders now, so the check after Close
	// costs only its own round trips.
	_ = committedViewGap(ctx, adm, group, in, inEnds, out)
	obs := &txnObserver{}
	cfg := kstreams.Config{ApplicationID: group, Brokers: o.brokers, ProcessingGuarantee: g}
	if g == kstreams.ExactlyOnceV2 {
		cfg.CommitInterval = o.eosCommitInterval // 0: the default
	}
	if debug {
		cfg.ClientOptions = []kgo.Opt{kgo.WithHooks(obs)}
	}
	ra, err := startObservedApp(ctx, topo, cfg, obs)
	if err != nil {
		return 0, err
	}
	defer ra.stop()
	if err := ra.waitProcessed(ctx, records); err != nil {
		return 0, err
	}
	// Close and wait for Run as ra.stop does, but check the view before
	// the deferred stop removes the state directory, which is not part
	// of the work.
	ra.app.Close()
	runErr := <-ra.err
	closed := time.Now()
	ra.err <- runErr
	if runErr != nil {
		return 0, runErr
	}
	done, err := waitCommittedView(ctx, adm, group, in, inEnds, out)
	if err != nil {
		return 0, err
	}
	d := done.Sub(ra.start)
	if debug {
		st := ra.app.Stats()
		fmt.Fprintf(os.Stderr, "  %s: %v; closed after %v, read_committed view complete %v after Close; commits=%d aborts=%d\n",
			g, d.Round(time.Millisecond), closed.Sub(ra.start).Round(time.Millisecond),
			done.Sub(closed).Round(time.Microsecond), st.Commits.Load(), st.Aborts.Load())
		obs.report(os.Stderr)
		changelog := group + "-counts-changelog"
		if n, err := readCommitted(ctx, o, changelog, func(*kgo.Record) {}); err == nil {
			fmt.Fprintf(os.Stderr, "  %s: %d records\n", changelog, n)
		}
	}
	if g == kstreams.ExactlyOnceV2 {
		return d, verifyCommittedCounts(ctx, o, out, records, keys)
	}
	return d, verifyCounts(ctx, o, out, records, keys)
}

// startObservedApp is startApp with the app's log sent to obs, which
// keeps the durations of its "transaction committed" lines (the library
// logs them at debug level: drain, flush and End of each transaction).
func startObservedApp(ctx context.Context, topo *kstreams.Topology, cfg kstreams.Config, obs *txnObserver) (*runningApp, error) {
	dir, err := os.MkdirTemp("", "kstreams-bench-")
	if err != nil {
		return nil, err
	}
	running := make(chan time.Time, 1)
	cfg.StateDir = dir
	cfg.Logger = slog.New(obs)
	cfg.StateListener = func(_, s kstreams.State) {
		if s == kstreams.Running {
			select {
			case running <- time.Now():
			default:
			}
		}
	}
	app, err := kstreams.New(topo, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ra := &runningApp{app: app, err: make(chan error, 1), dir: dir}
	go func() { ra.err <- app.Run(ctx) }()
	select {
	case ra.start = <-running:
		return ra, nil
	case err := <-ra.err:
		os.RemoveAll(dir)
		if err == nil {
			err = fmt.Errorf("app stopped before it was running")
		}
		return nil, err
	}
}

// waitCommittedView polls until the group's committed offsets on in equal
// inEnds and every partition of out has its last stable offset at its
// high watermark, and returns when it first saw both.
func waitCommittedView(ctx context.Context, adm *kadm.Client, group, in string, inEnds map[int32]int64, out string) (time.Time, error) {
	var why string
	for {
		why = committedViewGap(ctx, adm, group, in, inEnds, out)
		if why == "" {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for a complete read_committed view: %s: %w", why, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// committedViewGap says what a read_committed reader would still miss,
// or "" if nothing.
func committedViewGap(ctx context.Context, adm *kadm.Client, group, in string, inEnds map[int32]int64, out string) string {
	offsets, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Sprintf("offsets of %s: %v", group, err)
	}
	for p, end := range inEnds {
		c, ok := offsets.Lookup(in, p)
		switch {
		case end == 0:
		case !ok:
			return fmt.Sprintf("%s has no offset committed on %s-%d", group, in, p)
		case c.Err != nil:
			return fmt.Sprintf("offset of %s on %s-%d: %v", group, in, p, c.Err)
		case c.At != end:
			return fmt.Sprintf("%s committed %d of %d on %s-%d", group, c.At, end, in, p)
		}
	}
	stable, err := adm.ListCommittedOffsets(ctx, out)
	if err != nil {
		return fmt.Sprintf("last stable offsets of %s: %v", out, err)
	}
	hw, err := endOffsets(ctx, adm, out)
	if err != nil {
		return err.Error()
	}
	var gap string
	stable.Each(func(l kadm.ListedOffset) {
		switch {
		case gap != "":
		case l.Err != nil:
			gap = fmt.Sprintf("last stable offset of %s-%d: %v", out, l.Partition, l.Err)
		case l.Offset != hw[l.Partition]:
			gap = fmt.Sprintf("%s-%d stable to %d of %d", out, l.Partition, l.Offset, hw[l.Partition])
		}
	})
	return gap
}

// readCommitted reads every committed record of topic up to its current
// end offsets with read_committed, calling fn for each data record, and
// returns how many it read. Call it when no transaction on topic is open
// (its last stable offsets at its high watermarks).
//
// A read_committed reader does not get control records (the transaction
// markers), and a transactional partition ends with one, so its last
// record is not at end-1 and readTo would wait forever. KeepControlRecords
// hands the markers over too (aborted data is still dropped), so the last
// record reaches end-1; fn sees only data records.
func readCommitted(ctx context.Context, o options, topic string, fn func(*kgo.Record)) (int64, error) {
	adm, closeAdm, err := admin(o)
	if err != nil {
		return 0, err
	}
	defer closeAdm()
	ends, err := endOffsets(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
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
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())
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
				if r.Offset < end && !r.Attrs.IsControl() {
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

// verifyCommittedCounts is verifyCounts reading with read_committed: the
// latest committed count of every key must add up to the records counted.
func verifyCommittedCounts(ctx context.Context, o options, topic string, records int64, keys int) error {
	latest := map[string]int64{}
	var bad error
	n, err := readCommitted(ctx, o, topic, func(r *kgo.Record) {
		if len(r.Value) != 8 {
			if bad == nil {
				bad = fmt.Errorf("%s-%d@%d: value of %d bytes, not an 8-byte count", r.Topic, r.Partition, r.Offset, len(r.Value))
			}
			return
		}
		latest[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
	})
	if err != nil {
		return fmt.Errorf("verify %s: %w", topic, err)
	}
	if debug {
		fmt.Fprintf(os.Stderr, "  %s: %d committed output records\n", topic, n)
	}
	if bad != nil {
		return fmt.Errorf("verify %s: %w", topic, bad)
	}
	var sum int64
	for _, c := range latest {
		sum += c
	}
	if sum != records || len(latest) != keys {
		return fmt.Errorf("verify %s (read_committed): latest counts add up to %d over %d keys, want %d over %d", topic, sum, len(latest), records, keys)
	}
	return nil
}

// txnObserver is an app's slog handler and, with KSTREAMS_BENCH_DEBUG,
// a franz-go hook on its clients: it keeps the durations the library
// logs for its transactions ("transaction committed", the whole commit:
// drain, flush, End) and the latency of each kind of broker request, and
// passes warnings on to stderr under debug.
type txnObserver struct {
	mu       sync.Mutex
	txns     []time.Duration
	requests map[int16]*requestStats
}

type requestStats struct {
	n     int
	total time.Duration
	max   time.Duration
}

func (h *txnObserver) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || (debug && l >= slog.LevelDebug)
}

func (h *txnObserver) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "transaction committed" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "took" && a.Value.Kind() == slog.KindDuration {
				h.mu.Lock()
				h.txns = append(h.txns, a.Value.Duration())
				h.mu.Unlock()
			}
			return true
		})
	}
	if debug && r.Level >= slog.LevelWarn {
		fmt.Fprintf(os.Stderr, "  app %s: %s\n", r.Level, r.Message)
	}
	return nil
}

func (h *txnObserver) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *txnObserver) WithGroup(string) slog.Handler      { return h }

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (h *txnObserver) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	d := e2e.DurationE2E()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.requests == nil {
		h.requests = map[int16]*requestStats{}
	}
	s := h.requests[key]
	if s == nil {
		s = &requestStats{}
		h.requests[key] = s
	}
	s.n++
	s.total += d
	s.max = max(s.max, d)
}

// report writes the transaction durations and the request latencies of
// the requests a transaction waits for.
func (h *txnObserver) report(w *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.txns); n > 0 {
		s := slices.Clone(h.txns)
		slices.Sort(s)
		var sum time.Duration
		for _, d := range s {
			sum += d
		}
		fmt.Fprintf(w, "  transactions committed: %d, took p50=%v p90=%v max=%v sum=%v\n",
			n, s[n/2].Round(time.Microsecond), s[n*9/10].Round(time.Microsecond), s[n-1].Round(time.Microsecond), sum.Round(time.Millisecond))
	}
	for _, key := range []int16{0, 1, 8, 12, 22, 24, 25, 26, 28} {
		s := h.requests[key]
		if s == nil {
			continue
		}
		fmt.Fprintf(w, "    %-18s n=%-6d avg=%-10v max=%-10v sum=%v\n", kmsg.NameForKey(key), s.n,
			(s.total / time.Duration(s.n)).Round(time.Microsecond), s.max.Round(time.Microsecond), s.total.Round(time.Millisecond))
	}
}
