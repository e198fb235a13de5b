package nixosgen

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/sim/nixeval"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func decodeArgs(t *testing.T, text string) Args {
	t.Helper()
	a, err := newArgs(text)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return a
}

// newArgs decodes and checks arguments as the nixos_config module does.
func newArgs(text string) (Args, error) {
	var a Args
	if err := modkit.Decode(moduletest.Decoder(text), &a); err != nil {
		return a, err
	}
	return a, Validate(&a)
}

// renderFor resolves and renders a case as Check does.
func renderFor(t *testing.T, c renderCase) (conf, network string, sys *system) {
	t.Helper()
	a := decodeArgs(t, c.args)
	mounts, rootMounted := layoutMounts(c.mounts, a.Root)
	sys, err := resolve(a, inputs{name: c.server.Name, facts: c.facts, mounts: mounts, rootMounted: rootMounted})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	return renderConfiguration(sys), renderNetwork(sys), sys
}

func TestRenderGolden(t *testing.T) {
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			conf, network, _ := renderFor(t, c)
			dir := filepath.Join("testdata", "golden", c.name)
			moduletest.Golden(t, filepath.Join(dir, "configuration.nix"), conf, *update)
			moduletest.Golden(t, filepath.Join(dir, NetworkFile), network, *update)
		})
	}
}

// Every golden file is valid Nix for the real parser.
func TestGoldenFilesParse(t *testing.T) {
	requireNix(t)
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*", "*.nix"))
	if err != nil || len(files) < 2*len(renderCases()) {
		t.Fatalf("golden files: %v, %v (run TestRenderGolden with -update)", files, err)
	}
	for _, f := range files {
		out, err := exec.Command("nix-instantiate", "--parse", f).CombinedOutput()
		if err != nil {
			t.Errorf("nix-instantiate --parse %s: %v\n%s", f, err, out)
		}
	}
}

// installRoot lays out an installed /etc/nixos: the rendered files, the
// hardware configuration nixos-generate-config would have written and any
// imported files.
func installRoot(t *testing.T, c renderCase, conf, network string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "etc", "nixos")
	hw, err := os.ReadFile(filepath.Join("testdata", "hardware", c.hardware))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"configuration.nix":          conf,
		NetworkFile:                  network,
		"hardware-configuration.nix": string(hw),
	}
	for name, text := range c.extraFile {
		files[name] = text
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// grubRecord is what nixos-install records of GRUB's targets: the
// configured devices, mirrored boots' included.
// The strongest check: the real Nix evaluator merges each configuration
// with its hardware configuration, and the simulated server it was made
// for would come back on the network and accept root's key.
func TestGoldenConfigurationsBoot(t *testing.T) {
	requireNix(t)
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			conf, network, sys := renderFor(t, c)
			in := evaluate(t, installRoot(t, c, conf, network))
			if reasons := nixeval.Bootable(c.server, in, grubRecord(in)); len(reasons) > 0 {
				t.Fatalf("the server would not come back:\n%s", strings.Join(reasons, "\n"))
			}
			if in.Hostname != sys.hostName || in.HostID != sys.hostID {
				t.Errorf("hostName, hostId = %q, %q; want %q, %q", in.Hostname, in.HostID, sys.hostName, sys.hostID)
			}
			if len(in.RootKeys) != len(sys.sshKeys) {
				t.Fatalf("root keys = %q, want %q", in.RootKeys, sys.sshKeys)
			}
			for i, k := range sys.sshKeys {
				if in.RootKeys[i] != k {
					t.Errorf("root key %d = %q, want %q (quoting lost something)", i, in.RootKeys[i], k)
				}
			}
			if in.StateVersion != "26.05" {
				t.Errorf("stateVersion = %q", in.StateVersion)
			}
			if in.Firewall && in.PermitRootLogin != "prohibit-password" {
				t.Errorf("PermitRootLogin = %q", in.PermitRootLogin)
			}
		})
	}
}

// evaluateCase renders the named case, installs it with its hardware
// configuration and evaluates it with Nix.
func evaluateCase(t *testing.T, name string) (renderCase, *nixeval.Installed) {
	t.Helper()
	for _, c := range renderCases() {
		if c.name == name {
			conf, network, _ := renderFor(t, c)
			return c, evaluate(t, installRoot(t, c, conf, network))
		}
	}
	t.Fatalf("no render case %q", name)
	return renderCase{}, nil
}

// The extra text and the imports reach the evaluated system as written.
func TestExtraAndImportsEvaluate(t *testing.T) {
	requireNix(t)
	_, in := evaluateCase(t, "quoting-imports-extra")
	raw, _ := json.Marshal(in.Raw["environment"])
	if !strings.Contains(string(raw), `Welcome to ${config.networking.hostName}`) {
		t.Errorf("extra's motd did not survive: %s", raw)
	}
	if got := in.Raw["time"].(map[string]any)["timeZone"]; got != "Europe/Paris" {
		t.Errorf("timeZone = %v", got)
	}
	if len(in.AllowedTCPPorts) != 2 {
		t.Errorf("allowedTCPPorts from ./local.nix = %v", in.AllowedTCPPorts)
	}
	if in.Raw["networking"].(map[string]any)["domain"] != "ip-203-0-113.eu" || in.Hostname != "ns1234" {
		t.Errorf("hostName, domain = %q, %v", in.Hostname, in.Raw["networking"].(map[string]any)["domain"])
	}
}

