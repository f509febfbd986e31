// Package assign is the application's consumer-group balancer: it hands out
// whole tasks (a sub-topology on one partition number, with every source
// topic's partition of that number) instead of single partitions, so
// co-partitioned topics always land on the same member. Tasks are balanced
// by count and stay with their previous owner when that keeps the balance.
//
// The protocol is eager: every member gives up its partitions at the start
// of a rebalance. That costs one commit per rebalance and keeps the
// runtime's hand-over simple; cooperative rebalancing arrives with standby
// replicas.
package assign

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProtocolName is the group protocol name members agree on.
const ProtocolName = "kstreams"

// Task is a task id as the assignor sees it.
type Task struct {
	Subtopology int   `json:"s"`
	Partition   int32 `json:"p"`
}

// Subscription is the user data each member sends when it joins.
type Subscription struct {
	Version   int    `json:"v"`
	ProcessID string `json:"pid"`
	Endpoint  string `json:"ep,omitempty"`
	// PrevTasks are the tasks the member ran before this rebalance.
	PrevTasks []Task `json:"prev,omitempty"`
}

// Balancer implements kgo.GroupBalancer for one application.
type Balancer struct {
	// Subtopologies maps each source topic to its sub-topology.
	Subtopologies map[string]int
	// Subscription returns this member's current user data.
	Subscription func() Subscription
}

var _ kgo.GroupBalancer = (*Balancer)(nil)

func (b *Balancer) ProtocolName() string { return ProtocolName }
func (b *Balancer) IsCooperative() bool  { return false }

func (b *Balancer) JoinGroupMetadata(topics []string, _ map[string][]int32, _ int32) []byte {
	sub := b.Subscription()
	sub.Version = 1
	sort.Slice(sub.PrevTasks, func(i, j int) bool { return less(sub.PrevTasks[i], sub.PrevTasks[j]) })
	ud, _ := json.Marshal(sub) // cannot fail: plain struct
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 0
	meta.Topics = topics
	meta.UserData = ud
	return meta.AppendTo(nil)
}

func (b *Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *Balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(balanceFunc(b.balance), members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

type balanceFunc func(*kgo.ConsumerBalancer, map[string]int32) kgo.IntoSyncAssignment

func (f balanceFunc) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	return f(cb, topics)
}

func less(a, b Task) bool {
	if a.Subtopology != b.Subtopology {
		return a.Subtopology < b.Subtopology
	}
	return a.Partition < b.Partition
}

// Member is one member's input to Assign.
type Member struct {
	ID  string
	Sub Subscription
}

// Assign spreads tasks over members: balanced by count (no member has more
// than one task above another), each task kept by its previous owner when
// that owner still has room. Members and tasks are handled in sorted order,
// so every leader computes the same plan.
func Assign(members []Member, tasks []Task) map[string][]Task {
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	sort.Slice(tasks, func(i, j int) bool { return less(tasks[i], tasks[j]) })
	out := make(map[string][]Task, len(members))
	if len(members) == 0 {
		return out
	}
	// With n tasks and m members, n%m members get one more task than the rest.
	base, extra := len(tasks)/len(members), len(tasks)%len(members)
	load := map[string]int{}
	bigOnes := 0 // members that reached base+1
	prevOwner := map[Task]string{}
	for _, m := range members {
		for _, t := range m.Sub.PrevTasks {
			if _, taken := prevOwner[t]; !taken {
				prevOwner[t] = m.ID
			}
		}
	}
	var rest []Task
	for _, t := range tasks {
		owner, ok := prevOwner[t]
		if ok {
			l := load[owner]
			limit := base + 1
			if extra == 0 || (l+1 > base && bigOnes >= extra) {
				limit = base
			}
			if l < limit {
				out[owner] = append(out[owner], t)
				load[owner] = l + 1
				if l+1 == base+1 {
					bigOnes++
				}
				continue
			}
		}
		rest = append(rest, t)
	}
	for _, t := range rest {
		best := ""
		for _, m := range members {
			if best == "" || load[m.ID] < load[best] {
				best = m.ID
			}
		}
		out[best] = append(out[best], t)
		load[best]++
	}
	return out
}

func (b *Balancer) balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	// Tasks: one per sub-topology and partition number.
	bySub := map[int][]string{}
	for topic, st := range b.Subtopologies {
		if _, ok := topics[topic]; ok {
			bySub[st] = append(bySub[st], topic)
		}
	}
	var tasks []Task
	for st, ts := range bySub {
		sort.Strings(ts)
		var n int32
		for _, topic := range ts {
			if p := topics[topic]; p > n {
				n = p
			}
		}
		for p := int32(0); p < n; p++ {
			tasks = append(tasks, Task{Subtopology: st, Partition: p})
		}
	}
	var members []Member
	byID := map[string]*kmsg.JoinGroupResponseMember{}
	var parseErr error
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		byID[m.MemberID] = m
		var sub Subscription
		if len(meta.UserData) > 0 {
			if err := json.Unmarshal(meta.UserData, &sub); err != nil && parseErr == nil {
				parseErr = fmt.Errorf("member %s: subscription user data: %w", m.MemberID, err)
			}
		}
		members = append(members, Member{ID: m.MemberID, Sub: sub})
	})
	if parseErr != nil {
		cb.SetError(parseErr)
		return cb.NewPlan()
	}
	plan := cb.NewPlan()
	for member, ts := range Assign(members, tasks) {
		for _, t := range ts {
			for _, topic := range bySub[t.Subtopology] {
				if t.Partition < topics[topic] {
					plan.AddPartition(byID[member], topic, t.Partition)
				}
			}
		}
	}
	return plan
}
