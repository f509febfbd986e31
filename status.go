package kstreams

import (
	"sort"
	"time"
)

// Status is a snapshot of a running app for operators (GET /v1/status).
type Status struct {
	ApplicationID string        `json:"applicationId"`
	ProcessID     string        `json:"processId"`
	Endpoint      string        `json:"endpoint,omitempty"`
	State         string        `json:"state"`
	Guarantee     string        `json:"processingGuarantee"`
	Time          time.Time     `json:"time"`
	Tasks         []TaskStatus  `json:"tasks"`
	Stores        []StoreStatus `json:"stores"`
	// Processed, Commits and Rebalances are running totals.
	Processed  int64 `json:"processed"`
	Commits    int64 `json:"commits"`
	Rebalances int64 `json:"rebalances"`
}

// TaskStatus is one task of this instance.
type TaskStatus struct {
	ID      string `json:"id"`
	Standby bool   `json:"standby"`
	// Running: an active task that finished restoring and processes.
	Running bool `json:"running"`
	// Partitions are its input partitions ("topic-partition").
	Partitions []string `json:"partitions"`
	// Lag: for a standby, changelog records behind at its last catch-up.
	Lag int64 `json:"lag"`
	// Restore progress of each of its stores that needed restoring.
	Restores []RestoreStatus `json:"restores,omitempty"`
}

// RestoreStatus is where one store's restore stands.
type RestoreStatus struct {
	Store    string `json:"store"`
	Start    int64  `json:"start"`
	End      int64  `json:"end"`
	Position int64  `json:"position"`
	Restored int64  `json:"restored"`
	Done     bool   `json:"done"`
}

// StoreStatus is one store of the topology.
type StoreStatus struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Changelog string `json:"changelog,omitempty"`
	InMemory  bool   `json:"inMemory"`
}

// Status returns a snapshot of the app: its state and every task with its
// standby lag and restore progress.
func (a *App) Status() Status {
	s := Status{
		ApplicationID: a.cfg.ApplicationID,
		ProcessID:     a.processID,
		Endpoint:      a.cfg.ApplicationServer,
		State:         a.State().String(),
		Guarantee:     a.cfg.ProcessingGuarantee.String(),
		Time:          time.Now().UTC(),
		Tasks:         []TaskStatus{},
		Stores:        []StoreStatus{},
		Processed:     a.stats.Processed.Load(),
		Commits:       a.stats.Commits.Load(),
		Rebalances:    a.stats.Rebalances.Load(),
	}
	a.mu.Lock()
	runners := make([]*runner, 0, len(a.runners)+len(a.standbys))
	for _, r := range a.runners {
		runners = append(runners, r)
	}
	for _, r := range a.standbys {
		runners = append(runners, r)
	}
	a.mu.Unlock()
	for _, r := range runners {
		ts := TaskStatus{ID: r.id.String(), Standby: r.standby, Lag: r.lag.Load(), Partitions: []string{}}
		ts.Running = !r.standby && r.started.Load() && !r.stopped.Load()
		if !r.standby {
			for _, tp := range r.tps {
				ts.Partitions = append(ts.Partitions, tp.Topic+"-"+itoa(int64(tp.Partition)))
			}
		}
		if r.stores != nil {
			for _, p := range r.stores.RestoreProgress() {
				ts.Restores = append(ts.Restores, RestoreStatus{Store: p.Store, Start: p.Start, End: p.End,
					Position: p.Position, Restored: p.Restored, Done: p.Done})
			}
			sort.Slice(ts.Restores, func(i, j int) bool { return ts.Restores[i].Store < ts.Restores[j].Store })
		}
		s.Tasks = append(s.Tasks, ts)
	}
	sort.Slice(s.Tasks, func(i, j int) bool {
		if s.Tasks[i].Standby != s.Tasks[j].Standby {
			return !s.Tasks[i].Standby
		}
		return s.Tasks[i].ID < s.Tasks[j].ID
	})
	for _, st := range a.compiled.Subtopologies {
		for _, spec := range st.StoreSpecs {
			s.Stores = append(s.Stores, StoreStatus{Name: spec.Name, Kind: spec.Kind.String(), Changelog: st.Changelogs[spec.Name], InMemory: spec.InMemory})
		}
	}
	sort.Slice(s.Stores, func(i, j int) bool { return s.Stores[i].Name < s.Stores[j].Name })
	return s
}

// Ready reports whether the app is running with every active task
// restored and processing (GET /readyz).
func (a *App) Ready() bool {
	if a.State() != Running {
		return false
	}
	for _, t := range a.Status().Tasks {
		if !t.Standby && !t.Running {
			return false
		}
	}
	return true
}
