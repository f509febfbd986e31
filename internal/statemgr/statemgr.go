// Package statemgr manages one task's state: it opens the task's stores
// (one Pebble instance per task directory, or memory), stacks the changelog
// and cache layers on them, restores them from their changelog topics
// before the task processes anything, and writes the task's checkpoint.
//
// Durability follows one rule: the local store is never durably ahead of
// what its checkpoint says without the checkpoint knowing. Task stores run
// Pebble without a write-ahead log, so writes reach disk only when Commit
// flushes the memtables, which happens at a task commit after the producer
// has acknowledged every changelog record; the checkpoint file then records
// the changelog offsets the store is complete up to. If Pebble flushes a
// full memtable on its own between commits, the checkpoint is deleted at
// that moment. So after a crash, either the checkpoint describes the disk
// exactly (restore the changelog tail from it) or there is none (wipe and
// restore in full): either way the store ends equal to the changelog.
// In-memory stores have no checkpoint and restore in full.
package statemgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/state"
)

// CheckpointFile is the checkpoint's name inside a task directory.
const CheckpointFile = ".checkpoint"

// Sender produces one changelog record and calls ack with its offset once
// the broker acknowledged it (or with the error).
type Sender func(topic string, partition int32, key, value []byte, timestamp int64, ack func(offset int64, err error))

// RestoreListener hears about restores, as Kafka Streams' StateRestoreListener.
type RestoreListener interface {
	OnRestoreStart(store string, tp state.TopicPartition, startOffset, endOffset int64)
	OnBatchRestored(store string, tp state.TopicPartition, batchEndOffset int64, records int64)
	OnRestoreEnd(store string, tp state.TopicPartition, totalRestored int64)
}

// Config configures a Manager.
type Config struct {
	Task       string // task id, for logs and errors
	Dir        string // <state.dir>/<application.id>/<task>
	Partition  int32
	Specs      []topology.StoreSpec
	Changelogs map[string]string // store -> resolved changelog topic
	// CacheBytes is the write-cache budget shared by this task's cached
	// stores; 0 turns caching off.
	CacheBytes int64
	Pebble     state.PebbleOptions
	Send       Sender
	// Timestamp gives the timestamp for a changelog record: that of the
	// record being processed.
	Timestamp func() int64
	Log       *slog.Logger
	// Observe, when set, hears sampled latencies of the key-value stores'
	// operations (state.NewMetered).
	Observe func(store, op string, d time.Duration)
}

// Manager owns one task's stores.
type Manager struct {
	cfg   Config
	db    *state.PebbleDB
	top   map[string]any // what processors see: key-value, window or session stores
	inner map[string]any // what restore writes to

	// checkpoint holds, per changelog partition, the offset up to which the
	// store is complete (the next offset to restore from).
	checkpoint map[state.TopicPartition]int64

	mu       sync.Mutex
	progress map[string]*Progress           // by store, while and after restoring
	acked    map[state.TopicPartition]int64 // highest acknowledged changelog offset + 1
	sendErr  error
}

