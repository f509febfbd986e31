package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

// TestTopologyEnrichesPackets runs buildTopology in the test driver and
// follows packets through both joins while the tables change between
// them: each packet, re-keyed by its source address, carries the ip-orgs
// row its source has when it is processed (a new row, an updated row, no
// row after a tombstone) and the services row of its destination port (a
// row added to the global table is seen by the packets after it). Table
// updates write nothing themselves, and no packet is written twice.
func TestTopologyEnrichesPackets(t *testing.T) {
	topo, err := buildTopology()
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo, testutil.WithApplicationID("netflow"))
	packets := testutil.InputTopic(d, inputTopic, serde.String(), serde.JSON[Packet]())
	orgs := testutil.InputTopic(d, orgsTopic, serde.String(), serde.JSON[Org]())
	services := testutil.InputTopic(d, servicesTopic, serde.String(), serde.String())
	out := testutil.OutputTopic(d, enrichedTopic, serde.String(), serde.JSON[EnrichedPacket]())

	exampleCorp := Org{Name: "Example Corp", ASN: 64500}
	globex := Org{Name: "Globex", ASN: 64501}
	https := packet("tcp", "10.0.0.1", 40000, "192.168.1.5", 443)
	dns := packet("udp", "10.0.0.7", 5353, "10.0.0.53", 53)
	ping := packet("icmp", "10.0.0.7", 0, "10.0.0.2", 0)

	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	type step struct {
		what string
		do   func(ts time.Time)
		// want is the record the step writes to packets-enriched, if any:
		// key, then value, at the step's time.
		want *testutil.KeyValue[string, EnrichedPacket]
	}
	enriched := func(p Packet, org, service string, asn int) *testutil.KeyValue[string, EnrichedPacket] {
		return &testutil.KeyValue[string, EnrichedPacket]{Key: p.SrcIP, Value: EnrichedPacket{Packet: p, SrcOrg: org, SrcASN: asn, Service: service}}
	}
	pipePacket := func(key string, p Packet) func(time.Time) {
		return func(ts time.Time) { packets.PipeAt(key, p, ts) }
	}
	steps := []step{
		{"org row for 10.0.0.1", func(ts time.Time) { orgs.PipeAt("10.0.0.1", exampleCorp, ts) }, nil},
		{"service row for 443", func(ts time.Time) { services.PipeAt("443", "https", ts) }, nil},
		{"known org, known service", pipePacket(https.SrcIP, https), enriched(https, "Example Corp", "https", 64500)},
		{"the reply: its source has no row, nor its ephemeral port", pipePacket("192.168.1.5", reverse(https)), enriched(reverse(https), unknown, unknown, 0)},
		{"org row updated", func(ts time.Time) { orgs.PipeAt("10.0.0.1", globex, ts) }, nil},
		{"keyed otherwise by its producer, re-keyed by source: the updated row", pipePacket("capture-agent-7", https), enriched(https, "Globex", "https", 64501)},
		{"tombstone on ip-orgs", func(ts time.Time) { orgs.PipeTombstone("10.0.0.1") }, nil},
		{"deleted row: unknown again", pipePacket(https.SrcIP, https), enriched(https, unknown, "https", 0)},
		{"org row for 10.0.0.7", func(ts time.Time) { orgs.PipeAt("10.0.0.7", exampleCorp, ts) }, nil},
		{"port 53 has no service row yet", pipePacket(dns.SrcIP, dns), enriched(dns, "Example Corp", unknown, 64500)},
		{"service row for 53 added to the global table", func(ts time.Time) { services.PipeAt("53", "domain", ts) }, nil},
		{"a later packet sees it", pipePacket(dns.SrcIP, dns), enriched(dns, "Example Corp", "domain", 64500)},
		{"icmp: port 0 has no row", pipePacket(ping.SrcIP, ping), enriched(ping, "Example Corp", unknown, 64500)},
	}
	fedPackets := 0
	for i, s := range steps {
		s.do(at(i))
		if err := d.Err(); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.what, err)
		}
		got := out.ReadRecords()
		if s.want == nil {
			if len(got) != 0 {
				t.Errorf("step %d (%s): a table update wrote %+v", i, s.what, got)
			}
			continue
		}
		fedPackets++
		if len(got) != 1 {
			t.Errorf("step %d (%s): got %d records, want 1: %+v", i, s.what, len(got), got)
			continue
		}
		if got[0].Key != s.want.Key || got[0].Value != s.want.Value || !got[0].Timestamp.Equal(at(i)) {
			t.Errorf("step %d (%s):\n got %q %+v at %v\nwant %q %+v at %v", i, s.what,
				got[0].Key, got[0].Value, got[0].Timestamp, s.want.Key, s.want.Value, at(i))
		}
	}
	// The join re-keyed every packet, so all of them went through the
	// repartition topic named after the SelectKey; the global join needs
	// none.
	if n := d.Produced("netflow-by-src-ip-repartition"); n != fedPackets {
		t.Errorf("netflow-by-src-ip-repartition got %d records, want %d", n, fedPackets)
	}
	// The tables' stores hold what the topics said last.
	orgStore := testutil.StoreView(d, "ip-orgs", serde.String(), serde.JSON[Org]())
	if _, found, err := orgStore.Get("10.0.0.1"); err != nil || found {
		t.Errorf("ip-orgs[10.0.0.1]: found %v, %v; want deleted", found, err)
	}
	if got, found, err := orgStore.Get("10.0.0.7"); err != nil || !found || got != exampleCorp {
		t.Errorf("ip-orgs[10.0.0.7] = %+v, %v, %v; want %+v", got, found, err, exampleCorp)
	}
	serviceStore := testutil.StoreView(d, "services", serde.String(), serde.String())
	if got, found, err := serviceStore.Get("53"); err != nil || !found || got != "domain" {
		t.Errorf("services[53] = %q, %v, %v; want domain", got, found, err)
	}
}

