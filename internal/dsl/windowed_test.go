package dsl

import (
	"slices"
	"testing"
	"time"
)

// TestFirstStartMatchesStarts: the windowed aggregation walks a record's
// windows from firstStart by advance, without the slice starts returns;
// both must list the same windows.
func TestFirstStartMatchesStarts(t *testing.T) {
	for _, w := range []TimeWindows{
		{Size: time.Minute},
		{Size: time.Minute, Advance: 20 * time.Second},
		{Size: 10 * time.Millisecond, Advance: 3 * time.Millisecond},
		{Size: time.Millisecond},
	} {
		for _, ts := range []int64{0, 1, 2, 9, 10, 11, 59_999, 60_000, 60_001, 1_700_000_000_123} {
			var walked []int64
			for start := w.firstStart(ts); start <= ts; start += w.advance() {
				walked = append(walked, start)
			}
			if want := w.starts(ts); !slices.Equal(walked, want) {
				t.Errorf("%+v at %d: walked %v, starts %v", w, ts, walked, want)
			}
		}
	}
}
