package sim

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim/internal/hostnet"
)

func TestVMOverrides(t *testing.T) {
	p, err := hostnet.NewPlan("/tmp/x", netip.MustParsePrefix(DefaultSubnet), netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		yaml     string
		wantErr  string
		wantDisk int
		wantMiB  int
	}{
		{name: "a vm with the defaults", yaml: "hosts: {ks1: {kind: vm}}", wantDisk: 1, wantMiB: 2048},
		{name: "two disks and more RAM", yaml: "hosts: {ks1: {kind: vm, disk_count: 2, disk_size: 4GiB, ram: 3GiB}}", wantDisk: 2, wantMiB: 3072},
		{name: "every host a vm", yaml: "all: {kind: vm}", wantDisk: 1, wantMiB: 2048},
		{name: "unknown kind", yaml: "hosts: {ks1: {kind: kvm}}", wantErr: `overrides for ks1: kind "kvm": want vm`},
		{name: "three disks", yaml: "hosts: {ks1: {kind: vm, disk_count: 3}}", wantErr: "overrides for ks1: kind vm: 3 disks, want one or two"},
		{name: "a NIC name", yaml: "hosts: {ks1: {kind: vm, nic: enp3s0}}", wantErr: "the NIC is the guest's eth0"},
		{name: "an old OS", yaml: "hosts: {ks1: {kind: vm, data: old-os}}", wantErr: `data "old-os" is not available on a vm host`},
		{name: "moving disk names", yaml: "hosts: {ks1: {kind: vm, reorder_disks: true}}", wantErr: "reorder_disks is not available"},
		{name: "the installer first", yaml: "hosts: {ks1: {kind: vm, mode: installer}}", wantErr: "mode installer: a vm host starts in rescue, disk or off"},
		{name: "faults", yaml: "hosts: {ks1: {kind: vm, faults: [never-returns]}}", wantErr: "faults are not available on a vm host"},
		{name: "UEFI", yaml: "hosts: {ks1: {kind: vm, firmware: uefi}}", wantDisk: 1, wantMiB: 2048},
		{name: "a disk that dies", yaml: "hosts: {ks1: {kind: vm, disk_count: 2, lose_disk: vdb}}", wantDisk: 2, wantMiB: 2048},
		{name: "a disk that dies, by a SATA name", yaml: "hosts: {ks1: {kind: vm, disk_count: 2, lose_disk: sdb}}", wantErr: `lose_disk "sdb": the host's disks are vda, vdb`},
		{name: "a RAID controller", yaml: "hosts: {ks1: {kind: vm, disk_controller: megaraid_sas}}", wantErr: "a vm host's disks are virtio disks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hosts.yml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			o, err := LoadOverrides(path)
			var specs []HostSpec
			if err == nil {
				specs, err = hostSpecs(2, p, time.Second, o)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := specs[0]
			if s.Kind != KindVM || len(s.Disks) != tt.wantDisk || s.MemoryMiB != tt.wantMiB {
				t.Fatalf("spec %+v", s)
			}
			for _, d := range s.Disks {
				if d.Kind != Virtio {
					t.Errorf("disk kind %s, want virtio", d.Kind)
				}
			}
		})
	}
}
