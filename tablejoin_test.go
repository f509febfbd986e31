package kstreams

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/ktable"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// clickJoinTopology joins clicks (keyed by user) with the users table, and
// views (keyed by view id, valued by user) re-keyed by user with the same
// table through the repartition topic "<app>-views-by-user-repartition".
func clickJoinTopology(t *testing.T) *Topology {
	t.Helper()
	strs := kstream.ConsumedWith(serde.String(), serde.String())
	b := kstream.NewBuilder()
	users := ktable.Table(b, strs, "users", kstream.MaterializedAs[string, string]("users"))
	clicks := kstream.Stream(b, strs, "clicks")
	kstream.JoinTable(clicks, users, func(click, city string) string { return click + "@" + city }).To("clicks-enriched")
	views := kstream.Stream(b, strs, "views")
	byUser := kstream.SelectKey(views, func(_, user string) string { return user })
	kstream.LeftJoinTable(byUser, users, func(user string, city *string) string {
		if city == nil {
			return user + "@?"
		}
		return user + "@" + *city
	}, kstream.JoinedAs[string, string, string]("views-by-user")).To("views-enriched")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// A stream–table join over Kafka: users and clicks have 4 partitions each;
// views have 2, and their repartition topic takes the users table's 4.
func TestStreamTableJoinOverKafka(t *testing.T) {
	c := testutil.NewCluster(t)
	for topic, n := range map[string]int32{"users": 4, "clicks": 4, "views": 2, "clicks-enriched": 4, "views-enriched": 4} {
		c.CreateTopic(t, topic, n)
	}
	start(t, clickJoinTopology(t), Config{ApplicationID: "tj", Brokers: c.Addrs(), StateDir: t.TempDir(), CommitInterval: 100 * time.Millisecond})

	const users = 20
	for i := 0; i < users; i++ {
		c.Produce(t, "users", &kgo.Record{Key: []byte(fmt.Sprintf("u%d", i)), Value: []byte(fmt.Sprintf("city-%d", i))})
	}
	// Rows reach the changelog when the store is flushed at a commit: from
	// then on the task holds every user, and the clicks below find them.
	if got := c.ConsumeAll(t, "tj-users-changelog", users, 30*time.Second); len(got) != users {
		t.Fatalf("changelog has %d rows, want %d", len(got), users)
	}

	wantClicks := map[string]int{}
	wantViews := map[string]int{}
	for i := 0; i < 100; i++ {
		user := fmt.Sprintf("u%d", i%25) // u20..u24 have no row
		click := fmt.Sprintf("c%d", i)
		c.Produce(t, "clicks", &kgo.Record{Key: []byte(user), Value: []byte(click)})
		c.Produce(t, "views", &kgo.Record{Key: []byte(fmt.Sprintf("view-%d", i)), Value: []byte(user)})
		if i%25 < users {
			wantClicks[user+"="+click+"@city-"+fmt.Sprint(i%25)]++
			wantViews[user+"="+user+"@city-"+fmt.Sprint(i%25)]++
		} else {
			wantViews[user+"="+user+"@?"]++
		}
	}

	check := func(topic string, want map[string]int, n int) {
		t.Helper()
		got := map[string]int{}
		for _, r := range c.ConsumeAll(t, topic, n, 30*time.Second) {
			got[string(r.Key)+"="+string(r.Value)]++
			// Output keys are the users, written where a producer would
			// put them: murmur2 of the key over the topic's 4 partitions.
			if want := murmur2Partition(r.Key, 4); r.Partition != want {
				t.Errorf("%s: key %s on partition %d, want %d", topic, r.Key, r.Partition, want)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v\nwant %v", topic, got, want)
		}
	}
	check("clicks-enriched", wantClicks, 80)
	check("views-enriched", wantViews, 100)

	details, err := kadm.NewClient(c.Client(t)).ListTopics(context.Background(), "tj-views-by-user-repartition")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(details["tj-views-by-user-repartition"].Partitions); got != 4 {
		t.Errorf("repartition topic has %d partitions, want the users table's 4", got)
	}
}

// murmur2Partition is Kafka's default partition of a key.
func murmur2Partition(key []byte, n int32) int32 {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("")
	return int32(p.Partition(&kgo.Record{Key: key}, int(n)))
}

// A stream joined with a table whose topic has another partition count
// cannot start: the error names both topics with their counts.
func TestStreamTableJoinNotCopartitioned(t *testing.T) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "users", 2)
	c.CreateTopic(t, "clicks", 4)
	c.CreateTopic(t, "views", 2)
	app, err := New(clickJoinTopology(t), Config{ApplicationID: "tj-bad", Brokers: c.Addrs(), StateDir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	err = app.Run(context.Background())
	const want = "sub-topology 0: source topics are not co-partitioned: clicks has 4 partitions, tj-bad-views-by-user-repartition has 4, users has 2;"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run() = %v, want an error containing %q", err, want)
	}
	if app.State() != Error {
		t.Fatalf("state %v, want ERROR", app.State())
	}
}
