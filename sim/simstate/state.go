// Package simstate records everything a simulated fleet creates on the
// machine (processes, network namespaces, links, loop devices, mounts, files)
// as it creates it, in DIR/state.json, so that `down`, the next `up` in the
// same directory, or a reaper whose fleet process died can remove exactly
// that and nothing else.
package simstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FileName is the record's name inside the fleet directory.
const FileName = "state.json"

// Proc is a process of the fleet, identified by its PID and its start time
// (so a reused PID is never killed).
type Proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	What  string `json:"what"`
}

// Loop is a loop device of the fleet and the file behind it.
type Loop struct {
	Dev  string `json:"dev"`
	File string `json:"file"`
}

// Record is what a fleet made. The zero value is ready to use.
type Record struct {
	Dir     string `json:"dir"`
	FleetID string `json:"fleet_id"`
	// Owner is a token of the process running the fleet, so that its reaper
	// never removes a later fleet of the same directory.
	Owner   string   `json:"owner,omitempty"`
	Procs   []Proc   `json:"procs,omitempty"`
	Bridges []string `json:"bridges,omitempty"`
	Links   []string `json:"links,omitempty"`
	Netns   []string `json:"netns,omitempty"`
	Loops   []Loop   `json:"loops,omitempty"`
	Mounts  []string `json:"mounts,omitempty"`
	Files   []string `json:"files,omitempty"`
	Dirs    []string `json:"dirs,omitempty"` // removed when empty, deepest first
}

// State is the live, persisted record of one fleet directory.
type State struct {
	mu   sync.Mutex
	path string
	rec  Record
}

// Open loads DIR/state.json, or starts an empty record for dir.
func Open(dir string) (*State, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &State{path: filepath.Join(abs, FileName), rec: Record{Dir: abs}}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read fleet state: %w", err)
	}
	if err := json.Unmarshal(data, &s.rec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", s.path, err)
	}
	s.rec.Dir = abs
	return s, nil
}

// Record returns a copy of the record.
func (s *State) Record() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, _ := json.Marshal(s.rec)
	var r Record
	_ = json.Unmarshal(data, &r)
	return r
}

// Empty reports whether nothing is recorded.
func (s *State) Empty() bool {
	r := s.Record()
	return len(r.Procs)+len(r.Bridges)+len(r.Links)+len(r.Netns)+len(r.Loops)+len(r.Mounts)+len(r.Files)+len(r.Dirs) == 0
}

// Update changes the record and saves it before returning, so that a crash
// right after creating something still leaves it recorded.
func (s *State) Update(change func(r *Record)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(&s.rec)
	return s.save()
}

func (s *State) save() error {
	data, err := json.MarshalIndent(s.rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("save fleet state: %w", err)
	}
	return os.Rename(tmp, s.path)
}

// AddProc records a running process.
func (s *State) AddProc(pid int, what string) error {
	start, err := ProcStart(pid)
	if err != nil {
		return err
	}
	return s.Update(func(r *Record) { r.Procs = append(r.Procs, Proc{PID: pid, Start: start, What: what}) })
}

// RemoveProc forgets a process that has exited.
func (s *State) RemoveProc(pid int) error {
	return s.Update(func(r *Record) {
		r.Procs = slices.DeleteFunc(r.Procs, func(p Proc) bool { return p.PID == pid })
	})
}

// Add appends to one of the record's lists.
func (s *State) Add(list func(r *Record) *[]string, item string) error {
	return s.Update(func(r *Record) {
		l := list(r)
		if !slices.Contains(*l, item) {
			*l = append(*l, item)
		}
	})
}

// Remove drops an item from one of the record's lists.
func (s *State) Remove(list func(r *Record) *[]string, item string) error {
	return s.Update(func(r *Record) {
		l := list(r)
		*l = slices.DeleteFunc(*l, func(x string) bool { return x == item })
	})
}

// List selectors for Add and Remove.
func Bridges(r *Record) *[]string { return &r.Bridges }
func Links(r *Record) *[]string   { return &r.Links }
func Netns(r *Record) *[]string   { return &r.Netns }
func Mounts(r *Record) *[]string  { return &r.Mounts }
func Files(r *Record) *[]string   { return &r.Files }
func Dirs(r *Record) *[]string    { return &r.Dirs }

