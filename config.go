package kstreams

import (
	"fmt"

	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreams-go/kstreams/internal/statemgr"
	"github.com/kstreams-go/kstreams/state"
)

// DeserializationPolicy says what happens to an input record whose key or
// value fails to deserialize.
type DeserializationPolicy int

const (
	// FailOnDeserializationError stops the application with an error that
	// names the topic, partition and offset (the default).
	FailOnDeserializationError DeserializationPolicy = iota
	// LogAndContinue logs the record's position, counts it and skips it.
	LogAndContinue
	// DeadLetterQueue writes the raw record to Config.DeadLetterTopic with
	// headers that say where it came from and why it failed, then skips it.
	DeadLetterQueue
)

func (p DeserializationPolicy) String() string {
	switch p {
	case FailOnDeserializationError:
		return "fail"
	case LogAndContinue:
		return "log-and-continue"
	case DeadLetterQueue:
		return "dead-letter-queue"
	}
	return fmt.Sprintf("DeserializationPolicy(%d)", int(p))
}

// ProcessingGuarantee is the delivery guarantee of an application.
type ProcessingGuarantee int

const (
	// AtLeastOnce commits input offsets after the outputs they caused are
	// acknowledged: after a crash some records are processed again. The
	// default.
	AtLeastOnce ProcessingGuarantee = iota
	// ExactlyOnceV2 writes the outputs, repartition and changelog records
	// of each commit interval and the input offsets in one Kafka
	// transaction (Kafka Streams' exactly_once_v2): read_committed
	// consumers see every input's effect exactly once.
	ExactlyOnceV2
)

func (g ProcessingGuarantee) String() string {
	switch g {
	case AtLeastOnce:
		return "at_least_once"
	case ExactlyOnceV2:
		return "exactly_once_v2"
	}
	return fmt.Sprintf("ProcessingGuarantee(%d)", int(g))
}

// Config configures an application. Only ApplicationID and Brokers are
// required; every other field has the default written beside it.
type Config struct {
	// ApplicationID names the application: it is the consumer group id and
	// the prefix of every internal topic and of the state directory.
	// Required; letters, digits, '.', '_' and '-' only.
	ApplicationID string

	// Brokers are the seed brokers, host:port. Required.
	Brokers []string

	// StateDir holds local state, under <StateDir>/<ApplicationID>/.
	// Default: <os.TempDir()>/kstreams.
	StateDir string

	// CommitInterval is how often processed input offsets are committed,
	// after every record they caused is acknowledged. Default 30s, or
	// 100ms under ExactlyOnceV2 (each commit ends a transaction, and
	// read_committed consumers see nothing before it).
	CommitInterval time.Duration

	// ProcessingGuarantee is AtLeastOnce (default) or ExactlyOnceV2.
	ProcessingGuarantee ProcessingGuarantee

	// RepartitionPurgeInterval is how often records of repartition topics
	// below the committed offsets are deleted (DeleteRecords), as Kafka
	// Streams' repartition.purge.interval.ms. Default 30s.
	RepartitionPurgeInterval time.Duration

	// MaxBufferedRecords bounds the records fetched but not yet processed
	// per input partition; a partition at the bound is paused until its
	// task drains it to half. Default 10000.
	MaxBufferedRecords int

	// OnDeserializationError picks the policy for bad input. Default
	// FailOnDeserializationError.
	OnDeserializationError DeserializationPolicy

	// DeadLetterTopic receives bad input under DeadLetterQueue; required
	// with that policy.
	DeadLetterTopic string

	// ReplicationFactor of the internal topics the application creates.
	// Default -1: the broker's default.
	ReplicationFactor int16

	// Logger receives the application's logs. Default: text to stderr at
	// Info level.
	Logger *slog.Logger

	// StateListener is called on every state change, from the goroutine
	// that changed it; it must not block.
	StateListener func(old, new State)

	// StateStoreCacheMaxBytes is the write-cache budget of the instance,
	// shared by its tasks' cached stores: repeated updates of a key collapse
	// in the cache until a commit or an eviction writes them through.
	// Default 10 MiB; NoCache (-1) turns caching off. (0 means the default,
	// so that a zero Config works.)
	StateStoreCacheMaxBytes int64

	// StateCleanupDelay is how long the state of a task this instance no
	// longer owns stays on disk (it may come back). Default 10 minutes.
	StateCleanupDelay time.Duration

	// Pebble tunes the on-disk stores (block cache and memtable sizes).
	// Zero fields take Pebble defaults suited to one task each.
	Pebble state.PebbleOptions

	// MinInSyncReplicas sets min.insync.replicas on the changelog topics
	// the application creates. Default 0: the broker's default.
	MinInSyncReplicas int

	// RestoreListener hears when each store restore starts, progresses and
	// ends. Optional.
	RestoreListener RestoreListener

	// ApplicationServer is this instance's host:port for interactive
	// queries, advertised to the other instances through the group so any
	// of them can route a key to the instance that owns it. Optional.
	ApplicationServer string

	// ServeQueries makes Run listen on ApplicationServer and serve
	// App.Handler() there: the interactive-query REST API under /v1/ and
	// Prometheus metrics under /metrics. Needs ApplicationServer. Default
	// false: mount App.Handler() in your own server, or serve nothing.
	ServeQueries bool

	// Registerer receives the application's Prometheus metrics. Default
	// nil: a registry of the app's own, served at /metrics by Handler.
	// Nothing is ever registered globally.
	Registerer prometheus.Registerer

	// NumStandbyReplicas is how many other instances keep a warm copy of
	// each stateful task's stores by tailing its changelogs, so a failover
	// restores only the tail. Default 0.
	NumStandbyReplicas int

	// ClientOptions are extra franz-go options (TLS, SASL, ...) added to
	// every client the application makes.
	ClientOptions []kgo.Opt
}

