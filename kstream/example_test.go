package kstream_test

import (
	"fmt"
	"strings"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/serde"
)

// Example builds a small topology that routes orders by size and prints
// its description. Operators left unnamed get generated names
// (KSTREAM-<OP>-<index>); the split is named, so its branches are the
// prefix plus each branch's name. Describe needs no broker, which makes it
// a cheap check that a topology is wired the way you meant.
func Example() {
	b := kstream.NewBuilder()
	orders := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.Int64()), "orders")
	valid := orders.Filter(func(_ string, amount int64) bool { return amount > 0 })
	branches := valid.Split(kstream.Named("size-")).
		Branch(func(_ string, amount int64) bool { return amount >= 1000 }, kstream.Named("large")).
		DefaultBranch(kstream.Named("small"))
	branches["size-large"].To("large-orders")
	labels := kstream.MapValues(branches["size-small"], func(amount int64) string {
		return strings.Repeat("*", int(amount/100))
	})
	labels.To("small-orders", kstream.ProducedWith(serde.String(), serde.String()))

	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(topo.Describe())
	// Output:
	// Topologies:
	//    Sub-topology: 0
	//     Source: KSTREAM-SOURCE-0000000000 (topics: [orders])
	//       --> KSTREAM-FILTER-0000000001
	//     Processor: KSTREAM-FILTER-0000000001 (stores: [])
	//       --> size-
	//       <-- KSTREAM-SOURCE-0000000000
	//     Processor: size- (stores: [])
	//       --> size-large, size-small
	//       <-- KSTREAM-FILTER-0000000001
	//     Processor: size-large (stores: [])
	//       --> KSTREAM-SINK-0000000003
	//       <-- size-
	//     Processor: size-small (stores: [])
	//       --> KSTREAM-MAPVALUES-0000000004
	//       <-- size-
	//     Processor: KSTREAM-MAPVALUES-0000000004 (stores: [])
	//       --> KSTREAM-SINK-0000000005
	//       <-- size-small
	//     Sink: KSTREAM-SINK-0000000003 (topic: large-orders)
	//       <-- size-large
	//     Sink: KSTREAM-SINK-0000000005 (topic: small-orders)
	//       <-- KSTREAM-MAPVALUES-0000000004
}
