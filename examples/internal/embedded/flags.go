package embedded

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// External reports whether the brokers come from brokersFlag or
// KAFKA_BROKERS rather than from an embedded broker started for the run.
func External(brokersFlag string) bool {
	return strings.Trim(brokersFlag, " ,") != "" || strings.Trim(os.Getenv("KAFKA_BROKERS"), " ,") != ""
}

// CheckHTTPAddr validates an -http address. The address is advertised to
// the other instances, which dial it: it needs a fixed port and a host they
// can reach. An empty address (serve nothing) is fine.
func CheckHTTPAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return fmt.Errorf("-http %q: want host:port with a fixed port", addr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("-http %q: the address is advertised to the other instances, so the host must be one they can reach", addr)
	}
	return nil
}

// GroupOptions are the client options for -session-timeout. A member
// learns of a rebalance from a heartbeat's answer, so heartbeats stay at
// most Kafka's default 3s apart even when a third of a long session
// timeout would allow more.
func GroupOptions(sessionTimeout time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.SessionTimeout(sessionTimeout),
		kgo.HeartbeatInterval(min(sessionTimeout/3, 3*time.Second)),
	}
}

// TempStateDir makes a state directory for a run on the embedded broker,
// removed by cleanup. The embedded broker's topics die with it, so must the
// state: a store checkpointed against an earlier broker's changelog would
// start from that run's results.
func TempStateDir(example string) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", example+"-state-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
