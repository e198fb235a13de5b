package moduletest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

func TestSnapshotDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(dir string) error
		want   string
	}{
		{name: "nothing", change: func(string) error { return nil }},
		{name: "content", change: func(dir string) error { return os.WriteFile(filepath.Join(dir, "a"), []byte("A"), 0o644) }, want: "~ a:"},
		{name: "mode", change: func(dir string) error { return os.Chmod(filepath.Join(dir, "a"), 0o600) }, want: "~ a:"},
		{name: "created", change: func(dir string) error { return os.WriteFile(filepath.Join(dir, "b"), nil, 0o644) }, want: "+ b:"},
		{name: "removed", change: func(dir string) error { return os.Remove(filepath.Join(dir, "a")) }, want: "- a:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := Snapshot(t, dir)
			if err := tt.change(dir); err != nil {
				t.Fatal(err)
			}
			diff := before.Diff(Snapshot(t, dir))
			if tt.want == "" && diff != "" || !strings.Contains(diff, tt.want) {
				t.Errorf("diff = %q, want it to contain %q", diff, tt.want)
			}
		})
	}
}

func TestLocalHostProbeIsReadOnly(t *testing.T) {
	dir := t.TempDir()
	h := NewLocalHost(t)
	ro := h.ReadOnly()
	if _, ok := ro.(modules.Host); ok {
		t.Fatal("the read-only view can be asserted to a Host")
	}
	marker := filepath.Join(dir, "marker")
	_, err := ro.Probe(context.Background(), transport.Cmd{Args: []string{"touch", marker}})
	if !errors.Is(err, transport.ErrReadOnly) {
		t.Fatalf("probe touch: err = %v, want ErrReadOnly", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a probe created a file")
	}
	if _, err := h.Run(context.Background(), transport.Cmd{Args: []string{"touch", marker}}); err != nil {
		t.Fatalf("run touch: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("run did not create the file: %v", err)
	}
}

func TestLocalHostReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "it's a file")
	if err := os.WriteFile(path, []byte("content\x00binary"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := NewLocalHost(t)
	got, err := h.ReadOnly().ReadFile(context.Background(), path)
	if err != nil || string(got) != "content\x00binary" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	if _, err := h.ReadFile(context.Background(), filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: err = %v, want ErrNotExist", err)
	}
	if _, err := h.ReadFile(context.Background(), dir); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("directory: err = %v, want a plain error", err)
	}
}

func TestDecoderIsStrict(t *testing.T) {
	var v struct {
		A string `yaml:"a"`
	}
	if err := Decoder("a: x\nb: y").Decode(&v); err == nil || !strings.Contains(err.Error(), "unknown key \"b\"") {
		t.Fatalf("err = %v, want unknown field", err)
	}
	if err := Decoder("").Decode(&v); err != nil {
		t.Fatalf("empty args: %v", err)
	}
}

func TestFormatPlan(t *testing.T) {
	p := &modules.Plan{
		Changes: []modules.Change{
			{Summary: "write /etc/x", Commands: []string{"chmod 0600 /etc/x"}, Before: "a\n", After: "b\n"},
			{Summary: "secret", Sensitive: true},
		},
		Reboots: true,
		Message: "hi",
		Output:  modules.Output{"b": 2, "a": []string{"x"}},
	}
	want := `change: write /etc/x
  $ chmod 0600 /etc/x
  before: "a\n"
  after:  "b\n"
change: secret
  (diff hidden)
reboots: true
message: hi
output:
  a: ["x"]
  b: 2
`
	if got := FormatPlan(p); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
