// Package assign is the application's consumer-group balancer: it hands out
// whole tasks (a sub-topology on one partition number, with every source
// topic's partition of that number) instead of single partitions, so
// co-partitioned topics always land on the same member. Active tasks are
// balanced by count, stay with their previous owner, and otherwise go where
// their state already is; stateful tasks also get standby replicas on other
// members. Every member's assignment carries the whole cluster's task map,
// so any instance can route an interactive query to the one that holds a key.
//
// The protocol is eager: every member gives up all its partitions at the
// start of a rebalance. The runtime closes and re-opens its tasks around each
// rebalance anyway, and standbys plus checkpoint files make re-opening a
// task that stays put cheap (its state is on disk and caught up). franz-go
// does allow a cooperative custom balancer: IsCooperative true, and a plan
// that withholds each moving partition until its old owner has revoked it,
// handing it over in a follow-up rebalance, as kgo.BalancePlan's
// AdjustCooperative does for the built-in sticky balancer. That, with a
// runtime that keeps unmoved tasks running through a rebalance, is a later
// improvement.
//
// Size: every member's assignment carries the whole map, so a SyncGroup
// request grows with members × tasks (about 6 bytes a task); at a few
// hundred tasks and ten members that is tens of KiB, far under the broker's
// message limit.
package assign

import (
	"fmt"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProtocolName is the group protocol name members agree on.
const ProtocolName = "kstreams"

// Balancer implements kgo.GroupBalancer for one application. Pass it to
// kgo.Balancers as a pointer and keep that pointer: after every rebalance
// LatestAssignment returns what this member was given. All members of a group
// must agree on Subtopologies, StatefulSubtopologies and NumStandbyReplicas,
// since whichever member the coordinator makes leader computes the plan with
// its own values.
//
// A Balancer must not be copied after first use.
type Balancer struct {
	// Subtopologies maps each source topic to its sub-topology. Topics not
	// in the map are never assigned.
	Subtopologies map[string]int

	// StatefulSubtopologies marks the sub-topologies whose tasks have
	// state stores. Their tasks are placed where their state is and get
	// standby replicas. Default nil: every task is stateless.
	StatefulSubtopologies map[int]bool

	// NumStandbyReplicas is how many standby replicas each stateful task
	// gets, each on a different member than its active and than each
	// other; with fewer other members, as many as there are. Default 0.
	NumStandbyReplicas int

	// Subscription returns this member's current user data; it is called
	// each time the member joins the group. Version is overwritten.
	// Default nil: an empty subscription (no stickiness, no state).
	Subscription func() Subscription

	mu        sync.Mutex
	latest    Assignment
	hasLatest bool
}

var _ kgo.GroupBalancer = (*Balancer)(nil)

// ProtocolName implements kgo.GroupBalancer.
func (b *Balancer) ProtocolName() string { return ProtocolName }

// IsCooperative implements kgo.GroupBalancer: false, see the package doc.
func (b *Balancer) IsCooperative() bool { return false }

// JoinGroupMetadata implements kgo.GroupBalancer: a consumer protocol
// subscription to topics whose user data is this member's Subscription.
func (b *Balancer) JoinGroupMetadata(topics []string, _ map[string][]int32, _ int32) []byte {
	var sub Subscription
	if b.Subscription != nil {
		sub = b.Subscription()
	}
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 0
	meta.Topics = topics
	meta.UserData = encodeSubscription(sub)
	return meta.AppendTo(nil)
}

// ParseSyncAssignment implements kgo.GroupBalancer: it returns the
// partitions of this member's active tasks and keeps the decoded Assignment
// for LatestAssignment. kgo calls it before OnPartitionsAssigned (which it
// calls even when no partition is assigned), so that callback sees the new
// assignment, standbys included.
func (b *Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	parts := map[string][]int32{}
	var a Assignment
	ok := false
	// An empty assignment (the leader assigned nothing, or a coordinator
	// that skipped assignment) is no partitions, not an error.
	if len(assignment) > 0 {
		var ka kmsg.ConsumerMemberAssignment
		if err := ka.ReadFrom(assignment); err != nil {
			return nil, fmt.Errorf("assign: parse sync assignment: %w", err)
		}
		for _, t := range ka.Topics {
			parts[t.Topic] = append(parts[t.Topic], t.Partitions...)
		}
		if len(ka.UserData) > 0 {
			var err error
			if a, err = decodeAssignment(ka.UserData); err != nil {
				return nil, fmt.Errorf("assign: parse sync assignment: %w", err)
			}
			ok = true
		}
	}
	b.mu.Lock()
	b.latest, b.hasLatest = a, ok
	b.mu.Unlock()
	return parts, nil
}

// LatestAssignment returns the assignment decoded by the last
// ParseSyncAssignment, and false if there has been none yet or the last one
// carried no user data (a leader that does not speak this protocol's
// assignment format). The result is a copy the caller may keep and modify.
func (b *Balancer) LatestAssignment() (Assignment, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.hasLatest {
		return Assignment{}, false
	}
	return b.latest.clone(), true
}

// MemberBalancer implements kgo.GroupBalancer. It is only called on the
// group leader.
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

// balance computes the plan on the leader; topics holds the partition count
// of every topic some member subscribed to.
func (b *Balancer) balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	// Tasks: one per sub-topology and partition number, as many partition
	// numbers as its widest source topic has (the runtime checks at start
	// that sources are co-partitioned).
	bySub := map[int][]string{}
	for topic, st := range b.Subtopologies {
		if _, ok := topics[topic]; ok {
			bySub[st] = append(bySub[st], topic)
		}
	}
	partitions := make(map[int]int32, len(bySub))
	var tasks []Task
	for st, ts := range bySub {
		sort.Strings(ts)
		var n int32
		for _, topic := range ts {
			n = max(n, topics[topic])
		}
		partitions[st] = n
		for p := range n {
			tasks = append(tasks, Task{Subtopology: st, Partition: p})
		}
	}

	var members []Member
	var parseErr error
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		var sub Subscription
		if len(meta.UserData) > 0 {
			var err error
			if sub, err = decodeSubscription(meta.UserData); err != nil && parseErr == nil {
				parseErr = fmt.Errorf("assign: member %s: %w", m.MemberID, err)
			}
		}
		members = append(members, Member{ID: m.MemberID, Sub: sub})
	})
	if parseErr != nil {
		cb.SetError(parseErr)
		return nil
	}

	plan := AssignTasks(members, tasks, Params{
		StatefulSubtopologies: b.StatefulSubtopologies,
		NumStandbyReplicas:    b.NumStandbyReplicas,
	})
	sp, err := newSyncPlan(members, plan, bySub, topics, partitions)
	if err != nil {
		cb.SetError(err)
		return nil
	}
	return sp
}
