package assign

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// planCases span 1–5 members, 1–64 partitions, 1–3 sub-topologies with
// some stateful, and 0–3 standby replicas.
var planCases = []struct {
	name     string
	members  int
	subs     int
	parts    int
	stateful []int
	replicas int
}{
	{"one member one task", 1, 1, 1, []int{0}, 1},
	{"one member many tasks", 1, 3, 64, []int{0, 2}, 2},
	{"fewer tasks than members", 5, 1, 3, []int{0}, 1},
	{"two members stateless", 2, 2, 7, nil, 1},
	{"two members one standby", 2, 2, 8, []int{1}, 1},
	{"two members more replicas than peers", 2, 1, 5, []int{0}, 3},
	{"three members mixed", 3, 3, 17, []int{0, 2}, 1},
	{"three members two standbys", 3, 2, 64, []int{0, 1}, 2},
	{"four members uneven", 4, 3, 13, []int{1}, 2},
	{"five members no standbys", 5, 2, 64, []int{0}, 0},
	{"five members three standbys", 5, 3, 64, []int{0, 1, 2}, 3},
	{"five members one partition", 5, 3, 1, []int{0, 1}, 1},
}

// TestAssignTasksInvariants runs each case through a group's life (start,
// a rebalance with no change, a member joining, members leaving) and checks
// completeness, balance and standby placement at every step.
func TestAssignTasksInvariants(t *testing.T) {
	for _, c := range planCases {
		t.Run(c.name, func(t *testing.T) {
			p := Params{StatefulSubtopologies: statefulSet(c.stateful...), NumStandbyReplicas: c.replicas}
			tasks := allTasks(c.subs, c.parts)
			members := fresh(c.members)
			plan := AssignTasks(members, tasks, p)
			checkPlan(t, members, tasks, p, plan)
			steps := []struct {
				name   string
				change func([]Member) []Member
			}{
				{"rejoin", func(ms []Member) []Member { return ms }},
				{"join", func(ms []Member) []Member { return append(ms, Member{ID: "new", Sub: Subscription{ProcessID: "pnew"}}) }},
				{"first leaves", func(ms []Member) []Member { return ms[1:] }},
				{"last leaves", func(ms []Member) []Member { return ms[:len(ms)-1] }},
			}
			for gen, step := range steps {
				members = step.change(rejoin(members, plan, int64(gen+1)))
				if len(members) == 0 {
					break
				}
				plan = AssignTasks(members, tasks, p)
				t.Run(step.name, func(t *testing.T) { checkPlan(t, members, tasks, p, plan) })
			}
		})
	}
}

// TestAssignTasksStable: a rebalance without membership change (a member
// rejoined) moves nothing, active or standby.
func TestAssignTasksStable(t *testing.T) {
	for _, c := range planCases {
		t.Run(c.name, func(t *testing.T) {
			p := Params{StatefulSubtopologies: statefulSet(c.stateful...), NumStandbyReplicas: c.replicas}
			tasks := allTasks(c.subs, c.parts)
			first := AssignTasks(fresh(c.members), tasks, p)
			second := AssignTasks(rejoin(fresh(c.members), first, 1), tasks, p)
			if !reflect.DeepEqual(first, second) {
				t.Fatalf("plan changed without membership change:\n%v\n%v", first, second)
			}
		})
	}
}

// minimalMoves is the fewest active tasks that must change owner when
// members with counts had (the old members) and joined new ones share n
// tasks with counts n/m or n/m+1: each old member keeps at most n/m, and
// n%m of them one more.
func minimalMoves(had []int, joined, n int) int {
	m := len(had) + joined
	base, extra := n/m, n%m
	keep, over := 0, 0
	for _, c := range had {
		keep += min(c, base)
		if c > base {
			over++
		}
	}
	keep += min(extra, over)
	return n - keep
}

// TestAssignTasksJoinSticky: when a member joins, existing members keep
// only tasks they had, and no more tasks move than balance requires.
func TestAssignTasksJoinSticky(t *testing.T) {
	for _, c := range planCases {
		t.Run(c.name, func(t *testing.T) {
			p := Params{StatefulSubtopologies: statefulSet(c.stateful...), NumStandbyReplicas: c.replicas}
			tasks := allTasks(c.subs, c.parts)
			old := fresh(c.members)
			first := AssignTasks(old, tasks, p)
			members := append(rejoin(old, first, 1), Member{ID: "new"})
			second := AssignTasks(members, tasks, p)
			checkPlan(t, members, tasks, p, second)
			var had []int
			for _, m := range old {
				had = append(had, len(first[m.ID].Active))
				for _, x := range second[m.ID].Active {
					if !slices.Contains(first[m.ID].Active, x) {
						t.Fatalf("task %v moved to existing member %s", x, m.ID)
					}
				}
			}
			moved := len(second["new"].Active)
			if want := minimalMoves(had, 1, len(tasks)); moved != want {
				t.Fatalf("%d tasks moved to the new member, minimum is %d", moved, want)
			}
		})
	}
}

