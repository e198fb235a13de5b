package sim

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim/internal/hostnet"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "8GiB", want: 8 << 30},
		{in: "8G", want: 8 << 30},
		{in: "512MiB", want: 512 << 20},
		{in: "1.5 GiB", want: 3 << 29},
		{in: "4096", want: 4096},
		{in: "2T", want: 2 << 40},
		{in: "", wantErr: true},
		{in: "-1G", wantErr: true},
		{in: "lots", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestOverrides(t *testing.T) {
	p, err := hostnet.NewPlan("/tmp/x", netip.MustParsePrefix(DefaultSubnet), netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, specs []HostSpec)
		wantErr string
	}{
		{
			name: "defaults",
			yaml: "{}",
			check: func(t *testing.T, s []HostSpec) {
				if s[0].NIC != "eth0" || len(s[0].Disks) != 1 || s[0].Disks[0] != (DiskSpec{SATA, 8 << 30}) || s[0].Mode != ModeRescue || s[1].BootDelay != time.Second {
					t.Errorf("%+v", s[0])
				}
			},
		},
		{
			name: "all and one host",
			yaml: "all: {disk_size: 16GiB}\nhosts:\n  ks2: {disk_count: 2, disk_kind: nvme, nic: enp3s0, mac: '00:25:90:AA:BB:CC', ramdisk: 2GiB, boot_delay: 5s, mode: disk, data: old-os, faults: [never-returns]}\n",
			check: func(t *testing.T, s []HostSpec) {
				if s[0].Disks[0].Size != 16<<30 || len(s[0].Disks) != 1 {
					t.Errorf("ks1 %+v", s[0])
				}
				k := s[1]
				if len(k.Disks) != 2 || k.Disks[1] != (DiskSpec{NVMe, 16 << 30}) || k.NIC != "enp3s0" || k.predictedName() != "enp3s0" ||
					k.MAC != "00:25:90:aa:bb:cc" || k.RAMDiskMiB != 2048 || k.BootDelay != 5*time.Second || k.Mode != ModeDisk ||
					k.Data != "old-os" || len(k.Faults) != 1 {
					t.Errorf("ks2 %+v", k)
				}
			},
		},
		{
			name: "disk list",
			yaml: "hosts:\n  ks1:\n    disks: [{kind: sata, size: 1GiB}, {kind: nvme}]\n",
			check: func(t *testing.T, s []HostSpec) {
				if len(s[0].Disks) != 2 || s[0].Disks[0] != (DiskSpec{SATA, 1 << 30}) || s[0].Disks[1] != (DiskSpec{NVMe, DefaultDiskSize}) {
					t.Errorf("%+v", s[0].Disks)
				}
			},
		},
		{
			name: "firmware",
			yaml: "hosts:\n  ks2: {firmware: uefi}\n",
			check: func(t *testing.T, s []HostSpec) {
				if s[0].Firmware != FirmwareBIOS || s[0].UEFI() || s[1].Firmware != FirmwareUEFI || !s[1].UEFI() {
					t.Errorf("ks1 %q, ks2 %q", s[0].Firmware, s[1].Firmware)
				}
			},
		},
		{name: "bad firmware", yaml: "all: {firmware: efi}", wantErr: `firmware "efi": want bios or uefi`},
		{
			name: "a disk lost after the install",
			yaml: "hosts:\n  ks1: {disks: [{kind: nvme}, {kind: nvme}], lose_disk: nvme1n1}\n",
			check: func(t *testing.T, s []HostSpec) {
				if s[0].LoseDisk != "nvme1n1" || s[1].LoseDisk != "" {
					t.Errorf("%+v", s)
				}
			},
		},
		{
			name: "a RAID controller",
			yaml: "hosts:\n  ks2: {disk_controller: megaraid_sas}\n",
			check: func(t *testing.T, s []HostSpec) {
				if s[0].DiskController != "" || s[1].DiskController != "megaraid_sas" {
					t.Errorf("%+v", s)
				}
			},
		},
		{name: "an unknown controller", yaml: "all: {disk_controller: raid}", wantErr: `disk_controller "raid": want ahci, megaraid_sas or mpt3sas`},
		{name: "lose a disk the host lacks", yaml: "hosts: {ks1: {lose_disk: sdb}}", wantErr: `lose_disk "sdb": the host's disks are sda`},
		{name: "unknown host", yaml: "hosts: {ks9: {nic: eth1}}", wantErr: `overrides name host "ks9"`},
		{name: "unknown key", yaml: "hosts: {ks1: {nics: eth1}}", wantErr: "field nics not found"},
		{name: "bad nic", yaml: "hosts: {ks1: {nic: 'eth 0'}}", wantErr: "not an interface name"},
		{name: "bad kind", yaml: "all: {disk_kind: scsi}", wantErr: `disk kind "scsi"`},
		{name: "bad fault", yaml: "all: {faults: [explodes]}", wantErr: `fault "explodes"`},
		{name: "bad mode", yaml: "all: {mode: sleeping}", wantErr: "unknown boot mode"},
		{name: "no disks", yaml: "all: {disk_count: -1}", wantErr: "at least one disk"},
		{
			name: "kexec network, for all but one host",
			yaml: "all: {kexec_network: 'no-ipv6, new-dhcp-address'}\nhosts: {ks2: {kexec_network: as-rescue}}\npayload_padding: 900MiB\n",
			check: func(t *testing.T, s []HostSpec) {
				if fmt.Sprint(s[0].KexecNetwork) != "[no-ipv6 new-dhcp-address]" || len(s[1].KexecNetwork) != 0 {
					t.Errorf("kexec_network: ks1 %q, ks2 %q", s[0].KexecNetwork, s[1].KexecNetwork)
				}
			},
		},
		{name: "bad kexec network", yaml: "all: {kexec_network: 'no-ipv6,flaky'}", wantErr: `kexec_network "flaky": want new-dhcp-address, no-default-route, no-ipv6 (one or more, separated by commas) or as-rescue`},
		{name: "bad driver", yaml: "all: {nic_driver: 'e1000e; rm'}", wantErr: `nic_driver "e1000e; rm": not a kernel module name`},
		{name: "bad rescue prediction", yaml: "all: {rescue_predicted_nic: 'en p3'}", wantErr: `rescue_predicted_nic "en p3": not an interface name`},
		{name: "bad padding", yaml: "payload_padding: heaps", wantErr: `payload_padding: size "heaps"`},
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
			tt.check(t, specs)
		})
	}
}

// The new lease of kexec_network: new-dhcp-address must be free in the /24.
func TestNewDHCPAddressNeedsAFreeAddress(t *testing.T) {
	p, err := hostnet.NewPlan("/x", netip.MustParsePrefix(DefaultSubnet), netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	o := &Overrides{All: HostOverride{KexecNetwork: KexecNewDHCPAddress}}
	if _, err := hostSpecs(126, p, time.Second, o); err != nil {
		t.Errorf("126 hosts: %v", err)
	}
	if _, err := hostSpecs(127, p, time.Second, o); err == nil || !strings.Contains(err.Error(), "needs a free address for the new lease (.127), which host ks127 has") {
		t.Errorf("127 hosts: %v", err)
	}
}
