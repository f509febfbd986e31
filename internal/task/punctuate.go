package task

import "fmt"

type schedule struct {
	node      *nodeInstance
	interval  int64
	next      int64
	fn        func(int64)
	cancelled bool
}

func (s *schedule) Cancel() { s.cancelled = true }

// advance moves the schedule past now, punctuating once even when several
// intervals were missed (as Kafka Streams' PunctuationSchedule does).
func (s *schedule) advance(now int64) {
	next := s.next + s.interval
	if now >= next {
		next = now - (now-s.next)%s.interval + s.interval
	}
	s.next = next
}

func (t *Task) runPunctuator(s *schedule, ts int64) error {
	if t.cfg.OnPunctuate != nil {
		start := t.cfg.Clock()
		defer func() { t.cfg.OnPunctuate(t.cfg.Clock().Sub(start)) }()
	}
	s.fn(ts)
	err := t.fwdErr
	t.fwdErr = nil
	return err
}

func (t *Task) punctuate(list *[]*schedule, now int64) error {
	for i := 0; i < len(*list); i++ {
		s := (*list)[i]
		if s.cancelled || s.next > now {
			continue
		}
		s.advance(now)
		if err := t.runPunctuator(s, now); err != nil {
			return fmt.Errorf("task %s: punctuator of %s at %d: %w", t.cfg.ID, s.node.node.Name, now, err)
		}
	}
	kept := (*list)[:0]
	for _, s := range *list {
		if !s.cancelled {
			kept = append(kept, s)
		}
	}
	clear((*list)[len(kept):])
	*list = kept
	return nil
}

func (t *Task) punctuateStream() error {
	if len(t.streamPunct) == 0 || t.streamTime < 0 {
		return nil
	}
	return t.punctuate(&t.streamPunct, t.streamTime)
}

// PunctuateWallClock fires wall-clock punctuators that are due at the
// task's clock.
func (t *Task) PunctuateWallClock() error {
	if len(t.wallPunct) == 0 {
		return nil
	}
	return t.punctuate(&t.wallPunct, t.cfg.Clock().UnixMilli())
}

// NextWallClockPunctuation returns when the next wall-clock punctuator is
// due (ms since the epoch); ok is false when none is scheduled.
func (t *Task) NextWallClockPunctuation() (ms int64, ok bool) {
	for _, s := range t.wallPunct {
		if s.cancelled {
			continue
		}
		if !ok || s.next < ms {
			ms, ok = s.next, true
		}
	}
	return ms, ok
}