// Open opens (creating if needed) the task's stores. A Pebble directory
// that cannot be opened is wiped with a warning and its stores restore in
// full: a corrupt store must never become a crash loop.
func Open(cfg Config) (*Manager, error) {
	m := &Manager{
		cfg:        cfg,
		top:        map[string]any{},
		inner:      map[string]any{},
		checkpoint: map[state.TopicPartition]int64{},
		acked:      map[state.TopicPartition]int64{},
	}
	if len(cfg.Specs) == 0 {
		return m, nil
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("task %s: state dir: %w", cfg.Task, err)
	}
	cp, err := state.ReadCheckpoint(filepath.Join(cfg.Dir, CheckpointFile))
	// The checkpoint is only valid for the disk state it was written with;
	// it is rewritten after the next commit or restore.
	_ = os.Remove(filepath.Join(cfg.Dir, CheckpointFile))
	if err != nil {
		cfg.Log.Warn("unreadable checkpoint; restoring every store in full", "task", cfg.Task, "err", err)
		cp = map[state.TopicPartition]int64{}
	}
	needPebble := false
	for _, s := range cfg.Specs {
		if !s.InMemory {
			needPebble = true
		}
	}
	cpPath := filepath.Join(cfg.Dir, CheckpointFile)
	popts := cfg.Pebble
	popts.DisableWAL = true
	popts.OnUnplannedFlush = func() {
		// Writes no checkpoint covers are reaching disk: the checkpoint no
		// longer describes the store.
		if err := os.Remove(cpPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			cfg.Log.Warn("cannot invalidate checkpoint", "task", cfg.Task, "err", err)
		}
	}
	if needPebble {
		dir := filepath.Join(cfg.Dir, "pebble")
		db, err := state.OpenPebble(dir, popts)
		if err != nil {
			cfg.Log.Warn("cannot open the task's Pebble store; wiping it to restore from the changelogs",
				"task", cfg.Task, "dir", dir, "err", err)
			if werr := state.WipePebble(dir); werr != nil {
				return nil, fmt.Errorf("task %s: wipe corrupt store %s: %w (open failed with: %v)", cfg.Task, dir, werr, err)
			}
			cp = map[state.TopicPartition]int64{}
			if db, err = state.OpenPebble(dir, popts); err != nil {
				return nil, fmt.Errorf("task %s: open store %s after wiping it: %w", cfg.Task, dir, err)
			}
		}
		m.db = db
	}
	cached := 0
	for _, s := range cfg.Specs {
		if s.Caching {
			cached++
		}
	}
	for _, spec := range cfg.Specs {
		if spec.Kind != topology.KeyValueStore {
			if err := m.openSegmented(spec, cp, cached); err != nil {
				return nil, err
			}
			continue
		}
		var inner state.KeyValueStore
		if spec.InMemory {
			inner = state.NewInMemory(spec.Name)
		} else {
			inner = m.db.Store(spec.Name)
		}
		m.inner[spec.Name] = inner
		top := inner
		if topic, ok := cfg.Changelogs[spec.Name]; ok {
			tp := state.TopicPartition{Topic: topic, Partition: cfg.Partition}
			if off, ok := cp[tp]; ok && !spec.InMemory {
				m.checkpoint[tp] = off
			} else if err := clearStore(inner); err != nil {
				// No checkpoint: whatever is local may be ahead of the
				// changelog, so start empty and restore in full.
				return nil, fmt.Errorf("task %s: clear store %s: %w", cfg.Task, spec.Name, err)
			}
			top = state.NewLogged(top, m.logger(tp))
		}
		if spec.Caching && cfg.CacheBytes > 0 {
			top = state.NewCached(top, cfg.CacheBytes/int64(cached))
		} else if spec.Caching {
			top = state.NewCached(top, 0)
		}
		if cfg.Observe != nil {
			name := spec.Name
			top = state.NewMetered(top, func(op string, d time.Duration) { cfg.Observe(name, op, d) })
		}
		m.top[spec.Name] = top
	}
	return m, nil
}

// openSegmented opens a window or session store: segmented by time and
// logged like a key-value store. A store that caches gets a write cache
// over the logging layer (state.NewCachedWindow, NewCachedSession) with its
// share of the task's budget, cached being how many of the task's stores
// cache (over a window store of duplicates it writes straight through);
// with no budget it has none, and its aggregation forwards every update at
// once.
func (m *Manager) openSegmented(spec topology.StoreSpec, cp map[state.TopicPartition]int64, cached int) error {
	opts := state.SegmentedOptions{Retention: spec.Retention, SegmentInterval: spec.SegmentInterval, RetainDuplicates: spec.RetainDuplicates}
	var (
		win  state.WindowStore
		sess state.SessionStore
		err  error
	)
	switch {
	case spec.Kind == topology.WindowStore && spec.InMemory:
		win = state.NewInMemoryWindowStore(spec.Name, opts)
	case spec.Kind == topology.WindowStore:
		win, err = m.db.WindowStore(spec.Name, opts)
	case spec.InMemory:
		sess = state.NewInMemorySessionStore(spec.Name, opts)
	default:
		sess, err = m.db.SessionStore(spec.Name, opts)
	}
	if err != nil {
		return fmt.Errorf("task %s: open store %s: %w", m.cfg.Task, spec.Name, err)
	}
	var inner any = win
	if sess != nil {
		inner = sess
	}
	m.inner[spec.Name] = inner
	if topic, ok := m.cfg.Changelogs[spec.Name]; ok {
		tp := state.TopicPartition{Topic: topic, Partition: m.cfg.Partition}
		if off, ok := cp[tp]; ok && !spec.InMemory {
			m.checkpoint[tp] = off
		} else if err := clearStore(inner); err != nil {
			return fmt.Errorf("task %s: clear store %s: %w", m.cfg.Task, spec.Name, err)
		}
		if win != nil {
			win = state.NewLoggedWindow(win, m.logger(tp))
		} else {
			sess = state.NewLoggedSession(sess, m.logger(tp))
		}
	}
	if win != nil {
		if spec.Caching && m.cfg.CacheBytes > 0 {
			win = state.NewCachedWindow(win, m.cfg.CacheBytes/int64(cached))
		}
		m.top[spec.Name] = win
	} else {
		if spec.Caching && m.cfg.CacheBytes > 0 {
			sess = state.NewCachedSession(sess, m.cfg.CacheBytes/int64(cached))
		}
		m.top[spec.Name] = sess
	}
	return nil
}

