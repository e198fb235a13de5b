package moduletest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// Setup prepares dir (a fresh temporary directory) for one run of the suite
// and returns the task's YAML arguments and the host to run on.
type Setup func(t *testing.T, dir string) (args string, h *LocalHost)

// Subject is what one property of the contract suite runs on: a task's
// arguments, a host in a fresh state, and State, a fingerprint of everything
// the module may change there (the files under a directory, a disk's
// checksums, a pool's layout), which Check must leave as it was.
type Subject struct {
	Args  string
	Host  *LocalHost
	State func(t *testing.T) string
}

// Run checks spec's module against the module contract on this machine,
// each property on a fresh directory from setup (see Contract).
func Run(t *testing.T, spec modules.Spec, setup Setup) {
	t.Helper()
	Contract(t, spec, func(t *testing.T) Subject {
		dir := t.TempDir()
		args, h := setup(t, dir)
		return Subject{Args: args, Host: h, State: func(t *testing.T) string {
			return Snapshot(t, dir).String()
		}}
	})
}

// Contract checks spec's module against the module contract, each property
// on a fresh subject from setup, wherever it runs (this machine, a
// simulated server, a QEMU guest). The module is built for the subject's
// host as the runner builds it, its var-tagged arguments defaulting from
// the host's variables:
//
//   - CheckIsReadOnly: Check through a read-only host leaves State as it was
//     and tries no write through the OVH API;
//   - CheckIsDeterministic: two Checks on the same state give the same plan;
//   - ApplyConverges: Check, Apply, Check gives a plan without changes;
//   - ApplyRunsOnlyWhatItPlanned (within ApplyConverges): every command
//     that Apply ran is one of the plan's commands or a read
//     (modules.Plan.Covers), as the runner's --strict demands.
//
// setup must leave something for Apply to change, and the arguments must
// describe an idempotent task.
func Contract(t *testing.T, spec modules.Spec, setup func(t *testing.T) Subject) {
	t.Helper()
	t.Run("CheckIsReadOnly", func(t *testing.T) {
		s := setup(t)
		m := NewFor(t, spec, s.Args, s.Host.Scope())
		before := s.State(t)
		if _, err := m.Check(context.Background(), s.Host.ReadOnly()); err != nil {
			t.Fatalf("check: %v", err)
		}
		if after := s.State(t); after != before {
			t.Errorf("check changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if n := s.Host.RefusedWrites(); n > 0 {
			t.Errorf("check tried %d writes through the OVH API", n)
		}
	})
	t.Run("CheckIsDeterministic", func(t *testing.T) {
		s := setup(t)
		m := NewFor(t, spec, s.Args, s.Host.Scope())
		first, err := m.Check(context.Background(), s.Host.ReadOnly())
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		second, err := m.Check(context.Background(), s.Host.ReadOnly())
		if err != nil {
			t.Fatalf("second check: %v", err)
		}
		if a, b := comparable(first), comparable(second); !reflect.DeepEqual(a, b) {
			t.Errorf("checks disagree:\nfirst  %+v\nsecond %+v", a, b)
		}
	})
	t.Run("ApplyConverges", func(t *testing.T) {
		s := setup(t)
		m, h := NewFor(t, spec, s.Args, s.Host.Scope()), s.Host
		ctx := context.Background()
		plan, err := m.Check(ctx, h.ReadOnly())
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		if !plan.Changed() {
			t.Fatal("the first check plans no change: setup must leave something for Apply to do")
		}
		before := len(h.Ran()) // a host shared with other tests has run more
		_, err = m.Apply(ctx, h, plan)
		t.Run("ApplyRunsOnlyWhatItPlanned", func(t *testing.T) {
			if unplanned := Unplanned(plan, h.Ran()[before:]); len(unplanned) > 0 {
				t.Errorf("apply ran commands its plan does not list:\n%s\nplanned:\n%s",
					strings.Join(unplanned, "\n"), strings.Join(plan.Commands(), "\n"))
			}
		})
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		again, err := m.Check(ctx, h.ReadOnly())
		if err != nil {
			t.Fatalf("check after apply: %v", err)
		}
		if again.Changed() {
			t.Errorf("check after apply still plans changes: %+v", again.Changes)
		}
	})
}

// Unplanned lists the lines of the commands in ran that plan does not cover
// (modules.Plan.Covers).
func Unplanned(plan *modules.Plan, ran []transport.Cmd) []string {
	var out []string
	for _, cmd := range ran {
		if !plan.Covers(cmd) {
			out = append(out, cmd.Line())
		}
	}
	return out
}

// comparable drops Data, which is the module's own business.
func comparable(p *modules.Plan) modules.Plan {
	if p == nil {
		return modules.Plan{}
	}
	c := *p
	c.Data = nil
	return c
}

// DirState records every entry under a directory: type, mode, owner, size,
// modification time and content hash.
type DirState map[string]string

func takeSnapshot(dir string) (DirState, error) {
	s := DirState{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		desc := fmt.Sprintf("%v size=%d mtime=%d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			desc += fmt.Sprintf(" owner=%d:%d", st.Uid, st.Gid)
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		s[rel] = desc
		return nil
	})
	return s, err
}

// Snapshot records dir now, failing the test if it cannot.
func Snapshot(t testing.TB, dir string) DirState {
	t.Helper()
	s, err := takeSnapshot(dir)
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return s
}

// String lists every entry, one per line, in order.
func (s DirState) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, s[k])
	}
	return b.String()
}

// Diff lists the entries that differ between s and other, one per line;
// empty when they are the same.
func (s DirState) Diff(other DirState) string {
	keys := map[string]bool{}
	for k := range s {
		keys[k] = true
	}
	for k := range other {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out string
	for _, k := range sorted {
		a, inA := s[k]
		b, inB := other[k]
		switch {
		case !inB:
			out += fmt.Sprintf("- %s: removed (was %s)\n", k, a)
		case !inA:
			out += fmt.Sprintf("+ %s: created (%s)\n", k, b)
		case a != b:
			out += fmt.Sprintf("~ %s: %s -> %s\n", k, a, b)
		}
	}
	return out
}