// TestEnrichedPacketJSON pins the layout of a packets-enriched value: the
// packet's fields, then src_org, src_asn (left out when unknown) and
// service.
func TestEnrichedPacketJSON(t *testing.T) {
	p := packet("tcp", "10.0.0.1", 40000, "192.168.1.5", 443)
	tests := []struct {
		name string
		e    EnrichedPacket
		want string
	}{
		{"known", withService(withSrcOrg(p, &Org{Name: "Example Corp", ASN: 64500}), ptr("https")),
			`{"src_ip":"10.0.0.1","dst_ip":"192.168.1.5","src_port":40000,"dst_port":443,"protocol":"tcp","bytes":60,"src_org":"Example Corp","src_asn":64500,"service":"https"}`},
		{"unknown", withService(withSrcOrg(p, nil), nil),
			`{"src_ip":"10.0.0.1","dst_ip":"192.168.1.5","src_port":40000,"dst_port":443,"protocol":"tcp","bytes":60,"src_org":"unknown","service":"unknown"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := serde.JSON[EnrichedPacket]().Serialize(enrichedTopic, tt.e)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestSynthTables checks the tables fed with the synthetic packets: most
// source addresses have an organisation, not all (10.0.3.0/24 has none),
// the services cover every server port, and packets of each kind (known
// and unknown org, known and unknown service) are fed.
func TestSynthTables(t *testing.T) {
	packets := synthPackets(1000, time.Now())
	orgs, services := synthOrgs(packets), synthServices()
	var withOrg, withoutOrg, withService, withoutService int
	for _, p := range packets {
		if org, ok := orgs[p.SrcIP]; ok {
			withOrg++
			if org.Name == "" || org.ASN == 0 {
				t.Errorf("row of %s is %+v: want a name and an ASN", p.SrcIP, org)
			}
		} else {
			withoutOrg++
		}
		if _, ok := services[strconv.Itoa(int(p.DstPort))]; ok {
			withService++
		} else {
			withoutService++
		}
	}
	if withoutOrg == 0 || withOrg <= withoutOrg {
		t.Errorf("%d packets from an address with an org, %d without: want most, not all", withOrg, withoutOrg)
	}
	if withService == 0 || withoutService == 0 {
		t.Errorf("%d packets to a port with a service, %d without: want both", withService, withoutService)
	}
	for ip := range orgs {
		if strings.HasPrefix(ip, "10.0.3.") {
			t.Errorf("10.0.3.0/24 has no organisation, yet %s has a row", ip)
		}
	}
	// The server ports synthPackets draws from.
	for _, port := range []string{"22", "80", "443", "5432", "53", "123", "514"} {
		if services[port] == "" {
			t.Errorf("no service for port %s", port)
		}
	}
}

func TestTallyString(t *testing.T) {
	got := tally{"https": 3, "ssh": 5, "domain": 3, unknown: 1}.String()
	if want := "ssh 5, domain 3, https 3, unknown 1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := (tally{}).String(); got != "" {
		t.Errorf("empty tally: got %q", got)
	}
}

// TestResultsDone checks when a run has seen its packets out: as many in
// the flows topics together as in packets-enriched.
func TestResultsDone(t *testing.T) {
	tests := []struct {
		name   string
		counts map[string]int
		want   bool
	}{
		{"nothing", map[string]int{}, false},
		{"flows only", map[string]int{"flows-tcp": 6, "flows-udp": 4}, false},
		{"enriched only", map[string]int{enrichedTopic: 10}, false},
		{"both", map[string]int{"flows-tcp": 6, "flows-udp": 3, "flows-other": 1, enrichedTopic: 10}, true},
		{"one short", map[string]int{"flows-tcp": 6, "flows-udp": 3, enrichedTopic: 10}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (results{counts: tt.counts}).done(10); got != tt.want {
				t.Errorf("done(10) with %v = %v, want %v", tt.counts, got, tt.want)
			}
		})
	}
	if !slices.Equal(resultTopics(), []string{"flows-tcp", "flows-udp", "flows-other", enrichedTopic}) {
		t.Errorf("result topics %v", resultTopics())
	}
}
