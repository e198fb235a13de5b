package template

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeRenderer replaces {{ a.b }} with the value at that dotted path.
type fakeRenderer struct{}

var placeholder = regexp.MustCompile(`\{\{\s*([\w.]+)\s*\}\}`)

func (fakeRenderer) Render(src string, vars map[string]any) (string, error) {
	var err error
	out := placeholder.ReplaceAllStringFunc(src, func(m string) string {
		path := placeholder.FindStringSubmatch(m)[1]
		var v any = vars
		for _, k := range strings.Split(path, ".") {
			mm, ok := v.(map[string]any)
			if !ok {
				err = fmt.Errorf("%s is undefined", path)
				return ""
			}
			if v, ok = mm[k]; !ok {
				err = fmt.Errorf("%s is undefined", path)
				return ""
			}
		}
		return fmt.Sprint(v)
	})
	return out, err
}

var spec = NewSpec(fakeRenderer{})

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func host(t *testing.T, dir string) *moduletest.LocalHost {
	h := moduletest.NewLocalHost(t)
	h.VarsMap = map[string]any{"playbook_dir": filepath.Join(dir, "play"), "ip": "203.0.113.10"}
	h.FactsVal = &facts.Facts{Hostname: "ks1"}
	return h
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		name        string
		files       map[string]string // relative to the test directory
		args        string
		wantErr     string
		wantSummary string
		wantContent string
	}{
		{
			name:        "vars and facts",
			files:       map[string]string{"play/templates/net.j2": "host {{ facts.hostname }} at {{ ip }}\n"},
			args:        "src: net.j2\ndest: $DIR/net",
			wantSummary: "create $DIR/net (25 B, mode 0644)",
			wantContent: "host ks1 at 203.0.113.10\n",
		},
		{
			name:        "beside the playbook",
			files:       map[string]string{"play/net.j2": "{{ ip }}", "net": "198.51.100.1"},
			args:        "src: net.j2\ndest: $DIR/net\nmode: '0600'",
			wantSummary: "update $DIR/net (12 B, mode 0600, was 0644)",
			wantContent: "203.0.113.10",
		},
		{
			name:        "rendered content already there",
			files:       map[string]string{"play/templates/net.j2": "{{ ip }}", "net": "203.0.113.10"},
			args:        "src: net.j2\ndest: $DIR/net",
			wantContent: "203.0.113.10",
		},
		{
			name:    "render error",
			files:   map[string]string{"play/templates/net.j2": "{{ nope }}"},
			args:    "src: net.j2\ndest: $DIR/net",
			wantErr: "render net.j2: nope is undefined",
		},
		{
			name:    "missing template",
			args:    "src: net.j2\ndest: $DIR/net",
			wantErr: "src net.j2 not found (looked for $DIR/play/templates/net.j2, $DIR/play/net.j2)",
		},
		{
			name:    "missing parent",
			files:   map[string]string{"play/templates/net.j2": "x"},
			args:    "src: net.j2\ndest: $DIR/no/net",
			wantErr: "destination directory $DIR/no does not exist",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				write(t, filepath.Join(dir, name), content)
			}
			h := host(t, dir)
			m := moduletest.New(t, spec, strings.ReplaceAll(tt.args, "$DIR", dir))
			ctx := context.Background()
			p, err := m.Check(ctx, h.ReadOnly())
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "$DIR", dir)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want it to contain %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			summary := ""
			if p.Changed() {
				summary = strings.ReplaceAll(p.Changes[0].Summary, dir, "$DIR")
				if _, err := m.Apply(ctx, h, p); err != nil {
					t.Fatal(err)
				}
			}
			if summary != tt.wantSummary {
				t.Errorf("summary = %q, want %q", summary, tt.wantSummary)
			}
			got, err := os.ReadFile(filepath.Join(dir, "net"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.wantContent {
				t.Errorf("content = %q, want %q", got, tt.wantContent)
			}
		})
	}
}

func TestNew(t *testing.T) {
	if _, err := NewSpec(nil).New(moduletest.Decoder("src: a\ndest: /b")); err == nil {
		t.Error("a spec without a renderer built a module")
	}
	for args, wantErr := range map[string]string{
		"dest: /b":                     `missing required key "src"`,
		"src: a":                       `missing required key "dest"`,
		"src: a\ndest: /b\ncontent: x": "unknown key \"content\"",
	} {
		_, err := spec.New(moduletest.Decoder(args))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: err = %v, want %q", args, err, wantErr)
		}
	}
}

func TestPlanGolden(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "play/templates/hosts.j2"), "127.0.0.1 localhost\n{{ ip }} {{ facts.hostname }}\n")
	write(t, filepath.Join(dir, "hosts"), "127.0.0.1 localhost\n")
	h := host(t, dir)
	p, err := moduletest.New(t, spec, "src: hosts.j2\ndest: "+dir+"/hosts\nmode: '0644'\nowner: root").Check(context.Background(), h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	moduletest.Golden(t, "testdata/plan.golden", strings.ReplaceAll(moduletest.FormatPlan(p), dir, "$DIR"), *update)
}

func TestContract(t *testing.T) {
	moduletest.Run(t, spec, func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
		write(t, filepath.Join(dir, "play/templates/motd.j2"), "Welcome to {{ facts.hostname }}\n")
		write(t, filepath.Join(dir, "motd"), "Welcome to the rescue system\n")
		return "src: motd.j2\ndest: " + dir + "/motd", host(t, dir)
	})
}

func TestDocListsFileArgs(t *testing.T) {
	var names []string
	for _, d := range spec.Doc() {
		names = append(names, d.Name)
	}
	if got, want := strings.Join(names, " "), "src dest mode owner"; got != want {
		t.Errorf("doc args = %q, want %q", got, want)
	}
}
