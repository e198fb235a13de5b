package nixbook_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/nixbook/nixbook/"

// floors says which of nixbook's own packages each package may import
// (non-test imports). Patterns end in "/..." for a package and everything
// under it. The order is the architecture, from the leaves up: a package
// never imports one above it, so a transport cannot reach for a module and a
// module cannot reach for the runner.
var floors = []struct {
	pkg     string
	imports []string
}{
	// Leaves: small kits anything may use.
	{"internal/shellquote", nil},
	{"internal/yamlx", nil},
	{"internal/secrets", nil},
	{"internal/clock", nil},
	{"internal/retry", []string{"internal/clock"}},
	{"internal/proctree", nil},
	{"internal/buildonce", nil},
	{"internal/cliargs", nil},
	{"internal/apt", []string{"internal/retry"}},
	{"internal/facts", nil},
	{"internal/nixenv", nil},
	{"internal/ovh", nil},
	{"internal/tmpl", []string{"internal/shellquote"}},
	{"internal/inventory", []string{"internal/secrets", "internal/yamlx"}},

	// How nixbook reaches a host.
	{"internal/transport", []string{"internal/shellquote"}},
	{"internal/hostkeys", []string{"internal/transport", "internal/shellquote"}},
	{"internal/transport/local", []string{"internal/transport"}},
	{"internal/transport/ssh", []string{"internal/transport", "internal/hostkeys", "internal/shellquote"}},

	// Test kits, imported by tests only (checked below); before the patterns
	// they would otherwise match.
	{"internal/heavytest", nil},
	{"internal/sshdtest", []string{"internal/heavytest", "internal/apt", "internal/proctree", "internal/transport"}},
	{"internal/modules/moduletest", []string{"internal/heavytest", "internal/clock", "internal/modules", "internal/facts", "internal/hostkeys", "internal/ovh", "internal/transport", "internal/transport/local", "internal/yamlx"}},
	{"internal/modules/zfs/internal/zfsvm", []string{"internal/heavytest", "internal/facts", "internal/hostkeys", "internal/modules/moduletest", "internal/transport", "internal/transport/ssh", "sim/vm"}},
	{"internal/modules/internal/nixosgen/nixosgentest", []string{"internal/heavytest", "internal/facts", "sim/nixeval"}},
	{"internal/modules/internal/hostfs/hostfstest", []string{"internal/modules/internal/hostfs"}},
	{"internal/runner/runnertest", []string{"internal/hostkeys", "internal/inventory", "internal/modules", "internal/playbooks", "internal/runner", "internal/tmpl", "internal/transport/ssh"}},

	// The module contract, the kits modules share, and the modules: peers
	// that import kits, never one another (modules/* lists no module).
	{"internal/modules", []string{"internal/facts", "internal/ovh", "internal/transport"}},
	{"internal/modules/internal/...", []string{"internal/clock", "internal/modules", "internal/modules/internal/...", "internal/facts", "internal/transport", "internal/hostkeys", "internal/ovh", "internal/shellquote", "internal/nixenv"}},
	{"internal/modules/builtin", []string{"internal/modules/..."}},
	{"internal/modules/*", []string{"internal/clock", "internal/modules", "internal/modules/internal/...", "internal/facts", "internal/transport", "internal/hostkeys", "internal/ovh", "internal/shellquote"}},

	// The language, the engine, the output and the command line.
	{"internal/playbooks", []string{"internal/modules", "internal/tmpl", "internal/yamlx"}},
	{"internal/runner", []string{"internal/facts", "internal/hostkeys", "internal/inventory", "internal/modules", "internal/ovh", "internal/playbooks", "internal/tmpl", "internal/transport", "internal/transport/local", "internal/secrets", "internal/yamlx"}},
	{"internal/report", []string{"internal/runner"}},
	{"internal/cli", []string{"internal/facts", "internal/hostkeys", "internal/inventory", "internal/modules", "internal/modules/builtin", "internal/modules/nixosconfig", "internal/playbooks", "internal/report", "internal/runner", "internal/tmpl", "internal/transport", "internal/transport/ssh", "internal/ovh", "internal/yamlx", "internal/cliargs", "internal/secrets"}},
	{"cmd/nixbook", []string{"internal/cli"}},

	// The simulated fleet stands beside the product: it may use the
	// product's leaves (to speak the same OVH API), nothing imports it.
	{"sim/...", []string{"sim/...", "internal/ovh", "internal/..."}},
	{"cmd/nixbook-sim", []string{"sim/hostinit", "sim/simcli"}},
	{"cmd/nixbook-sim-host", []string{"sim/hostinit"}},

	// Packages of tests only.
	{"e2e", nil},
	{"", nil}, // the module root: this file
}

