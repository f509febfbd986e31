package assign

import (
	"cmp"
	"slices"
)

// Member is one member's input to AssignTasks.
type Member struct {
	ID  string
	Sub Subscription
}

// Params are the assignment settings every member shares.
type Params struct {
	// StatefulSubtopologies marks the sub-topologies whose tasks have
	// state. Default nil: all stateless.
	StatefulSubtopologies map[int]bool
	// NumStandbyReplicas is the number of standbys per stateful task.
	// Default 0; negative counts as 0.
	NumStandbyReplicas int
}

// Tasks is what one member runs.
type Tasks struct {
	Active  []Task // sorted
	Standby []Task // sorted
}

// Assign spreads tasks over members as active tasks only, all stateless:
// AssignTasks with zero Params. It is kept for callers of the first
// version of this package.
func Assign(members []Member, tasks []Task) map[string][]Task {
	out := make(map[string][]Task, len(members))
	for id, ts := range AssignTasks(members, tasks, Params{}) {
		out[id] = ts.Active
	}
	return out
}

// AssignTasks computes a plan: the result has an entry for every member.
// It does not modify its arguments, and it is deterministic: members are
// taken in member id order and tasks in task order whatever the input
// order, so the same group yields the same plan on every leader.
//
// Active tasks. With n tasks and m members every member gets n/m or n/m+1
// tasks (exactly n%m of them get one more), so counts differ by at most one.
// Within that bound each task is placed by the first rule that applies:
//
//  1. Sticky: the member that ran it as active last time keeps it (stateful
//     tasks are kept first, since moving them costs a restore). If several
//     claim it (a member that missed a rebalance), the one holding the most
//     state wins, then the lowest member id.
//  2. State: a stateful task goes to the member holding the most of its
//     state: the highest TaskOffsetSums entry (a member listing it in
//     PrevTasks or StandbyTasks without an offset sum counts as sum 0),
//     then the least loaded, then the lowest member id.
//  3. Otherwise the least loaded member, then the lowest member id.
//
// Standby tasks. Each stateful task gets min(NumStandbyReplicas, m-1)
// standbys on distinct members other than its active. Tasks are taken in
// order and each standby goes to the best eligible member by: standby count
// still under the fair share ceil(standbys/m), then holding the task's state
// (highest offset sum, as above), then fewest standbys, then least total
// load, then lowest member id. A last pass evens out standby counts where
// that greedy order left them more than one apart, by chains of moves
// between eligible members (preferring to move standbys to members that hold
// their state). Counts then differ by at most one unless the rules forbid it:
// with two members and one replica, say, each member is standby for exactly
// the other's stateful actives, and active balance counts all tasks, not
// stateful ones alone.
func AssignTasks(members []Member, tasks []Task, p Params) map[string]Tasks {
	ms := slices.Clone(members)
	slices.SortStableFunc(ms, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	ts := sortedTasks(tasks)
	out := make(map[string]Tasks, len(ms))
	for _, m := range ms {
		out[m.ID] = Tasks{}
	}
	if len(ms) == 0 {
		return out
	}
	s := newPlanner(ms, ts, p)
	s.assignActive()
	s.assignStandby(p.NumStandbyReplicas)
	for i, m := range ms {
		slices.SortFunc(s.active[i], compareTasks)
		slices.SortFunc(s.standby[i], compareTasks)
		out[m.ID] = Tasks{Active: s.active[i], Standby: s.standby[i]}
	}
	return out
}

// planner holds the working state of one AssignTasks call; members are
// referred to by their index in id order.
type planner struct {
	ms       []Member
	tasks    []Task
	stateful func(Task) bool
	prev     []map[Task]bool // last active, by member
	stby     []map[Task]bool // last standby, by member

	owner   map[Task]int // active placement so far
	active  [][]Task
	standby [][]Task
	has     []map[Task]bool // standby placement so far, by member
}

func newPlanner(ms []Member, ts []Task, p Params) *planner {
	s := &planner{
		ms:       ms,
		tasks:    ts,
		stateful: func(t Task) bool { return p.StatefulSubtopologies[t.Subtopology] },
		prev:     make([]map[Task]bool, len(ms)),
		stby:     make([]map[Task]bool, len(ms)),
		owner:    make(map[Task]int, len(ts)),
		active:   make([][]Task, len(ms)),
		standby:  make([][]Task, len(ms)),
	}
	for i, m := range ms {
		s.prev[i] = set(m.Sub.PrevTasks)
		s.stby[i] = set(m.Sub.StandbyTasks)
	}
	return s
}

func set(ts []Task) map[Task]bool {
	out := make(map[Task]bool, len(ts))
	for _, t := range ts {
		out[t] = true
	}
	return out
}

// state reports whether member i holds state for t, and how much.
func (s *planner) state(i int, t Task) (sum int64, ok bool) {
	if sum, ok := s.ms[i].Sub.TaskOffsetSums[t]; ok {
		return sum, true
	}
	return 0, s.prev[i][t] || s.stby[i][t]
}

// moreState compares members i and j by the state they hold for t: negative
// if i holds more (holding any beats holding none, then higher sum).
func (s *planner) moreState(i, j int, t Task) int {
	si, oki := s.state(i, t)
	sj, okj := s.state(j, t)
	if oki != okj {
		if oki {
			return -1
		}
		return 1
	}
	return cmp.Compare(sj, si)
}

func (s *planner) assignActive() {
	n, m := len(s.tasks), len(s.ms)
	base, extra := n/m, n%m
	big := 0 // members at base+1
	room := func(i int) bool {
		l := len(s.active[i])
		return l < base || (l == base && big < extra)
	}
	// Stateful tasks are also balanced among themselves, as Kafka Streams
	// does: otherwise one member could end up with all the state and the
	// others with only stateless tasks. Total balance wins when the two
	// cannot both hold.
	ns := 0
	for _, t := range s.tasks {
		if s.stateful(t) {
			ns++
		}
	}
	sBase, sExtra, sBig := ns/m, ns%m, 0
	sCount := make([]int, m)
	sRoom := func(i int, t Task) bool {
		if !s.stateful(t) {
			return true
		}
		l := sCount[i]
		return l < sBase || (l == sBase && sBig < sExtra)
	}
	// Each sub-topology's tasks are spread too (at most ceil(its tasks/m)
	// per member on the sticky and state-aware passes): sub-topologies do
	// different work, and a member holding all of one would carry all of
	// that load.
	perSub := map[int]int{}
	for _, t := range s.tasks {
		perSub[t.Subtopology]++
	}
	subCount := make([]map[int]int, m)
	for i := range subCount {
		subCount[i] = map[int]int{}
	}
	subRoom := func(i int, t Task) bool {
		return subCount[i][t.Subtopology] < (perSub[t.Subtopology]+m-1)/m
	}
	give := func(i int, t Task) {
		subCount[i][t.Subtopology]++
		s.active[i] = append(s.active[i], t)
		s.owner[t] = i
		if len(s.active[i]) == base+1 {
			big++
		}
		if s.stateful(t) {
			sCount[i]++
			if sCount[i] == sBase+1 {
				sBig++
			}
		}
	}
	// Every rule below respects room, and the last gives to the least
	// loaded, which never exceeds base+1 and only reaches it once every
	// member has base: so counts end between base and base+1.

	// 1. Sticky, stateful tasks first.
	order := slices.Clone(s.tasks)
	slices.SortStableFunc(order, func(a, b Task) int {
		sa, sb := s.stateful(a), s.stateful(b)
		switch {
		case sa == sb:
			return 0
		case sa:
			return -1
		}
		return 1
	})
	var claimants []int
	for _, t := range order {
		claimants = claimants[:0]
		for i := range s.ms {
			if s.prev[i][t] {
				claimants = append(claimants, i)
			}
		}
		slices.SortStableFunc(claimants, func(i, j int) int { return s.moreState(i, j, t) })
		for _, i := range claimants {
			if room(i) && sRoom(i, t) && subRoom(i, t) {
				give(i, t)
				break
			}
		}
	}

	// 2. Stateful tasks to the member holding the most of their state.
	for _, t := range s.tasks {
		if _, done := s.owner[t]; done || !s.stateful(t) {
			continue
		}
		best := -1
		for i := range s.ms {
			// A member holding the task's state may go one stateful task
			// over the even share: restoring a whole store to keep the
			// share exact costs more than the imbalance, as Kafka
			// Streams' high-availability assignor also prefers caught-up
			// clients.
			if _, ok := s.state(i, t); !ok || !room(i) || sCount[i] > sBase || subCount[i][t.Subtopology] > (perSub[t.Subtopology]+m-1)/m {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			c := s.moreState(i, best, t)
			if c == 0 {
				c = cmp.Compare(len(s.active[i]), len(s.active[best]))
			}
			if c < 0 {
				best = i
			}
		}
		if best >= 0 {
			give(best, t)
		}
	}

	// 3. The rest to the least loaded.
	// Stateful tasks first, to the member with the fewest stateful tasks
	// among those with room on both counts; then the stateless ones.
	for _, pass := range []bool{true, false} {
		for _, t := range s.tasks {
			if _, done := s.owner[t]; done || s.stateful(t) != pass {
				continue
			}
			best := -1
			for i := 0; i < m; i++ {
				if !room(i) || !sRoom(i, t) {
					continue
				}
				switch {
				case best < 0:
					best = i
				case pass && sCount[i] != sCount[best]:
					if sCount[i] < sCount[best] {
						best = i
					}
				case subCount[i][t.Subtopology] != subCount[best][t.Subtopology]:
					if subCount[i][t.Subtopology] < subCount[best][t.Subtopology] {
						best = i
					}
				case len(s.active[i]) < len(s.active[best]):
					best = i
				}
			}
			if best < 0 { // the two balances conflict: keep the total one
				best = 0
				for i := 1; i < m; i++ {
					if len(s.active[i]) < len(s.active[best]) {
						best = i
					}
				}
			}
			give(best, t)
		}
	}
}

func (s *planner) assignStandby(replicas int) {
	m := len(s.ms)
	replicas = min(replicas, m-1)
	if replicas <= 0 {
		return
	}
	var stateful []Task
	for _, t := range s.tasks {
		if s.stateful(t) {
			stateful = append(stateful, t)
		}
	}
	s.has = make([]map[Task]bool, m)
	for i := range s.has {
		s.has[i] = map[Task]bool{}
	}
	fair := (len(stateful)*replicas + m - 1) / m
	// better reports whether member i is a better standby for t than j.
	better := func(i, j int, t Task) bool {
		ui, uj := len(s.standby[i]) < fair, len(s.standby[j]) < fair
		if ui != uj {
			return ui
		}
		if c := s.moreState(i, j, t); c != 0 {
			return c < 0
		}
		if c := cmp.Compare(len(s.standby[i]), len(s.standby[j])); c != 0 {
			return c < 0
		}
		li, lj := len(s.active[i])+len(s.standby[i]), len(s.active[j])+len(s.standby[j])
		return li < lj // equal: keep j, the lower id
	}
	for _, t := range stateful {
		for range replicas {
			best := -1
			for i := range s.ms {
				if s.canStandby(i, t) && (best < 0 || better(i, best, t)) {
					best = i
				}
			}
			s.has[best][t] = true
			s.standby[best] = append(s.standby[best], t)
		}
	}
	s.balanceStandby(stateful)
}

// canStandby reports whether member i may take a standby of t: it is not
// t's active and has no standby of t yet.
func (s *planner) canStandby(i int, t Task) bool {
	return s.owner[t] != i && !s.has[i][t]
}

// balanceStandby evens out standby counts the greedy pass left uneven (it
// places one task at a time, so an early tie can leave the last tasks only
// full members to go to). While some member has two more standbys than
// another it can reach through a chain of allowed moves (x gives one of its
// standbys to y, y one of its own to z, ...), it applies the chain: the
// first member loses one, the last gains one, those between are unchanged.
// Each chain lowers the sum of squared counts, so this ends; when it ends
// no such chain is left, which is as even as the placement rules allow.
func (s *planner) balanceStandby(stateful []Task) {
	type hop struct {
		from int
		task Task
	}
	m := len(s.ms)
	order := make([]int, m)
	via := make([]hop, m)
	seen := make([]bool, m)
	for {
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(len(s.standby[j]), len(s.standby[i])) })
		applied := false
		for _, src := range order {
			clear(seen)
			seen[src] = true
			queue := []int{src}
			dst := -1
			for len(queue) > 0 && dst < 0 {
				x := queue[0]
				queue = queue[1:]
				for y := range s.ms {
					if seen[y] {
						continue
					}
					t, ok := s.bestMove(x, y, stateful)
					if !ok {
						continue
					}
					seen[y] = true
					via[y] = hop{x, t}
					if len(s.standby[y]) <= len(s.standby[src])-2 {
						dst = y
						break
					}
					queue = append(queue, y)
				}
			}
			if dst < 0 {
				continue
			}
			for y := dst; y != src; y = via[y].from {
				x, t := via[y].from, via[y].task
				delete(s.has[x], t)
				s.standby[x] = slices.DeleteFunc(s.standby[x], func(u Task) bool { return u == t })
				s.has[y][t] = true
				s.standby[y] = append(s.standby[y], t)
			}
			applied = true
			break
		}
		if !applied {
			return
		}
	}
}

// bestMove picks which of x's standbys to hand to y: one y may take, the
// one y holds the most state for, then the one x holds the least for, then
// the first in task order.
func (s *planner) bestMove(x, y int, stateful []Task) (Task, bool) {
	var best Task
	found := false
	for _, t := range stateful {
		if !s.has[x][t] || !s.canStandby(y, t) {
			continue
		}
		if !found || s.betterMove(x, y, t, best) {
			best, found = t, true
		}
	}
	return best, found
}

// betterMove reports whether moving t from x to y keeps more state in
// place than moving u.
func (s *planner) betterMove(x, y int, t, u Task) bool {
	yt, okyt := s.state(y, t)
	yu, okyu := s.state(y, u)
	if okyt != okyu {
		return okyt
	}
	if yt != yu {
		return yt > yu
	}
	xt, okxt := s.state(x, t)
	xu, okxu := s.state(x, u)
	if okxt != okxu {
		return !okxt
	}
	return xt < xu
}
