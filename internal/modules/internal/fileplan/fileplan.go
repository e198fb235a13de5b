// Package fileplan plans and applies writing one file on a host, atomically
// and idempotently by content: the copy and template modules, and every
// module that writes a file, share it.
package fileplan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// File says where a file goes and how it is owned; modules embed it in their
// arguments (yaml inline).
type File struct {
	Dest  string `yaml:"dest" required:"" doc:"path of the file on the host; its directory must exist"`
	Mode  *Mode  `yaml:"mode" doc:"permissions in octal, such as \"0644\"; a new file gets 0644, an existing one keeps its own"`
	Owner string `yaml:"owner" doc:"user, or user:group, that owns the file; unset keeps the owner of an existing file"`
}

// defaultMode is what a new file gets when no mode is asked for.
const defaultMode Mode = 0o644

// maxDiff bounds the content shown with --diff; larger files only get a
// summary, as with Ansible's max_diff_size.
const maxDiff = 256 << 10

// filePlan is what Plan hands to Apply.
type filePlan struct {
	dest    string
	content []byte
	mode    Mode
	write   bool
	cmds    []transport.Cmd // run after the write, in order
}

// current is what the host holds at dest.
type current struct {
	exists           bool
	content          []byte
	mode             Mode
	user, group      string
	uid, gid         string
	selfUID, selfGID string // who an upload writes as
}

// Plan plans putting content at f.Dest with f's mode and owner: nothing
// when the file already matches, else a write (with its diff) and the chown
// and chmod commands needed.
func Plan(ctx context.Context, h modules.ReadOnlyHost, f File, content []byte) (*modules.Plan, error) {
	if f.Dest == "" || strings.HasSuffix(f.Dest, "/") {
		return nil, fmt.Errorf("dest %q: want a file path", f.Dest)
	}
	cur, err := inspect(ctx, h, f.Dest)
	if err != nil {
		return nil, err
	}
	want := defaultMode
	switch {
	case f.Mode != nil:
		want = *f.Mode
	case cur.exists:
		want = cur.mode
	}
	fp := &filePlan{dest: f.Dest, content: content, mode: want}
	plan := &modules.Plan{Data: fp, Output: output(f.Dest, content, want)}

	sameContent := cur.exists && bytes.Equal(cur.content, content)
	if !sameContent {
		fp.write = true
		c := modules.Change{Summary: fmt.Sprintf("create %s (%s, mode %s)", f.Dest, size(len(content)), want)}
		if cur.exists {
			c.Summary = fmt.Sprintf("update %s (%s)", f.Dest, size(len(content)))
			if want != cur.mode {
				c.Summary = fmt.Sprintf("update %s (%s, mode %s, was %s)", f.Dest, size(len(content)), want, cur.mode)
			}
		}
		if diffable(cur.content) && diffable(content) {
			c.Before, c.After = string(cur.content), string(content)
		} else {
			c.Sensitive = true
		}
		plan.Changes = append(plan.Changes, c)
	}

	// An upload writes a new file as the connecting user, so ownership is
	// set after it: to what was asked, or back to what the file had.
	chowned := true
	switch {
	case f.Owner != "" && (!cur.exists || fp.write):
		plan.Changes = append(plan.Changes, chown(fp, f.Owner, f.Dest, ""))
	case f.Owner != "" && !cur.owned(splitOwner(f.Owner)):
		plan.Changes = append(plan.Changes, chown(fp, f.Owner, f.Dest, cur.user+":"+cur.group))
	case f.Owner == "" && fp.write && cur.exists && !(cur.uid == cur.selfUID && cur.gid == cur.selfGID):
		owner := cur.user + ":" + cur.group
		c := chown(fp, owner, f.Dest, "")
		c.Summary = fmt.Sprintf("keep owner %s of %s", owner, f.Dest)
		plan.Changes = append(plan.Changes, c)
	default:
		chowned = false
	}

	// chown clears setuid and setgid bits, so they are set again after it.
	needChmod := cur.exists && !fp.write && want != cur.mode || chowned && want&0o6000 != 0
	if needChmod {
		c := modules.Change{Summary: fmt.Sprintf("chmod %s %s", want, f.Dest)}
		if cur.exists && !fp.write && want != cur.mode {
			c.Summary += " (was " + cur.mode.String() + ")"
		}
		fp.cmds = append(fp.cmds, c.Cmd("chmod", want.String(), "--", f.Dest))
		plan.Changes = append(plan.Changes, c)
	}
	return plan, nil
}

func chown(fp *filePlan, owner, dest, was string) modules.Change {
	c := modules.Change{Summary: fmt.Sprintf("chown %s %s", owner, dest)}
	if was != "" {
		c.Summary += " (was " + was + ")"
	}
	fp.cmds = append(fp.cmds, c.Cmd("chown", owner, "--", dest))
	return c
}