// TestAssignTasksLeaveSticky: when a member leaves, the others keep every
// task they had and take over only the leaver's.
func TestAssignTasksLeaveSticky(t *testing.T) {
	for _, c := range planCases {
		if c.members < 2 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			p := Params{StatefulSubtopologies: statefulSet(c.stateful...), NumStandbyReplicas: c.replicas}
			tasks := allTasks(c.subs, c.parts)
			first := AssignTasks(fresh(c.members), tasks, p)
			members := rejoin(fresh(c.members), first, 1)[1:] // m0 leaves
			second := AssignTasks(members, tasks, p)
			checkPlan(t, members, tasks, p, second)
			for _, m := range members {
				for _, x := range first[m.ID].Active {
					if !slices.Contains(second[m.ID].Active, x) {
						t.Fatalf("task %v taken from remaining member %s", x, m.ID)
					}
				}
			}
		})
	}
}

// TestAssignTasksStateAware: tasks without a sticky owner go to the member
// holding the most of their state, within balance.
func TestAssignTasksStateAware(t *testing.T) {
	t00, t01, t02, t03 := Task{0, 0}, Task{0, 1}, Task{0, 2}, Task{0, 3}
	t10, t11 := Task{1, 0}, Task{1, 1}
	cases := []struct {
		name     string
		members  []Member
		tasks    []Task
		stateful map[int]bool
		want     map[string][]Task // active
	}{
		{
			name: "each orphan to the higher offset sum",
			members: []Member{
				{ID: "a", Sub: Subscription{PrevTasks: []Task{t00}, TaskOffsetSums: map[Task]int64{t00: 100, t02: 50, t03: 10}}},
				{ID: "b", Sub: Subscription{PrevTasks: []Task{t01}, TaskOffsetSums: map[Task]int64{t01: 100, t02: 40, t03: 90}}},
			},
			tasks:    []Task{t00, t01, t02, t03},
			stateful: statefulSet(0),
			want:     map[string][]Task{"a": {t00, t02}, "b": {t01, t03}},
		},
		{
			name: "standby without offset sum beats no state",
			members: []Member{
				{ID: "a", Sub: Subscription{}},
				{ID: "b", Sub: Subscription{StandbyTasks: []Task{t00}}},
			},
			tasks:    []Task{t00, t01},
			stateful: statefulSet(0),
			want:     map[string][]Task{"a": {t01}, "b": {t00}},
		},
		{
			name: "balance caps the most caught up member",
			members: []Member{
				{ID: "a", Sub: Subscription{PrevTasks: []Task{t00}, TaskOffsetSums: map[Task]int64{t02: 50, t03: 50}}},
				{ID: "b", Sub: Subscription{PrevTasks: []Task{t01}, TaskOffsetSums: map[Task]int64{t02: 5, t03: 5}}},
			},
			tasks:    []Task{t00, t01, t02, t03},
			stateful: statefulSet(0),
			want:     map[string][]Task{"a": {t00, t02}, "b": {t01, t03}},
		},
		{
			name: "equal sums go to the least loaded",
			members: []Member{
				{ID: "a", Sub: Subscription{PrevTasks: []Task{t00}, TaskOffsetSums: map[Task]int64{t01: 7}}},
				{ID: "b", Sub: Subscription{TaskOffsetSums: map[Task]int64{t01: 7}}},
				{ID: "c", Sub: Subscription{}},
			},
			tasks:    []Task{t00, t01, t10, t11},
			stateful: statefulSet(0),
			want:     map[string][]Task{"a": {t00, t11}, "b": {t01}, "c": {t10}},
		},
		{
			name: "stateless tasks ignore offset sums",
			members: []Member{
				{ID: "a", Sub: Subscription{}},
				{ID: "b", Sub: Subscription{TaskOffsetSums: map[Task]int64{t10: 99, t11: 99}}},
			},
			tasks:    []Task{t10, t11},
			stateful: statefulSet(0),
			want:     map[string][]Task{"a": {t10}, "b": {t11}},
		},
		{
			name: "sticky beats more state elsewhere",
			members: []Member{
				{ID: "a", Sub: Subscription{PrevTasks: []Task{t00}, TaskOffsetSums: map[Task]int64{t00: 1}}},
				{ID: "b", Sub: Subscription{TaskOffsetSums: map[Task]int64{t00: 1000}}},
			},
			tasks:    []Task{t00, t01},
			stateful: statefulSet(0),
			want:     map[string][]Task{"a": {t00}, "b": {t01}},
		},
		{
			name: "two claimants: the one with more state keeps it",
			members: []Member{
				{ID: "a", Sub: Subscription{PrevTasks: []Task{t00}, TaskOffsetSums: map[Task]int64{t00: 10}}},
				{ID: "b", Sub: Subscription{PrevTasks: []Task{t00}, TaskOffsetSums: map[Task]int64{t00: 20}}},
			},
			tasks:    []Task{t00, t01},
			stateful: statefulSet(0),
			want:     map[string][]Task{"a": {t01}, "b": {t00}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Params{StatefulSubtopologies: c.stateful}
			plan := AssignTasks(c.members, c.tasks, p)
			checkPlan(t, c.members, c.tasks, p, plan)
			for id, want := range c.want {
				if got := plan[id].Active; !slices.Equal(got, want) {
					t.Errorf("member %s: active %v, want %v", id, got, want)
				}
			}
		})
	}
}

