// Package embedded gives the examples a Kafka cluster to talk to: the brokers
// the user named, or else an in-process kfake cluster, so that every example
// runs with a bare `go run` and no broker installed.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Brokers returns the seed brokers to use and a function that releases
// them. The brokers come from flagValue (comma-separated host:port), else
// from the KAFKA_BROKERS environment variable, else from a one-broker kfake
// cluster started here on a free loopback port, with topics auto-created
// with 4 partitions; its address is printed to stderr so other clients
// (kcat, a second example) can join it while the example runs. stop closes
// that cluster, and does nothing for brokers given from outside; it is never
// nil when err is nil.
func Brokers(flagValue string) (addrs []string, stop func(), err error) {
	for _, v := range []string{flagValue, os.Getenv("KAFKA_BROKERS")} {
		if addrs := split(v); len(addrs) > 0 {
			return addrs, func() {}, nil
		}
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(4),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("start embedded broker: %w", err)
	}
	addrs = c.ListenAddrs()
	fmt.Fprintf(os.Stderr, "embedded broker listening on %s\n", strings.Join(addrs, ","))
	return addrs, c.Close, nil
}

// split turns "a:1, b:2," into [a:1 b:2].
func split(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// CreateTopics creates topics with 4 partitions each; topics that already
// exist are left as they are.
func CreateTopics(ctx context.Context, adm *kadm.Client, topics []string, log *slog.Logger) error {
	resp, err := adm.CreateTopics(ctx, 4, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for _, r := range resp.Sorted() {
		switch {
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
		case r.Err != nil:
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		default:
			log.Info("created topic", "topic", r.Topic, "partitions", r.NumPartitions)
		}
	}
	return nil
}
