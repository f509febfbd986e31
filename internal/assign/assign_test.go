package assign

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

// allTasks returns every task of subs sub-topologies with parts partitions.
func allTasks(subs, parts int) []Task {
	var out []Task
	for s := range subs {
		for p := range parts {
			out = append(out, Task{s, int32(p)})
		}
	}
	return out
}

// fresh returns n members with empty subscriptions, ids m0, m1, ...
func fresh(n int) []Member {
	out := make([]Member, n)
	for i := range out {
		out[i] = Member{ID: fmt.Sprintf("m%d", i), Sub: Subscription{ProcessID: fmt.Sprintf("p%d", i)}}
	}
	return out
}

// rejoin returns members' subscriptions after running plan as generation
// gen: what they ran, and offset sums in which the active is the most
// caught up, its standbys close behind, and state left over from earlier
// generations (still on disk) further behind.
func rejoin(members []Member, plan map[string]Tasks, gen int64) []Member {
	out := make([]Member, len(members))
	for i, m := range members {
		ts := plan[m.ID]
		sub := m.Sub
		sub.PrevTasks = slices.Clone(ts.Active)
		sub.StandbyTasks = slices.Clone(ts.Standby)
		sub.TaskOffsetSums = maps.Clone(sub.TaskOffsetSums)
		if sub.TaskOffsetSums == nil {
			sub.TaskOffsetSums = map[Task]int64{}
		}
		for _, t := range ts.Active {
			sub.TaskOffsetSums[t] = gen * 1000
		}
		for _, t := range ts.Standby {
			sub.TaskOffsetSums[t] = gen*1000 - 10
		}
		out[i] = Member{ID: m.ID, Sub: sub}
	}
	return out
}

func statefulSet(subs ...int) map[int]bool {
	out := map[int]bool{}
	for _, s := range subs {
		out[s] = true
	}
	return out
}

// checkPlan fails t unless plan meets what every plan must: an entry per
// member, sorted lists, every task active on exactly one member, active
// counts within one of each other, and for each stateful task
// min(replicas, members-1) standbys on distinct members other than its
// active (none for stateless tasks).
func checkPlan(t *testing.T, members []Member, tasks []Task, p Params, plan map[string]Tasks) {
	t.Helper()
	if len(plan) != len(members) {
		t.Fatalf("plan has %d members, want %d: %v", len(plan), len(members), plan)
	}
	owner := map[Task]string{}
	standbys := map[Task][]string{}
	lo, hi := len(tasks), 0
	for _, m := range members {
		ts, ok := plan[m.ID]
		if !ok {
			t.Fatalf("member %s missing from plan", m.ID)
		}
		if !slices.IsSortedFunc(ts.Active, compareTasks) || !slices.IsSortedFunc(ts.Standby, compareTasks) {
			t.Fatalf("member %s: task lists not sorted: %v", m.ID, ts)
		}
		for _, x := range ts.Active {
			if o, dup := owner[x]; dup {
				t.Fatalf("task %v active on %s and %s", x, o, m.ID)
			}
			owner[x] = m.ID
		}
		for _, x := range ts.Standby {
			standbys[x] = append(standbys[x], m.ID)
		}
		lo, hi = min(lo, len(ts.Active)), max(hi, len(ts.Active))
	}
	if len(owner) != len(tasks) {
		t.Fatalf("%d of %d tasks active", len(owner), len(tasks))
	}
	if hi-lo > 1 {
		t.Fatalf("unbalanced: %d to %d active tasks: %v", lo, hi, plan)
	}
	want := min(max(p.NumStandbyReplicas, 0), len(members)-1)
	for _, x := range tasks {
		if _, ok := owner[x]; !ok {
			t.Fatalf("task %v not active anywhere", x)
		}
		got := standbys[x]
		if !p.StatefulSubtopologies[x.Subtopology] {
			if len(got) != 0 {
				t.Fatalf("stateless task %v has standbys on %v", x, got)
			}
			continue
		}
		if len(got) != want {
			t.Fatalf("task %v: %d standbys %v, want %d", x, len(got), got, want)
		}
		if slices.Contains(got, owner[x]) {
			t.Fatalf("task %v: standby on its active %s", x, owner[x])
		}
		if len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
			t.Fatalf("task %v: two standbys on one member: %v", x, got)
		}
	}
}

func TestAssignShimBalancedAndComplete(t *testing.T) {
	for _, m := range []int{1, 2, 3, 5, 8} {
		for _, n := range []int{1, 4, 7, 12} {
			all := allTasks(2, n)
			got := Assign(fresh(m), all)
			plan := map[string]Tasks{}
			for id, ts := range got {
				plan[id] = Tasks{Active: ts}
			}
			checkPlan(t, fresh(m), all, Params{}, plan)
		}
	}
}

func TestAssignShimSticky(t *testing.T) {
	all := allTasks(1, 8)
	first := Assign([]Member{{ID: "a"}, {ID: "b"}}, all)
	// A third member joins: a and b keep what they can.
	members := []Member{{ID: "a", Sub: Subscription{PrevTasks: first["a"]}}, {ID: "b", Sub: Subscription{PrevTasks: first["b"]}}, {ID: "c"}}
	second := Assign(members, all)
	for _, id := range []string{"a", "b"} {
		for _, x := range second[id] {
			if !slices.Contains(first[id], x) {
				t.Fatalf("task %v moved to existing member %s: %v -> %v", x, id, first, second)
			}
		}
	}
	if len(second["c"]) < 2 {
		t.Fatalf("new member got %d tasks, want at least 2: %v", len(second["c"]), second)
	}
}

func TestTaskText(t *testing.T) {
	for _, x := range []Task{{0, 0}, {2, 63}, {11, 1 << 30}} {
		b, err := x.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var y Task
		if err := y.UnmarshalText(b); err != nil || y != x {
			t.Fatalf("%v: round trip through %q gave %v, %v", x, b, y, err)
		}
	}
	for _, bad := range []string{"", "3", "a_1", "1_b", "-1_0", "0_-1", "0_99999999999"} {
		var y Task
		if err := y.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q: parsed as %v, want an error", bad, y)
		}
	}
}
