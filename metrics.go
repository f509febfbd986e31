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
}

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
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	for _, c := range []prometheus.Collector{
		m.restored, m.standbyLag, m.dropped,
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
