package copy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/fileplan"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

var update = flag.Bool("update", false, "rewrite golden files")

type file struct {
	content string
	mode    os.FileMode
}

// layout writes files (relative to dir) and returns dir.
func layout(t *testing.T, dir string, files map[string]file) {
	t.Helper()
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestCopy(t *testing.T) {
	tests := []struct {
		name        string
		files       map[string]file
		args        string // $DIR is the test directory
		wantChanges []string
		wantBefore  string
		wantAfter   string
		wantContent string
		wantMode    os.FileMode
	}{
		{
			name:        "new file",
			args:        "dest: $DIR/f\ncontent: hello\n",
			wantChanges: []string{"create $DIR/f (5 B, mode 0644)"},
			wantAfter:   "hello",
			wantContent: "hello",
			wantMode:    0o644,
		},
		{
			name:        "new empty file",
			args:        "dest: $DIR/f\ncontent: ''\nmode: '0600'",
			wantChanges: []string{"create $DIR/f (0 B, mode 0600)"},
			wantContent: "",
			wantMode:    0o600,
		},
		{
			name:        "same content",
			files:       map[string]file{"f": {"hello", 0o640}},
			args:        "dest: $DIR/f\ncontent: hello\n",
			wantContent: "hello",
			wantMode:    0o640,
		},
		{
			name:        "changed content keeps the mode",
			files:       map[string]file{"f": {"old\n", 0o600}},
			args:        "dest: $DIR/f\ncontent: \"new\\n\"\n",
			wantChanges: []string{"update $DIR/f (4 B)"},
			wantBefore:  "old\n",
			wantAfter:   "new\n",
			wantContent: "new\n",
			wantMode:    0o600,
		},
		{
			name:        "changed content and mode",
			files:       map[string]file{"f": {"old", 0o644}},
			args:        "dest: $DIR/f\ncontent: new\nmode: 0755\n",
			wantChanges: []string{"update $DIR/f (3 B, mode 0755, was 0644)"},
			wantBefore:  "old",
			wantAfter:   "new",
			wantContent: "new",
			wantMode:    0o755,
		},
		{
			name:        "mode only",
			files:       map[string]file{"f": {"same", 0o644}},
			args:        "dest: $DIR/f\ncontent: same\nmode: '600'\n",
			wantChanges: []string{"chmod 0600 $DIR/f (was 0644)"},
			wantContent: "same",
			wantMode:    0o600,
		},
		{
			name:        "src beside the playbook",
			files:       map[string]file{"play/motd": {"welcome\n", 0o600}},
			args:        "dest: $DIR/motd\nsrc: motd\n",
			wantChanges: []string{"create $DIR/motd (8 B, mode 0644)"},
			wantAfter:   "welcome\n",
			wantContent: "welcome\n",
			wantMode:    0o644,
		},
		{
			name:        "src in files/ first",
			files:       map[string]file{"play/motd": {"beside\n", 0o644}, "play/files/motd": {"in files\n", 0o644}},
			args:        "dest: $DIR/\nsrc: motd\n",
			wantChanges: []string{"create $DIR/motd (9 B, mode 0644)"},
			wantAfter:   "in files\n",
			wantContent: "in files\n",
			wantMode:    0o644,
		},
		{
			name:        "absolute src",
			files:       map[string]file{"elsewhere/x": {"abs", 0o644}},
			args:        "dest: $DIR/x\nsrc: $DIR/elsewhere/x\n",
			wantChanges: []string{"create $DIR/x (3 B, mode 0644)"},
			wantAfter:   "abs",
			wantContent: "abs",
			wantMode:    0o644,
		},
		{
			name:        "a quote and spaces in the path",
			files:       map[string]file{"it's here": {"old", 0o644}},
			args:        "dest: \"$DIR/it's here\"\ncontent: new\nmode: '0640'\n",
			wantChanges: []string{"update $DIR/it's here (3 B, mode 0640, was 0644)"},
			wantBefore:  "old",
			wantAfter:   "new",
			wantContent: "new",
			wantMode:    0o640,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			layout(t, dir, tt.files)
			h := moduletest.NewLocalHost(t)
			h.VarsMap["playbook_dir"] = filepath.Join(dir, "play")
			m := moduletest.NewFor(t, Spec, strings.ReplaceAll(tt.args, "$DIR", dir), h.VarsMap)
			ctx := context.Background()
			p, err := m.Check(ctx, h.ReadOnly())
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			var summaries []string
			for _, c := range p.Changes {
				summaries = append(summaries, strings.ReplaceAll(c.Summary, dir, "$DIR"))
			}
			if !reflect.DeepEqual(summaries, tt.wantChanges) {
				t.Errorf("changes = %q, want %q", summaries, tt.wantChanges)
			}
			if p.Changed() {
				c := p.Changes[0]
				if c.Before != tt.wantBefore || c.After != tt.wantAfter {
					t.Errorf("diff = %q -> %q, want %q -> %q", c.Before, c.After, tt.wantBefore, tt.wantAfter)
				}
				out, err := m.Apply(ctx, h, p)
				if err != nil {
					t.Fatalf("apply: %v", err)
				}
				if !reflect.DeepEqual(out, p.Output) {
					t.Errorf("apply output %v differs from the plan's %v", out, p.Output)
				}
			}
			dest := p.Output["dest"].(string)
			got, err := os.ReadFile(dest)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.wantContent {
				t.Errorf("content = %q, want %q", got, tt.wantContent)
			}
			fi, err := os.Stat(dest)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.wantMode {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tt.wantMode)
			}
			wantOut := modules.Output{"dest": dest, "checksum": sha(tt.wantContent), "size": len(tt.wantContent), "mode": fileplan.Mode(tt.wantMode).String()}
			if !reflect.DeepEqual(p.Output, wantOut) {
				t.Errorf("output = %v, want %v", p.Output, wantOut)
			}
			again, err := m.Check(ctx, h.ReadOnly())
			if err != nil {
				t.Fatal(err)
			}
			if again.Changed() {
				t.Errorf("second check plans %v", again.Changes)
			}
		})
	}
}

