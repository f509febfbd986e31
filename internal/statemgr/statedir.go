package statemgr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kstreams-go/kstreams/state"
)

// Dir is an application's state directory, <state.dir>/<application.id>,
// locked by one process at a time: two processes writing the same task
// directories would corrupt each other's stores.
type Dir struct {
	root string
	lock *os.File
}

// ErrDirLocked means another process holds the state directory.
var ErrDirLocked = errors.New("state directory is in use by another process")

// LockDir creates and locks the application's state directory.
func LockDir(stateDir, appID string) (*Dir, error) {
	root := filepath.Join(stateDir, appID)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", root, err)
	}
	path := filepath.Join(root, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state directory lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("%w: %s (held by pid %s); give each instance its own StateDir",
			ErrDirLocked, root, strings.TrimSpace(string(holder)))
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Dir{root: root, lock: f}, nil
}

// Root is <state.dir>/<application.id>.
func (d *Dir) Root() string { return d.root }

// TaskDir is the directory of one task.
func (d *Dir) TaskDir(task string) string { return filepath.Join(d.root, task) }

// Release marks a task directory as no longer owned, starting its cleanup
// delay.
func (d *Dir) Release(task string) {
	now := time.Now()
	_ = os.Chtimes(d.TaskDir(task), now, now)
}

// CleanUnowned removes task directories that no task of this process owns
// and that were last released more than delay ago; it returns their names.
func (d *Dir) CleanUnowned(owned map[string]bool, delay time.Duration) ([]string, error) {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || owned[name] || !isTaskName(name) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < delay {
			continue
		}
		if err := os.RemoveAll(filepath.Join(d.root, name)); err != nil {
			return removed, fmt.Errorf("clean up task directory %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

func isTaskName(s string) bool {
	sub, part, ok := strings.Cut(s, "_")
	if !ok {
		return false
	}
	_, err1 := strconv.Atoi(sub)
	_, err2 := strconv.Atoi(part)
	return err1 == nil && err2 == nil
}

// Unlock releases the lock.
func (d *Dir) Unlock() error {
	if d.lock == nil {
		return nil
	}
	err := syscall.Flock(int(d.lock.Fd()), syscall.LOCK_UN)
	d.lock.Close()
	d.lock = nil
	return err
}

// OffsetSums reads the checkpoint of every task directory and returns, per
// task, the sum of its checkpointed changelog offsets.
func (d *Dir) OffsetSums() map[string]int64 {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, e := range entries {
		if !e.IsDir() || !isTaskName(e.Name()) {
			continue
		}
		cp, err := state.ReadCheckpoint(filepath.Join(d.root, e.Name(), CheckpointFile))
		if err != nil || len(cp) == 0 {
			continue
		}
		var sum int64
		for _, off := range cp {
			if off > 0 {
				sum += off
			}
		}
		out[e.Name()] = sum
	}
	return out
}
