// Package copy puts a file on the host, from inline content or a file beside
// the playbook. Writes are atomic and idempotent by content: the plan is
// empty when the file already holds the same bytes, mode and owner.
package copy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/nixbook/nixbook/modules"
	"github.com/nixbook/nixbook/modules/internal/modkit"
)

// Args are the arguments of `copy`.
type Args struct {
	FileArgs `yaml:",inline"`
	Content  *string `yaml:"content" doc:"the file's content; exclusive with src"`
	Src      string  `yaml:"src" doc:"a file on the controller; a relative path is looked up in the role's files/ and the role, then in files/ beside the playbook, then beside the playbook; exclusive with content"`
}

// Spec is the `copy` module.
var Spec = modules.Spec{
	Name:    "copy",
	Summary: "Write a file from inline content or from a file beside the playbook.",
	Args:    Args{},
	Example: `- name: Authorize the operator's key
  copy:
    dest: /root/.ssh/authorized_keys
    content: "{{ ssh_keys | join('\n') }}\n"
    mode: "0600"

- name: Ship the disk layout script
  copy:
    src: partition.sh
    dest: /root/partition.sh
    mode: "0755"
    owner: root:root
`,
	New: newModule,
}

func newModule(d modules.Decoder) (modules.Module, error) {
	var a Args
	if err := modkit.Decode(d, &a); err != nil {
		return nil, err
	}
	switch {
	case a.Content == nil && a.Src == "":
		return nil, errors.New("one of content or src is required")
	case a.Content != nil && a.Src != "":
		return nil, errors.New("content and src are exclusive: give one")
	}
	if strings.HasSuffix(a.Dest, "/") {
		if a.Src == "" {
			return nil, fmt.Errorf("dest %q is a directory: content needs a file name", a.Dest)
		}
		a.Dest = path.Join(a.Dest, filepath.Base(a.Src))
	}
	return &module{args: a}, nil
}

type module struct{ args Args }

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	var content []byte
	if m.args.Content != nil {
		content = []byte(*m.args.Content)
	} else {
		b, err := ReadController(h.Vars(), m.args.Src, "files")
		if err != nil {
			return nil, err
		}
		content = b
	}
	return PlanFile(ctx, h, m.args.FileArgs, content)
}

func (m *module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	return ApplyFile(ctx, h, p)
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
