package assign

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// group is a consumer group of Balancers, one per member, as each
// application instance would configure it.
type group struct {
	topics  map[string]int32 // partition counts
	subOf   map[string]int
	members []string
	byID    map[string]*Balancer
	subs    map[string]Subscription
}

func newGroup(members int, subOf map[string]int, topics map[string]int32, stateful map[int]bool, replicas int) *group {
	g := &group{topics: topics, subOf: subOf, byID: map[string]*Balancer{}, subs: map[string]Subscription{}}
	for i := range members {
		id := fmt.Sprintf("member-%d", i)
		g.members = append(g.members, id)
		// Every other member serves queries.
		ep := ""
		if i%2 == 0 {
			ep = fmt.Sprintf("host-%d:8080", i)
		}
		g.subs[id] = Subscription{ProcessID: fmt.Sprintf("proc-%d", i), Endpoint: ep}
		g.byID[id] = &Balancer{
			Subtopologies:         subOf,
			StatefulSubtopologies: stateful,
			NumStandbyReplicas:    replicas,
			Subscription:          func() Subscription { return g.subs[id] },
		}
	}
	return g
}

// join returns the JoinGroup response members the coordinator would hand
// the leader, in the given member order.
func (g *group) join(order []string) []kmsg.JoinGroupResponseMember {
	topics := slices.Sorted(maps.Keys(g.topics))
	var out []kmsg.JoinGroupResponseMember
	for _, id := range order {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = id
		m.ProtocolMetadata = g.byID[id].JoinGroupMetadata(topics, nil, -1)
		out = append(out, m)
	}
	return out
}

