// Command netflow turns a stream of network packets into flows: it keys each
// packet by its 5-tuple, with both directions of a conversation under one
// key, and splits the stream by protocol into the topics flows-tcp,
// flows-udp and flows-other. Keying by flow puts every packet of a
// conversation, request and reply alike, on one partition of the output.
// It also counts the packets of each flow, writing every new count to the
// topic flow-counts (key: the flow; value: the count as an 8-byte
// big-endian integer, which kcat reads with -s value=Q).
//
// And it enriches each packet with two tables, writing it to the topic
// packets-enriched (key: the source address; value: the packet's JSON
// plus src_org, src_asn and service, below):
//
//   - ip-orgs (key: an IP address; value: the organisation that owns it,
//     {"org":"Example Corp","asn":64500}) is read with ktable.Table into the
//     store ip-orgs (changelog "<app-id>-ip-orgs-changelog"). A stream–table
//     join looks a key up in the task holding that key's partition of the
//     table, so the packets, re-keyed by source address (SelectKey named
//     by-src-ip), go through the repartition topic
//     "<app-id>-by-src-ip-repartition" first, created with ip-orgs' partition
//     count: each packet lands on the partition of its source's row. The
//     feed below keys packets by source address already, but the topology
//     cannot know that, and a producer keying otherwise (or hashing keys
//     otherwise, as kcat does by default) would break the join without it.
//     The join is a left join (kstream.LeftJoinTable): a packet whose
//     source has no row goes on with "src_org":"unknown" and no src_asn.
//   - services (key: a port in decimal; value: its service name, "443" →
//     "https") is read with kstream.GlobalTable into the store services:
//     every instance reads the whole topic, so the join
//     (kstream.LeftJoinGlobal), through a key mapper from the packet's
//     destination port, needs no repartition and no co-partitioning;
//     services has 3 partitions where the other topics have 4. A port with
//     no row gives "service":"unknown" (the replies, sent to the clients'
//     ephemeral ports, and ICMP's port 0).
//
// The joins read the tables' current rows: an update of ip-orgs or services
// changes what later packets carry, never a packet already written. Rows of
// services reach a running instance a little after they are written, so a
// packet processed in between carries the old row.
//
// Usage:
//
//	go run ./examples/netflow [-brokers HOST:PORT,...] [-app-id netflow] [-state-dir DIR]
//	                          [-records 1000] [-expect N] [-timeout 60s]
//	                          [-session-timeout 45s] [-eos]
//
// Without -brokers (or KAFKA_BROKERS) it starts an embedded broker. It
// creates the topics if they do not exist (4 partitions each, services 3)
// and feeds the two tables: ip-orgs a row for each address of the
// synthetic packets except those of 10.0.3.0/24 (10.0.0.0/24 "Example
// Corp", 10.0.1.0/24 "Globex", 10.0.2.0/24 "Initech", the servers of
// 192.168.1.0/24 "Example Hosting"), services the server ports' names (ssh,
// domain, http, ntp, https, syslog, postgresql). Then it starts the
// topology, feeds -records synthetic packets to "packets", and once as many
// packets are out (as many records in the flows topics together, and as
// many in packets-enriched) prints one line per topic, "<topic>: <count>
// records", for flows-tcp, flows-udp, flows-other and packets-enriched,
// then two lines counting the enriched packets per organisation and per
// service, most first:
//
//	packets-enriched by src_org: Example Hosting 489, unknown 187, Example Corp 126, ...
//	packets-enriched by service: unknown 617, https 90, postgresql 62, ...
//
// and exits 0; it exits 1 if they do not arrive within -timeout. Only
// records written during this run are counted, and flow-counts is not among
// the topics counted. Unless -state-dir is given, the state (the flow
// counts and the two tables) lives in a temporary directory removed on
// exit, as the embedded broker's topics are.
//
// With -brokers, -records N feeds the tables and N packets as above: other
// instances already running take the rows as they arrive. With -records 0
// it feeds nothing (the topics are still created if missing) and runs until
// SIGINT or SIGTERM: start it twice against one broker and the two
// instances share the partitions (each reads all of services).
// -expect N waits for N packets out instead of -records (so -records 0
// -expect 6 processes packets someone else produces, and exits once six
// flows records and six packets-enriched records are out); -expect 0
// never stops by itself.
// -session-timeout is how long the group waits for a silent instance (one
// killed, say) before moving its partitions to the others (default 45s,
// Kafka's; heartbeats go every third of it, or every 3s if that is sooner).
//
// Delivery is at-least-once: after a crash, the packets processed since the
// last commit (every second) are written again. With -eos it is
// exactly-once (kstreams.ExactlyOnceV2): the outputs, the stores'
// changelogs, the repartition records and the input offsets of each commit
// (every 100ms) go to Kafka in one transaction, so a consumer that reads
// the output topics read_committed (kcat -X isolation.level=read_committed)
// sees every packet once, crash or not. The output topics and the stores
// are the same in both modes; this instance reads its own output
// read_committed then.
//
// Input records are JSON, e.g.
//
//	{"src_ip":"10.0.0.1","src_port":40000,"dst_ip":"10.0.0.2","dst_port":443,"protocol":"tcp","bytes":60}
//
// and that packet, with the tables above, comes out of packets-enriched
// under the key 10.0.0.1 as
//
//	{"src_ip":"10.0.0.1","dst_ip":"10.0.0.2","src_port":40000,"dst_port":443,"protocol":"tcp","bytes":60,"src_org":"Example Corp","src_asn":64500,"service":"https"}
//
// To add a row by hand with kcat, hash its key as Kafka clients do
// (murmur2), so it lands on the partition the join looks in:
//
//	echo '10.0.3.7|{"org":"Lab","asn":64520}' |
//	  kcat -b 127.0.0.1:9092 -P -t ip-orgs -K '|' -X partitioner=murmur2_random
//
// Logs go to stderr; stdout carries only the result lines.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams"
	"github.com/kstreams-go/kstreams/examples/internal/embedded"
	"github.com/kstreams-go/kstreams/kstream"
	"github.com/kstreams-go/kstreams/ktable"
	"github.com/kstreams-go/kstreams/serde"
)

