package dsl

import (
	"fmt"
	"slices"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/state"
)

// slidingAggregate computes sliding-window aggregates (KIP-450 windows)
// by recomputing each affected window from the records it holds, which a
// second window store keeps for 2d + grace. Kafka Streams instead derives
// new windows from neighbouring aggregates, which needs no record buffer
// but an invertible bookkeeping of which windows exist; recomputing is
// simpler to get right and costs O(records within 2d of the new one).
//
// A window [s, s+d] is open while s+d >= observed - grace (the same rule
// as a time window's exclusive end s+d+1). A record that no open window
// can hold (ts + d < observed - grace) is dropped as late. A record before
// d after the epoch gets the left window [0, d], as Kafka Streams' early
// records do.
//
// The aggregates' store may be cached, as a time window's (windowEmitter);
// the record buffer, a store of duplicates, never is.
type slidingAggregate[K, V, VA any] struct {
	windowEmitter[K, VA] // the aggregates' store
	records, rtopic      string
	vsIn                 serde.Serde[V]
	diff, grace          int64
	step                 func(key K, value V, old VA, hasOld bool) VA
	buf                  state.WindowStore
	observed             int64
}

func (p *slidingAggregate[K, V, VA]) Init(ctx topology.Context) error {
	if err := p.init(ctx); err != nil {
		return err
	}
	p.rtopic = topology.InternalTopicName(ctx.ApplicationID(), topology.ChangelogTopic(p.records))
	var err error
	p.buf, err = windowStoreOf(ctx, p.records)
	return err
}

func (p *slidingAggregate[K, V, VA]) Close() error { p.close(); return nil }

type timedValue[V any] struct {
	ts int64
	v  V
}

func (p *slidingAggregate[K, V, VA]) leftStart(t int64) int64 { return max(0, t-p.diff) }

func (p *slidingAggregate[K, V, VA]) Process(r topology.Record) error {
	if r.Key == nil || r.Value == nil {
		return nil
	}
	key, value := As[K](r.Key), As[V](r.Value)
	ts, d := r.Timestamp, p.diff
	kb, err := p.ks.Serialize(p.topic, key)
	if err != nil {
		return fmt.Errorf("store %s: serialize key: %w", p.name, err)
	}
	p.observed = max(p.observed, ts)
	closeTime := p.observed - p.grace
	if ts+d < closeTime {
		topology.RecordDropped(p.ctx, "late")
		return nil
	}
	vb, err := p.vsIn.Serialize(p.rtopic, value)
	if err != nil {
		return fmt.Errorf("store %s: serialize value: %w", p.records, err)
	}
	if vb == nil {
		vb = []byte{}
	}
	if err := p.buf.Put(kb, vb, ts); err != nil {
		return fmt.Errorf("store %s: put: %w", p.records, err)
	}

	// Every record that can share a window with ts, in time order.
	it, err := p.buf.FetchRange(kb, max(0, ts-2*d-1), ts+2*d+1)
	if err != nil {
		return fmt.Errorf("store %s: fetch: %w", p.records, err)
	}
	var recs []timedValue[V]
	for it.Next() {
		v, err := p.vsIn.Deserialize(p.rtopic, it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("store %s: deserialize value: %w", p.records, err)
		}
		recs = append(recs, timedValue[V]{ts: it.Start(), v: v})
	}
	if err := it.Err(); err != nil {
		it.Close()
		return err
	}
	if err := it.Close(); err != nil {
		return err
	}

	// The windows ts enters or creates: left windows of the records in
	// [ts, ts+d], right windows of those in [ts-d-1, ts-1], and ts's own
	// right window when a record follows within d.
	var starts []int64
	for _, rec := range recs {
		if rec.ts >= ts && rec.ts <= ts+d {
			starts = append(starts, p.leftStart(rec.ts))
		}
		if rec.ts >= ts-d-1 && rec.ts <= ts-1 {
			starts = append(starts, rec.ts+1)
		}
		if rec.ts > ts && rec.ts <= ts+d {
			starts = append(starts, ts+1)
		}
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	for _, s := range starts {
		e := s + d
		if e < closeTime {
			continue
		}
		oldB, err := p.store.Fetch(kb, s)
		if err != nil {
			return fmt.Errorf("store %s: fetch: %w", p.name, err)
		}
		holdsTs := s <= ts && ts <= e
		if !holdsTs && oldB != nil {
			continue // unchanged: ts is not in it and it already exists
		}
		var agg VA
		has := false
		for _, rec := range recs {
			if rec.ts >= s && rec.ts <= e {
				agg = p.step(key, rec.v, agg, has)
				has = true
			}
		}
		if !has {
			continue
		}
		var oldBox any
		if oldB != nil {
			old, err := p.vs.Deserialize(p.topic, oldB)
			if err != nil {
				return fmt.Errorf("store %s: deserialize value: %w", p.name, err)
			}
			oldBox = old
		}
		ab, err := p.vs.Serialize(p.topic, agg)
		if err != nil {
			return fmt.Errorf("store %s: serialize value: %w", p.name, err)
		}
		if ab == nil {
			ab = []byte{}
		}
		if err := p.put(r, key, kb, s, agg, ab, oldBox); err != nil {
			return err
		}
	}
	return nil
}
