package playbooks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// stockModules are the modules stock playbooks may use.
// TestStockPlaybooksResolve checks that every stock playbook resolves to its
// embedded copy; builtin_test.go loads them with the real modules.
func TestStockPlaybooksResolve(t *testing.T) {
	names := Stock()
	for _, want := range []string{"facts.yml", "install.yml", "install-iso.yml"} {
		if !contains(names, want) {
			t.Fatalf("Stock() = %v, lacks %s", names, want)
		}
	}
	t.Chdir(t.TempDir()) // so no local file shadows a stock playbook
	for _, name := range names {
		path, data, err := Resolve(name)
		if err != nil || path != "embedded:"+name || len(data) == 0 {
			t.Errorf("Resolve(%s) = %q, %d bytes, %v", name, path, len(data), err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestFactsSummary(t *testing.T) {
	t.Chdir(t.TempDir())
	pb, err := Open("facts", testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	play := pb.Plays[0]
	if play.Hosts != "all" || !play.GatherFacts || len(play.Tasks) != 1 || play.Tasks[0].Module != "debug" {
		t.Fatalf("facts.yml: %+v", play)
	}
	msg := play.Tasks[0].Args.Content[1].Value
	tests := []struct {
		name  string
		facts facts.Facts
		want  string
	}{
		{"full", facts.Facts{
			Hostname: "ks1", OS: facts.OSRelease{ID: "debian", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
			Kernel: "6.1.0-18-amd64", Arch: "x86_64", Firmware: "uefi", MemoryMB: 32000, CPUs: 8, Rescue: true,
			Disks: []facts.Disk{{Path: "/dev/sda"}, {Path: "/dev/sdb"}},
		}, "ks1: Debian GNU/Linux 12 (bookworm), kernel 6.1.0-18-amd64 (x86_64, uefi), 8 CPUs, 32000 MB RAM, disks /dev/sda /dev/sdb, rescue system"},
		{"sparse", facts.Facts{Hostname: "ks2", OS: facts.OSRelease{ID: "nixos"}, Kernel: "6.6", Arch: "aarch64", CPUs: 2, MemoryMB: 2048},
			"ks2: nixos, kernel 6.6 (aarch64, unknown firmware), 2 CPUs, 2048 MB RAM, disks none"},
		{"empty", facts.Facts{}, ": unknown OS, kernel  (, unknown firmware), 0 CPUs, 0 MB RAM, disks none"},
	}
	engine := tmpl.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Templates see facts through their JSON names; numbers
			// arrive as floats after a JSON round trip.
			b, _ := json.Marshal(tt.facts)
			var generic map[string]any
			if err := json.Unmarshal(b, &generic); err != nil {
				t.Fatal(err)
			}
			got, err := engine.Render(msg, map[string]any{"facts": generic})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("summary:\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Chdir(t.TempDir())
	dir := t.TempDir()
	local := filepath.Join(dir, "facts.yml")
	if err := os.WriteFile(local, []byte("- hosts: local\n  tasks: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stockData, err := StockData("facts")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		local      bool
	}{
		{local, local, true},
		{"facts", "embedded:facts.yml", false},
		{"facts.yml", "embedded:facts.yml", false},
		{"embedded:facts.yml", "embedded:facts.yml", false},
	}
	for _, tt := range tests {
		path, data, err := Resolve(tt.name)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", tt.name, err)
		}
		if path != tt.path {
			t.Errorf("Resolve(%q) path = %q, want %q", tt.name, path, tt.path)
		}
		if tt.local != strings.Contains(string(data), "hosts: local") || !tt.local && string(data) != string(stockData) {
			t.Errorf("Resolve(%q) returned the wrong content", tt.name)
		}
	}
	for _, name := range []string{"nope", "nope.yml", dir, "sub/facts"} {
		_, _, err := Resolve(name)
		want := `playbook "` + name + `": no such file, and no stock playbook of that name (stock playbooks: ` + strings.Join(Stock(), ", ") + ")"
		if err == nil || err.Error() != want {
			t.Errorf("Resolve(%q) error = %v", name, err)
		}
	}
	pb, err := Open(local, testRegistry())
	if err != nil || pb.Path != local || pb.Dir != dir || pb.Plays[0].Hosts != "local" {
		t.Errorf("Open(local) = %+v, %v", pb, err)
	}
}

func TestStockFile(t *testing.T) {
	t.Chdir(t.TempDir()) // so no local file shadows a stock one
	data, err := StockFile("tasks/install-iso.yml")
	if err != nil || !strings.Contains(string(data), "fetch_iso:") {
		t.Errorf("StockFile(tasks/install-iso.yml) = %d bytes, %v", len(data), err)
	}
	if data, err := StockFile("install"); err != nil || !strings.Contains(string(data), "import_tasks: tasks/install-iso.yml") {
		t.Errorf("StockFile(install) = %d bytes, %v", len(data), err)
	}
	for _, name := range []string{"tasks/nope.yml", "tasks/../install.yml", "tasks"} {
		if _, err := StockFile(name); err == nil {
			t.Errorf("StockFile(%q) succeeded", name)
		}
	}
	// Tasks files are no playbooks: not listed, not run.
	if slices.ContainsFunc(Stock(), func(n string) bool { return strings.Contains(n, "/") }) {
		t.Errorf("Stock() = %v", Stock())
	}
	if _, _, err := Resolve("tasks/install-iso.yml"); err == nil {
		t.Error("Resolve(tasks/install-iso.yml) succeeded")
	}
}