// Packet is one captured packet, the value of a "packets" record.
type Packet struct {
	SrcIP     string    `json:"src_ip"`
	DstIP     string    `json:"dst_ip"`
	SrcPort   uint16    `json:"src_port"`
	DstPort   uint16    `json:"dst_port"`
	Protocol  string    `json:"protocol"` // "tcp", "udp", "icmp", ...
	Bytes     int       `json:"bytes"`
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// buildTopology reads packets, re-keys each by its flow and writes it to the
// topic of its protocol. It also counts the packets of each flow in the
// store "flow-counts": grouping by the new key sends the packets through
// the repartition topic "<app-id>-flow-counts-repartition", so that every
// packet of a flow reaches the task that owns its count, and each new
// count goes to the topic "flow-counts".
//
// Apart from that, it re-keys each packet by its source address and
// left-joins it with the table "ip-orgs": the new key makes the join send
// the packets through the repartition topic "<app-id>-by-src-ip-repartition"
// (named after the SelectKey), so that each packet reaches the task that
// holds its source's row. It then left-joins the result with the global
// table "services" on the destination port, with no repartition, and writes
// it to "packets-enriched". The README shows this function's body.
func buildTopology() (*kstreams.Topology, error) {
	b := kstream.NewBuilder()
	packets := kstream.Stream(b, kstream.ConsumedWith(serde.String(), serde.JSON[Packet]()), "packets")
	flows := kstream.SelectKey(packets, func(_ string, p Packet) string { return flowKey(p) })
	byProto := flows.Split(kstream.Named("proto-")).
		Branch(func(_ string, p Packet) bool { return strings.EqualFold(p.Protocol, "tcp") }, kstream.Named("tcp")).
		Branch(func(_ string, p Packet) bool { return strings.EqualFold(p.Protocol, "udp") }, kstream.Named("udp")).
		DefaultBranch(kstream.Named("other"))
	byProto["proto-tcp"].To("flows-tcp")
	byProto["proto-udp"].To("flows-udp")
	byProto["proto-other"].To("flows-other")
	counts := kstream.Count(kstream.GroupByKey(flows), kstream.MaterializedAs[string, int64]("flow-counts"))
	counts.ToStream().To("flow-counts", kstream.ProducedWith(serde.String(), serde.Int64()))
	bySrc := kstream.SelectKey(packets, func(_ string, p Packet) string { return p.SrcIP }, kstream.Named("by-src-ip"))
	orgs := ktable.Table(b, kstream.ConsumedWith(serde.String(), serde.JSON[Org]()), "ip-orgs",
		kstream.MaterializedAs[string, Org]("ip-orgs"))
	services := kstream.GlobalTable(b, kstream.ConsumedWith(serde.String(), serde.String()), "services",
		kstream.MaterializedAs[string, string]("services"))
	withOrg := kstream.LeftJoinTable(bySrc, orgs, withSrcOrg) // withSrcOrg(p Packet, org *Org): nil org, no row
	enriched := kstream.LeftJoinGlobal(withOrg, services,
		func(_ string, e EnrichedPacket) string { return strconv.Itoa(int(e.DstPort)) }, withService)
	enriched.To("packets-enriched", kstream.ProducedWith(serde.String(), serde.JSON[EnrichedPacket]()))
	return b.Build()
}

const (
	inputTopic  = "packets"
	countsTopic = "flow-counts"
)

// flowTopics are the topics buildTopology splits the packets into, by
// protocol: each packet reaches exactly one of them.
func flowTopics() []string { return []string{"flows-tcp", "flows-udp", "flows-other"} }

// resultTopics are the topics a run counts the records of, in the order
// the result lines are printed: each packet reaches one of the flows
// topics and packets-enriched.
func resultTopics() []string { return append(flowTopics(), enrichedTopic) }

// flowKey names the conversation p belongs to, "proto|A|B", where A and B
// are its two endpoints, lower first, so that a packet and its reply get
// the same key: "tcp|10.0.0.1:1234|10.0.0.2:80" for either direction.
func flowKey(p Packet) string {
	a, b := newEndpoint(p.SrcIP, p.SrcPort), newEndpoint(p.DstIP, p.DstPort)
	if b.less(a) {
		a, b = b, a
	}
	return strings.ToLower(p.Protocol) + "|" + a.s + "|" + b.s
}

type endpoint struct {
	ap netip.AddrPort // valid when the address parsed
	s  string
}

func newEndpoint(ip string, port uint16) endpoint {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return endpoint{s: net.JoinHostPort(ip, strconv.Itoa(int(port)))}
	}
	// Unmap so ::ffff:10.0.0.1 and 10.0.0.1, one host written two ways by
	// different capture points, make one flow.
	ap := netip.AddrPortFrom(addr.Unmap(), port)
	return endpoint{ap: ap, s: ap.String()}
}

