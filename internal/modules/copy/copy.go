// Package copy puts a file on the host, from inline content or a file beside
// the playbook. Writes are atomic and idempotent by content: the plan is
// empty when the file already holds the same bytes, mode and owner.
package copy

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/fileplan"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// Args are the arguments of `copy`.
type Args struct {
	fileplan.File `yaml:",inline"`
	Content       *string `yaml:"content" doc:"the file's content; exclusive with src"`
	Src           string  `yaml:"src" doc:"a file on the controller; a relative path is looked up in the role's files/ and the role, then in files/ beside the playbook, then beside the playbook; exclusive with content"`
	// Where src is looked up: the runner's magic variables.
	RolePath    string `yaml:"-" var:"role_path" doc:"the role's directory, where a relative src is looked up first"`
	PlaybookDir string `yaml:"-" var:"playbook_dir" doc:"the playbook's directory, where a relative src is looked up"`
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
	New: modkit.New(newModule),
}

func newModule(a Args) (modules.Module, error) {
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
		b, err := fileplan.ReadController(map[string]any{"role_path": m.args.RolePath, "playbook_dir": m.args.PlaybookDir}, m.args.Src, "files")
		if err != nil {
			return nil, err
		}
		content = b
	}
	return fileplan.Plan(ctx, h, m.args.File, content)
}

func (m *module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	return fileplan.Apply(ctx, h, p)
}
