package dsl

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

type fkOrder struct {
	Customer string `json:"customer"`
	Item     string `json:"item"`
}

// fkTestJoin builds orders (id -> fkOrder) joined on their customer with
// customers (id -> name), as the join "j", its result written to "out".
func fkTestJoin(t *testing.T, left bool) *testutil.Driver {
	t.Helper()
	b := NewBuilder()
	orders := SourceTable(b, Consumed[string, fkOrder]{KeySerde: serde.String(), ValueSerde: serde.JSON[fkOrder]()}, "orders",
		Materialized[string, fkOrder]{StoreName: "orders"})
	customers := SourceTable(b, Consumed[string, string]{KeySerde: serde.String(), ValueSerde: serde.String()}, "customers",
		Materialized[string, string]{StoreName: "customers"})
	joined := JoinOnForeignKey(orders, customers, func(o fkOrder) string { return o.Customer },
		func(o fkOrder, name *string) string {
			if name == nil {
				return o.Item + "/-"
			}
			return o.Item + "/" + *name
		}, left, []FKJoinOption{TableJoined[string, string]{Name: "j"}, Materialized[string, string]{StoreName: "joined"}})
	joined.ToStream().To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return testutil.NewDriver(t, topo)
}

const (
	registrationTopic = "test-app-j-subscription-registration-topic"
	responseTopic     = "test-app-j-subscription-response-topic"
)

func fkOut(d *testutil.Driver) []string {
	var out []string
	for _, r := range testutil.OutputTopic(d, "out", serde.String(), serde.String()).ReadRecords() {
		if r.Tombstone {
			out = append(out, r.Key+"=<deleted>")
		} else {
			out = append(out, r.Key+"="+r.Value)
		}
	}
	return out
}

func wantOut(t *testing.T, d *testutil.Driver, what string, want ...string) {
	t.Helper()
	if got := fkOut(d); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: out %q, want %q", what, got, want)
	}
}