// less orders endpoints by address then port, or as text when either
// address did not parse. All a key needs is that less(a, b) and less(b, a)
// are never both true.
func (e endpoint) less(o endpoint) bool {
	if e.ap.IsValid() && o.ap.IsValid() {
		return e.ap.Compare(o.ap) < 0
	}
	return e.s < o.s
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, let a second one kill the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintf(os.Stderr, "netflow: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	brokers  string
	appID    string
	stateDir string
	records  int
	expect   int // packets to wait for in the outputs; 0: run until interrupted
	timeout  time.Duration

	sessionTimeout time.Duration
	eos            bool // exactly-once (kstreams.ExactlyOnceV2)
	// commitInterval is not a flag: 1s, short so a second instance takes
	// over with little replay, or with -eos kstreams' 100ms, as each
	// commit is what makes the output visible to read_committed readers.
	commitInterval time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("netflow", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.brokers, "brokers", "", "comma-separated seed brokers (default: $KAFKA_BROKERS, else an embedded broker)")
	fs.StringVar(&o.appID, "app-id", "netflow", "application id: the consumer group, shared by instances that split the work")
	fs.StringVar(&o.stateDir, "state-dir", "", "directory for local state (default: a temporary directory on the embedded broker, else the kstreams default under the temp dir)")
	fs.IntVar(&o.records, "records", 1000, "synthetic packets to feed, after the ip-orgs and services rows, then wait for them in the outputs; 0: feed nothing and run until interrupted")
	fs.IntVar(&o.expect, "expect", 0, "packets to wait for, in the flows topics and in packets-enriched, before printing counts and exiting (default: -records); 0: never stop by itself")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "how long to wait for the output records before failing")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", 45*time.Second, "how long the group waits for a silent instance before moving its partitions; heartbeats go every third of it, at most 3s apart")
	fs.BoolVar(&o.eos, "eos", false, "exactly-once processing: outputs, changelog and input offsets commit in one transaction (read the outputs read_committed)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	expectSet := false
	fs.Visit(func(f *flag.Flag) { expectSet = expectSet || f.Name == "expect" })
	if !expectSet {
		o.expect = o.records
	}
	o.commitInterval = time.Second
	if o.eos {
		o.commitInterval = 100 * time.Millisecond
	}
	switch {
	case o.records < 0:
		return o, fmt.Errorf("-records %d: must not be negative", o.records)
	case o.expect < 0:
		return o, fmt.Errorf("-expect %d: must not be negative", o.expect)
	case o.timeout <= 0:
		return o, fmt.Errorf("-timeout %v: must be positive", o.timeout)
	case o.sessionTimeout <= 0:
		return o, fmt.Errorf("-session-timeout %v: must be positive", o.sessionTimeout)
	}
	return o, nil
}

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	brokers, stopBroker, err := embedded.Brokers(o.brokers)
	if err != nil {
		return err
	}
	defer stopBroker()
	external := embedded.External(o.brokers)
	if !external && o.stateDir == "" {
		dir, cleanup, err := embedded.TempStateDir("netflow")
		if err != nil {
			return err
		}
		defer cleanup()
		o.stateDir = dir
	}

	topo, err := buildTopology()
	if err != nil {
		return fmt.Errorf("build topology: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("client for %v: %w", brokers, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := embedded.CreateTopics(ctx, adm, append([]string{inputTopic, countsTopic, orgsTopic}, resultTopics()...), log); err != nil {
		return err
	}
	if err := createTopic(ctx, adm, servicesTopic, servicesPartitions, log); err != nil {
		return err
	}
	// Count only what this run writes: the output topics may hold records
	// from earlier runs against the same broker.
	from, err := endOffsets(ctx, adm, resultTopics())
	if err != nil {
		return err
	}

	// The tables go first, before the app starts and before the packets:
	// the app reads all of services before it takes any partition, and
	// the ip-orgs rows, older than every packet, are joined first once a
	// task holds both (a task takes the oldest record it has fetched).
	var packets []Packet
	if o.records > 0 {
		tablesAt := time.Now()
		packets = synthPackets(o.records, tablesAt.Add(time.Millisecond))
		orgs, services := synthOrgs(packets), synthServices()
		if err := feedTables(ctx, cl, orgs, services, tablesAt); err != nil {
			return err
		}
		log.Info("fed the tables", orgsTopic, len(orgs), servicesTopic, len(services))
	}

	app, err := kstreams.New(topo, kstreams.Config{
		ApplicationID:       o.appID,
		Brokers:             brokers,
		StateDir:            o.stateDir,
		CommitInterval:      o.commitInterval,
		ProcessingGuarantee: guarantee(o.eos),
		// A malformed packet (say, typed by hand into kcat) is logged and
		// skipped rather than stopping the flows of everyone else.
		OnDeserializationError: kstreams.LogAndContinue,
		Logger:                 log,
		ClientOptions:          embedded.GroupOptions(o.sessionTimeout),
	})
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	var runErr error
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		runErr = app.Run(appCtx)
	}()
	// stopAndWait stops the app, committing what it processed, and returns
	// its error; err from the caller wins.
	stopAndWait := func(err error) error {
		stopApp()
		<-runDone
		if err == nil && runErr != nil {
			err = fmt.Errorf("app %s: %w", o.appID, runErr)
		}
		return err
	}

	if len(packets) > 0 {
		start := time.Now()
		if err := feed(ctx, cl, packets); err != nil {
			return stopAndWait(err)
		}
		log.Info("fed synthetic packets", "topic", inputTopic, "records", len(packets), "took", time.Since(start).Round(time.Millisecond))
	}

	if o.expect == 0 {
		log.Info("running until interrupted", "brokers", brokers, "app_id", o.appID)
		select {
		case <-ctx.Done():
		case <-runDone:
		}
		return stopAndWait(nil)
	}

	log.Info("waiting for output records", "packets", o.expect, "topics", resultTopics(), "timeout", o.timeout)
	res, err := awaitOutput(ctx, brokers, from, o.expect, o.timeout, isolation(o.eos), runDone, log)
	if err := stopAndWait(err); err != nil {
		return err
	}
	for _, topic := range resultTopics() {
		fmt.Fprintf(stdout, "%s: %d records\n", topic, res.counts[topic])
	}
	fmt.Fprintf(stdout, "%s by src_org: %v\n", enrichedTopic, res.bySrcOrg)
	fmt.Fprintf(stdout, "%s by service: %v\n", enrichedTopic, res.byService)
	return nil
}

