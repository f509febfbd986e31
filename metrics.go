package kstreams

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kstreams-go/kstreams/state"
)

// metrics are the app's Prometheus collectors. They live on the app's own
// registry (or the Registerer the user gave), never the global one, so two
// apps in one process do not collide.
type metrics struct {
	// gatherer serves /metrics; nil when the user's Registerer cannot be
	// gathered (they serve it themselves).
	gatherer prometheus.Gatherer

	restored   *prometheus.CounterVec
	standbyLag *prometheus.GaugeVec
	dropped    *prometheus.CounterVec

	processLatency   *prometheus.HistogramVec // per task: batch time / records
	commitLatency    prometheus.Histogram
	rebalanceLatency prometheus.Histogram
	polls            prometheus.Counter
	polled           prometheus.Counter
	punctuate        prometheus.Histogram
	consumerLag      *prometheus.GaugeVec // topic, partition
	storeLatency     *prometheus.HistogramVec
	e2eLatency       *prometheus.HistogramVec // sink topic
}

// latencyBuckets span 10µs to ~10s.
var latencyBuckets = prometheus.ExponentialBuckets(10e-6, 4, 11)

func newMetrics(a *App) (*metrics, error) {
	reg := a.cfg.Registerer
	m := &metrics{}
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, m.gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	}
	m.restored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kstreams_restore_records_total",
		Help: "Changelog records restored into the stores of active tasks.",
	}, []string{"store"})
	m.standbyLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kstreams_standby_lag_records",
		Help: "Changelog records a standby task was behind at its last catch-up.",
	}, []string{"task"})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kstreams_dropped_records_total",
		Help: "Records processors dropped on purpose, by reason (late: too late for every window).",
	}, []string{"reason"})
	m.processLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kstreams_process_latency_seconds",
		Help:    "Time to process one record, averaged over each batch a task processes.",
		Buckets: prometheus.ExponentialBuckets(1e-7, 4, 11),
	}, []string{"task"})
	m.commitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kstreams_commit_latency_seconds", Help: "Time of each commit (flush, produce acknowledgement, offset commit or transaction end).",
		Buckets: latencyBuckets,
	})
	m.rebalanceLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kstreams_rebalance_duration_seconds", Help: "Time from partitions revoked to tasks assigned again.",
		Buckets: latencyBuckets,
	})
	m.polls = prometheus.NewCounter(prometheus.CounterOpts{Name: "kstreams_polls_total", Help: "Polls of the consumer that returned records."})
	m.polled = prometheus.NewCounter(prometheus.CounterOpts{Name: "kstreams_polled_records_total", Help: "Records returned by polls."})
	m.punctuate = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kstreams_punctuate_latency_seconds", Help: "Time of each punctuator run (its count is the number of punctuations).",
		Buckets: latencyBuckets,
	})
	m.consumerLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kstreams_consumer_lag_records", Help: "Records between the last fetched offset and the partition's high watermark, per input partition.",
	}, []string{"topic", "partition"})
	m.storeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kstreams_store_latency_seconds",
		Help:    "Latency of key-value store operations (get, put, delete, range), sampled one call in 16.",
		Buckets: prometheus.ExponentialBuckets(1e-7, 4, 12),
	}, []string{"store", "op"})
	m.e2eLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kstreams_e2e_latency_seconds",
		Help:    "From a record's timestamp to its result being sent, per sink topic; sampled one record in 16.",
		Buckets: prometheus.ExponentialBuckets(1e-4, 4, 12),
	}, []string{"topic"})
	remaining := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kstreams_restore_remaining_records", Help: "Changelog records left to restore, per store, over this instance's restoring tasks.",
	}, []string{"store"})
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	for _, c := range []prometheus.Collector{
		m.restored, m.standbyLag, m.dropped, m.processLatency, m.commitLatency, m.rebalanceLatency, m.polls, m.polled,
		m.punctuate, m.consumerLag, m.storeLatency, m.e2eLatency,
		&restoreRemaining{a: a, desc: remaining},
		counter("kstreams_transactions_aborted_total", "Transactions aborted (ExactlyOnceV2).",
			func() float64 { return float64(a.stats.Aborts.Load()) }),
		counter("kstreams_records_processed_total", "Records processed by active tasks.",
			func() float64 { return float64(a.stats.Processed.Load()) }),
		counter("kstreams_records_skipped_total", "Records that failed to deserialize and were skipped.",
			func() float64 { return float64(a.stats.Skipped.Load()) }),
		counter("kstreams_records_dead_lettered_total", "Records that failed to deserialize and went to the dead-letter topic.",
			func() float64 { return float64(a.stats.DeadLettered.Load()) }),
		counter("kstreams_commits_total", "Offset commits.",
			func() float64 { return float64(a.stats.Commits.Load()) }),
		counter("kstreams_rebalances_total", "Group rebalances this instance took part in.",
			func() float64 { return float64(a.stats.Rebalances.Load()) }),
		gauge("kstreams_active_tasks", "Active tasks running on this instance.",
			func() float64 { return float64(a.taskCount()) }),
		gauge("kstreams_standby_tasks", "Standby tasks on this instance.",
			func() float64 { return float64(len(a.allStandbys())) }),
		gauge("kstreams_app_state", "Lifecycle state: 0 created, 1 rebalancing, 2 running, 3 pending shutdown, 4 not running, 5 error.",
			func() float64 { return float64(a.State()) }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// restoreRemaining computes, when scraped, the records left to restore per
// store from the tasks' restore progress.
type restoreRemaining struct {
	a    *App
	desc *prometheus.GaugeVec
}

func (r *restoreRemaining) Describe(ch chan<- *prometheus.Desc) { r.desc.Describe(ch) }

func (r *restoreRemaining) Collect(ch chan<- prometheus.Metric) {
	r.desc.Reset()
	for _, st := range r.a.compiled.Subtopologies {
		for store := range st.Changelogs {
			r.desc.WithLabelValues(store).Set(0)
		}
	}
	for _, t := range r.a.Status().Tasks {
		if t.Standby {
			continue
		}
		for _, p := range t.Restores {
			if !p.Done && p.End > p.Position {
				r.desc.WithLabelValues(p.Store).Add(float64(p.End - p.Position))
			}
		}
	}
	r.desc.Collect(ch)
}

func (m *metrics) handler() http.Handler {
	if m.gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// countingRestoreListener counts restored records and passes every event
// on to the user's listener.
type countingRestoreListener struct {
	m    *metrics
	next RestoreListener
}

func (l countingRestoreListener) OnRestoreStart(store string, tp state.TopicPartition, start, end int64) {
	if l.next != nil {
		l.next.OnRestoreStart(store, tp, start, end)
	}
}

func (l countingRestoreListener) OnBatchRestored(store string, tp state.TopicPartition, batchEnd, records int64) {
	l.m.restored.WithLabelValues(store).Add(float64(records))
	if l.next != nil {
		l.next.OnBatchRestored(store, tp, batchEnd, records)
	}
}

func (l countingRestoreListener) OnRestoreEnd(store string, tp state.TopicPartition, total int64) {
	if l.next != nil {
		l.next.OnRestoreEnd(store, tp, total)
	}
}
