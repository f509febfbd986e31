package ktable_test

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/ktable"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// order is a row of the left table "orders": it references a customer (the
// right table "customers", customer id -> name) by id; "" references none.
type order struct {
	Customer string `json:"customer"`
	Item     string `json:"item"`
}

var ordersConsumed = kstream.ConsumedWith(serde.String(), serde.JSON[order]())

func customerOf(o order) string { return o.Customer }

// innerJoined and leftJoined name the customer id they were joined under,
// so a test can tell a result joined under an old foreign key.
func innerJoined(o order, name string) string { return o.Item + "/" + o.Customer + ":" + name }

func leftJoined(o order, name *string) string {
	if name == nil {
		return o.Item + "/" + o.Customer + ":-"
	}
	return innerJoined(o, *name)
}

// fkTopology joins orders to customers (left join when left) and writes
// the result's changes to "out".
func fkTopology(t *testing.T, left bool, opts ...ktable.FKJoinOption) (*kstream.Topology, *ktable.KTable[string, string]) {
	t.Helper()
	b := kstream.NewBuilder()
	orders := ktable.Table(b, ordersConsumed, "orders")
	customers := ktable.Table(b, strStr, "customers")
	var res *ktable.KTable[string, string]
	if left {
		res = ktable.LeftJoinOnForeignKey(orders, customers, customerOf, leftJoined, opts...)
	} else {
		res = ktable.JoinOnForeignKey(orders, customers, customerOf, innerJoined, opts...)
	}
	res.ToStream().To("out")
	return build(t, b), res
}

type fkInputs struct {
	orders    *testutil.TestInputTopic[string, order]
	customers *testutil.TestInputTopic[string, string]
}

func fkPipes(d *testutil.Driver) fkInputs {
	return fkInputs{
		orders:    testutil.InputTopic(d, "orders", serde.String(), serde.JSON[order]()),
		customers: testutil.InputTopic(d, "customers", serde.String(), serde.String()),
	}
}

func (in fkInputs) order(id, customer, item string, ms int64) {
	in.orders.PipeAt(id, order{Customer: customer, Item: item}, at(ms))
}
func (in fkInputs) deleteOrder(id string, ms int64) { in.orders.PipeRaw([]byte(id), nil, at(ms)) }
func (in fkInputs) customer(id, name string, ms int64) {
	in.customers.PipeAt(id, name, at(ms))
}
func (in fkInputs) deleteCustomer(id string, ms int64) { in.customers.PipeRaw([]byte(id), nil, at(ms)) }

