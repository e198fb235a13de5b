// Package command runs a program on the host (`command`) or a shell script
// (`shell`). Without `creates` or `removes` the plan always runs it: nothing
// else can prove the command has nothing to do.
package command

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
)

// Options are the arguments command and shell share.
type Options struct {
	Creates         string `yaml:"creates" doc:"a path; when it exists the command is not run (relative to chdir)"`
	Removes         string `yaml:"removes" doc:"a path; when it does not exist the command is not run (relative to chdir)"`
	Chdir           string `yaml:"chdir" doc:"directory to run the command in"`
	Stdin           string `yaml:"stdin" doc:"text fed to the command's standard input"`
	StdinAddNewline bool   `yaml:"stdin_add_newline" default:"true" doc:"end stdin with a newline"`
}

// Args are the arguments of `command`.
type Args struct {
	Cmd     modkit.Argv `yaml:"cmd" required:"" doc:"the program and its arguments: a list, or a string split into words like a shell would, without variables, globs, pipes or redirections"`
	Options `yaml:",inline"`
}

// ShellArgs are the arguments of `shell`.
type ShellArgs struct {
	Cmd        string `yaml:"cmd" required:"" doc:"the shell script to run"`
	Executable string `yaml:"executable" default:"sh" doc:"the shell that runs the script, as executable -c script"`
	Options    `yaml:",inline"`
}

// Spec is the `command` module.
var Spec = modules.Spec{
	Name:     "command",
	Summary:  "Run a program with its arguments, without a shell.",
	Args:     Args{},
	FreeForm: "cmd",
	Example: `- name: List block devices
  command: lsblk --json --output NAME,SIZE,TYPE
  register: lsblk

- name: Generate the hardware configuration once
  command:
    cmd: [nixos-generate-config, --root, /mnt]
    creates: /mnt/etc/nixos/hardware-configuration.nix
`,
	New: modkit.New(newCommand),
}

// ShellSpec is the `shell` module.
var ShellSpec = modules.Spec{
	Name:     "shell",
	Summary:  "Run a shell script: pipes, redirections and variables work.",
	Args:     ShellArgs{},
	FreeForm: "cmd",
	Example: `- name: Count the NVMe disks
  shell: ls /dev/nvme*n1 | wc -l
  register: nvme_count

- name: Fetch the installer once
  shell:
    cmd: curl -fsSL "$URL" -o installer.tar.gz
    chdir: /root
    creates: installer.tar.gz
`,
	New: modkit.New(newShell),
}

func newCommand(a Args) (modules.Module, error) {
	if a.Cmd[0] == "" {
		return nil, errors.New("cmd: the program name is empty")
	}
	return &module{argv: a.Cmd, shown: []string(a.Cmd), opts: a.Options}, nil
}

func newShell(a ShellArgs) (modules.Module, error) {
	if a.Executable == "" {
		return nil, errors.New("executable: empty")
	}
	return &module{argv: []string{a.Executable, "-c", a.Cmd}, shown: a.Cmd, opts: a.Options}, nil
}

type module struct {
	argv  []string
	shown any // Output's cmd: the argv for command, the script for shell, as Ansible does
	opts  Options
}

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	if p := m.opts.Creates; p != "" {
		exists, err := m.exists(ctx, h, p)
		if err != nil {
			return nil, fmt.Errorf("creates: %w", err)
		}
		if exists {
			return m.skipped(fmt.Sprintf("skipped, since %s exists", p)), nil
		}
	}
	if p := m.opts.Removes; p != "" {
		exists, err := m.exists(ctx, h, p)
		if err != nil {
			return nil, fmt.Errorf("removes: %w", err)
		}
		if !exists {
			return m.skipped(fmt.Sprintf("skipped, since %s does not exist", p)), nil
		}
	}
	cmd := transport.Cmd{Args: m.argv, Dir: m.opts.Chdir}
	line := cmd.Line()
	return &modules.Plan{
		Changes: []modules.Change{{Summary: "run: " + line, Commands: []string{line}}},
		Data:    cmd,
	}, nil
}

// exists probes p, taken relative to chdir, without a shell.
func (m *module) exists(ctx context.Context, h modules.ReadOnlyHost, p string) (bool, error) {
	if !path.IsAbs(p) && m.opts.Chdir != "" {
		p = path.Join(m.opts.Chdir, p)
	}
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"test", "-e", p}})
	var exit *transport.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && res.ExitCode == 1:
		return false, nil
	}
	return false, err
}

func (m *module) skipped(why string) *modules.Plan {
	return &modules.Plan{
		Message: why,
		Output: modules.Output{
			"cmd":          m.shown,
			"rc":           0,
			"stdout":       why,
			"stdout_lines": []string{why},
			"stderr":       "",
			"stderr_lines": []string{},
		},
	}
}

// Apply runs the command. A non-zero exit returns the Output together with
// the *transport.ExitError, so that failed_when can still judge it.
func (m *module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	cmd, err := modkit.PlanData[transport.Cmd](p)
	if err != nil {
		return nil, err
	}
	if m.opts.Stdin != "" {
		in := m.opts.Stdin
		if m.opts.StdinAddNewline && !strings.HasSuffix(in, "\n") {
			in += "\n"
		}
		cmd.Stdin = strings.NewReader(in)
	}
	start := time.Now()
	res, err := h.Run(ctx, cmd)
	end := time.Now()
	stdout, stderr := trimEnd(res.Stdout), trimEnd(res.Stderr)
	out := modules.Output{
		"cmd":          m.shown,
		"rc":           res.ExitCode,
		"stdout":       stdout,
		"stdout_lines": lines(stdout),
		"stderr":       stderr,
		"stderr_lines": lines(stderr),
		"start":        start.Format(timeLayout),
		"end":          end.Format(timeLayout),
		"delta":        formatDelta(end.Sub(start)),
	}
	return out, err
}

// timeLayout is how Ansible prints start and end.
const timeLayout = "2006-01-02 15:04:05.000000"

// trimEnd drops the final line breaks, as Ansible does.
func trimEnd(b []byte) string { return strings.TrimRight(string(b), "\r\n") }

func lines(s string) []string {
	if s == "" {
		return []string{}
	}
	out := strings.Split(s, "\n")
	for i, l := range out {
		out[i] = strings.TrimSuffix(l, "\r")
	}
	return out
}

// formatDelta prints d as Python prints a timedelta, H:MM:SS.ffffff, which
// is what Ansible users parse.
func formatDelta(d time.Duration) string {
	us := d.Microseconds()
	return fmt.Sprintf("%d:%02d:%02d.%06d", us/3_600_000_000, us/60_000_000%60, us/1_000_000%60, us%1_000_000)
}