// createTopic creates topic with the given partitions, unless it exists.
// embedded.CreateTopics makes every topic with 4 partitions; services
// gets a count of its own.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, log *slog.Logger) error {
	r, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
	case err != nil:
		return fmt.Errorf("create topic %s: %w", topic, err)
	default:
		log.Info("created topic", "topic", r.Topic, "partitions", r.NumPartitions)
	}
	return nil
}

// endOffsets lists the end offset of every partition of topics, retrying
// for a while: a broker may not know a topic created a moment ago yet.
func endOffsets(ctx context.Context, adm *kadm.Client, topics []string) (kadm.ListedOffsets, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		offsets, err := adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = offsets.Error()
		}
		if err == nil {
			return offsets, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("end offsets of %v: %w", topics, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// synthPackets returns n packets of a fixed set of conversations, each
// packet going either way, from a seeded generator: every run feeds the
// same packets, only their timestamps (from start, a millisecond apart)
// differ.
func synthPackets(n int, start time.Time) []Packet {
	rng := rand.New(rand.NewPCG(1, 2))
	type conversation struct {
		proto                string
		client, server       string
		clientPort, servPort uint16
	}
	convs := make([]conversation, 40)
	for i := range convs {
		c := conversation{
			client: fmt.Sprintf("10.0.%d.%d", rng.IntN(4), 1+rng.IntN(254)),
			server: fmt.Sprintf("192.168.1.%d", 1+rng.IntN(20)),
		}
		switch r := rng.IntN(10); {
		case r < 5:
			c.proto, c.servPort = "tcp", []uint16{22, 80, 443, 5432}[rng.IntN(4)]
		case r < 8:
			c.proto, c.servPort = "udp", []uint16{53, 123, 514}[rng.IntN(3)]
		default:
			c.proto = "icmp" // no ports
		}
		if c.proto != "icmp" {
			c.clientPort = uint16(32768 + rng.IntN(28000))
		}
		convs[i] = c
	}
	out := make([]Packet, n)
	for i := range out {
		c := convs[rng.IntN(len(convs))]
		p := Packet{
			SrcIP: c.client, SrcPort: c.clientPort,
			DstIP: c.server, DstPort: c.servPort,
			Protocol:  c.proto,
			Bytes:     40 + rng.IntN(1460),
			Timestamp: start.Add(time.Duration(i) * time.Millisecond),
		}
		if rng.IntN(2) == 0 { // a reply
			p.SrcIP, p.DstIP = p.DstIP, p.SrcIP
			p.SrcPort, p.DstPort = p.DstPort, p.SrcPort
		}
		out[i] = p
	}
	return out
}

// feed writes packets to the input topic, keyed by source address as a
// capture agent might, and waits for the brokers to acknowledge them all.
func feed(ctx context.Context, cl *kgo.Client, packets []Packet) error {
	ser := serde.JSON[Packet]()
	recs := make([]*kgo.Record, len(packets))
	for i, p := range packets {
		v, err := ser.Serialize(inputTopic, p)
		if err != nil {
			return err
		}
		recs[i] = &kgo.Record{Topic: inputTopic, Key: []byte(p.SrcIP), Value: v, Timestamp: p.Timestamp}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d packets to %s: %w", len(recs), inputTopic, err)
	}
	return nil
}

// results is what a run read from the result topics.
type results struct {
	counts    map[string]int // records per topic
	bySrcOrg  tally          // packets-enriched records per src_org
	byService tally          // and per service
}

// done reports whether want packets are out: want records in the flows
// topics together, and want in packets-enriched.
func (r results) done(want int) bool {
	flows := 0
	for _, t := range flowTopics() {
		flows += r.counts[t]
	}
	return flows >= want && r.counts[enrichedTopic] >= want
}

// summary says how many records each result topic got.
func (r results) summary() string {
	parts := make([]string, 0, len(resultTopics()))
	for _, t := range resultTopics() {
		parts = append(parts, fmt.Sprintf("%s %d", t, r.counts[t]))
	}
	return strings.Join(parts, ", ")
}

// awaitOutput reads the result topics from the offsets in from, at
// isolation level iso, until want packets are out (results.done), and
// returns what it read. It fails when timeout passes first, when ctx ends,
// or when the app stops (runDone).
func awaitOutput(ctx context.Context, brokers []string, from kadm.ListedOffsets, want int, timeout time.Duration, iso kgo.IsolationLevel, runDone <-chan struct{}, log *slog.Logger) (results, error) {
	res := results{counts: map[string]int{}, bySrcOrg: tally{}, byService: tally{}}
	start := map[string]map[int32]kgo.Offset{}
	from.Each(func(o kadm.ListedOffset) {
		if start[o.Topic] == nil {
			start[o.Topic] = map[int32]kgo.Offset{}
		}
		start[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(start), kgo.FetchIsolationLevel(iso))
	if err != nil {
		return res, fmt.Errorf("consumer of %v: %w", resultTopics(), err)
	}
	defer cl.Close()

	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		select {
		case <-runDone:
			cancel()
		case <-waitCtx.Done():
		}
	}()

	enrichedSerde := serde.JSON[EnrichedPacket]()
	for !res.done(want) {
		fs := cl.PollFetches(waitCtx)
		fs.EachRecord(func(r *kgo.Record) {
			res.counts[r.Topic]++
			if r.Topic != enrichedTopic {
				return
			}
			e, err := enrichedSerde.Deserialize(r.Topic, r.Value)
			if err != nil {
				// Not ours (someone else writes the topic): counted, not
				// tallied.
				log.Warn("reading an enriched packet", "partition", r.Partition, "offset", r.Offset, "err", err)
				return
			}
			res.bySrcOrg[e.SrcOrg]++
			res.byService[e.Service]++
		})
		if res.done(want) {
			break
		}
		if waitCtx.Err() != nil {
			got := "got " + res.summary()
			select {
			case <-runDone:
				return res, fmt.Errorf("app stopped while waiting for %d packets in the output; %s", want, got)
			default:
			}
			if ctx.Err() != nil {
				return res, fmt.Errorf("interrupted while waiting for %d packets in the output; %s", want, got)
			}
			return res, fmt.Errorf("timed out after %v waiting for %d packets in the output; %s", timeout, want, got)
		}
		fs.EachError(func(topic string, p int32, err error) {
			// kgo keeps retrying after reporting (a topic whose metadata
			// has not spread yet, a broker that restarts), so these are
			// worth seeing but not fatal: the timeout bounds the wait.
			log.Warn("consuming output", "topic", topic, "partition", p, "err", err)
		})
	}
	return res, nil
}

// guarantee is the processing guarantee of -eos.
func guarantee(eos bool) kstreams.ProcessingGuarantee {
	if eos {
		return kstreams.ExactlyOnceV2
	}
	return kstreams.AtLeastOnce
}

// isolation is how this instance reads its output: under exactly-once,
// only what committed transactions wrote, as a downstream consumer must.
func isolation(eos bool) kgo.IsolationLevel {
	if eos {
		return kgo.ReadCommitted()
	}
	return kgo.ReadUncommitted()
}
