package nixosconfig

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/nixosgen"
	"github.com/nixbook/nixbook/internal/modules/internal/nixosgen/nixosgentest"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
	"github.com/nixbook/nixbook/sim/nixeval"
)

// fakeGenerator is a stand-in for nixos-generate-config with its
// behaviour: hardware-configuration.nix is always (re)written,
// configuration.nix only when missing. Each run is counted.
const fakeGenerator = `#!/bin/sh
set -eu
[ "$1" = --root ] || { echo "usage: $0 --root DIR" >&2; exit 2; }
dir="$2/etc/nixos"
mkdir -p "$dir"
cat >"$dir/hardware-configuration.nix" <<'EOF'
{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [ (modulesPath + "/installer/scan/not-detected.nix") ];
  boot.initrd.availableKernelModules = [ "ahci" "sd_mod" ];
  fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
  swapDevices = [ ];
  networking.useDHCP = lib.mkDefault true;
}
EOF
[ -e "$dir/configuration.nix" ] || printf '{ ... }:\n{\n  boot.loader.grub.device = "/dev/sda";\n}\n' >"$dir/configuration.nix"
echo run >>"$GENERATOR_LOG"
`

// The fixtures of the configuration's tests.
var (
	adminKey      = nixosgentest.AdminKey
	rescue        = nixosgentest.Rescue
	kimsufiServer = nixosgentest.KimsufiServer
	grubRecord    = nixosgentest.GrubRecord
	evaluate      = nixosgentest.Evaluate
	requireNix    = nixosgentest.RequireNix
	update        = flag.Bool("update", false, "rewrite golden files under testdata/")
)

// withGenerator puts the fake nixos-generate-config first on PATH and
// returns the file counting its runs.
func withGenerator(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "nixos-generate-config"), []byte(fakeGenerator), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "runs")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("GENERATOR_LOG", log)
	return log
}

func runs(t *testing.T, log string) int {
	data, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "run\n")
}

func localArgs(root string) string {
	return "root: " + root + "\nrequire_mount: false\nnic_naming: mac\nipv6: 2001:db8:1:10::1/64\nipv6_gateway: 2001:db8:1:ff:ff:ff:ff:ff\nssh_keys: [\"" + adminKey + "\"]\n"
}

func localHost(t *testing.T) *moduletest.LocalHost {
	h := moduletest.NewLocalHost(t)
	h.HostName = "ks1"
	h.FactsVal = rescue()
	return h
}

// The module contract on real files: Check changes nothing, is
// deterministic, and Apply converges.
func TestContract(t *testing.T) {
	moduletest.Run(t, Spec, func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
		withGenerator(t)
		root := filepath.Join(dir, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		return localArgs(root), localHost(t)
	})
}

// A whole run into a local root: the generator runs once, the files land,
// the result evaluates and boots the simulated server, and a second run
// changes nothing and does not regenerate.
func TestApplyOnLocalRoot(t *testing.T) {
	log := withGenerator(t)
	root := t.TempDir()
	ctx := context.Background()
	h := localHost(t)
	m := moduletest.New(t, Spec, localArgs(root))

	plan, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(moduletest.FormatPlan(plan), root, "$ROOT")
	moduletest.Golden(t, filepath.Join("testdata", "plan-fresh-root.golden"), got, *update)
	if _, err := m.Apply(ctx, h, plan); err != nil {
		t.Fatal(err)
	}
	if n := runs(t, log); n != 1 {
		t.Fatalf("nixos-generate-config ran %d times, want 1", n)
	}
	conf, err := os.ReadFile(filepath.Join(root, "etc", "nixos", "configuration.nix"))
	if err != nil || !strings.Contains(string(conf), "./"+nixosgen.NetworkFile) {
		t.Fatalf("configuration.nix = %q, %v", conf, err)
	}

	again, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed() {
		t.Fatalf("second check plans changes:\n%s", moduletest.FormatPlan(again))
	}
	if n := runs(t, log); n != 1 {
		t.Fatalf("the second check ran nixos-generate-config (%d runs)", n)
	}

	requireNix(t)
	in := evaluate(t, root)
	if reasons := nixeval.Bootable(kimsufiServer(), in, grubRecord(in)); len(reasons) > 0 {
		t.Fatalf("the installed configuration would not come back:\n%s", strings.Join(reasons, "\n"))
	}
}