func TestModeOnlyDoesNotRewrite(t *testing.T) {
	dir := t.TempDir()
	layout(t, dir, map[string]file{"f": {"same", 0o644}})
	before := inode(t, filepath.Join(dir, "f"))
	h := moduletest.NewLocalHost(t)
	m := moduletest.New(t, Spec, "dest: "+dir+"/f\ncontent: same\nmode: '0755'")
	p, err := m.Check(context.Background(), h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(context.Background(), h, p); err != nil {
		t.Fatal(err)
	}
	if inode(t, filepath.Join(dir, "f")) != before {
		t.Error("a mode change replaced the file")
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestOwner(t *testing.T) {
	heavytest.Root(t, "root to change owners")
	const nobody = 65534
	tests := []struct {
		name        string
		owner       int // of the existing file; -1: no file
		args        string
		wantChanges []string
		wantUID     int
		wantMode    os.FileMode
	}{
		{name: "new file with owner", owner: -1, args: "content: x\nowner: '65534:65534'",
			wantChanges: []string{"create $F (1 B, mode 0644)", "chown 65534:65534 $F"}, wantUID: nobody},
		{name: "owner only", owner: 0, args: "content: old\nowner: '65534'",
			wantChanges: []string{"chown 65534 $F (was root:root)"}, wantUID: nobody},
		{name: "update keeps a foreign owner", owner: nobody, args: "content: new",
			wantChanges: []string{"update $F (3 B)", "keep owner nobody:nogroup of $F"}, wantUID: nobody},
		{name: "update of own file needs no chown", owner: 0, args: "content: new",
			wantChanges: []string{"update $F (3 B)"}, wantUID: 0},
		{name: "setuid survives chown", owner: 0, args: "content: new\nowner: root\nmode: '4755'",
			wantChanges: []string{"update $F (3 B, mode 4755, was 0644)", "chown root $F", "chmod 4755 $F"}, wantUID: 0, wantMode: 0o755 | os.ModeSetuid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "f")
			if tt.owner >= 0 {
				layout(t, dir, map[string]file{"f": {"old", 0o644}})
				if err := os.Chown(f, tt.owner, tt.owner); err != nil {
					t.Fatal(err)
				}
			}
			h := moduletest.NewLocalHost(t)
			m := moduletest.New(t, Spec, "dest: "+f+"\n"+tt.args)
			ctx := context.Background()
			p, err := m.Check(ctx, h.ReadOnly())
			if err != nil {
				t.Fatal(err)
			}
			var summaries []string
			for _, c := range p.Changes {
				summaries = append(summaries, strings.ReplaceAll(c.Summary, f, "$F"))
			}
			if !reflect.DeepEqual(summaries, tt.wantChanges) {
				t.Fatalf("changes = %q, want %q", summaries, tt.wantChanges)
			}
			if _, err := m.Apply(ctx, h, p); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != tt.wantUID {
				t.Errorf("uid = %d, want %d", uid, tt.wantUID)
			}
			if tt.wantMode != 0 && fi.Mode() != tt.wantMode {
				t.Errorf("mode = %v, want %v", fi.Mode(), tt.wantMode)
			}
			again, err := m.Check(ctx, h.ReadOnly())
			if err != nil {
				t.Fatal(err)
			}
			if again.Changed() {
				t.Errorf("second check plans %v", again.Changes)
			}
		})
	}
}

func TestBinaryContentIsNotDiffed(t *testing.T) {
	dir := t.TempDir()
	layout(t, dir, map[string]file{"play/blob": {"\x00\x01\x02\xff", 0o644}, "blob": {"text", 0o644}})
	h := moduletest.NewLocalHost(t)
	h.VarsMap["playbook_dir"] = filepath.Join(dir, "play")
	p, err := moduletest.NewFor(t, Spec, "dest: "+dir+"/blob\nsrc: blob", h.VarsMap).Check(context.Background(), h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	c := p.Changes[0]
	if !c.Sensitive || c.Before != "" || c.After != "" {
		t.Errorf("change = %+v, want a hidden diff", c)
	}
}

func TestCheckErrors(t *testing.T) {
	dir := t.TempDir()
	layout(t, dir, map[string]file{"play/adir/x": {"", 0o644}})
	tests := []struct {
		name, args, wantErr string
	}{
		{name: "missing parent", args: "dest: $DIR/missing/f\ncontent: x", wantErr: "destination directory $DIR/missing does not exist"},
		{name: "missing src", args: "dest: $DIR/f\nsrc: nope", wantErr: "src nope not found (looked for $DIR/play/files/nope, $DIR/play/nope)"},
		{name: "src is a directory", args: "dest: $DIR/f\nsrc: adir", wantErr: "is a directory"},
		{name: "dest is a directory", args: "dest: $DIR/play\ncontent: x", wantErr: "Is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := moduletest.NewLocalHost(t)
			h.VarsMap["playbook_dir"] = filepath.Join(dir, "play")
			m := moduletest.NewFor(t, Spec, strings.ReplaceAll(tt.args, "$DIR", dir), h.VarsMap)
			_, err := m.Check(context.Background(), h.ReadOnly())
			want := strings.ReplaceAll(tt.wantErr, "$DIR", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want it to contain %q", err, want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name, args, wantErr string
		wantMode            fileplan.Mode
	}{
		{name: "neither content nor src", args: "dest: /f", wantErr: "one of content or src is required"},
		{name: "both", args: "dest: /f\ncontent: x\nsrc: y", wantErr: "exclusive"},
		{name: "no dest", args: "content: x", wantErr: `missing required key "dest"`},
		{name: "content into a directory", args: "dest: /etc/\ncontent: x", wantErr: "needs a file name"},
		{name: "decimal-looking mode", args: "dest: /f\ncontent: x\nmode: 644", wantErr: "would be read as a decimal number"},
		{name: "symbolic mode", args: "dest: /f\ncontent: x\nmode: u+x", wantErr: "symbolic modes are not supported"},
		{name: "mode out of range", args: "dest: /f\ncontent: x\nmode: '17777'", wantErr: "out of range"},
		{name: "unknown key", args: "dest: /f\ncontent: x\nbackup: true", wantErr: "unknown key \"backup\""},
		{name: "yaml octal mode", args: "dest: /f\ncontent: x\nmode: 0644", wantMode: 0o644},
		{name: "0o mode", args: "dest: /f\ncontent: x\nmode: 0o750", wantMode: 0o750},
		{name: "quoted mode", args: "dest: /f\ncontent: x\nmode: '755'", wantMode: 0o755},
		{name: "setgid mode", args: "dest: /f\ncontent: x\nmode: '2775'", wantMode: 0o2775},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Spec.New(moduletest.Decoder(tt.args))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := *m.(*module).args.Mode; got != tt.wantMode {
				t.Errorf("mode = %v, want %v", got, tt.wantMode)
			}
		})
	}
}

func TestPlanGolden(t *testing.T) {
	dir := t.TempDir()
	layout(t, dir, map[string]file{"same": {"same\n", 0o644}, "old": {"line 1\nline 2\n", 0o600}, "play/files/motd": {"hi\n", 0o644}})
	cases := []string{
		"dest: $DIR/new\ncontent: \"fresh\\n\"",
		"dest: $DIR/same\ncontent: \"same\\n\"",
		"dest: $DIR/same\ncontent: \"same\\n\"\nmode: '0755'",
		"dest: $DIR/old\ncontent: \"line 1\\nline two\\n\"",
		"dest: $DIR/new\nsrc: motd\nmode: '0400'\nowner: root:root",
	}
	var b strings.Builder
	for _, args := range cases {
		h := moduletest.NewLocalHost(t)
		h.VarsMap["playbook_dir"] = filepath.Join(dir, "play")
		p, err := moduletest.NewFor(t, Spec, strings.ReplaceAll(args, "$DIR", dir), h.VarsMap).Check(context.Background(), h.ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("== " + strings.ReplaceAll(args, "\n", "; ") + "\n")
		b.WriteString(strings.ReplaceAll(moduletest.FormatPlan(p), dir, "$DIR"))
	}
	moduletest.Golden(t, "testdata/plan.golden", b.String(), *update)
}

func TestContract(t *testing.T) {
	t.Run("new file", func(t *testing.T) {
		moduletest.Run(t, Spec, func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
			return "dest: " + dir + "/f\ncontent: hello\nmode: '0600'", moduletest.NewLocalHost(t)
		})
	})
	t.Run("changed src", func(t *testing.T) {
		moduletest.Run(t, Spec, func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
			layout(t, dir, map[string]file{"f": {"old", 0o644}, "play/files/f": {"new", 0o644}})
			h := moduletest.NewLocalHost(t)
			h.VarsMap["playbook_dir"] = filepath.Join(dir, "play")
			return "dest: " + dir + "/f\nsrc: f", h
		})
	})
	t.Run("mode only", func(t *testing.T) {
		moduletest.Run(t, Spec, func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
			layout(t, dir, map[string]file{"f": {"same", 0o644}})
			return "dest: " + dir + "/f\ncontent: same\nmode: '0751'", moduletest.NewLocalHost(t)
		})
	})
}
