// Package nixosgentest holds what tests of NixOS configurations share: a
// server's facts in OVH's rescue, the simulated server they are for, and
// the real Nix evaluator that says whether a configuration boots there.
package nixosgentest

import (
	"context"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim/nixeval"
)

// Keys and disks of the fixtures.
const (
	AdminKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@example.org"
	SATAA    = "/dev/disk/by-id/ata-HGST_HUS724020ALA640_PN2134P5G3ABCD"
	SATAB    = "/dev/disk/by-id/ata-HGST_HUS724020ALA640_PN2134P5G3ABCE"
)

// Rescue is what facts say about a Kimsufi server in OVH's rescue: the
// kernel calls its NIC eth0, udev would call it eno1.
func Rescue() *facts.Facts {
	return &facts.Facts{
		Hostname: "rescue-customer-eu",
		OS:       facts.OSRelease{ID: "debian", VersionID: "12"},
		Firmware: "bios",
		Rescue:   true,
		Interfaces: []facts.Interface{{
			Name:          "eth0",
			MAC:           "00:25:90:AA:BB:01",
			Driver:        "e1000e",
			PredictedName: "eno1",
			NetNames:      facts.NetNames{Onboard: "eno1", Path: "enp0s25", MAC: "enx002590aabb01"},
			IPv4:          []string{"203.0.113.10/24"},
			Up:            true,
		}},
		Gateway4:          "203.0.113.254",
		Gateway4Interface: "eth0",
		Nameservers:       []string{"213.186.33.99", "127.0.0.53"},
		Disks: []facts.Disk{{
			Path:      "/dev/sda",
			SizeBytes: 2000398934016,
			ByID:      []string{SATAA, "/dev/disk/by-id/wwn-0x5000cca22de1a2b3"},
			PartTable: "dos",
			Partitions: []facts.Partition{
				{Path: "/dev/sda1", Number: 1, FSType: "ext4"},
				{Path: "/dev/sda2", Number: 2, FSType: "zfs_member"},
			},
		}},
	}
}

// KimsufiServer is the simulated server Rescue describes.
func KimsufiServer() nixeval.Host {
	return nixeval.Host{
		Name:        "ks1",
		NIC:         "eno1",
		MAC:         "00:25:90:aa:bb:01",
		IPv4CIDR:    "203.0.113.10/24",
		IPv4Gateway: "203.0.113.254",
		IPv6CIDR:    "2001:db8:1:10::1/64",
		IPv6Gateway: "2001:db8:1:ff:ff:ff:ff:ff",
		Disks:       []string{"/dev/sda"},
		DiskAliases: map[string]string{SATAA: "/dev/sda", "/dev/disk/by-id/wwn-0x5000cca22de1a2b3": "/dev/sda"},
	}
}

// GrubRecord is what nixos-install records of GRUB's devices for in.
func GrubRecord(in *nixeval.Installed) []string {
	rec := append([]string(nil), in.GrubDevices...)
	for _, mb := range in.MirroredBoots {
		rec = append(rec, mb.Devices...)
	}
	return rec
}

// Evaluate evaluates the configuration installed under root with Nix.
func Evaluate(t *testing.T, root string) *nixeval.Installed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, err := nixeval.Evaluate(ctx, root)
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	return in
}

// RequireNix makes sure the real nix-instantiate is there, installing
// Debian's nix-bin when running as root.
func RequireNix(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	heavytest.Require(t, "nix-bin, installed with apt")
	if err := nixeval.EnsureNix(ctx); err != nil {
		t.Skipf("nix-instantiate is needed (apt-get install nix-bin): %v", err)
	}
}