// TestAssignTasksLeaverToStandby: after a member leaves, each of its
// stateful tasks goes to the remaining member with the most of its state,
// here the member that ran its standby.
func TestAssignTasksLeaverToStandby(t *testing.T) {
	p := Params{StatefulSubtopologies: statefulSet(0), NumStandbyReplicas: 1}
	tasks := allTasks(1, 6)
	members := fresh(3)
	first := AssignTasks(members, tasks, p)
	rest := rejoin(members, first, 1)[:2] // m2 leaves
	second := AssignTasks(rest, tasks, p)
	checkPlan(t, rest, tasks, p, second)
	for _, x := range first["m2"].Active {
		var holder string
		for _, m := range rest {
			if slices.Contains(first[m.ID].Standby, x) {
				holder = m.ID
			}
		}
		if !slices.Contains(second[holder].Active, x) {
			t.Errorf("task %v: standby was on %s, now active on another: %v", x, holder, second)
		}
	}
}

// TestAssignTasksStandbyBalance: when every task is stateful (so active
// counts are also stateful counts), standby counts differ by at most one,
// through joins and leaves. With stateless tasks too, standby counts follow
// how stateful actives fall: with two members and one replica each member
// is standby for exactly the other's stateful actives.
func TestAssignTasksStandbyBalance(t *testing.T) {
	for _, c := range planCases {
		t.Run(c.name, func(t *testing.T) {
			all := make([]int, c.subs)
			for i := range all {
				all[i] = i
			}
			p := Params{StatefulSubtopologies: statefulSet(all...), NumStandbyReplicas: c.replicas}
			tasks := allTasks(c.subs, c.parts)
			members := fresh(c.members)
			for gen := range 6 {
				plan := AssignTasks(members, tasks, p)
				checkPlan(t, members, tasks, p, plan)
				lo, hi := len(tasks), 0
				for _, ts := range plan {
					lo, hi = min(lo, len(ts.Standby)), max(hi, len(ts.Standby))
				}
				if hi-lo > 1 {
					t.Fatalf("generation %d, %d members: %d to %d standbys", gen, len(members), lo, hi)
				}
				members = rejoin(members, plan, int64(gen+1))
				switch {
				case gen%2 == 0:
					members = append(members, Member{ID: fmt.Sprintf("g%d", gen)})
				case len(members) > 1:
					members = members[1:]
				}
			}
		})
	}
}

// TestAssignTasksStandbyState: standbys go to members that hold the task's
// state, most caught up first, within the fair share.
func TestAssignTasksStandbyState(t *testing.T) {
	t00, t01 := Task{0, 0}, Task{0, 1}
	members := []Member{
		{ID: "a", Sub: Subscription{PrevTasks: []Task{t00}}},
		{ID: "b", Sub: Subscription{PrevTasks: []Task{t01}}},
		{ID: "c", Sub: Subscription{TaskOffsetSums: map[Task]int64{t00: 5, t01: 5}}},
		{ID: "d", Sub: Subscription{TaskOffsetSums: map[Task]int64{t00: 9}}},
	}
	p := Params{StatefulSubtopologies: statefulSet(0), NumStandbyReplicas: 1}
	plan := AssignTasks(members, []Task{t00, t01}, p)
	checkPlan(t, members, []Task{t00, t01}, p, plan)
	want := map[string][]Task{"a": nil, "b": nil, "c": {t01}, "d": {t00}}
	for id, w := range want {
		if got := plan[id].Standby; !slices.Equal(got, w) {
			t.Errorf("member %s: standby %v, want %v", id, got, w)
		}
	}
}

