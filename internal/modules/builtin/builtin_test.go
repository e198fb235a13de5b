package builtin

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/tmpl"
)

func registry() *modules.Registry {
	engine := tmpl.New()
	return Registry(engine, engine)
}

func TestNames(t *testing.T) {
	want := []string{"assert", "chroot", "command", "copy", "debug", "facts", "fail", "fetch_iso", "install", "kexec", "nixos_config", "partition", "reboot", "rescue", "shell", "template", "unsquash", "wait_for_ssh", "zfs"}
	if got := registry().Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("names = %q, want %q", got, want)
	}
}

// TestSpecs checks what `nixbook doc` shows: every module documents itself,
// every argument has a type and a description, the free-form argument
// exists, and every example builds the module it shows.
func TestSpecs(t *testing.T) {
	reg := registry()
	for _, name := range reg.Names() {
		t.Run(name, func(t *testing.T) {
			spec, _ := reg.Lookup(name)
			if spec.Summary == "" || spec.Example == "" || spec.New == nil {
				t.Fatalf("spec lacks a summary, an example or New: %+v", spec)
			}
			args := map[string]bool{}
			for _, d := range spec.Doc() {
				args[d.Name] = true
				if d.Type == "" || d.Doc == "" {
					t.Errorf("argument %s lacks a type or a description: %+v", d.Name, d)
				}
			}
			if spec.FreeForm != "" && !args[spec.FreeForm] {
				t.Errorf("free-form argument %q is not an argument", spec.FreeForm)
			}
			// Every example loads as a task of a playbook: the loader checks
			// argument shapes, and builds the module when nothing is templated.
			var tasks []map[string]yaml.Node
			if err := yaml.Unmarshal([]byte(spec.Example), &tasks); err != nil {
				t.Fatalf("example: %v", err)
			}
			for i, task := range tasks {
				if _, ok := task[name]; !ok {
					t.Errorf("example task %d does not use %s", i, name)
				}
			}
			play := "- hosts: all\n  tasks:\n" + indent(spec.Example, "    ")
			if _, err := playbooks.LoadBytes("example.yml", []byte(play), t.TempDir(), reg); err != nil {
				t.Errorf("example does not load: %v\n%s", err, play)
			}
		})
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestWithJinja runs template and assert with the real template engine.
func TestWithJinja(t *testing.T) {
	reg := registry()
	dir := t.TempDir()
	play := filepath.Join(dir, "play")
	if err := os.MkdirAll(filepath.Join(play, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "{ networking.hostName = \"{{ facts.hostname }}\";\n" +
		"{% for d in facts.disks %}  # {{ d.path }} {{ (d.size_bytes / 1073741824) | int }} GiB\n{% endfor %}" +
		"  networking.interfaces.{{ nic }}.ipv4.addresses = [ \"{{ ipv4 }}\" ];\n}\n"
	if err := os.WriteFile(filepath.Join(play, "templates", "net.nix.j2"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	h := moduletest.NewLocalHost(t)
	h.VarsMap = map[string]any{"playbook_dir": play, "nic": "eno1", "ipv4": "203.0.113.10/24"}
	h.FactsVal = &facts.Facts{Hostname: "ks1", Disks: []facts.Disk{{Path: "/dev/sda", SizeBytes: 2 << 40}, {Path: "/dev/sdb", SizeBytes: 2 << 40}}}
	ctx := context.Background()

	spec, _ := reg.Lookup("template")
	m := moduletest.New(t, spec, "src: net.nix.j2\ndest: "+dir+"/net.nix")
	p, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "net.nix"))
	if err != nil {
		t.Fatal(err)
	}
	want := "{ networking.hostName = \"ks1\";\n  # /dev/sda 2048 GiB\n  # /dev/sdb 2048 GiB\n" +
		"  networking.interfaces.eno1.ipv4.addresses = [ \"203.0.113.10/24\" ];\n}\n"
	if string(got) != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}

	spec, _ = reg.Lookup("assert")
	for args, wantErr := range map[string]string{
		"that: [facts.disks | length == 2, nic == 'eno1', ipv4 is defined]": "",
		"that: [facts.disks | length >= 3]\nfail_msg: too few disks":        "too few disks (assertion failed: facts.disks | length >= 3)",
		"that: [undefined_var == 1]":                                        "undefined_var",
	} {
		_, err := moduletest.New(t, spec, args).Check(ctx, h.ReadOnly())
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%q: err = %v, want %q", args, err, wantErr)
		}
	}
}

// packageOf is the directory of each module's package.
var packageOf = map[string]string{
	"assert": "assert", "chroot": "chroot", "command": "command", "shell": "command", "copy": "copy",
	"debug": "debug", "facts": "factsmod", "fail": "fail", "fetch_iso": "fetchiso", "install": "install",
	"kexec": "kexec", "nixos_config": "nixosconfig", "partition": "partition", "reboot": "reboot",
	"rescue": "rescue", "template": "template", "unsquash": "unsquash", "wait_for_ssh": "waitssh", "zfs": "zfs",
}

// outsideContract are the modules the contract suite cannot hold, and why.
var outsideContract = map[string]string{
	"assert":       "plans no change: it only evaluates conditions",
	"debug":        "plans no change: it only prints",
	"fail":         "plans no change: it only fails",
	"facts":        "plans no change: it only reads",
	"wait_for_ssh": "plans no change: it only waits",
	"reboot":       "never converges: every run is a new boot, by design",
}

// contractDebt are modules that should meet the contract suite but have no
// test that holds them to it yet.
var contractDebt = map[string]bool{}

// TestEveryModuleIsHeldToTheContract finds, for every module, a test in its
// package that runs the contract suite (moduletest.Contract or
// moduletest.Run), unless the module is outside it for a stated reason.
func TestEveryModuleIsHeldToTheContract(t *testing.T) {
	for _, name := range registry().Names() {
		pkg, ok := packageOf[name]
		if !ok {
			t.Errorf("%s: add its package to packageOf", name)
			continue
		}
		tests, _ := filepath.Glob(filepath.Join("..", pkg, "*_test.go"))
		held := false
		for _, f := range tests {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			held = held || strings.Contains(string(src), "moduletest.Contract(") || strings.Contains(string(src), "moduletest.Run(")
		}
		_, outside := outsideContract[name]
		switch {
		case len(tests) == 0:
			t.Errorf("%s: no tests in internal/modules/%s", name, pkg)
		case held && (outside || contractDebt[name]):
			t.Errorf("%s meets the contract suite now: drop it from outsideContract or contractDebt", name)
		case !held && !outside && !contractDebt[name]:
			t.Errorf("%s: no test in internal/modules/%s runs moduletest.Contract or moduletest.Run", name, pkg)
		}
	}
}
