package playbooks_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/builtin"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// TestStockWithBuiltinModules loads every stock playbook with the modules
// nixbook ships, so a playbook and a module cannot drift apart.
func TestStockWithBuiltinModules(t *testing.T) {
	engine := tmpl.New()
	reg := builtin.Registry(engine, engine)
	t.Chdir(t.TempDir())
	for _, name := range playbooks.Stock() {
		pb, err := playbooks.Open(name, reg)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, f := range pb.Faults {
			t.Errorf("%s: validate would report: %v", name, f)
		}
	}
}

// A stock playbook imports the stock tasks files, whatever the current
// directory holds.
func TestStockPlaybooksImportStockTasks(t *testing.T) {
	engine := tmpl.New()
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll(filepath.Join(dir, "tasks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tasks", "install-iso.yml"), []byte("- name: Not the stock file\n  debug: {msg: local}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"install.yml", "install-iso.yml"} {
		pb, err := playbooks.Open(name, builtin.Registry(engine, engine))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var names []string
		for _, task := range playbooks.Leaves(pb.Plays[0].Tasks) {
			names = append(names, task.Name)
		}
		all := strings.Join(names, "\n")
		if !strings.Contains(all, "Unpack the ISO's store onto the rescue partition") || strings.Contains(all, "Not the stock file") {
			t.Errorf("%s's tasks:\n%s", name, all)
		}
	}
}