// An edited file is put back, and --diff shows the edit against what the
// host holds.
func TestDriftIsShownAndRepaired(t *testing.T) {
	withGenerator(t)
	root := t.TempDir()
	ctx := context.Background()
	h := localHost(t)
	m := moduletest.New(t, Spec, localArgs(root))
	plan, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, h, plan); err != nil {
		t.Fatal(err)
	}
	network := filepath.Join(root, "etc", "nixos", nixosgen.NetworkFile)
	want, _ := os.ReadFile(network)
	edited := strings.Replace(string(want), `prefixLength = 24;`, `prefixLength = 25;`, 1)
	if err := os.WriteFile(network, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}

	plan, err = m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 1 || !strings.HasPrefix(plan.Changes[0].Summary, "update "+network) ||
		plan.Changes[0].Before != edited || plan.Changes[0].After != string(want) {
		t.Fatalf("plan = %s", moduletest.FormatPlan(plan))
	}
	if _, err := m.Apply(ctx, h, plan); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(network); string(got) != string(want) {
		t.Fatalf("after apply:\n%s", got)
	}
}

// By default nothing is written into a root where nothing is mounted: the
// configuration would describe the rescue system's tmpfs.
func TestApplyRefusesUnmountedRoot(t *testing.T) {
	log := withGenerator(t)
	root := t.TempDir()
	ctx := context.Background()
	h := localHost(t)
	args := strings.Replace(localArgs(root), "require_mount: false\n", "", 1)
	m := moduletest.New(t, Spec, args)
	plan, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatalf("check must plan even before the layout is mounted (a dry run): %v", err)
	}
	if !strings.Contains(plan.Message, "nothing is mounted at "+root) {
		t.Errorf("message = %q", plan.Message)
	}
	_, err = m.Apply(ctx, h, plan)
	if err == nil || !strings.Contains(err.Error(), "nothing is mounted at "+root) {
		t.Fatalf("apply: err = %v", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) > 0 || runs(t, log) > 0 {
		t.Fatalf("apply wrote into the unmounted root: %v", entries)
	}
}

