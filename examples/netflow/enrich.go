package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/serde"
)

// Org is the organisation an address belongs to, the value of an
// "ip-orgs" record.
type Org struct {
	Name string `json:"org"`
	ASN  int    `json:"asn"`
}

// EnrichedPacket is a packet with what the tables say about it, the value
// of a "packets-enriched" record: the packet's own fields, then src_org and
// src_asn from ip-orgs and service from services.
type EnrichedPacket struct {
	Packet
	SrcOrg  string `json:"src_org"`           // unknown when ip-orgs has no row for SrcIP
	SrcASN  int    `json:"src_asn,omitempty"` // 0 when unknown
	Service string `json:"service"`           // unknown when services has no row for DstPort
}

// unknown stands for a missing row in src_org and service: a consumer
// reading the JSON sees that the join found nothing, rather than a missing
// field it might take for an old record layout.
const unknown = "unknown"

const (
	orgsTopic     = "ip-orgs"
	servicesTopic = "services"
	enrichedTopic = "packets-enriched"

	// servicesPartitions differs from the other topics' 4 on purpose: a
	// global table is read whole by every instance, so it needs no
	// co-partitioning with the streams joined to it.
	servicesPartitions = 3
)

// withSrcOrg is the joiner of the stream–table join: org is nil when
// ip-orgs has no row for the packet's source.
func withSrcOrg(p Packet, org *Org) EnrichedPacket {
	e := EnrichedPacket{Packet: p, SrcOrg: unknown, Service: unknown}
	if org != nil {
		e.SrcOrg, e.SrcASN = org.Name, org.ASN
	}
	return e
}

// withService is the joiner of the global join: service is nil when
// services has no row for the port.
func withService(e EnrichedPacket, service *string) EnrichedPacket {
	e.Service = unknown
	if service != nil {
		e.Service = *service
	}
	return e
}

// network is an address range and the organisation that owns it.
type network struct {
	prefix netip.Prefix
	org    Org
}

// synthNetworks are the organisations of the synthetic packets'
// addresses. 10.0.3.0/24 is left out, so the packets from it find no row
// and go on as unknown.
func synthNetworks() []network {
	return []network{
		{netip.MustParsePrefix("10.0.0.0/24"), Org{Name: "Example Corp", ASN: 64500}},
		{netip.MustParsePrefix("10.0.1.0/24"), Org{Name: "Globex", ASN: 64501}},
		{netip.MustParsePrefix("10.0.2.0/24"), Org{Name: "Initech", ASN: 64502}},
		{netip.MustParsePrefix("192.168.1.0/24"), Org{Name: "Example Hosting", ASN: 64510}},
	}
}

// synthOrgs returns the ip-orgs rows fed with packets: one per address
// the packets use, either way, that lies in one of synthNetworks.
func synthOrgs(packets []Packet) map[string]Org {
	networks := synthNetworks()
	rows := map[string]Org{}
	for _, p := range packets {
		for _, ip := range []string{p.SrcIP, p.DstIP} {
			addr, err := netip.ParseAddr(ip)
			if err != nil {
				continue
			}
			for _, n := range networks {
				if n.prefix.Contains(addr) {
					rows[ip] = n.org
				}
			}
		}
	}
	return rows
}

// synthServices returns the services rows fed: the IANA names of the
// server ports synthPackets uses. The replies' destinations, the clients'
// ephemeral ports, have no row, nor has ICMP's port 0.
func synthServices() map[string]string {
	return map[string]string{
		"22":   "ssh",
		"53":   "domain",
		"80":   "http",
		"123":  "ntp",
		"443":  "https",
		"514":  "syslog",
		"5432": "postgresql",
	}
}

// feedTables writes the rows of ip-orgs and services, keyed as the tables
// are (kgo's default partitioner hashes keys with murmur2, as the join's
// repartition does), at time at, and waits for the brokers to acknowledge
// them all.
func feedTables(ctx context.Context, cl *kgo.Client, orgs map[string]Org, services map[string]string, at time.Time) error {
	orgSerde := serde.JSON[Org]()
	var recs []*kgo.Record
	for _, ip := range slices.Sorted(maps.Keys(orgs)) {
		v, err := orgSerde.Serialize(orgsTopic, orgs[ip])
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: orgsTopic, Key: []byte(ip), Value: v, Timestamp: at})
	}
	for _, port := range slices.Sorted(maps.Keys(services)) {
		recs = append(recs, &kgo.Record{Topic: servicesTopic, Key: []byte(port), Value: []byte(services[port]), Timestamp: at})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d rows to %s and %d to %s: %w", len(orgs), orgsTopic, len(services), servicesTopic, err)
	}
	return nil
}

// tally counts the enriched packets by one field.
type tally map[string]int

// String lists the counts most first, then by name: "https 120, ssh 80".
func (t tally) String() string {
	names := slices.SortedFunc(maps.Keys(t), func(a, b string) int {
		return cmp.Or(cmp.Compare(t[b], t[a]), strings.Compare(a, b))
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, t[n])
	}
	return strings.Join(parts, ", ")
}