func clearStore(store any) error {
	if c, ok := store.(interface{ Clear() error }); ok {
		return c.Clear()
	}
	s, ok := store.(state.KeyValueStore)
	if !ok {
		return fmt.Errorf("store %T cannot be cleared", store)
	}
	it, err := s.All()
	if err != nil {
		return err
	}
	var batch []state.KeyValue
	for it.Next() {
		batch = append(batch, state.KeyValue{Key: append([]byte(nil), it.Key()...)})
	}
	if err := errors.Join(it.Err(), it.Close()); err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}
	if r, ok := s.(state.Restorer); ok {
		return r.RestoreBatch(batch)
	}
	for _, kv := range batch {
		if _, err := s.Delete(kv.Key); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) logger(tp state.TopicPartition) state.ChangeLogger {
	ack := func(offset int64, err error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil {
			if m.sendErr == nil {
				m.sendErr = fmt.Errorf("changelog %s-%d: %w", tp.Topic, tp.Partition, err)
			}
			return
		}
		if offset+1 > m.acked[tp] {
			m.acked[tp] = offset + 1
		}
	}
	return func(key, value []byte) error {
		m.cfg.Send(tp.Topic, tp.Partition, key, value, m.cfg.Timestamp(), ack)
		return nil
	}
}

// Stores returns the stores processors see, by name.
func (m *Manager) Stores() map[string]any {
	out := make(map[string]any, len(m.top))
	for n, s := range m.top {
		out[n] = s
	}
	return out
}

// Store returns the top layer of one key-value store, or nil.
func (m *Manager) Store(name string) state.KeyValueStore {
	kv, _ := m.top[name].(state.KeyValueStore)
	return kv
}

// WindowStore and SessionStore return the top layer of a window or
// session store, or nil.
func (m *Manager) WindowStore(name string) state.WindowStore {
	w, _ := m.top[name].(state.WindowStore)
	return w
}

func (m *Manager) SessionStore(name string) state.SessionStore {
	s, _ := m.top[name].(state.SessionStore)
	return s
}

// Restore brings every logged store up to its changelog's end offset,
// reading from the checkpoint (or the beginning). fetch reads one changelog
// partition from an offset and calls apply for each batch until the end.
func (m *Manager) Restore(ctx context.Context, endOffsets EndOffsets, fetch Fetch, listener RestoreListener) error {
	return m.restore(ctx, endOffsets, fetch, listener, slog.LevelInfo)
}

// EndOffsets returns the end offsets of changelog partitions.
type EndOffsets func(tps []state.TopicPartition) (map[state.TopicPartition]int64, error)

// Fetch reads one changelog partition from offset from up to to and hands
// each batch to apply.
type Fetch func(ctx context.Context, tp state.TopicPartition, from, to int64, apply func(batch []state.KeyValue, lastOffset int64) error) error

// CatchUp is Restore for a standby task: it brings the stores up to the
// changelogs' current ends and checkpoints them, logging at debug level,
// and returns the lag (records behind) it found before catching up.
func (m *Manager) CatchUp(ctx context.Context, endOffsets EndOffsets, fetch Fetch) (lag int64, err error) {
	ends, err := endOffsets(m.changelogPartitions())
	if err != nil {
		return 0, err
	}
	for tp, end := range ends {
		if d := end - m.checkpoint[tp]; d > 0 {
			lag += d
		}
	}
	return lag, m.restore(ctx, func([]state.TopicPartition) (map[state.TopicPartition]int64, error) { return ends, nil },
		fetch, nil, slog.LevelDebug)
}

