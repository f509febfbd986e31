package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/serde"
	"github.com/kstreams-go/kstreams/testutil"
)

func packet(proto, src string, sport uint16, dst string, dport uint16) Packet {
	return Packet{Protocol: proto, SrcIP: src, SrcPort: sport, DstIP: dst, DstPort: dport, Bytes: 60}
}

func reverse(p Packet) Packet {
	p.SrcIP, p.DstIP = p.DstIP, p.SrcIP
	p.SrcPort, p.DstPort = p.DstPort, p.SrcPort
	return p
}

func TestFlowKey(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		want string
	}{
		{"client to server", packet("tcp", "10.0.0.1", 1234, "10.0.0.2", 80), "tcp|10.0.0.1:1234|10.0.0.2:80"},
		{"server to client", packet("tcp", "10.0.0.2", 80, "10.0.0.1", 1234), "tcp|10.0.0.1:1234|10.0.0.2:80"},
		{"addresses order as numbers, not text", packet("udp", "10.0.0.10", 53, "10.0.0.9", 5353), "udp|10.0.0.9:5353|10.0.0.10:53"},
		{"same host orders by port", packet("udp", "10.0.0.1", 5353, "10.0.0.1", 53), "udp|10.0.0.1:53|10.0.0.1:5353"},
		{"protocol is lower-cased", packet("TCP", "10.0.0.2", 80, "10.0.0.1", 1234), "tcp|10.0.0.1:1234|10.0.0.2:80"},
		{"icmp has no ports", packet("icmp", "192.168.1.5", 0, "10.0.0.1", 0), "icmp|10.0.0.1:0|192.168.1.5:0"},
		{"ipv6", packet("tcp", "2001:db8::2", 443, "2001:db8::1", 50000), "tcp|[2001:db8::1]:50000|[2001:db8::2]:443"},
		{"v4-mapped v6 is the v4 host", packet("tcp", "::ffff:10.0.0.2", 80, "10.0.0.1", 1234), "tcp|10.0.0.1:1234|10.0.0.2:80"},
		{"host names order as text", packet("tcp", "web", 80, "db", 5432), "tcp|db:5432|web:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := flowKey(tt.p); got != tt.want {
				t.Errorf("flowKey(%+v) = %q, want %q", tt.p, got, tt.want)
			}
			if got := flowKey(reverse(tt.p)); got != tt.want {
				t.Errorf("flowKey(reverse) = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTopologyRoutesByProtocol runs buildTopology in the test driver: a
// packet and its reply share a key, and each protocol reaches its topic.
func TestTopologyRoutesByProtocol(t *testing.T) {
	topo, err := buildTopology()
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo)
	in := testutil.InputTopic(d, "packets", serde.String(), serde.JSON[Packet]())
	out := map[string]*testutil.TestOutputTopic[string, Packet]{}
	for _, topic := range flowTopics() {
		out[topic] = testutil.OutputTopic(d, topic, serde.String(), serde.JSON[Packet]())
	}

	tcp := packet("tcp", "10.0.0.2", 80, "10.0.0.1", 1234)
	udp := packet("udp", "10.0.0.1", 5353, "10.0.0.53", 53)
	icmp := packet("icmp", "10.0.0.1", 0, "10.0.0.2", 0)
	sctp := packet("sctp", "10.0.0.1", 2905, "10.0.0.2", 2905)
	for _, p := range []Packet{tcp, reverse(tcp), udp, icmp, sctp} {
		in.Pipe(p.SrcIP, p)
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}

	want := map[string][]testutil.KeyValue[string, Packet]{
		"flows-tcp": {
			{Key: "tcp|10.0.0.1:1234|10.0.0.2:80", Value: tcp},
			{Key: "tcp|10.0.0.1:1234|10.0.0.2:80", Value: reverse(tcp)},
		},
		"flows-udp": {{Key: "udp|10.0.0.1:5353|10.0.0.53:53", Value: udp}},
		"flows-other": {
			{Key: "icmp|10.0.0.1:0|10.0.0.2:0", Value: icmp},
			{Key: "sctp|10.0.0.1:2905|10.0.0.2:2905", Value: sctp},
		},
	}
	for _, topic := range flowTopics() {
		got := out[topic].ReadKeyValues()
		if !slices.Equal(got, want[topic]) {
			t.Errorf("%s:\n got %+v\nwant %+v", topic, got, want[topic])
		}
	}
}

// TestTopologyCountsPacketsPerFlow runs buildTopology in the test driver:
// every packet of a flow, either way, adds one to the flow's count, which
// reaches the topic flow-counts and the store flow-counts.
func TestTopologyCountsPacketsPerFlow(t *testing.T) {
	topo, err := buildTopology()
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDriver(t, topo, testutil.WithApplicationID("netflow"))
	in := testutil.InputTopic(d, "packets", serde.String(), serde.JSON[Packet]())
	out := testutil.OutputTopic(d, countsTopic, serde.String(), serde.Int64())

	tcp := packet("tcp", "10.0.0.2", 80, "10.0.0.1", 1234)
	udp := packet("udp", "10.0.0.1", 5353, "10.0.0.53", 53)
	icmp := packet("icmp", "10.0.0.1", 0, "10.0.0.2", 0)
	for _, p := range []Packet{tcp, reverse(tcp), udp, tcp, icmp, reverse(udp), reverse(tcp)} {
		in.Pipe(p.SrcIP, p)
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}

	const (
		tcpFlow  = "tcp|10.0.0.1:1234|10.0.0.2:80"
		udpFlow  = "udp|10.0.0.1:5353|10.0.0.53:53"
		icmpFlow = "icmp|10.0.0.1:0|10.0.0.2:0"
	)
	// The driver commits after each packet, so each brings one update.
	wantUpdates := []testutil.KeyValue[string, int64]{
		{Key: tcpFlow, Value: 1},
		{Key: tcpFlow, Value: 2},
		{Key: udpFlow, Value: 1},
		{Key: tcpFlow, Value: 3},
		{Key: icmpFlow, Value: 1},
		{Key: udpFlow, Value: 2},
		{Key: tcpFlow, Value: 4},
	}
	if got := out.ReadKeyValues(); !slices.Equal(got, wantUpdates) {
		t.Errorf("%s:\n got %+v\nwant %+v", countsTopic, got, wantUpdates)
	}

	store := testutil.StoreView(d, "flow-counts", serde.String(), serde.Int64())
	for flow, want := range map[string]int64{tcpFlow: 4, udpFlow: 2, icmpFlow: 1} {
		got, found, err := store.Get(flow)
		if err != nil || !found || got != want {
			t.Errorf("store flow-counts[%q] = %d, %v, %v; want %d", flow, got, found, err, want)
		}
	}
	// Grouping by the flow key, set after the source, repartitions.
	if n := d.Produced("netflow-flow-counts-repartition"); n != 7 {
		t.Errorf("netflow-flow-counts-repartition got %d records, want 7", n)
	}
}

func TestSynthPackets(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := synthPackets(500, start), synthPackets(500, start)
	if !slices.Equal(a, b) {
		t.Fatal("two runs fed different packets; the generator must be seeded")
	}
	protos := map[string]int{}
	directions := map[string]map[string]bool{} // flow key -> source endpoints seen
	for _, p := range a {
		protos[p.Protocol]++
		k := flowKey(p)
		if directions[k] == nil {
			directions[k] = map[string]bool{}
		}
		directions[k][fmt.Sprintf("%s:%d", p.SrcIP, p.SrcPort)] = true
	}
	for _, proto := range []string{"tcp", "udp", "icmp"} {
		if protos[proto] == 0 {
			t.Errorf("no %s packets in %v", proto, protos)
		}
	}
	both := 0
	for _, srcs := range directions {
		if len(srcs) == 2 {
			both++
		}
	}
	if both == 0 {
		t.Error("no flow has packets in both directions")
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name            string
		args            []string
		records, expect int
		wantErr         bool
	}{
		{"defaults", nil, 1000, 1000, false},
		{"expect follows records", []string{"-records", "200"}, 200, 200, false},
		{"records 0 runs until interrupted", []string{"-records", "0"}, 0, 0, false},
		{"expect without feeding", []string{"-records", "0", "-expect", "6"}, 0, 6, false},
		{"negative records", []string{"-records", "-1"}, 0, 0, true},
		{"zero session timeout", []string{"-session-timeout", "0s"}, 0, 0, true},
		{"stray argument", []string{"extra"}, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if err == nil && (o.records != tt.records || o.expect != tt.expect) {
				t.Errorf("records %d, expect %d; want %d, %d", o.records, o.expect, tt.records, tt.expect)
			}
		})
	}
}

// TestParseFlagsCluster checks the flags of an instance among several:
// the session timeout and -eos, which picks exactly-once and commits every
// 100ms instead of every second.
func TestParseFlagsCluster(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		session time.Duration
		eos     bool
		commit  time.Duration
	}{
		{"defaults", nil, 45 * time.Second, false, time.Second},
		{"session timeout", []string{"-session-timeout", "6s"}, 6 * time.Second, false, time.Second},
		{"eos", []string{"-eos"}, 45 * time.Second, true, 100 * time.Millisecond},
		{"eos=false", []string{"-eos=false"}, 45 * time.Second, false, time.Second},
		{"both", []string{"-eos", "-session-timeout", "6s"}, 6 * time.Second, true, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(append([]string{"-records", "0"}, tt.args...), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if o.sessionTimeout != tt.session || o.eos != tt.eos || o.commitInterval != tt.commit {
				t.Errorf("session timeout %v, eos %v, commit interval %v; want %v, %v, %v",
					o.sessionTimeout, o.eos, o.commitInterval, tt.session, tt.eos, tt.commit)
			}
			want := kstreams.AtLeastOnce
			if tt.eos {
				want = kstreams.ExactlyOnceV2
			}
			if g := guarantee(o.eos); g != want {
				t.Errorf("guarantee %v, want %v", g, want)
			}
		})
	}
}

