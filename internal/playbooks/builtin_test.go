package playbooks_test

import (
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