// A name predicted in rescue that the installed kernel does not use is
// exactly the lock-out nic_naming: mac avoids: the same server, rendered
// three ways, checked against its real name.
func TestWrongNICIsCaught(t *testing.T) {
	requireNix(t)
	server := kimsufiServer()
	server.NIC = "enp3s0" // the rescue predicted eno1, as in nixos-install-scripts#14
	tests := []struct {
		naming string
		reason string // "" means it boots
	}{
		{naming: "predictable", reason: "the server's NIC will be named enp3s0"},
		{naming: "mac"},
		{naming: "eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.naming, func(t *testing.T) {
			c := renderCase{
				name:     tt.naming,
				args:     "nic_naming: " + tt.naming + "\nssh_keys: [\"" + adminKey + "\"]\n",
				facts:    withIPv6(rescue()),
				mounts:   ext4Mounts,
				hardware: "ext4.nix",
				server:   server,
			}
			conf, network, _ := renderFor(t, c)
			in := evaluate(t, installRoot(t, c, conf, network))
			reasons := strings.Join(nixeval.Bootable(server, in, grubRecord(in)), "\n")
			switch {
			case tt.reason == "" && reasons != "":
				t.Fatalf("it would not come back:\n%s", reasons)
			case tt.reason != "" && !strings.Contains(reasons, tt.reason):
				t.Fatalf("reasons = %q, want one saying %q", reasons, tt.reason)
			}
		})
	}
}

// nixString must round-trip anything through the real parser.
func TestNixStringRoundTrips(t *testing.T) {
	requireNix(t)
	values := []string{
		``, `plain`, `"quoted"`, `back\slash`, `${HOME}`, `$${x}`, `\${x}`, `$`, `end$`,
		"new\nline\ttab\rcr", `''`, `'' ''${x}`, "ünïcödé", `a"${b}"\c`,
	}
	for _, v := range values {
		out, err := exec.Command("nix-instantiate", "--eval", "--json", "--readonly-mode", "-E", nixString(v)).Output()
		if err != nil {
			t.Errorf("%q as %s: %v", v, nixString(v), err)
			continue
		}
		var got string
		if err := json.Unmarshal(out, &got); err != nil || got != v {
			t.Errorf("%q rendered as %s reads back as %q (%v)", v, nixString(v), got, err)
		}
	}
}

func TestNixAttrAndImport(t *testing.T) {
	attrs := map[string]string{
		"eth0": "eth0", "uplink0": "uplink0", "10-uplink0": `"10-uplink0"`, "in": `"in"`, "a.b": `"a.b"`,
	}
	for in, want := range attrs {
		if got := nixAttr(in); got != want {
			t.Errorf("nixAttr(%q) = %s, want %s", in, got, want)
		}
	}
	imports := []struct{ in, want string }{
		{"./local.nix", "./local.nix"},
		{"../shared/x.nix", "../shared/x.nix"},
		{"/etc/nixos/x.nix", "/etc/nixos/x.nix"},
		{"/etc/nixos/with space.nix", `"/etc/nixos/with space.nix"`},
		{"./with space.nix", `(./. + "/./with space.nix")`},
		{"<nixpkgs/nixos/modules/profiles/minimal.nix>", "<nixpkgs/nixos/modules/profiles/minimal.nix>"},
		{"local.nix", ""},
		{"https://example.org/x.nix", ""},
	}
	for _, tt := range imports {
		got, ok := nixImport(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("nixImport(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

// Two disks, each with its /boot: whichever disk is lost, the other's GRUB
// reads the /boot beside it and the lost /boot is let go (nofail). The
// server that lost a disk has only the other's devices.
func TestMirroredBootsSurviveALostDisk(t *testing.T) {
	requireNix(t)
	c, in := evaluateCase(t, "zfs-bios-mirrored")
	if len(in.MirroredBoots) != 2 {
		t.Fatalf("mirroredBoots = %+v, want one per disk", in.MirroredBoots)
	}
	uuids := map[string]string{
		"/boot":   "/dev/disk/by-uuid/53e7efcf-73ba-4145-b503-aab590481958",
		"/boot-2": "/dev/disk/by-uuid/9b1c0f2e-5d7a-4c61-8e0b-1f2d3c4b5a69",
	}
	for lost, kept := range map[int]int{0: 1, 1: 0} {
		mb := in.MirroredBoots[kept]
		server := c.server
		// The kernel calls the disk that is left sda.
		server.Disks = []string{"/dev/sda"}
		server.DiskAliases = map[string]string{mb.Devices[0]: "/dev/sda"}
		server.Devices = present("/dev/sda", "/dev/sda1", "/dev/sda2", mb.Devices[0], uuids[mb.Path])
		if reasons := nixeval.Bootable(server, in, mb.Devices); len(reasons) > 0 {
			t.Errorf("disk %d lost: the server would not come back:\n%s", lost+1, strings.Join(reasons, "\n"))
		}
	}
	// Without nofail, the lost /boot stops the boot.
	noNofail := in.FileSystems["/boot"]
	noNofail.Options = nil
	in.FileSystems["/boot"] = noNofail
	server := c.server
	server.Devices = present("/dev/sdb", in.MirroredBoots[1].Devices[0], uuids["/boot-2"])
	reasons := strings.Join(nixeval.Bootable(server, in, in.MirroredBoots[1].Devices), "\n")
	if !strings.Contains(reasons, `fileSystems."/boot" needs /dev/disk/by-uuid/53e7efcf`) || !strings.Contains(reasons, "emergency mode") {
		t.Errorf("a /boot without nofail on a lost disk: reasons = %q", reasons)
	}
}

// present is a server's device paths, each its own device.
func present(paths ...string) map[string]string {
	out := map[string]string{}
	for i, p := range paths {
		out[p] = fmt.Sprintf("8:%d", i)
	}
	return out
}
