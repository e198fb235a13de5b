package command

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
)

var update = flag.Bool("update", false, "rewrite golden files")

// run builds the module, checks and, when the plan changes something,
// applies it on this machine.
func run(t *testing.T, spec modules.Spec, args string) (*modules.Plan, modules.Output, error) {
	t.Helper()
	m := moduletest.New(t, spec, args)
	h := moduletest.NewLocalHost(t)
	ctx := context.Background()
	p, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !p.Changed() {
		return p, p.Output, nil
	}
	out, err := m.Apply(ctx, h, p)
	return p, out, err
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		spec       modules.Spec
		args       string
		wantStdout string
		wantCmd    any
	}{
		{
			name:       "argv list is passed as is",
			spec:       Spec,
			args:       `cmd: [printf, '%s|', 'a b', '$HOME', "it's", '*', '']`,
			wantStdout: "a b|$HOME|it's|*||",
			wantCmd:    []string{"printf", "%s|", "a b", "$HOME", "it's", "*", ""},
		},
		{
			name:       "string is split into words like a shell",
			spec:       Spec,
			args:       `cmd: printf '%s|' "a b" c\ d`,
			wantStdout: "a b|c d|",
			wantCmd:    []string{"printf", "%s|", "a b", "c d"},
		},
		{
			name:       "command has no shell features",
			spec:       Spec,
			args:       `cmd: echo $HOME | cat > x`,
			wantStdout: "$HOME | cat > x",
		},
		{
			name:       "chdir",
			spec:       Spec,
			args:       "cmd: pwd\nchdir: " + dir,
			wantStdout: dir,
		},
		{
			name:       "stdin ends with a newline",
			spec:       Spec,
			args:       "cmd: wc -c\nstdin: abc",
			wantStdout: "4",
		},
		{
			name:       "stdin as written",
			spec:       Spec,
			args:       "cmd: wc -c\nstdin: abc\nstdin_add_newline: false",
			wantStdout: "3",
		},
		{
			name:       "shell pipes",
			spec:       ShellSpec,
			args:       `cmd: printf 'a\nb\nc\n' | wc -l`,
			wantStdout: "3",
			wantCmd:    `printf 'a\nb\nc\n' | wc -l`,
		},
		{
			name:       "shell variables and chdir",
			spec:       ShellSpec,
			args:       "cmd: X=42; echo \"$X $(pwd)\"\nchdir: " + dir,
			wantStdout: "42 " + dir,
		},
		{
			name:       "shell executable",
			spec:       ShellSpec,
			args:       "cmd: echo \"$0\"\nexecutable: /bin/sh",
			wantStdout: "/bin/sh",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, out, err := run(t, tt.spec, tt.args)
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if !p.Changed() {
				t.Fatal("plan has no change: a command without creates/removes must always run")
			}
			if got := strings.TrimSpace(out["stdout"].(string)); got != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got, tt.wantStdout)
			}
			if out["rc"] != 0 {
				t.Errorf("rc = %v", out["rc"])
			}
			if tt.wantCmd != nil && !reflect.DeepEqual(out["cmd"], tt.wantCmd) {
				t.Errorf("cmd = %#v, want %#v", out["cmd"], tt.wantCmd)
			}
		})
	}
}

func TestNonZeroExit(t *testing.T) {
	for _, spec := range []modules.Spec{Spec, ShellSpec} {
		t.Run(spec.Name, func(t *testing.T) {
			_, out, err := run(t, spec, `cmd: sh -c 'printf "out\n"; printf "e1\ne2\n" >&2; exit 3'`)
			var exit *transport.ExitError
			if !errors.As(err, &exit) || exit.ExitCode != 3 {
				t.Fatalf("err = %v, want an ExitError with code 3", err)
			}
			want := map[string]any{
				"rc": 3, "stdout": "out", "stdout_lines": []string{"out"},
				"stderr": "e1\ne2", "stderr_lines": []string{"e1", "e2"},
			}
			for k, v := range want {
				if !reflect.DeepEqual(out[k], v) {
					t.Errorf("%s = %#v, want %#v", k, out[k], v)
				}
			}
		})
	}
}

func TestOutputKeys(t *testing.T) {
	_, out, err := run(t, Spec, "cmd: true")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"cmd", "delta", "end", "rc", "start", "stderr", "stderr_lines", "stdout", "stdout_lines"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	if !regexp.MustCompile(`^0:00:0\d\.\d{6}$`).MatchString(out["delta"].(string)) {
		t.Errorf("delta = %q", out["delta"])
	}
	for _, k := range []string{"start", "end"} {
		if _, err := time.ParseInLocation(timeLayout, out[k].(string), time.Local); err != nil {
			t.Errorf("%s = %q: %v", k, out[k], err)
		}
	}
}