// A syntax error in extra fails the check, with the parser's message and
// the file's name on the target.
func TestParseCheckRefusesBadExtra(t *testing.T) {
	requireNix(t)
	root := t.TempDir()
	h := localHost(t)
	m := moduletest.New(t, Spec, localArgs(root)+"extra: 'services.nginx.enable = true'\n")
	_, err := m.Check(context.Background(), h.ReadOnly())
	if err == nil {
		t.Fatal("check accepted a configuration Nix cannot parse")
	}
	for _, want := range []string{"nix-instantiate --parse " + root + "/etc/nixos/configuration.nix", "syntax error", root + "/etc/nixos/configuration.nix:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}

	// Setting an option the module writes is a duplicate attribute.
	m = moduletest.New(t, Spec, localArgs(root)+"extra: 'networking.hostName = \"other\";'\n")
	if _, err := m.Check(context.Background(), h.ReadOnly()); err == nil || !strings.Contains(err.Error(), "already defined") {
		t.Fatalf("err = %v, want Nix's duplicate attribute error", err)
	}
}

// A missing nixos-generate-config says where the task should run.
func TestMissingGenerator(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	if _, err := exec.LookPath("nixos-generate-config"); err == nil {
		t.Skip("this machine has a real nixos-generate-config")
	}
	root := t.TempDir()
	h := localHost(t)
	m := moduletest.New(t, Spec, localArgs(root))
	plan, err := m.Check(context.Background(), h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Apply(context.Background(), h, plan)
	if err == nil || !strings.Contains(err.Error(), "not on the host's PATH") {
		t.Fatalf("err = %v", err)
	}
}

// With the task's chroot:, the module runs inside the unpacked system, as
// the 2015 rescue path does: root is a path inside the chroot, and probes,
// the generator and the files all stay inside it.
func TestInsideChroot(t *testing.T) {
	heavytest.Root(t, "chroot")
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox-static not installed (make deps installs it)")
	}
	chroot := t.TempDir()
	for _, d := range []string{"bin", "etc", "mnt", "proc"} {
		if err := os.MkdirAll(filepath.Join(chroot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(chroot, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "cat", "test", "stat", "mkdir", "printf", "echo", "chmod", "mv", "rm"} {
		if err := os.Symlink("busybox", filepath.Join(chroot, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	generator := strings.Replace(fakeGenerator, `echo run >>"$GENERATOR_LOG"`, `echo run >>/generator.log`, 1)
	if err := os.WriteFile(filepath.Join(chroot, "bin", "nixos-generate-config"), []byte(generator), 0o755); err != nil {
		t.Fatal(err)
	}
	// The chroot module leaves /proc mounted inside; a file stands in for
	// its mounts, with the new system at /mnt.
	if err := os.MkdirAll(filepath.Join(chroot, "proc", "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(chroot, "proc", "self", "mounts"), []byte("/dev/sda1 /mnt ext4 rw 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(chroot, transport.ChrootEnvFile), []byte("export PATH=/bin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The device the generator names for /; the chroot module binds /dev.
	label := filepath.Join(chroot, "dev", "disk", "by-label", "nixos")
	if err := os.MkdirAll(filepath.Dir(label), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(label, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	h := localHost(t)
	h.Conn = transport.Chroot(&local.Conn{}, chroot)
	ctx := context.Background()
	m := moduletest.New(t, Spec, "root: /mnt\nssh_keys: [\""+adminKey+"\"]\nipv6: none\n")
	plan, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if cmds := plan.Commands(); !slices.Equal(cmds, []string{"udevadm settle --timeout=10", "nixos-generate-config --root /mnt"}) {
		t.Fatalf("commands = %q", cmds)
	}
	if _, err := m.Apply(ctx, h, plan); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hardware-configuration.nix", "configuration.nix", nixosgen.NetworkFile} {
		if _, err := os.Stat(filepath.Join(chroot, "mnt", "etc", "nixos", name)); err != nil {
			t.Errorf("%s is not inside the chroot: %v", name, err)
		}
	}
	if again, err := m.Check(ctx, h.ReadOnly()); err != nil || again.Changed() {
		t.Fatalf("second check: %v, %s", err, moduletest.FormatPlan(again))
	}

	// A new file system (mkfs again) leaves the old device name dangling:
	// the hardware configuration is stale and generated again.
	if err := os.Remove(label); err != nil {
		t.Fatal(err)
	}
	stale, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if cmds := stale.Commands(); len(cmds) != 2 || cmds[1] != "nixos-generate-config --root /mnt" || !strings.Contains(stale.Changes[0].Summary, "stale: /dev/disk/by-label/nixos no longer exists") {
		t.Fatalf("plan after the device went away:\n%s", moduletest.FormatPlan(stale))
	}
}

var _ modules.Module = (*module)(nil)

// What `nixbook doc` shows is complete, and the example builds.
func TestSpecDocumentsItself(t *testing.T) {
	for _, d := range Spec.Doc() {
		if d.Type == "" || d.Doc == "" {
			t.Errorf("argument %s lacks a type or a description: %+v", d.Name, d)
		}
	}
	var tasks []map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(Spec.Example), &tasks); err != nil || len(tasks) == 0 {
		t.Fatalf("example: %v", err)
	}
	for _, task := range tasks {
		node := task[Spec.Name]
		b, err := yaml.Marshal(&node)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Spec.New(moduletest.Decoder(string(b))); err != nil {
			t.Errorf("example: %v", err)
		}
	}
}

// A login key missing from ssh_keys is pointed out: nixbook could not get
// back in to check the installed system.
func TestNotesMissingLoginKey(t *testing.T) {
	other := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtZ5sTQzRGoWQ0L6ty+pEwzTsYjJBy4sH3X6Mj8xv6y other@example.org"
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(other)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		login string
		note  bool
	}{{login: other, note: true}, {login: adminKey + "-with-another-comment"}, {login: ""}} {
		h := localHost(t)
		if tt.login != "" {
			h.VarsMap = map[string]any{"rescue_ssh_key": tt.login}
		}
		p, err := moduletest.NewFor(t, Spec, localArgs(t.TempDir()), h.VarsMap).Check(context.Background(), h.ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(p.Message, "nixbook logs in with"); got != tt.note {
			t.Errorf("login key %q: message = %q", tt.login, p.Message)
		}
	}
}