// subscriptions lists the subscription store's keys as "customer<-order",
// read in the store's key layout: 4-byte length of the foreign key, the
// foreign key, the primary key.
func subscriptions(t *testing.T, d *testutil.Driver, store string) []string {
	t.Helper()
	it, err := testutil.KeyValueStore(d, store).All()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for it.Next() {
		k := it.Key()
		n := binary.BigEndian.Uint32(k)
		out = append(out, string(k[4:4+n])+"<-"+string(k[4+n:]))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFKJoinInner follows an inner join through right rows arriving before
// and after the left rows that reference them, a right update fanning out
// to two orders, orders moving between customers (to a missing one, to
// none, and back), and deletes on both sides.
func TestFKJoinInner(t *testing.T) {
	topo, res := fkTopology(t, false)
	// Generated names as Kafka Streams gives them: orders' table uses
	// indexes 0-2, customers' 3-5, the join 6-19.
	desc := topo.Describe()
	for _, w := range []string{
		"Sink: KTABLE-SINK-0000000008 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic)",
		"Source: KTABLE-SOURCE-0000000009 (topics: [KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic])",
		"Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])",
		"Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000012 (stores: [customers-STATE-STORE-0000000003])",
		"Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000013 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])",
		"Sink: KTABLE-SINK-0000000015 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic)",
		"Processor: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017 (stores: [orders-STATE-STORE-0000000000])",
		"Processor: KTABLE-FK-JOIN-OUTPUT-0000000018 (stores: [KTABLE-FK-JOIN-OUTPUT-STATE-STORE-0000000019])",
	} {
		if !strings.Contains(desc, w) {
			t.Errorf("Describe() lacks %q:\n%s", w, desc)
		}
	}
	if res.StoreName() != "KTABLE-FK-JOIN-OUTPUT-STATE-STORE-0000000019" {
		t.Errorf("StoreName() = %q", res.StoreName())
	}

	d := testutil.NewDriver(t, topo)
	in := fkPipes(d)
	out := func(what string, rows ...row[string]) {
		t.Helper()
		want(t, what, read(t, d, "out", serde.String()), rows)
	}
	in.customer("c1", "Ann", 1)
	out("a customer without orders")
	in.order("o1", "c1", "book", 2)
	out("an order after its customer", upd("o1", "book/c1:Ann", 2))
	in.order("o2", "c2", "pen", 3)
	out("an order before its customer")
	in.customer("c2", "Bob", 4)
	out("the customer arrives", upd("o2", "pen/c2:Bob", 4))
	in.customer("c1", "Anna", 5)
	out("a customer update", upd("o1", "book/c1:Anna", 5))
	in.order("o3", "c1", "cup", 6)
	out("a second order of c1", upd("o3", "cup/c1:Anna", 6))
	in.customer("c1", "Annie", 7)
	out("an update fans out to both orders of c1", upd("o1", "book/c1:Annie", 7), upd("o3", "cup/c1:Annie", 7))
	in.deleteCustomer("c2", 8)
	out("a customer deleted", del[string]("o2", 8))
	in.deleteOrder("o1", 9)
	out("an order deleted", del[string]("o1", 9))
	in.order("o3", "c2", "cup", 10)
	out("o3 moves from c1 to c2, which is gone", del[string]("o3", 10))
	in.customer("c2", "Bea", 11)
	out("c2 comes back: both its orders join", upd("o2", "pen/c2:Bea", 11), upd("o3", "cup/c2:Bea", 11))
	in.customer("c1", "Zoe", 12)
	out("c1 has no orders left")
	in.order("o4", "", "mug", 13)
	out("an order without a customer")
	in.order("o2", "", "pen", 14)
	out("o2 leaves c2 for no customer", del[string]("o2", 14))
	in.order("o2", "c1", "pen", 15)
	out("o2 moves to c1", upd("o2", "pen/c1:Zoe", 15))

	if n := d.Dropped("null-foreign-key"); n != 2 {
		t.Errorf("dropped %d rows without a foreign key, want 2 (o4, then o2)", n)
	}
	wantContents(t, contents(t, d, res.StoreName(), serde.String()), map[string]string{
		"o2": "pen/c1:Zoe", "o3": "cup/c2:Bea",
	})
	if got, w := subscriptions(t, d, "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010"), []string{"c1<-o2", "c2<-o3"}; !slices.Equal(got, w) {
		t.Errorf("subscriptions %q, want %q", got, w)
	}
}

// TestFKJoinLeft follows a left join: orders without a customer, or whose
// customer is missing, join with none.
func TestFKJoinLeft(t *testing.T) {
	topo, res := fkTopology(t, true, ktable.TableJoined[string, string]{Name: "order-customer"})
	d := testutil.NewDriver(t, topo)
	in := fkPipes(d)
	out := func(what string, rows ...row[string]) {
		t.Helper()
		want(t, what, read(t, d, "out", serde.String()), rows)
	}
	in.order("o1", "c1", "book", 1)
	out("an order before its customer", upd("o1", "book/c1:-", 1))
	in.customer("c1", "Ann", 2)
	out("the customer arrives", upd("o1", "book/c1:Ann", 2))
	in.order("o2", "", "pen", 3)
	out("an order without a customer", upd("o2", "pen/:-", 3))
	in.order("o1", "c9", "book", 4)
	out("o1 moves to a missing customer", upd("o1", "book/c9:-", 4))
	in.deleteCustomer("c1", 5)
	out("c1 has no orders left")
	in.customer("c9", "Zed", 6)
	out("c9 arrives", upd("o1", "book/c9:Zed", 6))
	in.order("o2", "c9", "pen", 7)
	out("o2 gets a customer", upd("o2", "pen/c9:Zed", 7))
	in.deleteCustomer("c9", 8)
	out("c9 deleted: its orders stay, without it", upd("o1", "book/c9:-", 8), upd("o2", "pen/c9:-", 8))
	in.deleteOrder("o1", 9)
	out("an order deleted", del[string]("o1", 9))
	in.order("o2", "", "pen", 10)
	out("o2 leaves c9 for no customer", upd("o2", "pen/:-", 10))
	in.customer("c9", "Zara", 11)
	out("c9 has no orders left")
	in.deleteOrder("o2", 12)
	out("an order without a customer deleted", del[string]("o2", 12))

	wantContents(t, contents(t, d, res.StoreName(), serde.String()), map[string]string{})
	if got := subscriptions(t, d, "order-customer-subscription-store"); len(got) != 0 {
		t.Errorf("subscriptions left: %q", got)
	}
	if n := d.Dropped("null-foreign-key"); n != 0 {
		t.Errorf("a left join dropped %d rows", n)
	}
}

// TestFKJoinNamed checks the names a TableJoined name gives: the internal
// topics, the subscription store and its changelog, the nodes, and a
// Materialized store name for the result.
func TestFKJoinNamed(t *testing.T) {
	topo, res := fkTopology(t, false, ktable.TableJoined[string, string]{Name: "oc"},
		kstream.Materialized[string, string]{StoreName: "enriched"})
	if res.StoreName() != "enriched" || res.NodeName() != "oc-result" {
		t.Errorf("store %q node %q", res.StoreName(), res.NodeName())
	}
	desc := topo.Describe()
	for _, w := range []string{
		"Processor: oc-subscription-registration-processor (stores: [])\n      --> oc-subscription-registration-sink\n",
		"Sink: oc-subscription-registration-sink (topic: oc-subscription-registration-topic)",
		"Source: oc-subscription-registration-source (topics: [oc-subscription-registration-topic])\n      --> oc-subscription-receive\n",
		"Processor: oc-subscription-receive (stores: [oc-subscription-store])",
		"Processor: oc-subscription-join-foreign (stores: [customers-STATE-STORE-0000000003])",
		"Processor: oc-foreign-join-subscription (stores: [oc-subscription-store])",
		"Sink: oc-subscription-response-sink (topic: oc-subscription-response-topic)",
		"Source: oc-subscription-response-source (topics: [oc-subscription-response-topic])",
		"Processor: oc-subscription-response-resolver (stores: [orders-STATE-STORE-0000000000])",
		"Processor: oc-result (stores: [enriched])",
	} {
		if !strings.Contains(desc, w) {
			t.Errorf("Describe() lacks %q:\n%s", w, desc)
		}
	}
	d := testutil.NewDriver(t, topo)
	in := fkPipes(d)
	in.customer("c1", "Ann", 1)
	in.order("o1", "c1", "book", 2)
	// The subscription went through the registration topic keyed by the
	// customer id, its answer through the response topic keyed by the order
	// id, and the subscription store logged its one entry.
	for topic, n := range map[string]int{
		"test-app-oc-subscription-registration-topic": 1,
		"test-app-oc-subscription-response-topic":     1,
		"test-app-oc-subscription-store-changelog":    1,
	} {
		if got := d.Produced(topic); got != n {
			t.Errorf("%s: %d records, want %d", topic, got, n)
		}
	}
	reg := testutil.OutputTopic(d, "test-app-oc-subscription-registration-topic", serde.String(), serde.Bytes()).ReadRecords()
	if len(reg) != 1 || reg[0].Key != "c1" {
		t.Errorf("registration records %+v, want one keyed c1", reg)
	}
	resp := testutil.OutputTopic(d, "test-app-oc-subscription-response-topic", serde.String(), serde.Bytes()).ReadRecords()
	if len(resp) != 1 || resp[0].Key != "o1" || !strings.HasSuffix(string(resp[0].Value), "Ann") {
		t.Errorf("response records %+v, want one keyed o1 ending in the customer's name", resp)
	}
	wantContents(t, contents(t, d, "enriched", serde.String()), map[string]string{"o1": "book/c1:Ann"})
}

// TestFKJoinMaterializesInputs joins tables that have no store of their
// own (a MapValues result on each side).
func TestFKJoinMaterializesInputs(t *testing.T) {
	b := kstream.NewBuilder()
	orders := ktable.MapValues(ktable.Table(b, ordersConsumed, "orders"), func(o order) order {
		o.Item = strings.ToUpper(o.Item)
		return o
	})
	customers := ktable.MapValues(ktable.Table(b, strStr, "customers"), strings.ToLower)
	res := ktable.JoinOnForeignKey(orders, customers, customerOf, innerJoined)
	res.ToStream().To("out")
	d := testutil.NewDriver(t, build(t, b))
	in := fkPipes(d)
	in.order("o1", "c1", "book", 1)
	in.customer("c1", "ANN", 2)
	in.customer("c1", "BOB", 3)
	want(t, "out", read(t, d, "out", serde.String()), []row[string]{
		upd("o1", "BOOK/c1:ann", 2), upd("o1", "BOOK/c1:bob", 3),
	})
}

// TestFKJoinOptionTypes rejects an option that does not fit the join.
func TestFKJoinOptionTypes(t *testing.T) {
	b := kstream.NewBuilder()
	orders := ktable.Table(b, ordersConsumed, "orders")
	customers := ktable.Table(b, strStr, "customers")
	ktable.JoinOnForeignKey(orders, customers, customerOf, innerJoined, kstream.Materialized[string, int64]{StoreName: "x"})
	_, err := b.Build()
	if err == nil || !strings.Contains(err.Error(), "Materialized[string,int64]") {
		t.Fatalf("Build() error %v, want one naming the misfit option", err)
	}
}

// TestFKJoinMatchesBruteForce drives a random sequence of order and
// customer updates, deletes and foreign-key changes through inner and left
// joins. After each input the result store must hold exactly the join of
// the current tables, computed here by brute force, and every record the
// input caused must be the current result of its key: none may carry a
// customer the order has left (results name the customer id they joined).
func TestFKJoinMatchesBruteForce(t *testing.T) {
	for _, left := range []bool{false, true} {
		t.Run(fmt.Sprintf("left=%v", left), func(t *testing.T) {
			topo, res := fkTopology(t, left)
			d := testutil.NewDriver(t, topo)
			in := fkPipes(d)
			orders := map[string]order{}
			customers := map[string]string{}
			expected := func() map[string]string {
				out := map[string]string{}
				for id, o := range orders {
					name, ok := customers[o.Customer]
					switch {
					case ok && o.Customer != "":
						out[id] = innerJoined(o, name)
					case left:
						out[id] = leftJoined(o, nil)
					}
				}
				return out
			}
			rng := rand.New(rand.NewPCG(9, uint64(len(fmt.Sprint(left)))))
			customerIDs := []string{"", "c0", "c1", "c2", "c3"}
			for step := int64(1); step <= 400; step++ {
				id := fmt.Sprintf("o%d", rng.IntN(6))
				cid := customerIDs[1+rng.IntN(len(customerIDs)-1)]
				var what string
				switch n := rng.IntN(10); {
				case n < 4:
					o := order{Customer: customerIDs[rng.IntN(len(customerIDs))], Item: fmt.Sprintf("i%d", step)}
					what = fmt.Sprintf("order %s -> %+v", id, o)
					orders[id] = o
					in.order(id, o.Customer, o.Item, step)
				case n < 5:
					what = "delete order " + id
					delete(orders, id)
					in.deleteOrder(id, step)
				case n < 9:
					name := fmt.Sprintf("n%d", step)
					what = fmt.Sprintf("customer %s -> %s", cid, name)
					customers[cid] = name
					in.customer(cid, name, step)
				default:
					what = "delete customer " + cid
					delete(customers, cid)
					in.deleteCustomer(cid, step)
				}
				exp := expected()
				for _, r := range read(t, d, "out", serde.String()) {
					cur, ok := exp[r.Key]
					if r.Del == ok || (ok && r.Value != cur) {
						t.Fatalf("step %d (%s): emitted %+v, but the join holds %q (present %v)", step, what, r, cur, ok)
					}
				}
				if got := contents(t, d, res.StoreName(), serde.String()); !maps.Equal(got, exp) {
					t.Fatalf("step %d (%s): result store\n got  %v\n want %v", step, what, got, exp)
				}
			}
		})
	}
}
