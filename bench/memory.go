package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The memory scenario: peak RSS while counting o.memoryKeys distinct keys
// (one record each).
//
// Each side runs in a child process of the bench binary (re-executed with
// the hidden -memory-child flag), so its peak RSS (VmHWM) is that of the
// counting application alone: the embedded broker, which holds every
// record, and the input producer stay in the parent. kstreams runs the
// count scenario's topology (GroupByKey+Count into Pebble, changelog and
// 10 MiB cache on); the baseline is the count scenario's franz-go consumer
// with a map[string]int64. Each child runs until it has processed every
// record and closed (kstreams) or flushed (baseline), then reads VmHWM.
//
// One round only (-rounds does not apply): each side has its own process,
// so the peak does not depend on which side runs first; the two children
// run one after the other against the parent's broker.

// memoryResult is what a child reports.
type memoryResult struct {
	peakKB  int64
	seconds float64
}

func memoryScenario(o options, brokers string) (ours, base memoryResult, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(int(o.partitions)))
		if err != nil {
			return ours, base, fmt.Errorf("embedded broker: %w", err)
		}
		defer c.Close()
		o.brokers = c.ListenAddrs()
	} else {
		o.brokers = strings.Split(brokers, ",")
	}
	adm, closeAdm, err := admin(o)
	if err != nil {
		return ours, base, err
	}
	defer closeAdm()
	in, outOurs, outBase := "memory-in", "memory-ours", "memory-base"
	if err := createTopics(ctx, adm, o.partitions, in, outOurs, outBase); err != nil {
		return ours, base, err
	}
	fo := o
	fo.records, fo.keys = o.memoryKeys, o.memoryKeys
	began := time.Now()
	if err := fill(ctx, fo, in); err != nil {
		return ours, base, fmt.Errorf("fill: %w", err)
	}
	fmt.Fprintf(os.Stderr, "  memory: %d input records written in %v\n", o.memoryKeys, time.Since(began).Round(time.Millisecond))
	for _, s := range []struct {
		name, out string
		res       *memoryResult
	}{{"ours", outOurs, &ours}, {"baseline", outBase, &base}} {
		if o.only != "" && o.only != s.name {
			continue
		}
		r, err := runMemoryChild(ctx, o, s.name, in, s.out)
		if err != nil {
			return ours, base, fmt.Errorf("%s: %w", s.name, err)
		}
		// Every key is counted once, so each side writes one count per key
		// (kstreams' cache has nothing to collapse).
		ends, err := endOffsets(ctx, adm, s.out)
		if err != nil {
			return ours, base, err
		}
		if _, n := nonEmpty(ends); n != int64(o.memoryKeys) {
			return ours, base, fmt.Errorf("%s: %d records in %s, want %d", s.name, n, s.out, o.memoryKeys)
		}
		*s.res = r
		fmt.Fprintf(os.Stderr, "  memory %s: peak RSS %.0f MB, %.1fs (%.0f rec/s)\n",
			s.name, mb(r.peakKB), r.seconds, float64(o.memoryKeys)/r.seconds)
	}
	return ours, base, nil
}

// mb converts /proc's kB (KiB) to MB (10^6 bytes).
func mb(kb int64) float64 { return float64(kb) * 1024 / 1e6 }

func runMemoryChild(ctx context.Context, o options, which, in, out string) (memoryResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return memoryResult{}, err
	}
	args := []string{
		"-memory-child", which + "," + in + "," + out,
		"-brokers", strings.Join(o.brokers, ","),
		"-memory-keys", strconv.Itoa(o.memoryKeys),
		"-timeout", o.timeout.String(),
	}
	if o.cpuProfile != "" {
		args = append(args, "-cpuprofile", o.cpuProfile+"."+which)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	if err != nil {
		return memoryResult{}, fmt.Errorf("child process: %w", err)
	}
	var r memoryResult
	if _, err := fmt.Sscanf(string(stdout), "peak_rss_kb=%d seconds=%g", &r.peakKB, &r.seconds); err != nil {
		return memoryResult{}, fmt.Errorf("child process printed %q: %w", stdout, err)
	}
	return r, nil
}

// memoryChild is the child process's side: spec is "ours|baseline,in,out".
func memoryChild(o options, spec string) error {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		return fmt.Errorf("bad -memory-child %q", spec)
	}
	which, in, out := parts[0], parts[1], parts[2]
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var d time.Duration
	var err error
	switch which {
	case "ours":
		d, err = countOurs(ctx, o, in, out, int64(o.memoryKeys))
	case "baseline":
		d, err = countBaseline(ctx, o, in, out, int64(o.memoryKeys))
	default:
		err = fmt.Errorf("bad -memory-child side %q", which)
	}
	if err != nil {
		return err
	}
	peak, err := peakRSS()
	if err != nil {
		return err
	}
	fmt.Printf("peak_rss_kb=%d seconds=%g\n", peak, d.Seconds())
	return nil
}

// peakRSS reads the process's peak resident set size (VmHWM) in kB.
func peakRSS() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