func (m *Manager) changelogPartitions() []state.TopicPartition {
	var tps []state.TopicPartition
	for _, topic := range m.cfg.Changelogs {
		tps = append(tps, state.TopicPartition{Topic: topic, Partition: m.cfg.Partition})
	}
	return tps
}

// OffsetSum is the sum of the changelog offsets the stores are complete up
// to: how caught up this task's local state is, for the assignor.
func (m *Manager) OffsetSum() int64 {
	var sum int64
	for _, off := range m.checkpoint {
		sum += off
	}
	return sum
}

func (m *Manager) restore(ctx context.Context, endOffsets EndOffsets, fetch Fetch, listener RestoreListener, level slog.Level) error {
	type job struct {
		store string
		tp    state.TopicPartition
	}
	var jobs []job
	var tps []state.TopicPartition
	for store, topic := range m.cfg.Changelogs {
		tp := state.TopicPartition{Topic: topic, Partition: m.cfg.Partition}
		jobs = append(jobs, job{store, tp})
		tps = append(tps, tp)
	}
	if len(jobs) == 0 {
		return nil
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].store < jobs[j].store })
	ends, err := endOffsets(tps)
	if err != nil {
		return fmt.Errorf("task %s: changelog end offsets: %w", m.cfg.Task, err)
	}
	for _, j := range jobs {
		start := m.checkpoint[j.tp]
		end := ends[j.tp]
		if start > end {
			// The checkpoint is past the changelog's end: the topic was
			// recreated or this is another cluster. The local state
			// describes something else; start over, as Kafka Streams
			// treats a corrupted task.
			m.cfg.Log.Warn("checkpoint is past the changelog's end; wiping the store to restore it in full",
				"task", m.cfg.Task, "store", j.store, "changelog", j.tp.Topic, "partition", j.tp.Partition,
				"checkpoint", start, "end", end)
			if err := clearStore(m.inner[j.store]); err != nil {
				return fmt.Errorf("task %s: wipe store %s: %w", m.cfg.Task, j.store, err)
			}
			start = 0
			m.checkpoint[j.tp] = 0
		}
		if start >= end {
			m.cfg.Log.Log(ctx, level, "store up to date", "task", m.cfg.Task, "store", j.store, "changelog", j.tp.Topic,
				"checkpoint", start, "end", end)
			m.setRestored(j.tp, end)
			continue
		}
		inner, ok := m.inner[j.store].(state.Restorer)
		if !ok {
			return fmt.Errorf("task %s: store %s cannot be restored (no batch writes)", m.cfg.Task, j.store)
		}
		began := time.Now()
		lastLog := began
		var total int64
		m.setProgress(j.store, Progress{Store: j.store, Start: start, End: end, Position: start})
		if listener != nil {
			listener.OnRestoreStart(j.store, j.tp, start, end)
		}
		m.cfg.Log.Log(ctx, level, "restoring store", "task", m.cfg.Task, "store", j.store, "changelog", j.tp.Topic,
			"partition", j.tp.Partition, "from", start, "to", end)
		// A store in Pebble restores by ingesting sorted sstables instead
		// of writing through the memtable: see state.PebbleDB.BeginRestore.
		bulk := m.db != nil && m.inPebble(j.store)
		if bulk {
			if err := m.db.BeginRestore(); err != nil {
				return fmt.Errorf("task %s: restore %s: %w", m.cfg.Task, j.store, err)
			}
		}
		err := fetch(ctx, j.tp, start, end, func(batch []state.KeyValue, last int64) error {
			if err := inner.RestoreBatch(batch); err != nil {
				return err
			}
			total += int64(len(batch))
			m.setProgress(j.store, Progress{Store: j.store, Start: start, End: end, Position: last + 1, Restored: total})
			if listener != nil {
				listener.OnBatchRestored(j.store, j.tp, last, int64(len(batch)))
			}
			if time.Since(lastLog) >= 10*time.Second {
				lastLog = time.Now()
				m.cfg.Log.Info("restore progress", "task", m.cfg.Task, "store", j.store,
					"restored", total, "offset", last, "end", end)
			}
			return nil
		})
		if bulk && err == nil {
			err = m.db.EndRestore()
		} else if bulk {
			m.db.AbortRestore()
		}
		if err != nil {
			return fmt.Errorf("task %s: restore %s from %s-%d: %w", m.cfg.Task, j.store, j.tp.Topic, j.tp.Partition, err)
		}
		m.setRestored(j.tp, end)
		m.setProgress(j.store, Progress{Store: j.store, Start: start, End: end, Position: end, Restored: total, Done: true})
		if listener != nil {
			listener.OnRestoreEnd(j.store, j.tp, total)
		}
		m.cfg.Log.Log(ctx, level, "restored store", "task", m.cfg.Task, "store", j.store, "records", total,
			"took", time.Since(began).Round(time.Millisecond))
	}
	// Make the restored state durable and say so, so a crash now does not
	// mean restoring all of it again.
	return m.Commit()
}