// TestRunEndToEnd runs the example as its main does, against an in-process
// cluster over the wire, and checks every fed packet reaches an output.
func TestRunEndToEnd(t *testing.T) {
	c := testutil.NewCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	args := []string{
		"-brokers", strings.Join(c.Addrs(), ","),
		"-records", "200",
		"-app-id", "netflow-test",
		"-state-dir", t.TempDir(),
		"-timeout", "60s",
	}
	if err := run(ctx, args, &stdout, testWriter{t}); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
	}

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(resultTopics())+2 {
		t.Fatalf("want one line per result topic and two tallies, got:\n%s", stdout.String())
	}
	printed := map[string]int{}
	for i, topic := range resultTopics() {
		var n int
		if _, err := fmt.Sscanf(lines[i], topic+": %d records", &n); err != nil {
			t.Fatalf("line %q: want %q: %v", lines[i], topic+": <count> records", err)
		}
		if got := len(c.ConsumeAll(t, topic, n, 10*time.Second)); got != n {
			t.Errorf("%s: printed %d records, topic holds %d", topic, n, got)
		}
		printed[topic] = n
	}
	if sum := printed["flows-tcp"] + printed["flows-udp"] + printed["flows-other"]; sum != 200 {
		t.Errorf("flows counts sum to %d, want 200:\n%s", sum, stdout.String())
	}
	if n := printed[enrichedTopic]; n != 200 {
		t.Errorf("%s: %d records, want 200:\n%s", enrichedTopic, n, stdout.String())
	}
	checkEnriched(t, c, lines[len(resultTopics()):])

	// run stopped once the flows records were out, perhaps before the
	// counting task read every packet from the repartition topic; what it
	// counted is committed, and a second run, feeding nothing, counts the
	// rest. Then the latest count of every flow is exact.
	want := map[string]int64{}
	for _, p := range synthPackets(200, time.Now()) {
		want[flowKey(p)]++
	}
	ctx2, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx2, append(args, "-records", "0", "-expect", "0"), &bytes.Buffer{}, testWriter{t})
	}()
	var got map[string]int64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		got = latestCounts(t, c)
		if maps.Equal(got, want) {
			break
		}
		for flow, n := range got {
			if n > want[flow] {
				t.Fatalf("flow %q counted %d times, want %d: a clean stop must not count a packet twice", flow, n, want[flow])
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("second run: %v", err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("latest counts in %s:\n got %v\nwant %v", countsTopic, got, want)
	}
}

// checkEnriched reads packets-enriched and the two tables back from the
// cluster and checks every enriched packet against them: keyed by its
// source address, it carries the ip-orgs row of that address (unknown
// without one) and the services row of its destination port (likewise),
// and the packets are those fed, each once. The tables must be those the
// run meant to feed, and the tally lines it printed must be those of the
// records.
func checkEnriched(t *testing.T, c *testutil.Cluster, tallyLines []string) {
	t.Helper()
	fed := synthPackets(200, time.Now())
	orgs := map[string]Org{}
	for _, r := range c.ConsumeAll(t, orgsTopic, -1, 500*time.Millisecond) {
		org, err := serde.JSON[Org]().Deserialize(orgsTopic, r.Value)
		if err != nil {
			t.Fatalf("%s: row of %q: %v", orgsTopic, r.Key, err)
		}
		orgs[string(r.Key)] = org
	}
	if want := synthOrgs(fed); !maps.Equal(orgs, want) {
		t.Errorf("%s holds %v, want %v", orgsTopic, orgs, want)
	}
	services := map[string]string{}
	for _, r := range c.ConsumeAll(t, servicesTopic, -1, 500*time.Millisecond) {
		services[string(r.Key)] = string(r.Value)
	}
	if want := synthServices(); !maps.Equal(services, want) {
		t.Errorf("%s holds %v, want %v", servicesTopic, services, want)
	}

	left := map[Packet]int{} // fed packets not yet read, timestamps zeroed
	for _, p := range fed {
		p.Timestamp = time.Time{}
		left[p]++
	}
	byOrg, byService := tally{}, tally{}
	var known, unknownOrgs int
	for _, r := range c.ConsumeAll(t, enrichedTopic, len(fed), 10*time.Second) {
		e, err := serde.JSON[EnrichedPacket]().Deserialize(enrichedTopic, r.Value)
		if err != nil {
			t.Fatalf("%s: %v in %s", enrichedTopic, err, r.Value)
		}
		wantOrg, wantASN := unknown, 0
		if org, ok := orgs[e.SrcIP]; ok {
			wantOrg, wantASN = org.Name, org.ASN
			known++
		} else {
			unknownOrgs++
		}
		wantService, ok := services[strconv.Itoa(int(e.DstPort))]
		if !ok {
			wantService = unknown
		}
		if string(r.Key) != e.SrcIP || e.SrcOrg != wantOrg || e.SrcASN != wantASN || e.Service != wantService {
			t.Errorf("%s: %q %s: want key %q, src_org %q, src_asn %d, service %q",
				enrichedTopic, r.Key, r.Value, e.SrcIP, wantOrg, wantASN, wantService)
		}
		p := e.Packet
		p.Timestamp = time.Time{}
		if left[p] == 0 {
			t.Errorf("%s: %s is not a packet fed, or is one read twice", enrichedTopic, r.Value)
		}
		left[p]--
		byOrg[e.SrcOrg]++
		byService[e.Service]++
	}
	for p, n := range left {
		if n > 0 {
			t.Errorf("%s: %d of packet %+v missing", enrichedTopic, n, p)
		}
	}
	if known == 0 || unknownOrgs == 0 {
		t.Errorf("%d packets from an address with an org, %d without: the run should show both", known, unknownOrgs)
	}
	wantTallies := []string{
		fmt.Sprintf("%s by src_org: %v", enrichedTopic, byOrg),
		fmt.Sprintf("%s by service: %v", enrichedTopic, byService),
	}
	if !slices.Equal(tallyLines, wantTallies) {
		t.Errorf("tally lines:\n%s\nwant:\n%s", strings.Join(tallyLines, "\n"), strings.Join(wantTallies, "\n"))
	}
}

// latestCounts reads flow-counts and returns the latest count of each flow.
func latestCounts(t *testing.T, c *testutil.Cluster) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for _, r := range c.ConsumeAll(t, countsTopic, -1, 300*time.Millisecond) {
		n, err := serde.Int64().Deserialize(countsTopic, r.Value)
		if err != nil {
			t.Fatalf("%s: count of %q: %v", countsTopic, r.Key, err)
		}
		got[string(r.Key)] = n
	}
	return got
}

// TestReadmeShowsBuildTopology keeps the README's DSL example true: its
// lines from NewBuilder up to Build are those of buildTopology, which the
// tests above compile and run.
func TestReadmeShowsBuildTopology(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	snippet := between(string(readme), "b := kstream.NewBuilder()", "b.Build()")
	body := between(string(src), "b := kstream.NewBuilder()", "b.Build()")
	if snippet == nil || body == nil {
		t.Fatalf("README.md or main.go has no lines from %q to %q", "b := kstream.NewBuilder()", "b.Build()")
	}
	// The last line differs: the README keeps the result, main returns it.
	snippet, body = snippet[:len(snippet)-1], body[:len(body)-1]
	if !slices.Equal(snippet, body) {
		t.Errorf("README.md's topology differs from buildTopology in main.go:\nREADME:\n%s\nmain.go:\n%s",
			strings.Join(snippet, "\n"), strings.Join(body, "\n"))
	}
}

// between returns the trimmed lines from the first containing first to the
// next containing last, or nil.
func between(text, first, last string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if out == nil && !strings.Contains(line, first) {
			continue
		}
		out = append(out, line)
		if strings.Contains(line, last) {
			return out
		}
	}
	return nil
}

// testWriter sends the example's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