func jsonOrder(t *testing.T, o fkOrder) []byte {
	t.Helper()
	b, err := serde.JSON[fkOrder]().Serialize("", o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFKSubscriptionInstructions reads the registration topic: an inner
// join subscribes a new order asking for an answer only if the customer
// exists, moves an order by unsubscribing the old customer silently and
// asking the new one for an answer either way, and unsubscribes a deleted
// order asking for a delete back, each carrying the hash of the order's
// new value and the order's partition.
func TestFKSubscriptionInstructions(t *testing.T) {
	d := fkTestJoin(t, false)
	orders := testutil.InputTopic(d, "orders", serde.String(), serde.JSON[fkOrder]())
	first, moved := fkOrder{Customer: "c1", Item: "book"}, fkOrder{Customer: "c2", Item: "book"}
	orders.Pipe("o1", first)
	orders.Pipe("o1", moved)
	orders.PipeTombstone("o1")

	type sub struct {
		fk          string
		instruction fkInstruction
		hash        valueHash
	}
	want := []sub{
		{"c1", fkPropagateOnlyIfFK, hashValue(jsonOrder(t, first))},
		{"c1", fkDeleteNoPropagate, hashValue(jsonOrder(t, moved))},
		{"c2", fkPropagateNullIfNoFK, hashValue(jsonOrder(t, moved))},
		{"c2", fkDeleteAndPropagate, valueHash{}},
	}
	recs := testutil.OutputTopic(d, registrationTopic, serde.String(), serde.Bytes()).ReadRecords()
	if len(recs) != len(want) {
		t.Fatalf("%d subscriptions, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		s, err := parseSubscription(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got := sub{r.Key, s.instruction, s.hash}
		if got != want[i] || string(s.primaryKey) != "o1" || s.primaryPartition != 0 || s.version != 1 {
			t.Errorf("subscription %d: %+v (key %q, partition %d, version %d), want %+v for o1 on partition 0",
				i, got, s.primaryKey, s.primaryPartition, s.version, want[i])
		}
	}
}

// TestFKResolverDropsStaleResponses pipes answers into the response topic
// by hand: one to an older version of an order (which referenced another
// customer), one to a deleted order, and one to the current version. Only
// the last may change the result.
func TestFKResolverDropsStaleResponses(t *testing.T) {
	d := fkTestJoin(t, false)
	orders := testutil.InputTopic(d, "orders", serde.String(), serde.JSON[fkOrder]())
	customers := testutil.InputTopic(d, "customers", serde.String(), serde.String())
	responses := testutil.InputTopic(d, responseTopic, serde.Bytes(), serde.Bytes())
	answer := func(hash valueHash, right string) {
		t.Helper()
		r := response{hash: hash}
		if right != "" {
			r.foreignValue = []byte(right)
		}
		responses.PipeRaw([]byte("o1"), appendResponse(nil, &r), time.Time{})
	}

	first, moved := fkOrder{Customer: "c1", Item: "book"}, fkOrder{Customer: "c2", Item: "book"}
	customers.Pipe("c1", "Ann")
	customers.Pipe("c2", "Bob")
	orders.Pipe("o1", first)
	orders.Pipe("o1", moved)
	wantOut(t, d, "joined, then moved", "o1=book/Ann", "o1=book/Bob")

	answer(hashValue(jsonOrder(t, first)), "Ann again")
	wantOut(t, d, "an answer to the order before it moved")
	answer(valueHash{}, "")
	wantOut(t, d, "an answer to a deleted order while it exists")
	current, err := testutil.KeyValueStore(d, "orders").Get([]byte("o1"))
	if err != nil || !bytes.Equal(current, jsonOrder(t, moved)) {
		t.Fatalf("orders store holds %q, %v", current, err)
	}
	answer(hashValue(current), "Bea")
	wantOut(t, d, "an answer to the current order", "o1=book/Bea")

	orders.PipeTombstone("o1")
	wantOut(t, d, "the order deleted", "o1=<deleted>")
	answer(hashValue(current), "Cy")
	wantOut(t, d, "an answer to the order before it was deleted")
}

// TestFKLeftJoinKeylessSubscription: a left join subscribes an order
// that references no customer without a key, and the right side answers
// it without storing it.
func TestFKLeftJoinKeylessSubscription(t *testing.T) {
	d := fkTestJoin(t, true)
	orders := testutil.InputTopic(d, "orders", serde.String(), serde.JSON[fkOrder]())
	orders.Pipe("o1", fkOrder{Item: "pen"})
	wantOut(t, d, "an order without a customer", "o1=pen/-")
	recs := testutil.OutputTopic(d, registrationTopic, serde.Bytes(), serde.Bytes()).ReadRecords()
	if len(recs) != 1 || recs[0].Key != nil {
		t.Fatalf("registration records %+v, want one without a key", recs)
	}
	if s, err := parseSubscription(recs[0].Value); err != nil || s.instruction != fkPropagateNullIfNoFK {
		t.Errorf("subscription %+v, %v; want PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE", s, err)
	}
	if n := d.Produced("test-app-j-subscription-store-changelog"); n != 0 {
		t.Errorf("the subscription store logged %d writes for a keyless subscription", n)
	}
}

func TestToPrimaryPartition(t *testing.T) {
	for _, c := range []struct {
		partition, n, want int32
		ok                 bool
	}{
		{2, 4, 2, true},
		{0, 1, 0, true},
		{-1, 4, 0, false}, // a version 0 subscription: by key
		{4, 4, 0, false},  // the topic shrank: by key rather than fail
	} {
		p, ok := toPrimaryPartition("t", nil, &response{primaryPartition: c.partition}, c.n)
		if p != c.want || ok != c.ok {
			t.Errorf("partition %d of %d: got %d %v, want %d %v", c.partition, c.n, p, ok, c.want, c.ok)
		}
	}
}
