package testutil

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is an in-process Kafka cluster (kfake) listening on loopback. Clients
// talk to it over the real Kafka wire protocol, so a test that passes against
// it exercises the same requests a real broker would see. It is closed when
// the test that created it finishes.
type Cluster struct {
	kf    *kfake.Cluster
	addrs []string
	// producer serves Produce. Created once because a fresh client per call
	// would redo metadata and the idempotent producer ID handshake each time.
	producer *kgo.Client
}

// ClusterOpt configures NewCluster.
type ClusterOpt func(*clusterConfig)

type clusterConfig struct {
	brokers    int
	partitions int
	kfakeOpts  []kfake.Opt
}

// WithBrokers sets how many brokers the cluster runs, overriding the default
// of 1. Use more than one to test leadership moves and clients that must
// route requests to the right broker.
func WithBrokers(n int) ClusterOpt {
	return func(c *clusterConfig) { c.brokers = n }
}

// WithPartitions sets how many partitions a topic gets when it is created
// automatically (a client produces to or asks metadata for a topic that does
// not exist, with kgo.AllowAutoTopicCreation) or by CreateTopics with -1
// partitions, overriding the default of 4. It does not affect CreateTopic,
// which is always given a count.
func WithPartitions(n int) ClusterOpt {
	return func(c *clusterConfig) { c.partitions = n }
}

// WithKfakeOpts passes options straight to kfake.NewCluster, after the ones
// NewCluster sets itself, so they win. Use it for what this package does not
// wrap, e.g. kfake.BrokerConfigs or kfake.WithLogger.
func WithKfakeOpts(opts ...kfake.Opt) ClusterOpt {
	return func(c *clusterConfig) { c.kfakeOpts = append(c.kfakeOpts, opts...) }
}

// NewCluster starts an in-process cluster on random loopback ports with
// automatic topic creation on, and closes it in t.Cleanup. Clients made by
// Client on the same test are closed first, because cleanups run last-in
// first-out.
func NewCluster(t testing.TB, opts ...ClusterOpt) *Cluster {
	t.Helper()
	cfg := clusterConfig{brokers: 1, partitions: 4}
	for _, o := range opts {
		o(&cfg)
	}
	kopts := append([]kfake.Opt{
		kfake.NumBrokers(cfg.brokers),
		kfake.DefaultNumPartitions(cfg.partitions),
		kfake.AllowAutoTopicCreation(),
	}, cfg.kfakeOpts...)
	kf, err := kfake.NewCluster(kopts...)
	if err != nil {
		t.Fatalf("testutil: start kfake cluster: %v", err)
	}
	t.Cleanup(kf.Close)

	c := &Cluster{kf: kf, addrs: kf.ListenAddrs()}
	// Registered after kf.Close, so it runs before it.
	c.producer = c.Client(t, kgo.AllowAutoTopicCreation())
	return c
}

// Addrs returns the host:port of every broker, for kgo.SeedBrokers or for
// handing to code under test.
func (c *Cluster) Addrs() []string {
	return append([]string(nil), c.addrs...)
}

// Kfake returns the underlying kfake cluster, for what this type does not
// wrap: Compact, ApplyRetention, MoveTopicPartition, Control to inject
// failures into requests, and so on.
func (c *Cluster) Kfake() *kfake.Cluster { return c.kf }

// Client returns a kgo client seeded with the cluster's brokers, configured
// further by opts, and closed in t.Cleanup.
func (c *Cluster) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs...)}, opts...)...)
	if err != nil {
		t.Fatalf("testutil: new kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates a topic with the given partition count and the
// broker's default replication factor, failing the test if that does not
// work (including when the topic already exists).
func (c *Cluster) CreateTopic(t testing.TB, name string, partitions int32) {
	t.Helper()
	c.CreateTopicWithConfig(t, name, partitions, nil)
}

// CreateTopicWithConfig is CreateTopic with topic configs, for example
// {"cleanup.policy": "compact"} for a changelog topic.
func (c *Cluster) CreateTopicWithConfig(t testing.TB, name string, partitions int32, configs map[string]string) {
	t.Helper()
	var cfgs map[string]*string
	if len(configs) > 0 {
		cfgs = make(map[string]*string, len(configs))
		for k, v := range configs {
			cfgs[k] = &v
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(c.producer).CreateTopic(ctx, partitions, -1, cfgs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("testutil: create topic %q with %d partitions: %v", name, partitions, err)
	}
}

// Produce writes recs to topic and waits for every one to be acknowledged,
// failing the test on the first error. Each record's Topic is set to topic.
// Records with a key are partitioned by murmur2 of the key like Java's
// default partitioner, unless a record sets Partition and the test uses
// its own client with kgo.ManualPartitioner. A topic that does not exist is
// created with the cluster's default partition count.
func (c *Cluster) Produce(t testing.TB, topic string, recs ...*kgo.Record) {
	t.Helper()
	for _, r := range recs {
		r.Topic = topic
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("testutil: produce %d records to %q: %v", len(recs), topic, err)
	}
}

// ConsumeAll reads topic from the start of every partition with a fresh,
// group-less consumer until it holds at least want records or timeout
// passes, and returns what it read. Records of one partition are in offset
// order; partitions interleave in no set order. It may return more than want
// if they arrived in the same fetch, and fewer if the timeout passed first:
// the caller checks the count. With want <= 0 it reads until the timeout,
// which is how to assert that no more records arrive.
//
// opts are added to the consumer's, e.g.
// kgo.FetchIsolationLevel(kgo.ReadCommitted()) to see only committed
// transactional records.
func (c *Cluster) ConsumeAll(t testing.TB, topic string, want int, timeout time.Duration, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.addrs...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	if err != nil {
		t.Fatalf("testutil: new consumer for %q: %v", topic, err)
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var recs []*kgo.Record
	for want <= 0 || len(recs) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			// A poll cut short by the deadline may still carry records.
			recs = append(recs, fs.Records()...)
			break
		}
		for _, fe := range fs.Errors() {
			// kgo retries fetch errors itself (e.g. a topic that is not
			// created yet), so they are worth seeing but not fatal here.
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				t.Logf("testutil: consume %s-%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}
