package testutil

import (
	"fmt"
	"maps"
	"path/filepath"

	"github.com/kstreams-go/kstreams/internal/task"
	"github.com/kstreams-go/kstreams/state"
)

// globalTaskID is the id of the tasks that write global stores; they are
// no sub-topology's.
var globalTaskID = task.ID{Subtopology: -1}

// openGlobalStores makes the topology's global stores, Pebble in a
// temporary directory (or in memory), and returns them read-only, as
// stream tasks get them.
func (d *Driver) openGlobalStores() (map[string]any, error) {
	if len(d.compiled.GlobalStores) == 0 {
		return nil, nil
	}
	readOnly := map[string]any{}
	var db *state.PebbleDB
	for _, g := range d.compiled.GlobalStores {
		var s state.KeyValueStore
		if g.Store.InMemory {
			s = state.NewInMemory(g.Store.Name)
		} else {
			if db == nil {
				var err error
				if db, err = state.OpenPebble(filepath.Join(d.t.TempDir(), "global"), state.PebbleOptions{DisableWAL: true}); err != nil {
					return nil, err
				}
				d.dbs = append(d.dbs, db)
			}
			s = db.Store(g.Store.Name)
		}
		d.stores[g.Store.Name] = s
		d.storeOrder = append(d.storeOrder, g.Store.Name)
		readOnly[g.Store.Name] = state.ReadOnly(s)
	}
	return readOnly, nil
}

// withGlobals adds the global stores to a task's stores; its processors
// see those they connected to.
func withGlobals(stores, globals map[string]any) map[string]any {
	if len(globals) == 0 {
		return stores
	}
	out := maps.Clone(globals)
	maps.Copy(out, stores)
	return out
}

// startGlobalTasks starts a task per global store that writes the records
// piped into (or produced to) its topic into the store, as
// TopologyTestDriver updates global stores.
func (d *Driver) startGlobalTasks(cfg driverConfig) error {
	for _, g := range d.compiled.GlobalStores {
		tk, err := task.New(task.Config{
			ID:                     globalTaskID,
			ApplicationID:          cfg.appID,
			Subtopology:            g.UpdateSubtopology(),
			Collector:              collector{d},
			Clock:                  d.WallClock,
			OnDeserializationError: cfg.onDeser,
			Stores:                 map[string]any{g.Store.Name: d.stores[g.Store.Name]},
			OnDropped:              func(reason string) { d.dropped[reason]++ },
		})
		if err != nil {
			return fmt.Errorf("global store %s: %w", g.Store.Name, err)
		}
		d.tasks = append(d.tasks, tk)
		d.taskOf[g.Topic] = tk
	}
	return nil
}