// inPebble tells whether the store called name lives in the task's Pebble.
func (m *Manager) inPebble(name string) bool {
	for _, s := range m.cfg.Specs {
		if s.Name == name {
			return !s.InMemory
		}
	}
	return false
}

// Progress is where a store's restore stands: from Start to End of its
// changelog partition, at Position, Restored records applied so far.
type Progress struct {
	Store                string
	Start, End, Position int64
	Restored             int64
	Done                 bool
}

func (m *Manager) setProgress(store string, p Progress) {
	m.mu.Lock()
	if m.progress == nil {
		m.progress = map[string]*Progress{}
	}
	m.progress[store] = &p
	m.mu.Unlock()
}

// RestoreProgress reports the restores this manager ran or runs, by
// store; stores that needed none are absent.
func (m *Manager) RestoreProgress() []Progress {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Progress, 0, len(m.progress))
	for _, p := range m.progress {
		out = append(out, *p)
	}
	return out
}

func (m *Manager) setRestored(tp state.TopicPartition, end int64) {
	m.mu.Lock()
	if end > m.acked[tp] {
		m.acked[tp] = end
	}
	m.mu.Unlock()
	m.checkpoint[tp] = end
}

// Err returns the first changelog produce error.
func (m *Manager) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sendErr
}

// Commit makes the task's state durable once every changelog record is
// acknowledged (the caller has flushed the producer): Pebble's memtables are
// flushed and the checkpoint rewritten. Call it after the task's caches are
// flushed.
func (m *Manager) Commit() error {
	if err := m.Err(); err != nil {
		return fmt.Errorf("task %s: %w", m.cfg.Task, err)
	}
	if m.db == nil {
		return nil // in-memory stores only: nothing durable, no checkpoint
	}
	if err := m.db.Commit(); err != nil {
		return fmt.Errorf("task %s: commit stores: %w", m.cfg.Task, err)
	}
	m.mu.Lock()
	offsets := make(map[state.TopicPartition]int64, len(m.acked))
	for _, spec := range m.cfg.Specs {
		topic, ok := m.cfg.Changelogs[spec.Name]
		if !ok || spec.InMemory {
			continue
		}
		tp := state.TopicPartition{Topic: topic, Partition: m.cfg.Partition}
		if off, ok := m.acked[tp]; ok {
			offsets[tp] = off
		}
	}
	m.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	if err := state.WriteCheckpoint(filepath.Join(m.cfg.Dir, CheckpointFile), offsets); err != nil {
		return fmt.Errorf("task %s: write checkpoint: %w", m.cfg.Task, err)
	}
	return nil
}

// Close closes the stores. Writes since the last Commit are dropped (no
// WAL); a clean shutdown commits first.
func (m *Manager) Close() error {
	var errs []error
	for name, store := range m.top {
		s, ok := store.(interface{ Close() error })
		if !ok {
			continue
		}
		if err := s.Close(); err != nil && !errors.Is(err, state.ErrClosed) {
			errs = append(errs, fmt.Errorf("close store %s: %w", name, err))
		}
	}
	if m.db != nil {
		if err := m.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close pebble: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("task %s: %w", m.cfg.Task, errors.Join(errs...))
	}
	return nil
}
