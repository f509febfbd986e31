// Package statuspage renders the operators' status page of a kstreams
// app: the topology drawn as inline SVG, laid out here in Go, and the
// tasks of the application with their owner, state, lag and restore
// progress. Nothing is fetched from elsewhere: a few lines of embedded
// script re-read the live part of the page every two seconds.
package statuspage

import (
	_ "embed"
	"html/template"
	"io"
	"time"

	"github.com/kstreams-go/kstreams/internal/topology"
)

// Page is what the page shows of an app at one moment.
type Page struct {
	ApplicationID string
	ProcessID     string
	Endpoint      string // this instance's ApplicationServer, if any
	State         string // RUNNING, REBALANCING, ...
	Guarantee     string
	Time          time.Time

	Processed, Commits, Rebalances int64

	// Tasks are the tasks of every instance.
	Tasks []Task
	// Stores are the topology's stores.
	Stores []Store
}

// Task is one task on one instance.
type Task struct {
	ID      string
	Standby bool
	// Owner names the instance running it: its endpoint, or its process
	// id when it serves no HTTP; OwnerURL links to its own status page.
	Owner    string
	OwnerURL string
	// Local tasks run on this instance; only they have the fields below.
	Local bool
	// State is "running", "restoring", "starting" or "standby".
	State      string
	Partitions []string
	// Lag is a standby's changelog lag, in records.
	Lag      int64
	Restores []Restore
}

// Restore is where one store's restore stands, in changelog offsets.
type Restore struct {
	Store         string
	Done          bool
	Position, End int64 // offsets from the restore's start
	Restored      int64 // records restored
}

// Percent is how far the restore is, 0 to 100.
func (r Restore) Percent() int {
	if r.Done || r.End <= 0 {
		return 100
	}
	return int(min(100, max(0, r.Position*100/r.End)))
}

// Store is one store of the topology.
type Store struct {
	Name, Kind, Changelog string
	InMemory              bool
}

//go:embed page.html
var pageHTML string

var tmpl = template.Must(template.New("statuspage").Parse(pageHTML))

// Renderer renders the page of one topology; its picture is drawn once.
type Renderer struct {
	svg template.HTML
}

// NewRenderer draws g for the pages it will render.
func NewRenderer(g topology.Graph) *Renderer {
	// SVG escapes every name it writes.
	return &Renderer{svg: template.HTML(SVG(g))}
}

// Render writes the whole page.
func (r *Renderer) Render(w io.Writer, p Page) error {
	return tmpl.ExecuteTemplate(w, "page", struct {
		Page
		SVG template.HTML
	}{p, r.svg})
}

// RenderLive writes only the part of the page the script refreshes: the
// app's state and totals and the tasks.
func (r *Renderer) RenderLive(w io.Writer, p Page) error {
	return tmpl.ExecuteTemplate(w, "live", p)
}