func TestCreatesRemoves(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "present")
	if err := os.WriteFile(present, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	absent := filepath.Join(dir, "absent")
	tests := []struct {
		name        string
		args        string
		wantChange  bool
		wantMessage string
	}{
		{name: "creates exists", args: "creates: " + present, wantMessage: "skipped, since " + present + " exists"},
		{name: "creates absent", args: "creates: " + absent, wantChange: true},
		{name: "creates relative to chdir", args: "chdir: " + dir + "\ncreates: present", wantMessage: "skipped, since present exists"},
		{name: "creates relative to chdir, absent", args: "chdir: " + dir + "\ncreates: absent", wantChange: true},
		{name: "removes absent", args: "removes: " + absent, wantMessage: "skipped, since " + absent + " does not exist"},
		{name: "removes exists", args: "removes: " + present, wantChange: true},
		{name: "creates with a quote in the path", args: "creates: \"" + dir + "/it's\"", wantChange: true},
	}
	for _, tt := range tests {
		for _, spec := range []modules.Spec{Spec, ShellSpec} {
			t.Run(spec.Name+"/"+tt.name, func(t *testing.T) {
				m := moduletest.New(t, spec, "cmd: touch ran\n"+tt.args)
				p, err := m.Check(context.Background(), moduletest.NewLocalHost(t).ReadOnly())
				if err != nil {
					t.Fatal(err)
				}
				if p.Changed() != tt.wantChange {
					t.Fatalf("changed = %v, want %v", p.Changed(), tt.wantChange)
				}
				if p.Message != tt.wantMessage {
					t.Errorf("message = %q, want %q", p.Message, tt.wantMessage)
				}
				if !tt.wantChange && (p.Output["rc"] != 0 || p.Output["stdout"] != tt.wantMessage) {
					t.Errorf("output = %v", p.Output)
				}
			})
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		spec    modules.Spec
		args    string
		wantErr string
	}{
		{name: "missing cmd", spec: Spec, args: "chdir: /tmp", wantErr: `missing required key "cmd"`},
		{name: "empty cmd", spec: Spec, args: "cmd: ''", wantErr: `"cmd" is required and must not be empty`},
		{name: "empty program", spec: Spec, args: `cmd: "'' x"`, wantErr: "program name is empty"},
		{name: "unknown key", spec: Spec, args: "cmd: ls\nargv: [ls]", wantErr: "unknown key \"argv\""},
		{name: "unterminated quote", spec: Spec, args: `cmd: echo "hi`, wantErr: "unterminated double quote"},
		{name: "shell wants a string", spec: ShellSpec, args: "cmd: [ls, -l]", wantErr: "cmd: want a string, got a list"},
		{name: "shell missing cmd", spec: ShellSpec, args: "chdir: /tmp", wantErr: `missing required key "cmd"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.spec.New(moduletest.Decoder(tt.args))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestPlanGolden(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		spec modules.Spec
		args string
	}{
		{Spec, "cmd: echo hello world"},
		{Spec, `cmd: [printf, '%s\n', "it's", 'a b', '$HOME']`},
		{Spec, "cmd: ls -l\nchdir: /var/tmp"},
		{Spec, "cmd: nixos-install --root /mnt\ncreates: $DIR/done"},
		{Spec, "cmd: nixos-install --root /mnt\ncreates: $DIR/missing"},
		{Spec, "cmd: rm -f stale\nremoves: $DIR/missing"},
		{ShellSpec, "cmd: lsblk -J | jq '.blockdevices[].name'"},
		{ShellSpec, "cmd: set -e; echo \"$HOME\"\nexecutable: bash\nchdir: /root dir"},
	}
	var b strings.Builder
	for _, c := range cases {
		args := strings.ReplaceAll(c.args, "$DIR", dir)
		m := moduletest.New(t, c.spec, args)
		p, err := m.Check(context.Background(), moduletest.NewLocalHost(t).ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("== " + c.spec.Name + ": " + strings.ReplaceAll(c.args, "\n", "; ") + "\n")
		b.WriteString(strings.ReplaceAll(moduletest.FormatPlan(p), dir, "$DIR"))
	}
	moduletest.Golden(t, "testdata/plan.golden", b.String(), *update)
}

func TestContract(t *testing.T) {
	moduletest.Run(t, Spec, func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
		marker := filepath.Join(dir, "marker")
		return "cmd: [touch, " + marker + "]\ncreates: " + marker, moduletest.NewLocalHost(t)
	})
}

func TestShellContract(t *testing.T) {
	moduletest.Run(t, ShellSpec, func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
		return "cmd: echo built > out.txt\nchdir: " + dir + "\ncreates: out.txt", moduletest.NewLocalHost(t)
	})
}

func TestFormatDelta(t *testing.T) {
	tests := map[time.Duration]string{
		0:                       "0:00:00.000000",
		3544 * time.Microsecond: "0:00:00.003544",
		time.Hour + 2*time.Minute + 3500*time.Millisecond: "1:02:03.500000",
		27 * time.Hour: "27:00:00.000000",
	}
	for d, want := range tests {
		if got := formatDelta(d); got != want {
			t.Errorf("formatDelta(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDocListsSharedOptions(t *testing.T) {
	var names []string
	for _, d := range ShellSpec.Doc() {
		names = append(names, d.Name)
	}
	want := []string{"cmd", "executable", "creates", "removes", "chdir", "stdin", "stdin_add_newline"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("shell doc = %q, want %q", names, want)
	}
}
