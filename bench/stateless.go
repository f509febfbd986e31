package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

// The stateless work both sides do: tag the value, drop every tenth record.
func mapValue(v []byte) []byte { return append(append(make([]byte, 0, len(v)+4), "ok:"...), v...) }

func keep(v []byte) bool {
	// value is "ok:<n>|..." after mapValue
	end := bytes.IndexByte(v, '|')
	if end < 0 {
		return false
	}
	n, err := strconv.Atoi(string(v[3:end]))
	return err == nil && n%10 != 0
}

func expectedKept(records int) int64 { return int64(records - (records+9)/10) }

func stateless(ctx context.Context, o options) (ours, baseline side, err error) {
	adm, closeAdm, err := admin(o)
	if err != nil {
		return nil, nil, err
	}
	defer closeAdm()
	in, outOurs, outBase := "stateless-in", "stateless-ours", "stateless-base"
	if err := createTopics(ctx, adm, o.partitions, in, outOurs, outBase); err != nil {
		return nil, nil, err
	}
	if err := fill(ctx, o, in); err != nil {
		return nil, nil, fmt.Errorf("fill: %w", err)
	}
	want := expectedKept(o.records)
	ours = func(ctx context.Context) (time.Duration, error) { return statelessOurs(ctx, o, in, outOurs, want) }
	baseline = func(ctx context.Context) (time.Duration, error) { return statelessBaseline(ctx, o, in, outBase, want) }
	return ours, baseline, nil
}

func statelessOurs(ctx context.Context, o options, in, out string, want int64) (time.Duration, error) {
	b := kstream.NewBuilder()
	s := kstream.Stream(b, kstream.ConsumedWith(serde.Bytes(), serde.Bytes()), in)
	kstream.Map(s, func(k, v []byte) ([]byte, []byte) { return k, mapValue(v) }).
		Filter(func(_, v []byte) bool { return keep(v) }).
		To(out, kstream.ProducedWith(serde.Bytes(), serde.Bytes()))
	topo, err := b.Build()
	if err != nil {
		return 0, err
	}
	running := make(chan time.Time, 1)
	app, err := kstreams.New(topo, kstreams.Config{
		ApplicationID: "bench-" + out,
		Brokers:       o.brokers,
		Logger:        quiet(),
		StateListener: func(_, s kstreams.State) {
			if s == kstreams.Running {
				select {
				case running <- time.Now():
				default:
				}
			}
		},
	})
	if err != nil {
		return 0, err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(ctx) }()
	defer app.Close()
	var start time.Time
	select {
	case start = <-running:
	case err := <-runErr:
		return 0, err
	}
	adm, closeAdm, err := admin(o)
	if err != nil {
		return 0, err
	}
	defer closeAdm()
	if err := waitForEnd(ctx, adm, out, want); err != nil {
		return 0, err
	}
	d := time.Since(start)
	if debug {
		st := app.Stats()
		fmt.Fprintf(os.Stderr, "  kstreams: holds=%d pauses=%d\n", st.Holds.Load(), st.Pauses.Load())
	}
	return d, nil
}

// statelessBaseline is what a team would write with franz-go alone: a
// group consumer that maps, filters and produces asynchronously.
func statelessBaseline(ctx context.Context, o options, in, out string, want int64) (time.Duration, error) {
	assigned := make(chan time.Time, 1)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(o.brokers...),
		kgo.ConsumerGroup("bench-base-"+out),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- time.Now():
			default:
			}
		}),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm, closeAdm, err := admin(o)
	if err != nil {
		return 0, err
	}
	defer closeAdm()
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	done := make(chan error, 1)
	var finished time.Time
	go func() {
		err := waitForEnd(ctx, adm, out, want)
		finished = time.Now()
		done <- err
		stopPolling()
	}()
	var start time.Time
	for {
		fetches := cl.PollRecords(pollCtx, 10_000)
		select {
		case start = <-assigned:
		default:
		}
		if pollCtx.Err() != nil {
			if err := <-done; err != nil {
				return 0, err
			}
			return finished.Sub(start), nil
		}
		fetches.EachRecord(func(r *kgo.Record) {
			v := mapValue(r.Value)
			if !keep(v) {
				return
			}
			cl.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: v, Timestamp: r.Timestamp}, nil)
		})
		if fetches.Empty() {
			time.Sleep(time.Millisecond)
		}
	}
}