// NoCache turns the state store write cache off.
const NoCache = -1

// RestoreListener hears about store restores, as Kafka Streams'
// StateRestoreListener. Its methods run on task goroutines.
type RestoreListener = statemgr.RestoreListener

var validAppID = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// ConfigError is a configuration problem; Field names the Config field.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("kstreams: config %s: %s", e.Field, e.Msg) }

// withDefaults validates c and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.ApplicationID == "":
		return c, &ConfigError{"ApplicationID", "required: set it to a name for this application (it is also the consumer group id)"}
	case !validAppID.MatchString(c.ApplicationID):
		return c, &ConfigError{"ApplicationID", fmt.Sprintf("%q may hold only letters, digits, '.', '_' and '-'", c.ApplicationID)}
	case len(c.Brokers) == 0:
		return c, &ConfigError{"Brokers", "required: give at least one host:port"}
	case c.ProcessingGuarantee < AtLeastOnce || c.ProcessingGuarantee > ExactlyOnceV2:
		return c, &ConfigError{"ProcessingGuarantee", fmt.Sprintf("unknown guarantee %d", int(c.ProcessingGuarantee))}
	case c.RepartitionPurgeInterval < 0:
		return c, &ConfigError{"RepartitionPurgeInterval", fmt.Sprintf("%v is negative", c.RepartitionPurgeInterval)}
	case c.CommitInterval < 0:
		return c, &ConfigError{"CommitInterval", fmt.Sprintf("%v is negative", c.CommitInterval)}
	case c.MaxBufferedRecords < 0:
		return c, &ConfigError{"MaxBufferedRecords", fmt.Sprintf("%d is negative", c.MaxBufferedRecords)}
	case c.OnDeserializationError < FailOnDeserializationError || c.OnDeserializationError > DeadLetterQueue:
		return c, &ConfigError{"OnDeserializationError", fmt.Sprintf("unknown policy %d", int(c.OnDeserializationError))}
	case c.OnDeserializationError == DeadLetterQueue && c.DeadLetterTopic == "":
		return c, &ConfigError{"DeadLetterTopic", "required when OnDeserializationError is DeadLetterQueue"}
	case c.StateStoreCacheMaxBytes < -1:
		return c, &ConfigError{"StateStoreCacheMaxBytes", fmt.Sprintf("%d: use a positive byte count, 0 for the default or NoCache", c.StateStoreCacheMaxBytes)}
	case c.StateCleanupDelay < 0:
		return c, &ConfigError{"StateCleanupDelay", fmt.Sprintf("%v is negative", c.StateCleanupDelay)}
	case c.MinInSyncReplicas < 0:
		return c, &ConfigError{"MinInSyncReplicas", fmt.Sprintf("%d is negative", c.MinInSyncReplicas)}
	case c.NumStandbyReplicas < 0:
		return c, &ConfigError{"NumStandbyReplicas", fmt.Sprintf("%d is negative", c.NumStandbyReplicas)}
	case c.ApplicationServer != "" && !validHostPort(c.ApplicationServer):
		return c, &ConfigError{"ApplicationServer", fmt.Sprintf("%q is not host:port", c.ApplicationServer)}
	case c.ServeQueries && c.ApplicationServer == "":
		return c, &ConfigError{"ServeQueries", "needs ApplicationServer (host:port to listen on)"}
	case c.ReplicationFactor < -1:
		return c, &ConfigError{"ReplicationFactor", fmt.Sprintf("%d: use -1 (broker default) or a positive count", c.ReplicationFactor)}
	}
	for i, b := range c.Brokers {
		if b == "" {
			return c, &ConfigError{"Brokers", fmt.Sprintf("entry %d is empty", i)}
		}
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(os.TempDir(), "kstreams")
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 30 * time.Second
		if c.ProcessingGuarantee == ExactlyOnceV2 {
			c.CommitInterval = 100 * time.Millisecond
		}
	}
	if c.RepartitionPurgeInterval == 0 {
		c.RepartitionPurgeInterval = 30 * time.Second
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = 10_000
	}
	if c.StateStoreCacheMaxBytes == 0 {
		c.StateStoreCacheMaxBytes = 10 << 20
	}
	if c.StateCleanupDelay == 0 {
		c.StateCleanupDelay = 10 * time.Minute
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return c, nil
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return false
	}
	_ = host
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

// logAttrs is the configuration as log attributes, for the start-up line.
// ClientOptions may carry credentials (SASL, TLS), so only their count is
// logged; the logger and registerer are not configuration to show.
func (c Config) logAttrs(processID string) []any {
	return []any{
		"process_id", processID,
		"brokers", c.Brokers,
		"state_dir", c.StateDir,
		"processing_guarantee", c.ProcessingGuarantee.String(),
		"commit_interval", c.CommitInterval,
		"max_buffered_records", c.MaxBufferedRecords,
		"on_deserialization_error", c.OnDeserializationError.String(),
		"dead_letter_topic", c.DeadLetterTopic,
		"replication_factor", c.ReplicationFactor,
		"min_insync_replicas", c.MinInSyncReplicas,
		"state_store_cache_max_bytes", c.StateStoreCacheMaxBytes,
		"state_cleanup_delay", c.StateCleanupDelay,
		"num_standby_replicas", c.NumStandbyReplicas,
		"application_server", c.ApplicationServer,
		"serve_queries", c.ServeQueries,
		"repartition_purge_interval", c.RepartitionPurgeInterval,
		"client_options", fmt.Sprintf("%d (not shown: they may hold credentials)", len(c.ClientOptions)),
	}
}
