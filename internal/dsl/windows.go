package dsl

import (
	"fmt"
	"time"
)

// TimeWindows are fixed-size windows aligned to the epoch, as Kafka
// Streams' TimeWindows: tumbling when Advance equals Size (or is zero),
// hopping when Advance is smaller. A window is [start, start+Size). A
// record later than its window's end plus Grace (by the aggregation's
// stream time) is dropped.
type TimeWindows struct {
	Size    time.Duration
	Advance time.Duration // 0: Size (tumbling)
	Grace   time.Duration
}

func (w TimeWindows) advance() int64 {
	if w.Advance <= 0 {
		return w.Size.Milliseconds()
	}
	return w.Advance.Milliseconds()
}

func (w TimeWindows) check() error {
	switch {
	case w.Size.Milliseconds() <= 0:
		return fmt.Errorf("time windows: size %v must be at least 1ms", w.Size)
	case w.Advance < 0 || w.Advance > w.Size:
		return fmt.Errorf("time windows: advance %v must be in (0, size %v]", w.Advance, w.Size)
	case w.Grace < 0:
		return fmt.Errorf("time windows: grace %v is negative", w.Grace)
	}
	return nil
}

// starts returns the starts of the windows holding ts, oldest first, as
// Kafka Streams' TimeWindows.windowsFor.
func (w TimeWindows) starts(ts int64) []int64 {
	size, adv := w.Size.Milliseconds(), w.advance()
	start := max(0, ts-size+adv) / adv * adv
	var out []int64
	for ; start <= ts; start += adv {
		out = append(out, start)
	}
	return out
}

// SlidingWindows are Kafka Streams' sliding windows (KIP-450): windows of
// TimeDifference whose bounds are set by the records, [start, start+d]
// with both ends inclusive. Each record makes the window that ends at it
// and, when a later record falls within d of it, the window that starts
// just after it.
type SlidingWindows struct {
	TimeDifference time.Duration
	Grace          time.Duration
}

func (w SlidingWindows) check() error {
	switch {
	case w.TimeDifference.Milliseconds() <= 0:
		return fmt.Errorf("sliding windows: time difference %v must be at least 1ms", w.TimeDifference)
	case w.Grace < 0:
		return fmt.Errorf("sliding windows: grace %v is negative", w.Grace)
	}
	return nil
}

// SessionWindows group a key's records into sessions of activity: a
// record within Gap of a session joins it, and a record that bridges two
// sessions merges them. A session is [first, last] record time.
type SessionWindows struct {
	Gap   time.Duration
	Grace time.Duration
}

func (w SessionWindows) check() error {
	switch {
	case w.Gap.Milliseconds() <= 0:
		return fmt.Errorf("session windows: gap %v must be at least 1ms", w.Gap)
	case w.Grace < 0:
		return fmt.Errorf("session windows: grace %v is negative", w.Grace)
	}
	return nil
}
