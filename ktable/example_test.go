package ktable_test

import (
	"fmt"

	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/ktable"
	"github.com/kstreams-go/kstreams/serde"
)

// Example counts users per region from a table of each user's region.
// When a user moves, GroupBy sends a subtract to the old region and an add
// to the new one through the repartition topic named by the Grouped; the
// counts are kept in the store "region-counts", which the test driver
// (testutil.StoreView) and interactive queries read.
func Example() {
	b := kstream.NewBuilder()
	regions := ktable.Table(b, kstream.ConsumedWith(serde.String(), serde.String()), "user-regions",
		kstream.MaterializedAs[string, string]("user-regions"))
	byRegion := ktable.GroupBy(regions, func(_, region string) (string, string) { return region, region },
		kstream.GroupedAs[string, string]("users-by-region"))
	counts := ktable.Count(byRegion, kstream.MaterializedAs[string, int64]("region-counts"))
	counts.ToStream().To("region-counts")

	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(topo.Describe())
	// Output:
	// Topologies:
	//    Sub-topology: 0
	//     Source: KSTREAM-SOURCE-0000000000 (topics: [user-regions])
	//       --> KTABLE-SOURCE-0000000001
	//     Processor: KTABLE-SOURCE-0000000001 (stores: [user-regions])
	//       --> users-by-region
	//       <-- KSTREAM-SOURCE-0000000000
	//     Processor: users-by-region (stores: [])
	//       --> KSTREAM-SINK-0000000003
	//       <-- KTABLE-SOURCE-0000000001
	//     Sink: KSTREAM-SINK-0000000003 (topic: users-by-region-repartition)
	//       <-- users-by-region
	//
	//    Sub-topology: 1
	//     Source: KSTREAM-SOURCE-0000000004 (topics: [users-by-region-repartition])
	//       --> KTABLE-AGGREGATE-0000000005
	//     Processor: KTABLE-AGGREGATE-0000000005 (stores: [region-counts])
	//       --> KTABLE-TOSTREAM-0000000006
	//       <-- KSTREAM-SOURCE-0000000004
	//     Processor: KTABLE-TOSTREAM-0000000006 (stores: [])
	//       --> KSTREAM-SINK-0000000007
	//       <-- KTABLE-AGGREGATE-0000000005
	//     Sink: KSTREAM-SINK-0000000007 (topic: region-counts)
	//       <-- KTABLE-TOSTREAM-0000000006
}
