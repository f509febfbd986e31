package assign

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Task is a task id as the assignor sees it: a sub-topology on one
// partition number. Its text form (also its JSON form) is "<sub>_<part>",
// as Kafka Streams prints task ids, e.g. "0_3".
type Task struct {
	Subtopology int
	Partition   int32
}

func (t Task) String() string {
	return strconv.Itoa(t.Subtopology) + "_" + strconv.Itoa(int(t.Partition))
}

// MarshalText implements encoding.TextMarshaler, so a Task is a JSON string
// and can key a JSON object.
func (t Task) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler for the form
// MarshalText writes.
func (t *Task) UnmarshalText(b []byte) error {
	s, p, ok := bytes.Cut(b, []byte("_"))
	if !ok {
		return fmt.Errorf("task %q: want <subtopology>_<partition>", b)
	}
	st, err := strconv.Atoi(string(s))
	if err != nil || st < 0 {
		return fmt.Errorf("task %q: bad sub-topology", b)
	}
	pt, err := strconv.ParseInt(string(p), 10, 32)
	if err != nil || pt < 0 {
		return fmt.Errorf("task %q: bad partition", b)
	}
	*t = Task{Subtopology: st, Partition: int32(pt)}
	return nil
}

func compareTasks(a, b Task) int {
	if c := cmp.Compare(a.Subtopology, b.Subtopology); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// sortedTasks returns a sorted copy of ts without duplicates.
func sortedTasks(ts []Task) []Task {
	out := slices.Clone(ts)
	slices.SortFunc(out, compareTasks)
	return slices.Compact(out)
}

// SubscriptionVersion is the version of the subscription user data this
// package writes. Version 1 (PrevTasks only, tasks as {"s","p"} objects) is
// still read, so a leader of this version can balance members of the last.
const SubscriptionVersion = 2

// Subscription is the user data each member sends when it joins: what it
// ran and what state it holds, so the leader can keep tasks where they are
// cheapest to run. Its JSON form is the wire format.
type Subscription struct {
	// Version is set to SubscriptionVersion by Balancer.JoinGroupMetadata.
	Version int `json:"v"`
	// ProcessID identifies the application instance; one member per
	// process.
	ProcessID string `json:"pid"`
	// Endpoint is the instance's "host:port" for interactive queries,
	// empty if it serves none (application.server in Kafka Streams).
	Endpoint string `json:"ep,omitempty"`
	// PrevTasks are the tasks the member ran as active before this
	// rebalance.
	PrevTasks []Task `json:"prev,omitempty"`
	// StandbyTasks are the tasks the member ran as standby before this
	// rebalance.
	StandbyTasks []Task `json:"stby,omitempty"`
	// TaskOffsetSums has an entry for every task whose state the member
	// holds locally (active, standby, or left on disk from an earlier
	// assignment, as its checkpoint files say): the sum over the task's
	// changelog partitions of the offsets its state has reached. Higher
	// means more caught up, so less to restore.
	TaskOffsetSums map[Task]int64 `json:"sums,omitempty"`
}

// encodeSubscription writes sub as versioned JSON; task lists are sorted
// (on copies) so an unchanged subscription encodes to the same bytes and
// does not make the coordinator see new metadata.
func encodeSubscription(sub Subscription) []byte {
	sub.Version = SubscriptionVersion
	sub.PrevTasks = sortedTasks(sub.PrevTasks)
	sub.StandbyTasks = sortedTasks(sub.StandbyTasks)
	b, err := json.Marshal(sub) // encoding/json sorts map keys
	if err != nil {
		panic(fmt.Sprintf("assign: encode subscription: %v", err)) // plain data: cannot happen
	}
	return b
}

// subscriptionV1 is the version 1 wire format.
type subscriptionV1 struct {
	ProcessID string `json:"pid"`
	Endpoint  string `json:"ep,omitempty"`
	PrevTasks []struct {
		Subtopology int   `json:"s"`
		Partition   int32 `json:"p"`
	} `json:"prev,omitempty"`
}

// decodeSubscription reads any version this package knows. A later
// version is read as this one (unknown fields ignored): later versions
// must only add fields, or bump the version and be handled here.
func decodeSubscription(b []byte) (Subscription, error) {
	var v struct {
		Version int `json:"v"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Subscription{}, fmt.Errorf("subscription user data: %w", err)
	}
	switch {
	case v.Version < 1:
		return Subscription{}, fmt.Errorf("subscription user data: unknown version %d", v.Version)
	case v.Version == 1:
		var old subscriptionV1
		if err := json.Unmarshal(b, &old); err != nil {
			return Subscription{}, fmt.Errorf("subscription user data v1: %w", err)
		}
		sub := Subscription{Version: 1, ProcessID: old.ProcessID, Endpoint: old.Endpoint}
		for _, t := range old.PrevTasks {
			sub.PrevTasks = append(sub.PrevTasks, Task{Subtopology: t.Subtopology, Partition: t.Partition})
		}
		return sub, nil
	}
	var sub Subscription
	if err := json.Unmarshal(b, &sub); err != nil {
		return Subscription{}, fmt.Errorf("subscription user data v%d: %w", v.Version, err)
	}
	return sub, nil
}

// AssignmentVersion is the version of the assignment user data this
// package writes.
const AssignmentVersion = 1

// Assignment is what one member learns from a rebalance: its own tasks and
// where every task of the application runs. Its JSON form is the wire format
// (the user data of the member's kmsg.ConsumerMemberAssignment).
type Assignment struct {
	// Version is the AssignmentVersion of the leader that wrote it.
	Version int `json:"v"`
	// Active are this member's active tasks, sorted. The member's
	// consumer partitions are exactly their source partitions.
	Active []Task `json:"active,omitempty"`
	// Standby are this member's standby tasks, sorted: it keeps their
	// state caught up from the changelogs but gets no input partitions.
	Standby []Task `json:"stby,omitempty"`
	// Hosts has one entry for every member of the group, this one
	// included, sorted by Endpoint then ProcessID.
	Hosts []Host `json:"hosts"`
	// Partitions is the number of partitions (so of tasks) of each
	// sub-topology; a key's task in sub-topology s is
	// Task{s, partition(key) mod Partitions[s]}.
	Partitions map[int]int32 `json:"parts"`
}

// Host is one member as the cluster map for interactive queries sees it.
type Host struct {
	ProcessID string `json:"pid"`
	// Endpoint is the member's "host:port", empty if it serves no queries.
	Endpoint string `json:"ep,omitempty"`
	// Active and Standby are the member's tasks, sorted.
	Active  []Task `json:"active,omitempty"`
	Standby []Task `json:"stby,omitempty"`
}

// ActiveHost returns the member that runs t as active.
func (a Assignment) ActiveHost(t Task) (Host, bool) {
	for _, h := range a.Hosts {
		if _, ok := slices.BinarySearchFunc(h.Active, t, compareTasks); ok {
			return h, true
		}
	}
	return Host{}, false
}

// StandbyHosts returns the members that hold a standby of t.
func (a Assignment) StandbyHosts(t Task) []Host {
	var out []Host
	for _, h := range a.Hosts {
		if _, ok := slices.BinarySearchFunc(h.Standby, t, compareTasks); ok {
			out = append(out, h)
		}
	}
	return out
}

// ByEndpoint returns the hosts keyed by endpoint; members without an
// endpoint are left out.
func (a Assignment) ByEndpoint() map[string]Host {
	out := make(map[string]Host, len(a.Hosts))
	for _, h := range a.Hosts {
		if h.Endpoint != "" {
			out[h.Endpoint] = h
		}
	}
	return out
}

func (a Assignment) clone() Assignment {
	a.Active = slices.Clone(a.Active)
	a.Standby = slices.Clone(a.Standby)
	a.Hosts = slices.Clone(a.Hosts)
	for i := range a.Hosts {
		a.Hosts[i].Active = slices.Clone(a.Hosts[i].Active)
		a.Hosts[i].Standby = slices.Clone(a.Hosts[i].Standby)
	}
	a.Partitions = maps.Clone(a.Partitions)
	return a
}

// decodeAssignment reads the assignment user data. As with subscriptions,
// a later version is read as this one.
func decodeAssignment(b []byte) (Assignment, error) {
	var a Assignment
	if err := json.Unmarshal(b, &a); err != nil {
		return Assignment{}, fmt.Errorf("assignment user data: %w", err)
	}
	if a.Version < 1 {
		return Assignment{}, fmt.Errorf("assignment user data: unknown version %d", a.Version)
	}
	return a, nil
}

// syncPlan is the leader's plan in SyncGroup form: unlike kgo.BalancePlan
// it carries each member's Assignment as user data.
type syncPlan struct {
	assignments []kmsg.SyncGroupRequestGroupAssignment
}

func (p *syncPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	return p.assignments
}

// newSyncPlan encodes plan for members: each member's consumer assignment
// is the source partitions of its active tasks (every topic of the task's
// sub-topology, so co-partitioned topics go together) plus its Assignment.
func newSyncPlan(members []Member, plan map[string]Tasks, bySub map[int][]string, topics map[string]int32, partitions map[int]int32) (*syncPlan, error) {
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	hosts := make([]Host, 0, len(members))
	for _, m := range members {
		ts := plan[m.ID]
		hosts = append(hosts, Host{ProcessID: m.Sub.ProcessID, Endpoint: m.Sub.Endpoint, Active: ts.Active, Standby: ts.Standby})
	}
	slices.SortStableFunc(hosts, func(a, b Host) int {
		if c := cmp.Compare(a.Endpoint, b.Endpoint); c != 0 {
			return c
		}
		return cmp.Compare(a.ProcessID, b.ProcessID)
	})

	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(members))
	for _, m := range members {
		ts := plan[m.ID]
		byTopic := map[string][]int32{}
		for _, t := range ts.Active {
			for _, topic := range bySub[t.Subtopology] {
				if t.Partition < topics[topic] {
					byTopic[topic] = append(byTopic[topic], t.Partition)
				}
			}
		}
		ka := kmsg.NewConsumerMemberAssignment()
		ka.Version = 0
		for _, topic := range slices.Sorted(maps.Keys(byTopic)) {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic = topic
			at.Partitions = byTopic[topic]
			slices.Sort(at.Partitions)
			ka.Topics = append(ka.Topics, at)
		}
		ud, err := json.Marshal(Assignment{
			Version:    AssignmentVersion,
			Active:     ts.Active,
			Standby:    ts.Standby,
			Hosts:      hosts,
			Partitions: partitions,
		})
		if err != nil {
			return nil, fmt.Errorf("assign: encode assignment for member %s: %w", m.ID, err)
		}
		ka.UserData = ud
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID = m.ID
		sa.MemberAssignment = ka.AppendTo(nil)
		out = append(out, sa)
	}
	return &syncPlan{assignments: out}, nil
}
