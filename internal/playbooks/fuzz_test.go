package playbooks_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/builtin"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// FuzzLoad checks that no playbook, however malformed, panics the loader:
// it loads or reports an error. The seed corpus is testdata/fuzz plus the
// playbooks of testdata and the stock ones.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.yml"))
	seeds = append(seeds, "install.yml", "install-iso.yml", "facts.yml")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	engine := tmpl.New()
	reg := builtin.Registry(engine, engine)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		pb, err := playbooks.LoadBytes("fuzz.yml", data, dir, reg)
		if err == nil && pb == nil {
			t.Fatal("no playbook and no error")
		}
	})
}