// TestAssignTasksDeterministic: the plan depends on the members and tasks,
// not on the order they are given in.
func TestAssignTasksDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range planCases {
		t.Run(c.name, func(t *testing.T) {
			p := Params{StatefulSubtopologies: statefulSet(c.stateful...), NumStandbyReplicas: c.replicas}
			tasks := allTasks(c.subs, c.parts)
			members := fresh(c.members)
			members = rejoin(members, AssignTasks(members, tasks, p), 1)
			members = append(members, Member{ID: "late"})
			want := AssignTasks(members, tasks, p)
			for i := range 10 {
				ms, ts := slices.Clone(members), slices.Clone(tasks)
				r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
				r.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
				if got := AssignTasks(ms, ts, p); !reflect.DeepEqual(got, want) {
					t.Fatalf("shuffle %d: plan differs:\n%v\n%v", i, got, want)
				}
			}
		})
	}
}

func ExampleAssignTasks() {
	members := []Member{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	tasks := allTasks(2, 3) // sub-topology 0 stateful, 1 stateless
	plan := AssignTasks(members, tasks, Params{StatefulSubtopologies: map[int]bool{0: true}, NumStandbyReplicas: 1})
	for _, id := range []string{"a", "b", "c"} {
		fmt.Println(id, "active", plan[id].Active, "standby", plan[id].Standby)
	}
	// Output:
	// a active [0_0 1_0] standby [0_2]
	// b active [0_1 1_1] standby [0_0]
	// c active [0_2 1_2] standby [0_1]
}

// Stateful tasks are balanced among themselves too: a newcomer with no
// state still gets its share of them, not only the stateless ones.
func TestStatefulTasksBalancedSeparately(t *testing.T) {
	var tasks []Task
	for s := 0; s < 2; s++ {
		for p := int32(0); p < 4; p++ {
			tasks = append(tasks, Task{s, p})
		}
	}
	sums := map[Task]int64{}
	for p := int32(0); p < 4; p++ {
		sums[Task{1, p}] = 100
	}
	members := []Member{
		{ID: "a", Sub: Subscription{PrevTasks: tasks, TaskOffsetSums: sums}},
		{ID: "b"},
	}
	got := AssignTasks(members, tasks, Params{StatefulSubtopologies: map[int]bool{1: true}})
	for id, ts := range got {
		stateful := 0
		for _, x := range ts.Active {
			if x.Subtopology == 1 {
				stateful++
			}
		}
		if stateful != 2 || len(ts.Active) != 4 {
			t.Errorf("member %s: %d active tasks, %d stateful; want 4 and 2: %v", id, len(ts.Active), stateful, got)
		}
	}
}

// TestEachSubtopologySpread: a member that ran everything and a member
// joining end up with an even share of every sub-topology, not one
// sub-topology each.
func TestEachSubtopologySpread(t *testing.T) {
	p := Params{StatefulSubtopologies: statefulSet(1, 2)}
	tasks := allTasks(3, 4)
	members := fresh(1)
	plan := AssignTasks(members, tasks, p)
	members = append(rejoin(members, plan, 1), Member{ID: "new", Sub: Subscription{ProcessID: "pnew"}})
	plan = AssignTasks(members, tasks, p)
	for id, ts := range plan {
		per := map[int]int{}
		for _, task := range ts.Active {
			per[task.Subtopology]++
		}
		for sub := range 3 {
			if per[sub] != 2 {
				t.Errorf("member %s has %d tasks of sub-topology %d, want 2: %v", id, per[sub], sub, ts.Active)
			}
		}
	}
}

// TestFailoverGoesToStandby: when a member dies, each of its stateful
// tasks goes to the member holding its standby, even when that puts the
// member one stateful task over the even share, so the failover restores
// only the tail. Checked for every member dying, 3 and 4 members.
func TestFailoverGoesToStandby(t *testing.T) {
	for _, n := range []int{3, 4} {
		p := Params{StatefulSubtopologies: statefulSet(1), NumStandbyReplicas: 1}
		tasks := allTasks(2, 4)
		members := fresh(n)
		plan := AssignTasks(members, tasks, p)
		members = rejoin(members, plan, 1)
		plan = AssignTasks(members, tasks, p)
		for dead := range n {
			survivors := rejoin(append(slices.Clone(members[:dead]), members[dead+1:]...), plan, 2)
			holder := map[Task]string{}
			for _, m := range survivors {
				for _, task := range plan[m.ID].Standby {
					holder[task] = m.ID
				}
			}
			after := AssignTasks(survivors, tasks, p)
			for _, task := range plan[members[dead].ID].Active {
				if !p.StatefulSubtopologies[task.Subtopology] {
					continue
				}
				if got := ownerOf(after, task); got != holder[task] {
					t.Errorf("%d members, %s dies: its task %s went to %s, its standby is on %s", n, members[dead].ID, task, got, holder[task])
				}
			}
		}
	}
}

func ownerOf(plan map[string]Tasks, task Task) string {
	for id, ts := range plan {
		if slices.Contains(ts.Active, task) {
			return id
		}
	}
	return ""
}
