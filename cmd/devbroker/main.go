// Command devbroker runs a standalone in-process Kafka cluster (franz-go's
// kfake) for development: several kstreams processes, kcat or any other Kafka
// client can share it over the real wire protocol, with no JVM or container.
//
// Usage:
//
//	go run ./cmd/devbroker -addr 127.0.0.1:9092 [-brokers 3] [-partitions 4] [-data-dir DIR] [-log-level warn]
//
// The first broker listens on -addr and the others on the ports after it
// (9093, 9094, ...); port 0 picks free ports for all of them. Topics are
// created on first use with -partitions partitions. When ready it prints one
// line to stdout, "listening on ADDR1,ADDR2,...", which scripts can wait for.
// SIGINT or SIGTERM shuts it down and it exits 0; with -data-dir, state is
// saved on shutdown and reloaded on the next start. A second signal during
// shutdown kills it at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintf(os.Stderr, "devbroker: %v\n", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	host       string
	ports      []int // nil: NumBrokers random ports
	brokers    int
	partitions int
	dataDir    string
	logLevel   kfake.LogLevel
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("devbroker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9092", "host:port of the first broker; further brokers use the next ports; port 0 picks free ports")
	brokers := fs.Int("brokers", 1, "number of brokers")
	partitions := fs.Int("partitions", 4, "partitions of each automatically created topic")
	dataDir := fs.String("data-dir", "", "directory to keep topics, offsets and groups in across restarts (default: memory only)")
	logLevel := fs.String("log-level", "none", "broker log level on stderr: none, error, warn, info, debug")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	cfg := config{brokers: *brokers, partitions: *partitions, dataDir: *dataDir}
	if cfg.brokers < 1 {
		return config{}, fmt.Errorf("-brokers %d: need at least 1", cfg.brokers)
	}
	if cfg.partitions < 1 {
		return config{}, fmt.Errorf("-partitions %d: need at least 1", cfg.partitions)
	}
	switch strings.ToLower(*logLevel) {
	case "none":
		cfg.logLevel = kfake.LogLevelNone
	case "error":
		cfg.logLevel = kfake.LogLevelError
	case "warn":
		cfg.logLevel = kfake.LogLevelWarn
	case "info":
		cfg.logLevel = kfake.LogLevelInfo
	case "debug":
		cfg.logLevel = kfake.LogLevelDebug
	default:
		return config{}, fmt.Errorf("-log-level %q: want none, error, warn, info or debug", *logLevel)
	}

	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		return config{}, fmt.Errorf("-addr %q: %w", *addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	// kfake advertises each listener's own address in Metadata and
	// FindCoordinator responses, and clients dial what is advertised, so the
	// host must be one clients can reach, not a wildcard.
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return config{}, fmt.Errorf("-addr %q: brokers advertise their listen address to clients, so it must be a reachable host, not %s", *addr, host)
	}
	cfg.host = host
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port+cfg.brokers-1 > 65535 {
		return config{}, fmt.Errorf("-addr %q: port must be 0 or leave room for %d brokers below 65536", *addr, cfg.brokers)
	}
	if port > 0 {
		for i := range cfg.brokers {
			cfg.ports = append(cfg.ports, port+i)
		}
	}
	return cfg, nil
}

// kfakeOpts turns cfg into options for kfake.NewCluster.
func (cfg config) kfakeOpts(stderr io.Writer) []kfake.Opt {
	opts := []kfake.Opt{
		kfake.NumBrokers(cfg.brokers),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.partitions),
		kfake.WithLogger(kfake.BasicLogger(stderr, cfg.logLevel)),
		// kfake always asks to listen on 127.0.0.1:port; swap in our host.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(cfg.host, port))
		}),
	}
	if cfg.ports != nil {
		opts = append(opts, kfake.Ports(cfg.ports...))
	}
	if cfg.dataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.dataDir))
	}
	return opts
}

// run starts the cluster, prints the ready line to stdout, and closes the
// cluster once ctx is done. stop, if not nil, is called when ctx is done so
// that a second signal falls back to the default action and kills the
// process, in case saving to -data-dir hangs.
func run(ctx context.Context, stop func(), args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	c, err := kfake.NewCluster(cfg.kfakeOpts(stderr)...)
	if err != nil {
		return fmt.Errorf("start cluster on %s: %w", cfg.host, err)
	}
	if _, err := fmt.Fprintf(stdout, "listening on %s\n", strings.Join(c.ListenAddrs(), ",")); err != nil {
		c.Close()
		return fmt.Errorf("write ready line: %w", err)
	}

	<-ctx.Done()
	if stop != nil {
		stop()
	}
	if cfg.dataDir != "" {
		fmt.Fprintf(stderr, "devbroker: saving state to %s\n", cfg.dataDir)
	}
	c.Close()
	return nil
}
