package task

import (
	"fmt"
	"sort"
)

// flusher is a store with buffered writes (every state store; a cache
// writes its dirty entries through and forwards them downstream).
type flusher interface{ Flush() error }

// Flush flushes every store of the task that has a Flush method, as Kafka
// Streams does at commit before it writes checkpoints. A cache's flush
// forwards its dirty entries through the topology like any other record
// (without input metadata); a node's failure there is returned here.
//
// Stores are flushed in the order of the first node that uses them (the
// sub-topology's nodes come parents first; stores of one node by name),
// then any others by name. So when an upstream cache forwards into a
// downstream cache, both flush in the same call; a plain name order could
// leave the downstream entries dirty until the next commit.
//
// Flush runs on the task's goroutine, like Process.
func (t *Task) Flush() error {
	for _, name := range t.flushOrder() {
		f, ok := t.cfg.Stores[name].(flusher)
		if !ok {
			continue
		}
		err := f.Flush()
		if err == nil {
			err = t.fwdErr
		}
		t.fwdErr = nil
		if err != nil {
			return fmt.Errorf("task %s: flush store %s: %w", t.cfg.ID, name, err)
		}
	}
	return nil
}

func (t *Task) flushOrder() []string {
	if t.storeOrder != nil || len(t.cfg.Stores) == 0 {
		return t.storeOrder
	}
	seen := map[string]bool{}
	var order []string
	for _, n := range t.cfg.Subtopology.Nodes {
		stores := append([]string(nil), n.Stores...)
		sort.Strings(stores)
		for _, s := range stores {
			if _, ok := t.cfg.Stores[s]; ok && !seen[s] {
				seen[s] = true
				order = append(order, s)
			}
		}
	}
	var rest []string
	for s := range t.cfg.Stores {
		if !seen[s] {
			rest = append(rest, s)
		}
	}
	sort.Strings(rest)
	t.storeOrder = append(order, rest...)
	return t.storeOrder
}