// balance runs the leader's side as kgo does and returns the SyncGroup
// assignments.
func (g *group) balance(t *testing.T, leader string, order []string) []kmsg.SyncGroupRequestGroupAssignment {
	t.Helper()
	mb, interests, err := g.byID[leader].MemberBalancer(g.join(order))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(interests, setOf(slices.Collect(maps.Keys(g.topics)))) {
		t.Fatalf("member topics %v, want %v", interests, g.topics)
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(g.topics)
	if err != nil {
		t.Fatal(err)
	}
	return into.IntoSyncAssignment()
}

func setOf(ss []string) map[string]struct{} {
	out := map[string]struct{}{}
	for _, s := range ss {
		out[s] = struct{}{}
	}
	return out
}

// balancerCases: three sub-topologies, two of them joins of co-partitioned
// topics.
var balancerCases = []struct {
	name     string
	members  int
	parts    int32
	replicas int
}{
	{"one member one partition", 1, 1, 1},
	{"two members", 2, 4, 1},
	{"three members odd partitions", 3, 7, 1},
	{"four members two standbys", 4, 16, 2},
	{"five members 64 partitions", 5, 64, 1},
}

var (
	testSubOf = map[string]int{"clicks": 0, "views": 0, "orders": 1, "payments": 1, "events": 2}
	stateful  = map[int]bool{0: true, 1: true}
)

func testTopics(parts int32) map[string]int32 {
	out := map[string]int32{}
	for topic := range testSubOf {
		out[topic] = parts
	}
	return out
}

// TestBalancerCoPartitions checks the plan as kgo sends it: every partition
// of every topic goes to exactly one member, and a task's topics (all
// sources of its sub-topology, same partition number) go to the same one.
func TestBalancerCoPartitions(t *testing.T) {
	for _, c := range balancerCases {
		t.Run(c.name, func(t *testing.T) {
			g := newGroup(c.members, testSubOf, testTopics(c.parts), stateful, c.replicas)
			sync := g.balance(t, g.members[0], g.members)
			if len(sync) != c.members {
				t.Fatalf("%d assignments for %d members", len(sync), c.members)
			}
			owner := map[string]map[int32]string{}
			for _, sa := range sync {
				var ka kmsg.ConsumerMemberAssignment
				if err := ka.ReadFrom(sa.MemberAssignment); err != nil {
					t.Fatal(err)
				}
				for _, at := range ka.Topics {
					if owner[at.Topic] == nil {
						owner[at.Topic] = map[int32]string{}
					}
					for _, p := range at.Partitions {
						if o, dup := owner[at.Topic][p]; dup {
							t.Fatalf("%s-%d assigned to %s and %s", at.Topic, p, o, sa.MemberID)
						}
						owner[at.Topic][p] = sa.MemberID
					}
				}
			}
			for topic, sub := range testSubOf {
				for p := range c.parts {
					o, ok := owner[topic][p]
					if !ok {
						t.Fatalf("%s-%d not assigned", topic, p)
					}
					for other, otherSub := range testSubOf {
						if otherSub == sub && owner[other][p] != o {
							t.Fatalf("task %d_%d split: %s-%d on %s, %s-%d on %s", sub, p, topic, p, o, other, p, owner[other][p])
						}
					}
				}
			}
		})
	}
}

// TestBalancerAssignmentRoundTrip sends each member's assignment through
// IntoSyncAssignment and that member's own ParseSyncAssignment: partitions
// are its active tasks' sources, and LatestAssignment has its tasks and the
// complete cluster map.
func TestBalancerAssignmentRoundTrip(t *testing.T) {
	for _, c := range balancerCases {
		t.Run(c.name, func(t *testing.T) {
			g := newGroup(c.members, testSubOf, testTopics(c.parts), stateful, c.replicas)
			for _, id := range g.members {
				if _, ok := g.byID[id].LatestAssignment(); ok {
					t.Fatalf("%s: assignment before any rebalance", id)
				}
			}
			sync := g.balance(t, g.members[len(g.members)-1], g.members)
			got := map[string]Assignment{}
			for _, sa := range sync {
				b := g.byID[sa.MemberID]
				parts, err := b.ParseSyncAssignment(sa.MemberAssignment)
				if err != nil {
					t.Fatal(err)
				}
				a, ok := b.LatestAssignment()
				if !ok {
					t.Fatalf("%s: no assignment after ParseSyncAssignment", sa.MemberID)
				}
				got[sa.MemberID] = a
				want := map[string][]int32{}
				for _, x := range a.Active {
					for topic, sub := range testSubOf {
						if sub == x.Subtopology {
							want[topic] = append(want[topic], x.Partition)
						}
					}
				}
				if !reflect.DeepEqual(parts, want) {
					t.Fatalf("%s: partitions %v, want the active tasks' %v", sa.MemberID, parts, want)
				}
			}

			// One cluster map, the same for everyone, with every member.
			first := got[g.members[0]]
			if first.Version != AssignmentVersion {
				t.Fatalf("version %d", first.Version)
			}
			if want := map[int]int32{0: c.parts, 1: c.parts, 2: c.parts}; !reflect.DeepEqual(first.Partitions, want) {
				t.Fatalf("partitions %v, want %v", first.Partitions, want)
			}
			if len(first.Hosts) != c.members {
				t.Fatalf("%d hosts for %d members", len(first.Hosts), c.members)
			}
			byProc := map[string]Host{}
			for _, h := range first.Hosts {
				byProc[h.ProcessID] = h
			}
			for _, id := range g.members {
				a, sub := got[id], g.subs[id]
				if !reflect.DeepEqual(a.Hosts, first.Hosts) || !reflect.DeepEqual(a.Partitions, first.Partitions) {
					t.Fatalf("%s: cluster map differs from %s's", id, g.members[0])
				}
				h, ok := byProc[sub.ProcessID]
				if !ok || h.Endpoint != sub.Endpoint {
					t.Fatalf("%s: host %+v, want process %s at %q", id, h, sub.ProcessID, sub.Endpoint)
				}
				if !slices.Equal(h.Active, a.Active) || !slices.Equal(h.Standby, a.Standby) {
					t.Fatalf("%s: own tasks %v/%v, host map says %v/%v", id, a.Active, a.Standby, h.Active, h.Standby)
				}
				if sub.Endpoint != "" && !reflect.DeepEqual(first.ByEndpoint()[sub.Endpoint], h) {
					t.Fatalf("%s: ByEndpoint misses %s", id, sub.Endpoint)
				}
			}
			if n := len(first.ByEndpoint()); n != (c.members+1)/2 {
				t.Fatalf("ByEndpoint has %d hosts, want %d", n, (c.members+1)/2)
			}
			wantStandbys := min(c.replicas, c.members-1)
			for _, x := range allTasks(3, int(c.parts)) {
				if _, ok := first.ActiveHost(x); !ok {
					t.Fatalf("task %v: no active host", x)
				}
				want := wantStandbys
				if !stateful[x.Subtopology] {
					want = 0
				}
				if n := len(first.StandbyHosts(x)); n != want {
					t.Fatalf("task %v: %d standby hosts, want %d", x, n, want)
				}
			}

			// LatestAssignment hands out a copy.
			b := g.byID[g.members[0]]
			a, _ := b.LatestAssignment()
			a.Hosts[0].ProcessID = "changed"
			if again, _ := b.LatestAssignment(); again.Hosts[0].ProcessID == "changed" {
				t.Fatal("LatestAssignment shares memory with the balancer")
			}
		})
	}
}

// TestBalancerDeterministic: the SyncGroup bytes depend on the group, not on
// the order members arrive in or on which member leads.
func TestBalancerDeterministic(t *testing.T) {
	for _, c := range balancerCases {
		t.Run(c.name, func(t *testing.T) {
			g := newGroup(c.members, testSubOf, testTopics(c.parts), stateful, c.replicas)
			want := g.balance(t, g.members[0], g.members)
			rev := slices.Clone(g.members)
			slices.Reverse(rev)
			for _, leader := range g.members {
				if got := g.balance(t, leader, rev); !reflect.DeepEqual(got, want) {
					t.Fatalf("leader %s, reversed members: plan differs", leader)
				}
			}
		})
	}
}

// TestBalancerSticky: a full round (join metadata from what each member was
// given) through a member joining keeps every old member's partitions a
// subset of what it had.
func TestBalancerSticky(t *testing.T) {
	g := newGroup(4, testSubOf, testTopics(12), stateful, 1)
	active := g.members[:3]
	before := map[string]Assignment{}
	for _, sa := range g.balance(t, active[0], active) {
		if _, err := g.byID[sa.MemberID].ParseSyncAssignment(sa.MemberAssignment); err != nil {
			t.Fatal(err)
		}
		a, _ := g.byID[sa.MemberID].LatestAssignment()
		before[sa.MemberID] = a
		sub := g.subs[sa.MemberID]
		sub.PrevTasks, sub.StandbyTasks = a.Active, a.Standby
		g.subs[sa.MemberID] = sub
	}
	for _, sa := range g.balance(t, active[0], g.members) {
		if _, err := g.byID[sa.MemberID].ParseSyncAssignment(sa.MemberAssignment); err != nil {
			t.Fatal(err)
		}
		a, _ := g.byID[sa.MemberID].LatestAssignment()
		for _, x := range a.Active {
			if prev, old := before[sa.MemberID]; old && !slices.Contains(prev.Active, x) {
				t.Fatalf("%s: got task %v it did not have", sa.MemberID, x)
			}
		}
	}
}

func TestBalancerBadSubscription(t *testing.T) {
	g := newGroup(2, testSubOf, testTopics(2), nil, 0)
	members := g.join(g.members)
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"clicks"}
	meta.UserData = []byte(`{"v":2,"prev":[{"s":0,"p":1}]}`) // v2 tasks are strings
	members[1].ProtocolMetadata = meta.AppendTo(nil)
	mb, _, err := g.byID[g.members[0]].MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(g.topics)
	if err == nil || !strings.Contains(err.Error(), g.members[1]) {
		t.Fatalf("error %v, want one naming %s", err, g.members[1])
	}
}