// testKits are packages made for tests; the nixbook binary never links
// them, nor the simulator, nor package testing.
var testKits = []string{"internal/heavytest", "internal/sshdtest", "internal/modules/moduletest", "internal/modules/zfs/internal/zfsvm", "internal/modules/internal/nixosgen/nixosgentest", "internal/modules/internal/hostfs/hostfstest", "internal/runner/runnertest", "sim/..."}

func matches(pattern, pkg string) bool {
	switch {
	case strings.HasSuffix(pattern, "/..."):
		base := strings.TrimSuffix(pattern, "/...")
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	case strings.Contains(pattern, "*"):
		ok, _ := path.Match(pattern, pkg)
		return ok
	}
	return pkg == pattern
}

// floorOf finds a package's row; the first match wins, so exact rows come
// before patterns in the table where both would match.
func floorOf(pkg string) (int, bool) {
	for i, f := range floors {
		if matches(f.pkg, pkg) {
			return i, true
		}
	}
	return 0, false
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestEveryImportGoesDownTheFloors(t *testing.T) {
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "github.com/nixbook/nixbook")
		row, ok := floorOf(pkg)
		if !ok {
			t.Errorf("%s has no place in the floors of architecture_test.go: add it where it belongs", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			imp = strings.TrimPrefix(imp, module)
			allowed := slices.ContainsFunc(floors[row].imports, func(p string) bool { return matches(p, imp) && imp != pkg })
			if !allowed {
				t.Errorf("%s imports %s, which its floor (%q) does not allow", pkg, imp, floors[row].pkg)
			}
		}
	}
}

func TestTheBinaryLinksNoTestCodeNorTheSimulator(t *testing.T) {
	for _, dep := range goList(t, "-deps", "./cmd/nixbook") {
		if dep == "testing" {
			t.Errorf("the nixbook binary links package testing")
		}
		if !strings.HasPrefix(dep, module) {
			continue
		}
		dep = strings.TrimPrefix(dep, module)
		for _, kit := range testKits {
			if matches(kit, dep) {
				t.Errorf("the nixbook binary links %s", dep)
			}
		}
	}
}

// apiBuilders are what builds a client of the OVH API, with its own
// credentials and rate budget: the runner's business, never a module's.
var apiBuilders = []string{"New", "Config", "Env", "NewLimiters", "Limiters", "Client", "Resolve", "ResolveApp"}

func TestModulesReachTheOVHAPIOnlyThroughTheirHost(t *testing.T) {
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{.Dir}} {{join .GoFiles \" \"}}", "./internal/modules/...") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		if matches("internal/modules/moduletest", pkg) {
			continue // the test kit stands in for the runner
		}
		for _, name := range fields[2:] {
			file := filepath.Join(fields[1], name)
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			local := ""
			for _, imp := range f.Imports {
				if strings.Trim(imp.Path.Value, `"`) == module+"internal/ovh" {
					local = "ovh"
					if imp.Name != nil {
						local = imp.Name.Name
					}
				}
			}
			if local == "" {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == local && slices.Contains(apiBuilders, sel.Sel.Name) {
					t.Errorf("%s uses ovh.%s: a module reaches the OVH API through its host view (OVH, OVHWriter), which the runner makes", file, sel.Sel.Name)
				}
				return true
			})
		}
	}
}
