package kstreams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/kstreams-go/kstreams/internal/statuspage"
	"github.com/kstreams-go/kstreams/internal/topology"
)

// The topology as data, from Topology.Graph (GET /v1/topology).
type (
	TopologyGraph    = topology.Graph
	GraphSubtopology = topology.GraphSubtopology
	GraphNode        = topology.GraphNode
	GraphTopic       = topology.GraphTopic
	GraphStore       = topology.GraphStore
)

// routeOps registers the routes for operators on mux, beside the query
// API:
//
//	GET /healthz      liveness: 200 "ok" unless Run has returned
//	GET /readyz       readiness: 200 when Ready, else 503 with the reason
//	GET /v1/status    the JSON of Status
//	GET /v1/topology  the JSON of the topology's Graph
//	GET /             the status page: the topology drawn, the tasks
//
// Liveness: the app is alive in the states CREATED, REBALANCING, RUNNING
// and PENDING_SHUTDOWN. NOT_RUNNING and ERROR are final (Run has
// returned, cleanly or with an error) and this App will never process
// again, so /healthz answers 503 there and a liveness probe restarts the
// process. A rebalance or a long restore is no reason to restart: that is
// what /readyz tells.
func (a *App) routeOps(mux *http.ServeMux) {
	graph := a.topo.Graph()
	page := statuspage.NewRenderer(graph)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		noStore(w)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s := a.State(); s == NotRunning || s == Error {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not running: state %s\n", s)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		noStore(w)
		type answer struct {
			Ready  bool   `json:"ready"`
			State  string `json:"state"`
			Reason string `json:"reason,omitempty"`
		}
		if a.Ready() {
			writeOpsJSON(w, http.StatusOK, answer{Ready: true, State: Running.String()})
			return
		}
		s := a.Status()
		writeOpsJSON(w, http.StatusServiceUnavailable, answer{State: s.State, Reason: notReadyReason(s)})
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		noStore(w)
		writeOpsJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("GET /v1/topology", func(w http.ResponseWriter, _ *http.Request) {
		writeOpsJSON(w, http.StatusOK, graph)
	})
	// "/{$}" is "/" alone; the query API keeps every other path.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		render := page.Render
		if r.URL.Query().Get("part") == "live" { // the page's script refreshing
			render = page.RenderLive
		}
		var b bytes.Buffer
		if err := render(&b, a.statusPage()); err != nil {
			a.log.Error("render the status page", "err", err)
			http.Error(w, "render the status page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b.Bytes())
	})
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

func writeOpsJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// notReadyReason says why s is not ready, as Ready decides it.
func notReadyReason(s Status) string {
	switch s.State {
	case Running.String():
	case Created.String():
		return "not started: Run has not been called"
	case Rebalancing.String():
		return "rebalancing: the group is assigning tasks"
	case PendingShutdown.String():
		return "shutting down"
	default:
		return "stopped: Run has returned"
	}
	var waiting []string
	for _, t := range s.Tasks {
		if !t.Standby && !t.Running {
			waiting = append(waiting, t.ID+" "+taskState(t))
		}
	}
	if len(waiting) == 0 {
		// Ready said no, and this later snapshot says yes.
		return "not ready a moment ago; ask again"
	}
	return "active tasks not processing yet: " + strings.Join(waiting, ", ")
}

// taskState is a local task's state on the status page: "standby",
// "running", "restoring" (with the stores still restoring) or "starting".
func taskState(t TaskStatus) string {
	switch {
	case t.Standby:
		return "standby"
	case t.Running:
		return "running"
	}
	var restoring []string
	for _, r := range t.Restores {
		if !r.Done {
			restoring = append(restoring, fmt.Sprintf("%s %d/%d", r.Store, r.Position-r.Start, r.End-r.Start))
		}
	}
	if len(restoring) > 0 {
		return "restoring " + strings.Join(restoring, ", ")
	}
	return "starting"
}

// statusPage gathers what the status page shows: the tasks of every
// instance in the latest assignment (Metadata), with this instance's own
// tasks detailed from Status.
func (a *App) statusPage() statuspage.Page {
	s := a.Status()
	md := a.Metadata()
	p := statuspage.Page{
		ApplicationID: s.ApplicationID, ProcessID: s.ProcessID, Endpoint: s.Endpoint,
		State: s.State, Guarantee: s.Guarantee, Time: s.Time,
		Processed: s.Processed, Commits: s.Commits, Rebalances: s.Rebalances,
	}
	type key struct {
		id      string
		standby bool
	}
	local := map[key]TaskStatus{}
	for _, t := range s.Tasks {
		local[key{t.ID, t.Standby}] = t
	}
	self := s.Endpoint
	if self == "" {
		self = s.ProcessID
	}
	localTask := func(t TaskStatus) statuspage.Task {
		pt := statuspage.Task{ID: t.ID, Standby: t.Standby, Owner: self, Local: true,
			State: taskState(t), Partitions: t.Partitions, Lag: t.Lag}
		if strings.HasPrefix(pt.State, "restoring") {
			pt.State = "restoring"
		}
		for _, r := range t.Restores {
			pt.Restores = append(pt.Restores, statuspage.Restore{Store: r.Store, Done: r.Done,
				Position: r.Position - r.Start, End: r.End - r.Start, Restored: r.Restored})
		}
		return pt
	}
	for _, in := range md.Instances {
		owner, url := in.Endpoint, ""
		if owner == "" {
			owner = in.ProcessID
		} else {
			url = "http://" + in.Endpoint + "/"
		}
		for _, group := range []struct {
			ids     []string
			standby bool
		}{{in.Active, false}, {in.Standby, true}} {
			for _, id := range group.ids {
				k := key{id, group.standby}
				if t, ok := local[k]; ok && in.ProcessID == s.ProcessID {
					p.Tasks = append(p.Tasks, localTask(t))
					delete(local, k)
					continue
				}
				if in.ProcessID == s.ProcessID { // assigned here, its task not made yet
					p.Tasks = append(p.Tasks, statuspage.Task{ID: id, Standby: group.standby, Owner: self, Local: true, State: "starting"})
					continue
				}
				p.Tasks = append(p.Tasks, statuspage.Task{ID: id, Standby: group.standby, Owner: owner, OwnerURL: url})
			}
		}
	}
	for _, t := range local { // tasks the latest assignment no longer lists, still closing
		p.Tasks = append(p.Tasks, localTask(t))
	}
	sort.SliceStable(p.Tasks, func(i, j int) bool {
		ti, tj := p.Tasks[i], p.Tasks[j]
		si, pi := splitTaskID(ti.ID)
		sj, pj := splitTaskID(tj.ID)
		if si != sj {
			return si < sj
		}
		if pi != pj {
			return pi < pj
		}
		return !ti.Standby && tj.Standby
	})
	for _, st := range s.Stores {
		p.Stores = append(p.Stores, statuspage.Store{Name: st.Name, Kind: st.Kind, Changelog: st.Changelog, InMemory: st.InMemory})
	}
	return p
}

// splitTaskID splits "<subtopology>_<partition>" into its numbers.
func splitTaskID(id string) (sub, partition int) {
	a, b, _ := strings.Cut(id, "_")
	sub, _ = strconv.Atoi(a)
	partition, _ = strconv.Atoi(b)
	return sub, partition
}
