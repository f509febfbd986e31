// Package eoscheck holds what the examples' exactly-once tests ask the
// broker: how far a group has committed its input, which transactions are
// open and whose, whether a topic is stable, and the latest values of a
// topic read read_committed.
package eoscheck

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/serde"
)

// Proc is one example process as OpenTxns names it.
type Proc struct {
	Name   string
	Pid    int
	Killed bool
}

// InputLag is how many records of the input topic group has not
// committed. (The repartition topic's lag is not asked: its transaction
// markers take offsets that a consumer never commits past.)
func InputLag(ctx context.Context, adm *kadm.Client, group, inputTopic string) (int64, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return -1, err
	}
	ends, err := adm.ListEndOffsets(ctx, inputTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return -1, err
	}
	var lag int64
	ends.Each(func(e kadm.ListedOffset) {
		done := int64(0)
		if o, ok := committed.Lookup(e.Topic, e.Partition); ok {
			done = o.At
		}
		lag += e.Offset - done
	})
	return lag, nil
}

// OpenTxns describes the transactions open on the broker, naming the
// process of each (its transactional id holds the process's pid) and
// whether that was killed: a killed instance's transaction stays open,
// holding back what read_committed readers see of the partitions it wrote
// to, until the broker aborts it at its timeout.
func OpenTxns(ctx context.Context, adm *kadm.Client, procs []Proc) string {
	txns, err := adm.DescribeTransactions(ctx)
	if err != nil {
		return fmt.Sprintf("transactions not described: %v", err)
	}
	var open []string
	for _, tx := range txns.Sorted() {
		if tx.Err != nil || tx.State != "Ongoing" || len(tx.Topics) == 0 {
			continue
		}
		who := "unknown process"
		for _, p := range procs {
			if strings.Contains(tx.TxnID, fmt.Sprintf("-%d-", p.Pid)) {
				who = p.Name
				if p.Killed {
					who += " (killed)"
				}
			}
		}
		parts := 0
		for _, ps := range tx.Topics {
			parts += len(ps)
		}
		open = append(open, fmt.Sprintf("%s for %v of its %v on %d partitions",
			who, time.Since(time.UnixMilli(tx.StartTimestamp)).Round(time.Second), time.Duration(tx.TimeoutMillis)*time.Millisecond, parts))
	}
	if len(open) == 0 {
		return "no transaction open"
	}
	return "transactions open: " + strings.Join(open, "; ")
}

// AwaitStable waits until no transaction is open on topics: on every
// partition the last stable offset has reached the high watermark.
func AwaitStable(ctx context.Context, adm *kadm.Client, topics ...string) error {
	var last string
	for {
		hw, err := adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = hw.Error()
		}
		var lso kadm.ListedOffsets
		if err == nil {
			lso, err = adm.ListCommittedOffsets(ctx, topics...)
		}
		if err == nil {
			err = lso.Error()
		}
		if err == nil {
			var open []string
			hw.Each(func(h kadm.ListedOffset) {
				if l, ok := lso.Lookup(h.Topic, h.Partition); !ok || l.Offset != h.Offset {
					open = append(open, fmt.Sprintf("%s-%d (stable %d, end %d)", h.Topic, h.Partition, l.Offset, h.Offset))
				}
			})
			if len(open) == 0 {
				return nil
			}
			last = "open transactions on " + strings.Join(open, ", ")
		} else {
			last = err.Error()
		}
		if !Wait(ctx, 250*time.Millisecond) {
			return fmt.Errorf("%v never stable: %v; last: %s", topics, ctx.Err(), last)
		}
	}
}

// CountUncommitted counts the records of topics read read_uncommitted,
// from the start until nothing arrives for idle: with the records read
// read_committed, it tells how many were written by transactions that
// aborted, which shows the kills interrupted some.
func CountUncommitted(ctx context.Context, broker string, idle time.Duration, topics ...string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, idle)
		fs := cl.PollFetches(pctx)
		cancel()
		n += fs.NumRecords()
		if fs.NumRecords() == 0 && pctx.Err() != nil {
			return n, ctx.Err()
		}
	}
}

// ReadLatest reads topic read_committed from the start until nothing
// arrives for idle, and returns each key's latest int64 value.
func ReadLatest(ctx context.Context, broker, topic string, idle time.Duration) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := map[string]int64{}
	ser := serde.Int64()
	for {
		pctx, cancel := context.WithTimeout(ctx, idle)
		fs := cl.PollFetches(pctx)
		cancel()
		var derr error
		fs.EachRecord(func(r *kgo.Record) {
			n, err := ser.Deserialize(r.Topic, r.Value)
			if err != nil && derr == nil {
				derr = fmt.Errorf("%s-%d@%d: value of %q: %w", r.Topic, r.Partition, r.Offset, r.Key, err)
			}
			out[string(r.Key)] = n
		})
		if derr != nil {
			return out, derr
		}
		if fs.NumRecords() == 0 && pctx.Err() != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			return out, nil
		}
	}
}

// Wait sleeps d, or less if ctx ends first, which it reports as false.
func Wait(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
