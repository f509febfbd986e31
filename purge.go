package kstreams

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kstreams-go/kstreams/internal/task"
)

// purgeRepartitions deletes the records of repartition topics below the
// offsets this instance has committed for them, at most every
// RepartitionPurgeInterval, as Kafka Streams does: once committed, a
// repartition record has done its job, and keeping it only costs disk.
// Failures are logged; the next purge tries again.
func (a *App) purgeRepartitions(ctx context.Context) {
	if time.Since(a.lastPurge) < a.cfg.RepartitionPurgeInterval {
		return
	}
	a.lastPurge = time.Now()
	offsets := kadm.Offsets{}
	for _, r := range a.allRunners() {
		for _, tp := range r.tps {
			if !a.compiled.IsInternal(tp.Topic) {
				continue
			}
			off, ok := a.committedOffset(tp)
			if !ok || off <= a.purged[tp] {
				continue
			}
			offsets.AddOffset(tp.Topic, tp.Partition, off, -1)
		}
	}
	if len(offsets) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resps, err := a.admin.DeleteRecords(pctx, offsets)
	if err != nil {
		a.log.Warn("purging repartition topics", "err", err)
		return
	}
	if a.purged == nil {
		a.purged = map[task.TopicPartition]int64{}
	}
	resps.Each(func(r kadm.DeleteRecordsResponse) {
		if r.Err != nil {
			a.log.Warn("purging repartition topic", "topic", r.Topic, "partition", r.Partition, "err", r.Err)
			return
		}
		a.purged[task.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.LowWatermark
	})
}

// committedOffset is the offset this instance last committed for tp.
func (a *App) committedOffset(tp task.TopicPartition) (int64, bool) {
	if a.eos() {
		for topic, ps := range a.client.CommittedOffsets() {
			if topic != tp.Topic {
				continue
			}
			if o, ok := ps[tp.Partition]; ok {
				return o.Offset, true
			}
		}
		return 0, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	off, ok := a.committed[tp]
	return off, ok
}
