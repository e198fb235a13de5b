package nixeval

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func requireNix(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := EnsureNix(ctx); err != nil {
		t.Fatalf("nix-instantiate is needed: %v", err)
	}
}

// root builds an installed root from the base configuration and a case's
// files laid over it.
func root(t *testing.T, overlay string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/ovh-zfs")); err != nil {
		t.Fatal(err)
	}
	if overlay != "" {
		src := filepath.Join("testdata", "cases", overlay, "etc", "nixos")
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "etc", "nixos", e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func ks1() Host {
	return Host{
		Name:        "ks1",
		NIC:         "enp3s0",
		MAC:         "52:54:00:12:34:56",
		IPv4CIDR:    "203.0.113.10/24",
		IPv4Gateway: "203.0.113.254",
		IPv6CIDR:    "2001:db8:1:10::1/64",
		IPv6Gateway: "2001:db8:1:ff:ff:ff:ff:ff",
		Disks:       []string{"/dev/sda", "/dev/sdb"},
		DiskAliases: map[string]string{
			"/dev/disk/by-id/ata-QEMU_HARDDISK_SIM0001": "/dev/sda",
			"/dev/disk/by-id/ata-QEMU_HARDDISK_SIM0002": "/dev/sdb",
		},
		ZFS: true,
	}
}

func TestEvaluateAndBootable(t *testing.T) {
	requireNix(t)
	byID := []string{"/dev/disk/by-id/ata-QEMU_HARDDISK_SIM0001"}
	tests := []struct {
		name    string
		overlay string
		host    func(*Host)
		record  []string
		wantErr string   // substring of the evaluation error
		want    []string // substrings, one per expected reason, in order
	}{
		{name: "OVH ZFS config from the reference template", record: byID},
		{name: "predicted NIC name with a /128 route", overlay: "predicted-nic", record: byID},
		{name: "networkd matched by MAC with GatewayOnLink", overlay: "networkd-mac", record: byID},
		{name: "NIC renamed by MAC in a udev rule", overlay: "link-rename", record: byID},
		{name: "UEFI with a removable GRUB", overlay: "uefi-removable", record: []string{"nodev"}, host: func(h *Host) { h.UEFI = true }},
		{name: "eth0 while the kernel names the NIC enp3s0", overlay: "wrong-nic", record: byID, want: []string{
			"networking.defaultGateway6.interface is \"eth0\", but the server's NIC will be named enp3s0 (its predictable name)",
			"the addresses are set on networking.interfaces.eth0, but the server's NIC will be named enp3s0",
		}},
		{name: "eth0 on a server whose NIC is named eth0 anyway", overlay: "wrong-nic", record: byID, host: func(h *Host) { h.NIC = "eth0" }},
		{name: "IPv6 gateway outside the prefix without an on-link route", overlay: "no-v6-onlink", record: byID, want: []string{
			`IPv6 gateway 2001:db8:1:ff:ff:ff:ff:ff is outside 2001:db8:1:10::1/64 and has no on-link route: set networking.defaultGateway6.interface = "eth0"`,
		}},
		{name: "the 2015 post's network settings", overlay: "seed-2015", record: byID, want: []string{
			"IPv6 gateway 2001:db8:1:ff:ff:ff:ff:ff is outside",
		}},
		{name: "wrong prefix and gateway", overlay: "wrong-prefix", record: byID, want: []string{
			"IPv4 address 203.0.113.10 on eth0 has prefixLength 32, but the network is /24",
			"IPv4 default gateway 203.0.113.1 (networking.defaultGateway) is not this network's gateway 203.0.113.254",
		}},
		{name: "networkd unit without networkd", overlay: "networkd-off", record: byID, want: []string{
			"systemd.network.networks.10-uplink would configure enp3s0, but systemd.network.enable is not true",
		}},
		{name: "no sshd", overlay: "no-sshd", record: byID, want: []string{
			"services.openssh.enable is not true",
		}},
		{name: "no root key", overlay: "no-root-key", record: byID, want: []string{
			"users.users.root.openssh.authorizedKeys.keys is empty",
		}},
		{name: "firewall closes ssh", overlay: "firewall-closed", record: byID, want: []string{
			"the firewall blocks port 22",
		}},
		{name: "GRUB on a disk the server does not have", overlay: "grub-missing-disk", record: []string{"/dev/sdc"}, want: []string{
			"GRUB was installed on /dev/sdc, none of which is a disk of this server (/dev/sda, /dev/sdb)",
		}},
		{name: "nothing recorded by nixos-install", record: nil, want: []string{
			"no boot loader was installed",
		}},
		{name: "EFI-only GRUB on a BIOS server", overlay: "uefi-removable", record: []string{"nodev"}, want: []string{
			"GRUB was installed for EFI only",
		}},
		{name: "BIOS-only GRUB on a UEFI server", record: byID, host: func(h *Host) { h.UEFI = true }, want: []string{
			"GRUB was installed for legacy BIOS only (boot.loader.grub.efiSupport is not true), but this server boots in UEFI mode",
		}},
		{name: "ZFS without hostId", overlay: "zfs-no-hostid", record: byID, want: []string{
			"ZFS is used but networking.hostId is not set",
		}},
		{name: "a RAID controller the initrd lacks", record: byID, host: func(h *Host) { h.Controllers = []string{"ahci", "megaraid_sas"} }, want: []string{
			"the initrd has no driver for the disks' controller (megaraid_sas): stage 1 never finds the root file system",
		}},
		{name: "a RAID controller in availableKernelModules", overlay: "megaraid", record: byID, host: func(h *Host) { h.Controllers = []string{"megaraid_sas"} }},
		{name: "NVMe in NixOS's default initrd", record: byID, host: func(h *Host) { h.Controllers = []string{"nvme"} }},
		{name: "SATA without the default modules nor ahci", overlay: "no-default-modules", record: byID, host: func(h *Host) { h.Controllers = []string{"ahci"} }, want: []string{
			"the initrd has no driver for the disks' controller (ahci)",
		}},
		{name: "syntax error", overlay: "syntax-error", wantErr: "syntax error, unexpected '=', expecting ';' at /etc/nixos/configuration.nix:19:21"},
		{name: "an option the stubs do not have", overlay: "missing-attribute", wantErr: "attribute 'package' missing at /etc/nixos/configuration.nix:17:"},
		{name: "conflicting definitions", overlay: "conflict", wantErr: "The option `networking.hostName' has conflicting definition values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dir := root(t, tt.overlay)
			in, err := Evaluate(ctx, dir)
			if tt.wantErr != "" {
				var evalErr *EvalError
				if !errors.As(err, &evalErr) {
					t.Fatalf("Evaluate() error = %v, want an *EvalError", err)
				}
				t.Logf("error: %v", err)
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Evaluate() error = %q, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), dir) {
					t.Errorf("error %q shows the controller's path %s", err, dir)
				}
				return
			}
			if err != nil {
				t.Fatalf("Evaluate() error = %v", err)
			}
			h := ks1()
			if tt.host != nil {
				tt.host(&h)
			}
			got := Bootable(h, in, tt.record)
			if len(got) != len(tt.want) {
				t.Fatalf("Bootable() = %q, want %d reasons like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("reason %d = %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestEvaluateGolden pins what the reference configuration evaluates to.
func TestEvaluateGolden(t *testing.T) {
	requireNix(t)
	in, err := Evaluate(context.Background(), root(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	// The stubbed package paths and defaults are part of the golden Raw.
	got, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "ovh-zfs.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if strings.TrimSpace(string(got)) != strings.TrimSpace(string(want)) {
		t.Errorf("Evaluate() differs from %s (run with -update after checking the change):\n%s", golden, got)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"hostname", in.Hostname, "ks1"},
		{"hostId", in.HostID, "8425e349"},
		{"predictable names", in.UsePredictableNames, false},
		{"gateway", in.DefaultGateway, "203.0.113.254"},
		{"gateway6 interface", in.DefaultGateway6Interface, "eth0"},
		{"sshd", in.SSHD, true},
		{"zfs", in.ZFS, true},
		{"grub", strings.Join(in.GrubDevices, ","), "/dev/disk/by-id/ata-QEMU_HARDDISK_SIM0001"},
		{"eth0 v4", in.Interfaces["eth0"].IPv4[0], Address{"203.0.113.10", 24}},
		{"state version", in.StateVersion, "24.05"},
		// mkDefault config.hardware.enableRedistributableFirmware, which the
		// imported not-detected.nix sets: the fixed point works.
		{"microcode", value{in.Raw}.bool("hardware", "cpu", "intel", "updateMicrocode"), true},
		{"mkIf on config", value{in.Raw}.bool("services", "zfs", "autoScrub", "enable"), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestPropertiesMergeLikeTheModuleSystem(t *testing.T) {
	requireNix(t)
	dir := t.TempDir()
	files := map[string]string{
		"configuration.nix": `{ config, lib, pkgs, ... }: {
  imports = [ ./a.nix (import ./b.nix "from-b") { networking.nameservers = lib.mkBefore [ "first" ]; } ];
  networking.hostName = lib.mkDefault "default-name";
  networking.nameservers = [ "main" ];
  services.openssh.enable = lib.mkForce false;
  boot.loader.grub.devices = lib.mkMerge [ [ "/dev/sda" ] (lib.mkIf (config.networking.hostName == "from-a") [ "/dev/sdb" ]) (lib.mkIf false [ "/dev/sdc" ]) ];
  users.users.root.openssh.authorizedKeys.keys = lib.optionals config.services.openssh.enable [ "never" ];
}`,
		"a.nix": `{ lib, ... }: { networking.hostName = "from-a"; services.openssh.enable = true; networking.nameservers = lib.mkAfter [ "last" ]; }`,
		"b.nix": `tag: { config, ... }: { config = { networking.domain = tag; }; }`,
	}
	nixos := filepath.Join(dir, "etc", "nixos")
	if err := os.MkdirAll(nixos, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(nixos, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in, err := Evaluate(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	v := value{in.Raw}
	checks := []struct {
		name      string
		got, want any
	}{
		{"plain beats mkDefault", in.Hostname, "from-a"},
		{"mkForce beats plain", in.SSHD, false},
		{"mkBefore and mkAfter order lists", strings.Join(in.Nameservers, ","), "first,main,last"},
		{"mkMerge with mkIf on config", strings.Join(in.GrubDevices, ","), "/dev/sda,/dev/sdb"},
		{"optionals on config", len(in.RootKeys), 0},
		{"structured module with config", v.str("networking", "domain"), "from-b"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}
