package kstreams

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/ktable"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

type fkOrder struct {
	Customer string `json:"customer"`
	Item     string `json:"item"`
}

func fkJoined(o fkOrder, name *string) string {
	if name == nil {
		return o.Item + "/" + o.Customer + ":-"
	}
	return o.Item + "/" + o.Customer + ":" + *name
}

// TestForeignKeyJoinOverBroker runs foreign-key joins, inner and left, of
// orders (3 partitions, keyed by order id) to customers (2 partitions,
// keyed by customer id) on the embedded broker: orders, then customers,
// then orders moving between customers (to another, to none, to a missing
// one), then customers renamed, a customer and an order deleted. The
// joined table, read through the store and through the output topic's
// latest value per key, must equal the join of the final tables computed
// here, and the join's internal topics must carry Kafka Streams' names,
// each co-partitioned with the side that reads it.
func TestForeignKeyJoinOverBroker(t *testing.T) {
	t.Run("inner", func(t *testing.T) { testFKJoinOverBroker(t, false) })
	t.Run("left", func(t *testing.T) { testFKJoinOverBroker(t, true) })
}

func testFKJoinOverBroker(t *testing.T, left bool) {
	c := testutil.NewCluster(t)
	c.CreateTopic(t, "orders", 3)
	c.CreateTopic(t, "customers", 2)
	c.CreateTopic(t, "enriched", 3)

	b := kstream.NewBuilder()
	orders := ktable.Table(b, kstream.ConsumedWith(serde.String(), serde.JSON[fkOrder]()), "orders")
	customers := ktable.Table(b, kstream.ConsumedWith(serde.String(), serde.String()), "customers")
	customerOf := func(o fkOrder) string { return o.Customer }
	opts := []ktable.FKJoinOption{ktable.TableJoined[string, string]{Name: "order-customer"},
		kstream.Materialized[string, string]{StoreName: "enriched-orders"}}
	var enriched *ktable.KTable[string, string]
	if left {
		enriched = ktable.LeftJoinOnForeignKey(orders, customers, customerOf, fkJoined, opts...)
	} else {
		enriched = ktable.JoinOnForeignKey(orders, customers, customerOf,
			func(o fkOrder, name string) string { return fkJoined(o, &name) }, opts...)
	}
	enriched.ToStream().To("enriched")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, topo, Config{ApplicationID: "fkjoin", Brokers: c.Addrs(), StateDir: t.TempDir(), CommitInterval: 100 * time.Millisecond})

	orderRows := map[string]fkOrder{}
	customerRows := map[string]string{}
	putOrder := func(id, customer string) {
		o := fkOrder{Customer: customer, Item: "item-" + id}
		v, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		orderRows[id] = o
		c.Produce(t, "orders", &kgo.Record{Key: []byte(id), Value: v})
	}
	putCustomer := func(id, name string) {
		customerRows[id] = name
		c.Produce(t, "customers", &kgo.Record{Key: []byte(id), Value: []byte(name)})
	}
	expected := func() map[string]string {
		out := map[string]string{}
		for id, o := range orderRows {
			if name, ok := customerRows[o.Customer]; ok && o.Customer != "" {
				out[id] = fkJoined(o, &name)
			} else if left {
				out[id] = fkJoined(o, nil)
			}
		}
		return out
	}

	for i := range 30 {
		putOrder(fmt.Sprintf("o%02d", i), fmt.Sprintf("c%d", i%5))
	}
	for i := range 5 {
		putCustomer(fmt.Sprintf("c%d", i), fmt.Sprintf("name-%d", i))
	}
	store := waitForJoin(t, a.app, "enriched-orders", expected())

	// The moves are processed before the customers change below, so the
	// renames reach the customers the orders left only if their
	// subscriptions were not withdrawn (or not told stale by the hash).
	for i := range 10 {
		putOrder(fmt.Sprintf("o%02d", i), fmt.Sprintf("c%d", (i+1)%5))
	}
	putOrder("o10", "")   // no customer
	putOrder("o11", "c9") // a customer that does not exist
	waitForJoin(t, a.app, "enriched-orders", expected())

	putCustomer("c1", "renamed-1")
	putCustomer("c2", "renamed-2")
	delete(customerRows, "c3")
	c.Produce(t, "customers", &kgo.Record{Key: []byte("c3")})
	delete(orderRows, "o29")
	c.Produce(t, "orders", &kgo.Record{Key: []byte("o29")})
	want := expected()
	waitForJoin(t, a.app, "enriched-orders", want)
	if all, err := store.All(0); err != nil || len(all) != len(want) {
		t.Fatalf("store holds %d rows (%v), want %d", len(all), err, len(want))
	}
	latestByKey(t, c, "enriched", want, 30*time.Second)

	adm := kadm.NewClient(c.Client(t))
	details, err := adm.ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for topic, partitions := range map[string]int{
		// keyed by customer: co-partitioned with customers
		"fkjoin-order-customer-subscription-registration-topic": 2,
		"fkjoin-order-customer-subscription-store-changelog":    2,
		// keyed by order: co-partitioned with orders
		"fkjoin-order-customer-subscription-response-topic": 3,
		"fkjoin-enriched-orders-changelog":                  3,
	} {
		d, ok := details[topic]
		if !ok {
			t.Errorf("topic %s does not exist; topics: %v", topic, details.Names())
			continue
		}
		if len(d.Partitions) != partitions {
			t.Errorf("topic %s has %d partitions, want %d", topic, len(d.Partitions), partitions)
		}
	}
	configs, err := adm.DescribeTopicConfigs(context.Background(),
		"fkjoin-order-customer-subscription-registration-topic", "fkjoin-order-customer-subscription-response-topic")
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range configs {
		if rc.Err != nil || !hasConfig(rc, "cleanup.policy", "delete") {
			t.Errorf("topic %s: want cleanup.policy=delete, got %v (%v)", rc.Name, rc.Configs, rc.Err)
		}
	}
	a.stop(t)
}

func hasConfig(rc kadm.ResourceConfig, key, value string) bool {
	for _, c := range rc.Configs {
		if c.Key == key && c.MaybeValue() == value {
			return true
		}
	}
	return false
}

// waitForJoin polls the store until it holds exactly want.
func waitForJoin(t *testing.T, a *App, name string, want map[string]string) *ReadOnlyStore[string, string] {
	t.Helper()
	store, err := Store[string, string](a, name)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		all, err := store.All(0) // fails while the group settles
		if err == nil {
			clear(got)
			for _, kv := range all {
				got[kv.Key] = kv.Value
			}
			if maps.Equal(got, want) {
				return store
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("store %s (last error %v):\n got  %v\n want %v", name, err, got, want)
		}
	}
}

// latestByKey reads topic from the start until the latest value of every
// key (a tombstone removes the key) equals want.
func latestByKey(t *testing.T, c *testutil.Cluster, topic string, want map[string]string, timeout time.Duration) {
	t.Helper()
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	latest := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !maps.Equal(latest, want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: latest values per key\n got  %v\n want %v", topic, latest, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				delete(latest, string(r.Key))
			} else {
				latest[string(r.Key)] = string(r.Value)
			}
		})
	}
}
