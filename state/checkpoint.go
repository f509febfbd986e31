package state

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// TopicPartition names a changelog partition in a checkpoint.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// OffsetUnknown is the offset Kafka Streams checkpoints for a store whose
// position in its changelog is not known (OffsetCheckpoint.OFFSET_UNKNOWN).
// It is the only negative offset a checkpoint may hold.
const OffsetUnknown int64 = -4

// checkpointVersion is the only version of the format there is.
const checkpointVersion = 0

// ReadCheckpoint reads a checkpoint file in Kafka Streams' OffsetCheckpoint
// format:
//
//	0
//	<number of entries>
//	<topic> <partition> <offset>
//	...
//
// The offset of a changelog partition is the next offset to restore from.
// A missing file gives an empty map and no error (nothing checkpointed
// yet). A malformed one gives an error naming the path and line.
func ReadCheckpoint(path string) (map[TopicPartition]int64, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[TopicPartition]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: read checkpoint: %w", err)
	}
	bad := func(line int, format string, args ...any) error {
		return fmt.Errorf("state: checkpoint %s line %d: %s", path, line, fmt.Sprintf(format, args...))
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return strings.TrimSpace(sc.Text()), true
	}

	text, ok := next()
	if !ok {
		return nil, bad(1, "empty file, want version %d", checkpointVersion)
	}
	if v, err := strconv.Atoi(text); err != nil || v != checkpointVersion {
		return nil, bad(line, "unknown version %q, want %d", text, checkpointVersion)
	}
	text, ok = next()
	if !ok {
		return nil, bad(2, "missing entry count")
	}
	n, err := strconv.Atoi(text)
	if err != nil || n < 0 {
		return nil, bad(line, "bad entry count %q", text)
	}
	offsets := make(map[TopicPartition]int64, n)
	for i := 0; i < n; i++ {
		text, ok = next()
		if !ok {
			return nil, bad(line+1, "expected %d entries, found %d", n, i)
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			return nil, bad(line, "malformed entry %q, want \"topic partition offset\"", text)
		}
		p, err := strconv.ParseInt(f[1], 10, 32)
		if err != nil {
			return nil, bad(line, "bad partition %q", f[1])
		}
		off, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || (off < 0 && off != OffsetUnknown) {
			return nil, bad(line, "bad offset %q", f[2])
		}
		offsets[TopicPartition{Topic: f[0], Partition: int32(p)}] = off
	}
	for {
		text, ok = next()
		if !ok {
			break
		}
		if text != "" {
			return nil, bad(line, "more entries than the count %d", n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("state: read checkpoint %s: %w", path, err)
	}
	return offsets, nil
}

// WriteCheckpoint replaces the checkpoint file atomically: it writes
// path+".tmp", syncs it, renames it over path and syncs the directory, so a
// crash leaves the old checkpoint or the new one, never half of one.
// Entries are sorted by topic and partition. Offsets must be >= 0 or
// OffsetUnknown.
func WriteCheckpoint(path string, offsets map[TopicPartition]int64) error {
	tps := make([]TopicPartition, 0, len(offsets))
	for tp, off := range offsets {
		if off < 0 && off != OffsetUnknown {
			return fmt.Errorf("state: write checkpoint %s: negative offset %d for %s-%d", path, off, tp.Topic, tp.Partition)
		}
		if tp.Topic == "" || strings.ContainsFunc(tp.Topic, unicode.IsSpace) {
			return fmt.Errorf("state: write checkpoint %s: bad topic name %q", path, tp.Topic)
		}
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b TopicPartition) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%d\n%d\n", checkpointVersion, len(tps))
	for _, tp := range tps {
		fmt.Fprintf(&buf, "%s %d %d\n", tp.Topic, tp.Partition, offsets[tp])
	}

	tmp := path + ".tmp"
	if err := writeSynced(tmp, buf.Bytes()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("state: write checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("state: write checkpoint %s: %w", path, err)
	}
	// The rename is durable only once the directory entry is.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("state: write checkpoint %s: %w", path, err)
	}
	return nil
}

func writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
