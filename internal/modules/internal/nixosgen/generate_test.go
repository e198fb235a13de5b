package nixosgen

import (
	"context"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

func sataRescue() *facts.Facts {
	f := withIPv6(withSecondDisk(rescue()))
	f.Arch = "x86_64"
	for i := range f.Disks {
		f.Disks[i].Transport = "sata"
	}
	return f
}

func generateCases() []struct {
	name string
	host Host
} {
	keys := []any{adminKey}
	return []struct {
		name string
		host Host
	}{
		{
			name: "bios-zfs-two-disks",
			host: Host{Name: "ks1", Facts: sataRescue(), Layout: LayoutZFS, Vars: map[string]any{
				"ssh_keys": keys, "disks": []any{"/dev/sda", "/dev/sdb"},
				"ipv6": "2001:db8:1:10::1/64", "ipv6_gateway": "2001:db8:1:ff:ff:ff:ff:ff", "state_version": "26.05",
			}},
		},
		{
			name: "uefi-ext4-mirrored",
			host: Host{Name: "eg1", Facts: installerNVMe(2), Layout: LayoutExt4, Vars: map[string]any{
				"ssh_keys": keys, "disks": []any{"/dev/nvme0n1", "/dev/nvme1n1"}, "nic_naming": "predictable",
			}},
		},
		{
			name: "unknown-layout",
			host: Host{Name: "ks2", Facts: rescue(), Vars: map[string]any{"ssh_keys": keys, "nic_naming": "eth0"}},
		},
	}
}

func TestGenerateGolden(t *testing.T) {
	for _, c := range generateCases() {
		t.Run(c.name, func(t *testing.T) {
			files, notes, err := GenerateHost(context.Background(), c.host)
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			if len(files) != 3 {
				t.Fatalf("files: got %d, want 3", len(files))
			}
			dir := filepath.Join("testdata", "generate", c.name)
			for _, f := range files {
				moduletest.Golden(t, filepath.Join(dir, f.Name), string(f.Content), *update)
			}
			if c.host.Layout == "" && !strings.Contains(strings.Join(notes, "\n"), "no fs_layout") {
				t.Errorf("notes %q: want one about the unknown layout", notes)
			}
		})
	}
}

func TestGenerateRefuses(t *testing.T) {
	keys := []any{adminKey}
	for _, c := range []struct {
		name string
		host Host
		want string
	}{
		{"no key", Host{Name: "ks1", Facts: rescue()}, "ssh_keys"},
		{"unknown layout", Host{Name: "ks1", Facts: rescue(), Layout: "btrfs", Vars: map[string]any{"ssh_keys": keys}}, `fs_layout "btrfs"`},
		{"unknown variable", Host{Name: "ks1", Facts: rescue(), Vars: map[string]any{"ssh_keys": keys, "ipv5": "x"}}, "ipv5"},
		{"disk the host lacks", Host{Name: "ks1", Facts: rescue(), Vars: map[string]any{"ssh_keys": keys, "disks": []any{"/dev/sdz"}}}, "no disk /dev/sdz"},
		{"no firmware", Host{Name: "ks1", Facts: &facts.Facts{}, Vars: map[string]any{"ssh_keys": keys}}, "firmware"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := GenerateHost(context.Background(), c.host)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %q", err, c.want)
			}
		})
	}
}

// The generated folders parse with the real nix-instantiate.
func TestGenerateGoldenParses(t *testing.T) {
	requireNix(t)
	files, err := filepath.Glob(filepath.Join("testdata", "generate", "*", "*.nix"))
	if err != nil || len(files) != 3*len(generateCases()) {
		t.Fatalf("golden files: %v, %v (run TestGenerateGolden with -update)", files, err)
	}
	for _, f := range files {
		if out, err := exec.Command("nix-instantiate", "--parse", f).CombinedOutput(); err != nil {
			t.Errorf("nix-instantiate --parse %s: %v\n%s", f, err, out)
		}
	}
}

func TestTransportOf(t *testing.T) {
	for _, c := range []struct{ dev, want string }{
		{"/dev/vda", "virtio"},
		{"/dev/nvme0n1", "nvme"},
		{"/dev/sda", ""},
	} {
		if got := transportOf(c.dev); got != c.want {
			t.Errorf("transportOf(%s) = %q, want %q", c.dev, got, c.want)
		}
	}
}

// The variables nixos_config's arguments come from, as `nixbook generate`
// and install read them; each argument is one Args accepts.
func TestInventoryArgs(t *testing.T) {
	want := []InventoryArg{
		{"ssh_keys", []string{"ssh_keys", "rescue_ssh_key"}},
		{"ipv4", []string{"ipv4"}},
		{"ipv6", []string{"ipv6"}},
		{"ipv6_gateway", []string{"ipv6_gateway"}},
		{"nic_naming", []string{"nic_naming"}},
		{"disks", []string{"disks"}},
		{"state_version", []string{"state_version", "nixos_release"}},
	}
	if got := InventoryArgs(); !reflect.DeepEqual(got, want) {
		t.Errorf("InventoryArgs() = %v, want %v", got, want)
	}
	names := map[string]bool{}
	for _, a := range modules.Schema(reflect.TypeFor[Args]()) {
		names[a.Name] = true
	}
	args := InventoryVars{SSHKeys: "k", Disks: []any{"/dev/sda"}}.Args()
	for _, a := range want {
		if !names[a.Arg] {
			t.Errorf("%s is no nixos_config argument", a.Arg)
		}
		if _, ok := args[a.Arg]; !ok || len(args) != len(want) {
			t.Errorf("Args() = %v, lacks %s", args, a.Arg)
		}
	}
	if args["ssh_keys"] != "k" || args["ipv4"] != nil {
		t.Errorf("Args() = %v", args)
	}
}

// A virtio disk's controller is virtio-pci in sysfs and virtio_pci as a
// module, which the transport brings and NixOS's initrd has: it is listed
// once, under its module name, and not called out as a controller.
func TestVirtioDiskDriver(t *testing.T) {
	f := rescue()
	f.Disks[0].Path, f.Disks[0].ByID = "/dev/vda", []string{"/dev/disk/by-id/virtio-disk0"}
	f.Disks[0].Driver = "virtio-pci"
	files, _, err := GenerateHost(context.Background(), Host{Name: "vm1", Facts: f, Layout: LayoutExt4, Vars: map[string]any{
		"ssh_keys": []any{adminKey}, "disks": []any{"/dev/vda"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		text := string(file.Content)
		if strings.Contains(text, "virtio-pci") || strings.Contains(text, "controller needs") {
			t.Errorf("%s names virtio-pci or a controller:\n%s", file.Name, text)
		}
		if file.Name == HardwareFile && strings.Count(text, `"virtio_pci"`) != 1 {
			t.Errorf("%s lists virtio_pci other than once:\n%s", file.Name, text)
		}
	}
}
