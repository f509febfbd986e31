//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// buildDevbroker compiles this command into a temporary directory, so the
// tests run the binary a user gets, signals and exit codes included.
func buildDevbroker(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "devbroker")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer collects a child's stderr for the failure log; exec copies into
// it from its own goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type broker struct {
	cmd   *exec.Cmd
	addrs []string
	extra *syncBuffer // stdout after the ready line, which should stay empty
	done  chan error  // receives cmd.Wait's result
}

// start runs the binary and waits for its ready line. If the test ends
// with the process still running, it is killed.
func start(t *testing.T, bin string, args ...string) *broker {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &broker{cmd: cmd, extra: new(syncBuffer), done: make(chan error, 1)}

	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		if line, err := r.ReadString('\n'); err == nil {
			lines <- strings.TrimSuffix(line, "\n")
		}
		// Keep reading so Wait is not stuck on a full pipe; stop checks
		// that nothing came.
		_, _ = io.Copy(b.extra, r)
		b.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("devbroker %v stderr:\n%s", args, stderr.String())
		}
	})

	select {
	case line := <-lines:
		rest, ok := strings.CutPrefix(line, "listening on ")
		if !ok {
			t.Fatalf("first stdout line %q, want \"listening on ...\"", line)
		}
		b.addrs = strings.Split(rest, ",")
	case err := <-b.done:
		t.Fatalf("devbroker exited before it was ready: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no ready line after 30s\n%s", stderr.String())
	}
	return b
}

// stop sends sig and checks that the process exits 0.
func (b *broker) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.done:
		if err != nil {
			t.Fatalf("after %v: %v, want exit status 0", sig, err)
		}
		if extra := b.extra.String(); extra != "" {
			t.Errorf("stdout after the ready line: %q, want nothing", extra)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20s after %v", sig)
	}
}

// freePorts returns the first of n consecutive ports that were free a moment
// ago. Another process can take one before devbroker binds it, which fails
// the test loudly rather than flakily passing.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		first := ln.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{ln}
		ok := first+n-1 <= 65535
		for i := 1; ok && i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first+i))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, l)
		}
		for _, l := range lns {
			l.Close()
		}
		if ok {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

func produceOne(t *testing.T, addrs []string, topic, key, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rec := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value)}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

func consumeOne(t *testing.T, addrs []string, topic string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addrs...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if recs := fs.Records(); len(recs) > 0 {
			return recs[0]
		}
		if ctx.Err() != nil {
			t.Fatalf("no record on %s within 15s: %v", topic, fs.Errors())
		}
	}
}

// TestDevbroker runs two brokers on consecutive ports, moves a record
// through them with kgo (and kcat when installed), and shuts down on
// SIGTERM with exit status 0.
func TestDevbroker(t *testing.T) {
	bin := buildDevbroker(t)
	port := freePorts(t, 2)
	b := start(t, bin, "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-brokers", "2", "-partitions", "3")

	want := []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", port+1)}
	if strings.Join(b.addrs, ",") != strings.Join(want, ",") {
		t.Fatalf("listening on %v, want %v", b.addrs, want)
	}

	produceOne(t, b.addrs, "greetings", "k", "hello")
	if r := consumeOne(t, b.addrs, "greetings"); string(r.Key) != "k" || string(r.Value) != "hello" {
		t.Errorf("consumed %s=%s, want k=hello", r.Key, r.Value)
	}

	t.Run("kcat", func(t *testing.T) {
		kcat, err := exec.LookPath("kcat")
		if err != nil {
			t.Skip("kcat not installed; skipping only the kcat check")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, kcat, "-b", b.addrs[0], "-L").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -L: %v\n%s", err, out)
		}
		for _, s := range []string{"2 brokers:", `topic "greetings" with 3 partitions`} {
			if !strings.Contains(string(out), s) {
				t.Errorf("kcat -L output lacks %q:\n%s", s, out)
			}
		}
		// librdkafka is a second, independent client: reading the record
		// kgo wrote checks the fetch path too.
		out, err = exec.CommandContext(ctx, kcat, "-b", b.addrs[1], "-C", "-t", "greetings", "-o", "beginning", "-e", "-q").Output()
		if err != nil {
			t.Fatalf("kcat -C: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != "hello" {
			t.Errorf("kcat consumed %q, want hello", got)
		}
	})

	b.stop(t, syscall.SIGTERM)
}

// TestDevbrokerDataDir checks that -data-dir keeps records across a restart,
// which is why it saves on SIGINT before exiting.
func TestDevbrokerDataDir(t *testing.T) {
	bin := buildDevbroker(t)
	dir := t.TempDir()

	b := start(t, bin, "-addr", "127.0.0.1:0", "-data-dir", dir)
	produceOne(t, b.addrs, "kept", "k", "survives")
	b.stop(t, syscall.SIGINT)

	b = start(t, bin, "-addr", "127.0.0.1:0", "-data-dir", dir)
	if r := consumeOne(t, b.addrs, "kept"); string(r.Value) != "survives" {
		t.Errorf("after restart consumed %q, want survives", r.Value)
	}
	b.stop(t, syscall.SIGTERM)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		host    string
		ports   []int
		wantErr string
	}{
		{name: "defaults", host: "127.0.0.1", ports: []int{9092}},
		{name: "three brokers", args: []string{"-addr", "127.0.0.1:9092", "-brokers", "3"}, host: "127.0.0.1", ports: []int{9092, 9093, 9094}},
		{name: "random ports", args: []string{"-addr", "localhost:0", "-brokers", "3"}, host: "localhost"},
		{name: "empty host", args: []string{"-addr", ":9000"}, host: "127.0.0.1", ports: []int{9000}},
		{name: "wildcard host", args: []string{"-addr", "0.0.0.0:9092"}, wantErr: "reachable host"},
		{name: "no port", args: []string{"-addr", "127.0.0.1"}, wantErr: "-addr"},
		{name: "ports overflow", args: []string{"-addr", "127.0.0.1:65535", "-brokers", "2"}, wantErr: "room for 2 brokers"},
		{name: "zero brokers", args: []string{"-brokers", "0"}, wantErr: "-brokers 0"},
		{name: "zero partitions", args: []string{"-partitions", "0"}, wantErr: "-partitions 0"},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErr: "-log-level"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.host != tt.host || fmt.Sprint(cfg.ports) != fmt.Sprint(tt.ports) {
				t.Errorf("got host %q ports %v, want %q %v", cfg.host, cfg.ports, tt.host, tt.ports)
			}
		})
	}
}

// TestRunHelp checks that -h is not reported as a failure.
func TestRunHelp(t *testing.T) {
	err := run(context.Background(), nil, []string{"-h"}, io.Discard, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run -h: got %v, want flag.ErrHelp", err)
	}
}
