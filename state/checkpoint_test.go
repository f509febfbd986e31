package state

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckpointRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".checkpoint")
	offsets := map[TopicPartition]int64{
		{Topic: "app-counts-changelog", Partition: 3}:  42,
		{Topic: "app-counts-changelog", Partition: 10}: 0,
		{Topic: "app-agg-changelog", Partition: 0}:     OffsetUnknown,
	}
	if err := WriteCheckpoint(path, offsets); err != nil {
		t.Fatal(err)
	}
	// The exact text of Kafka Streams' OffsetCheckpoint, entries sorted.
	const want = "0\n3\n" +
		"app-agg-changelog 0 -4\n" +
		"app-counts-changelog 3 42\n" +
		"app-counts-changelog 10 0\n"
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("file text:\n%q\nwant\n%q", got, want)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	read, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(read, offsets) {
		t.Errorf("read back %v, want %v", read, offsets)
	}

	// Writing again replaces the file.
	if err := WriteCheckpoint(path, map[TopicPartition]int64{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "0\n0\n" {
		t.Errorf("empty checkpoint text %q", got)
	}
}

func TestCheckpointMissingFileIsEmpty(t *testing.T) {
	got, err := ReadCheckpoint(filepath.Join(t.TempDir(), "none"))
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("ReadCheckpoint(missing) = %v, %v; want an empty map", got, err)
	}
}

func TestCheckpointReadsKafkaStreamsFiles(t *testing.T) {
	// Java writes whatever the platform's line separator is; fields are
	// split on runs of whitespace.
	path := filepath.Join(t.TempDir(), ".checkpoint")
	if err := os.WriteFile(path, []byte("0\r\n2\r\ntopic-a  1\t7\r\ntopic-b 0 9\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[TopicPartition]int64{{"topic-a", 1}: 7, {"topic-b", 0}: 9}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestCheckpointMalformed(t *testing.T) {
	for _, c := range []struct {
		name, text, line string
	}{
		{"empty", "", "line 1"},
		{"unknown version", "1\n0\n", "line 1"},
		{"missing count", "0\n", "line 2"},
		{"bad count", "0\nx\n", "line 2"},
		{"too few entries", "0\n2\nt 0 1\n", "line 4"},
		{"too many entries", "0\n1\nt 0 1\nt 1 2\n", "line 4"},
		{"two fields", "0\n1\nt 0\n", "line 3"},
		{"bad partition", "0\n1\nt x 1\n", "line 3"},
		{"bad offset", "0\n1\nt 0 x\n", "line 3"},
		{"negative offset", "0\n1\nt 0 -1\n", "line 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".checkpoint")
			if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadCheckpoint(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.line) {
				t.Errorf("error %q does not name %s and %s", err, path, c.line)
			}
		})
	}
}

func TestCheckpointWriteRejects(t *testing.T) {
	dir := t.TempDir()
	for name, offsets := range map[string]map[TopicPartition]int64{
		"negative offset":    {{"t", 0}: -1},
		"space in the topic": {{"a b", 0}: 1},
		"empty topic":        {{"", 0}: 1},
	} {
		path := filepath.Join(dir, "cp")
		if err := WriteCheckpoint(path, offsets); err == nil {
			t.Errorf("%s: written", name)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: file created", name)
		}
	}
}