// AddLoop records a loop device attached to file.
func (s *State) AddLoop(dev, file string) error {
	return s.Update(func(r *Record) { r.Loops = append(r.Loops, Loop{Dev: dev, File: file}) })
}

// RemoveLoop forgets a detached loop device.
func (s *State) RemoveLoop(dev string) error {
	return s.Update(func(r *Record) {
		r.Loops = slices.DeleteFunc(r.Loops, func(l Loop) bool { return l.Dev == dev })
	})
}

// ProcStart is the start time of a process in clock ticks since boot
// (field 22 of /proc/PID/stat).
func ProcStart(pid int) (uint64, error) {
	start, _, err := procStat(pid)
	return start, err
}

// procStat reads a process's start time and state letter (R, S, Z...)
// from /proc/PID/stat.
func procStat(pid int) (start uint64, state string, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	// The command name may hold spaces and parentheses: count from the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return start, fields[0], err
}

// Alive reports whether the recorded process still runs (same PID, same
// start). A zombie has let go of everything it held and is not alive: its
// parent may never reap it.
func (p Proc) Alive() bool {
	start, state, err := procStat(p.PID)
	return err == nil && start == p.Start && state != "Z" && state != "X"
}

// Cleanup removes everything recorded in dir's state and then the record
// itself; it is safe to run on a missing or already cleaned record. Errors
// are collected, not fatal: it removes as much as it can.
func Cleanup(ctx context.Context, dir string, skipPID int) error {
	return CleanupOwned(ctx, dir, skipPID, "")
}

// CleanupOwned is Cleanup for the fleet of one owner only: a record with
// another owner is left alone. An empty owner matches any record.
func CleanupOwned(ctx context.Context, dir string, skipPID int, owner string) error {
	s, err := Open(dir)
	if err != nil {
		return err
	}
	r := s.Record()
	if owner != "" && r.Owner != owner {
		return nil
	}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Processes first: they hold mounts, loop devices and namespaces.
	for _, p := range r.Procs {
		if p.PID == skipPID || p.PID == os.Getpid() || !p.Alive() {
			continue
		}
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range r.Procs {
		if p.PID == skipPID || p.PID == os.Getpid() {
			continue
		}
		for p.Alive() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if p.Alive() {
			note(fmt.Errorf("process %d (%s) does not die", p.PID, p.What))
		}
	}
	for i := len(r.Mounts) - 1; i >= 0; i-- {
		m := r.Mounts[i]
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			note(fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	for _, ns := range r.Netns {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			note(run(ctx, "ip", "netns", "delete", ns))
		}
	}
	for _, l := range append(slices.Clone(r.Links), r.Bridges...) {
		if _, err := os.Stat(filepath.Join("/sys/class/net", l)); err == nil {
			// A veth goes with its peer's namespace, maybe while we look.
			// iproute2 says "Cannot find device" or "No such device"
			// depending on when the link went.
			if err := run(ctx, "ip", "link", "delete", l); err != nil && !strings.Contains(err.Error(), "Cannot find device") && !strings.Contains(err.Error(), "No such device") {
				note(err)
			}
		}
	}
	for _, l := range r.Loops {
		note(DetachLoop(ctx, l.Dev, l.File))
	}
	for _, f := range r.Files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			note(err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// Keep the record so a second run can finish the job.
		return err
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dirs := slices.Clone(r.Dirs)
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DetachLoop detaches dev if it is still backed by file; a loop device that
// now serves something else is left alone.
func DetachLoop(ctx context.Context, dev, file string) error {
	name := filepath.Base(dev)
	backing, err := os.ReadFile(filepath.Join("/sys/block", name, "loop", "backing_file"))
	if err != nil {
		return nil // not attached any more
	}
	b := strings.TrimSpace(string(backing))
	if b != file && strings.TrimSuffix(b, " (deleted)") != file {
		return nil
	}
	var lastErr error
	for range 50 {
		if lastErr = run(ctx, "losetup", "--detach", dev); lastErr == nil {
			return nil
		}
		// A file system of a host that just died may still be releasing it.
		time.Sleep(100 * time.Millisecond)
	}
	return lastErr
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