func TestParseSyncAssignmentWithoutUserData(t *testing.T) {
	b := &Balancer{}
	ka := kmsg.NewConsumerMemberAssignment()
	at := kmsg.NewConsumerMemberAssignmentTopic()
	at.Topic, at.Partitions = "clicks", []int32{0, 2}
	ka.Topics = append(ka.Topics, at)
	parts, err := b.ParseSyncAssignment(ka.AppendTo(nil))
	if err != nil || !reflect.DeepEqual(parts, map[string][]int32{"clicks": {0, 2}}) {
		t.Fatalf("got %v, %v", parts, err)
	}
	if _, ok := b.LatestAssignment(); ok {
		t.Fatal("assignment without user data reported as decoded")
	}
	parts, err = b.ParseSyncAssignment(nil)
	if err != nil || len(parts) != 0 {
		t.Fatalf("empty assignment: got %v, %v", parts, err)
	}
	if _, err := b.ParseSyncAssignment([]byte{0, 0, 0}); err == nil {
		t.Fatal("truncated assignment parsed")
	}
}

func TestSubscriptionWire(t *testing.T) {
	sub := Subscription{
		ProcessID:      "p1",
		Endpoint:       "h:1",
		PrevTasks:      []Task{{1, 2}, {0, 5}},
		StandbyTasks:   []Task{{2, 0}},
		TaskOffsetSums: map[Task]int64{{1, 2}: 10, {2, 0}: 7},
	}
	b := encodeSubscription(sub)
	if !strings.Contains(string(b), `"prev":["0_5","1_2"]`) || !strings.Contains(string(b), `"sums":{"1_2":10,"2_0":7}`) {
		t.Fatalf("encoded %s", b)
	}
	if !slices.Equal(sub.PrevTasks, []Task{{1, 2}, {0, 5}}) {
		t.Fatal("encodeSubscription sorted the caller's slice")
	}
	got, err := decodeSubscription(b)
	if err != nil {
		t.Fatal(err)
	}
	want := sub
	want.Version = SubscriptionVersion
	want.PrevTasks = []Task{{0, 5}, {1, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip: %+v, want %+v", got, want)
	}

	cases := []struct {
		name string
		data string
		want Subscription
		err  bool
	}{
		{"version 1", `{"v":1,"pid":"old","ep":"h:2","prev":[{"s":1,"p":3}]}`, Subscription{Version: 1, ProcessID: "old", Endpoint: "h:2", PrevTasks: []Task{{1, 3}}}, false},
		{"later version, unknown fields", `{"v":9,"pid":"new","prev":["0_1"],"rack":"r1"}`, Subscription{Version: 9, ProcessID: "new", PrevTasks: []Task{{0, 1}}}, false},
		{"no version", `{"pid":"x"}`, Subscription{}, true},
		{"not json", `kstreams`, Subscription{}, true},
		{"bad task", `{"v":2,"sums":{"zero_one":1}}`, Subscription{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeSubscription([]byte(c.data))
			if (err != nil) != c.err {
				t.Fatalf("error %v, want error %v", err, c.err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestAssignmentWire(t *testing.T) {
	a := Assignment{
		Version:    AssignmentVersion,
		Active:     []Task{{0, 1}},
		Standby:    []Task{{0, 0}},
		Hosts:      []Host{{ProcessID: "p", Endpoint: "h:1", Active: []Task{{0, 1}}, Standby: []Task{{0, 0}}}},
		Partitions: map[int]int32{0: 2},
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeAssignment(b)
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip %s: %+v, %v", b, got, err)
	}
	if _, err := decodeAssignment([]byte(`{"active":["0_1"]}`)); err == nil {
		t.Fatal("assignment without version decoded")
	}
}
