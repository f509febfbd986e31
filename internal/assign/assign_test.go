package assign

import (
	"fmt"
	"testing"
)

func tasks(subs, parts int) []Task {
	var out []Task
	for s := 0; s < subs; s++ {
		for p := 0; p < parts; p++ {
			out = append(out, Task{s, int32(p)})
		}
	}
	return out
}

func check(t *testing.T, got map[string][]Task, all []Task, members int) {
	t.Helper()
	seen := map[Task]bool{}
	min, max := len(all), 0
	for _, ts := range got {
		for _, x := range ts {
			if seen[x] {
				t.Fatalf("task %v assigned twice", x)
			}
			seen[x] = true
		}
		if len(ts) < min {
			min = len(ts)
		}
		if len(ts) > max {
			max = len(ts)
		}
	}
	if len(got) < members {
		min = 0
	}
	if len(seen) != len(all) {
		t.Fatalf("assigned %d of %d tasks", len(seen), len(all))
	}
	if max-min > 1 {
		t.Fatalf("unbalanced: min %d max %d: %v", min, max, got)
	}
}

func TestAssignBalancedAndComplete(t *testing.T) {
	for _, m := range []int{1, 2, 3, 5, 8} {
		for _, n := range []int{1, 4, 7, 12} {
			var members []Member
			for i := 0; i < m; i++ {
				members = append(members, Member{ID: fmt.Sprintf("m%d", i)})
			}
			all := tasks(2, n)
			check(t, Assign(members, all), all, m)
		}
	}
}

func TestAssignSticky(t *testing.T) {
	all := tasks(1, 8)
	first := Assign([]Member{{ID: "a"}, {ID: "b"}}, all)
	// A third member joins: a and b keep what they can.
	members := []Member{{ID: "a", Sub: Subscription{PrevTasks: first["a"]}}, {ID: "b", Sub: Subscription{PrevTasks: first["b"]}}, {ID: "c"}}
	second := Assign(members, all)
	check(t, second, all, 3)
	moved := 0
	for _, id := range []string{"a", "b"} {
		prev := map[Task]bool{}
		for _, x := range first[id] {
			prev[x] = true
		}
		for _, x := range second[id] {
			if !prev[x] {
				moved++
			}
		}
	}
	if moved != 0 {
		t.Fatalf("%d tasks moved between existing members: %v -> %v", moved, first, second)
	}
	if len(second["c"]) < 2 {
		t.Fatalf("new member got %d tasks, want at least 2: %v", len(second["c"]), second)
	}
}