// Apply carries out a plan from Plan.
func Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	fp, ok := p.Data.(*filePlan)
	if !ok {
		return nil, errors.New("copy: apply called with a plan it did not make")
	}
	if fp.write {
		if err := h.Upload(ctx, fp.dest, bytes.NewReader(fp.content), fp.mode.FileMode()); err != nil {
			return nil, fmt.Errorf("write %s: %w", fp.dest, err)
		}
	}
	for _, cmd := range fp.cmds {
		if _, err := h.Run(ctx, cmd); err != nil {
			return nil, err
		}
	}
	return p.Output, nil
}

func output(dest string, content []byte, mode Mode) modules.Output {
	sum := sha256.Sum256(content)
	return modules.Output{
		"dest":     dest,
		"checksum": hex.EncodeToString(sum[:]),
		"size":     len(content),
		"mode":     mode.String(),
	}
}

// inspect reads dest and, when it exists, its mode and owner along with the
// identity uploads are written as (the owner of /proc/self is whoever runs
// stat), in one probe.
func inspect(ctx context.Context, h modules.ReadOnlyHost, dest string) (current, error) {
	var cur current
	content, err := h.ReadFile(ctx, dest)
	if errors.Is(err, fs.ErrNotExist) {
		dir := path.Dir(dest)
		res, err := h.Probe(ctx, transport.Cmd{Args: []string{"test", "-d", dir}})
		var exit *transport.ExitError
		switch {
		case errors.As(err, &exit) && res.ExitCode == 1:
			return cur, fmt.Errorf("destination directory %s does not exist", dir)
		case err != nil:
			return cur, fmt.Errorf("probe %s: %w", dir, err)
		}
		return cur, nil
	}
	if err != nil {
		return cur, err
	}
	cur.exists, cur.content = true, content
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"stat", "-L", "-c", "%a %U %G %u %g", "--", dest, "/proc/self"}})
	if err != nil {
		return cur, fmt.Errorf("stat %s: %w", dest, err)
	}
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	if len(lines) != 2 {
		return cur, fmt.Errorf("stat %s: unexpected output %q", dest, res.Stdout)
	}
	file, self := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(file) != 5 || len(self) != 5 {
		return cur, fmt.Errorf("stat %s: unexpected output %q", dest, res.Stdout)
	}
	mode, err := strconv.ParseUint(file[0], 8, 32)
	if err != nil {
		return cur, fmt.Errorf("stat %s: mode %q: %w", dest, file[0], err)
	}
	cur.mode = Mode(mode)
	cur.user, cur.group, cur.uid, cur.gid = file[1], file[2], file[3], file[4]
	cur.selfUID, cur.selfGID = self[3], self[4]
	return cur, nil
}

// owned reports whether the file belongs to user and group (names or ids);
// an empty one matches anything.
func (c current) owned(user, group string) bool {
	if !c.exists {
		return false
	}
	okUser := user == "" || user == c.user || user == c.uid
	okGroup := group == "" || group == c.group || group == c.gid
	return okUser && okGroup
}

func splitOwner(s string) (user, group string) {
	user, group, _ = strings.Cut(s, ":")
	return user, group
}

// diffable reports whether b can be shown as text with --diff.
func diffable(b []byte) bool {
	return len(b) <= maxDiff && utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

func size(n int) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// ReadController reads a file on the controller. A relative name is looked up
// in subdir of the task's role (role_path), then in the role, then in subdir
// beside the playbook, then beside the playbook (the directory in vars'
// playbook_dir), as Ansible looks up files/ and templates/; without a
// playbook_dir it is relative to the working directory.
func ReadController(vars map[string]any, name, subdir string) ([]byte, error) {
	candidates := []string{name}
	if !filepath.IsAbs(name) {
		var dirs []string
		for _, key := range []string{"role_path", "playbook_dir"} {
			if dir, ok := vars[key].(string); ok && dir != "" {
				dirs = append(dirs, filepath.Join(dir, subdir, name), filepath.Join(dir, name))
			}
		}
		if len(dirs) > 0 {
			candidates = dirs
		}
	}
	for _, c := range candidates {
		b, err := os.ReadFile(c)
		switch {
		case err == nil:
			return b, nil
		case errors.Is(err, fs.ErrNotExist):
			continue
		}
		if fi, statErr := os.Stat(c); statErr == nil && fi.IsDir() {
			return nil, fmt.Errorf("src %s is a directory: only files can be copied", c)
		}
		return nil, fmt.Errorf("src: %w", err)
	}
	return nil, fmt.Errorf("src %s not found (looked for %s)", name, strings.Join(candidates, ", "))
}
