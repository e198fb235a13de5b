package partition

import (
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	gib     = int64(1) << 30
	sdaID   = "/dev/disk/by-id/ata-HGST_HUS726020ALA610_K5H0A1B2"
	sdbID   = "/dev/disk/by-id/ata-HGST_HUS726020ALA610_K5H0C3D4"
	nvmeID  = "/dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S675NX0R1"
	wwnSda  = "/dev/disk/by-id/wwn-0x5000cca25ed1a2b3"
	guidFS  = "0fc63daf-8483-4772-8e79-3d69d8477de4"
	oneDisk = "disks: [/dev/sda]\n"
)

func blankSda(size int64) fakeDisk {
	return fakeDisk{path: "/dev/sda", bytes: size, byID: []string{sdaID, wwnSda}}
}

func blankSdb(size int64) fakeDisk {
	return fakeDisk{path: "/dev/sdb", bytes: size, byID: []string{sdbID}}
}

// oldOS is a disk as a server sold with Debian has it.
func oldOS() fakeDisk {
	d := blankSda(8 * gib)
	d.pttype = "dos"
	d.parts = []fakePart{
		{n: 1, startMiB: 1, sizeMiB: 7679, ptype: "0x83", flags: "0x80", fstype: "ext4", label: "debian"},
		{n: 2, startMiB: 7680, sizeMiB: 512, ptype: "0x82", fstype: "swap", label: "swap"},
	}
	return d
}

const biosLayout = `partitions:
  - {name: bios_grub, size: 1MiB, type: bios_grub}
  - {name: nixos, size: rest, type: ext4, label: nixos, mount: /}
  - {name: swap, size: 1GiB, type: swap, label: swap}
`

// biosLayoutDone is what biosLayout leaves on an 8 GiB /dev/sda.
func biosLayoutDone(mounted bool) fakeDisk {
	d := blankSda(8 * gib)
	d.pttype = "gpt"
	d.parts = []fakePart{
		{n: 1, startMiB: 1, sizeMiB: 1, name: "bios_grub", ptype: guidBIOSGrub},
		{n: 2, startMiB: 2, sizeMiB: 7165, name: "nixos", ptype: guidFS, fstype: "ext4", label: "nixos"},
		{n: 3, startMiB: 7167, sizeMiB: 1024, name: "swap", ptype: guidSwap, fstype: "swap", label: "swap"},
	}
	if mounted {
		d.parts[1].mount = "/mnt"
		d.parts[2].swap = true
	}
	return d
}

func TestPlans(t *testing.T) {
	tests := []struct {
		name string
		args string
		host fakeHost
		// output keeps the plan's output in the golden file; the rest
		// leave it out to stay readable.
		output bool
	}{
		{
			name: "sda-gpt-bios",
			args: oneDisk + biosLayout,
			host: fakeHost{firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "nvme-gpt-uefi",
			args: `disks: /dev/nvme0n1
partitions:
  - {name: ESP, size: 512MiB, type: esp, label: ESP, mount: /boot, mount_options: [umask=0077]}
  - {name: nixos, size: 50%, type: xfs, label: nixos, mount: /}
  - {name: home, size: rest, type: ext4, label: home, mount: /home, mount_options: "noatime,nodev"}
`,
			host:   fakeHost{firmware: "uefi", disks: []fakeDisk{{path: "/dev/nvme0n1", bytes: 476 * gib, byID: []string{"/dev/disk/by-id/nvme-eui.0025388b71b1a2c3", nvmeID, nvmeID + "_1"}}}},
			output: true,
		},
		{
			name: "byid-msdos-bios",
			args: "disks: [" + sdaID + "]\nlabel: msdos\n" + `partitions:
  - {name: boot, size: 512MiB, type: ext4, label: boot, mount: /boot}
  - {name: nixos, size: rest, type: ext4, label: nixos, mount: /}
  - {name: swap, size: 2G, type: swap}
`,
			host:   fakeHost{firmware: "bios", disks: []fakeDisk{blankSda(2000 * gib)}},
			output: true,
		},
		{
			name: "mmcblk-msdos-firmware-probe",
			args: "disks: [/dev/mmcblk0]\nlabel: msdos\nfirmware: auto\n" + `partitions:
  - {name: ESP, size: 256MiB, type: vfat, label: ESP, mount: /boot/efi}
  - {name: root, size: rest, type: ext4, mount: /}
`,
			host: fakeHost{disks: []fakeDisk{{path: "/dev/mmcblk0", bytes: 16 * gib}}},
		},
		{
			name:   "iso-preset-bios",
			args:   "disks: [/dev/sda]\npreset: iso\n",
			host:   fakeHost{firmware: "bios", disks: []fakeDisk{blankSda(2000 * gib)}},
			output: true,
		},
		{
			name: "iso-preset-msdos-small-disk",
			args: "disks: [/dev/sda]\npreset: iso\nlabel: msdos\npartitions:\n  - {name: nixos, size: 4GiB}\n  - {name: swap, size: 512MiB}\n",
			host: fakeHost{firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "iso-preset-too-small",
			args: "disks: [/dev/sda]\npreset: iso\n",
			host: fakeHost{firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "iso-preset-uefi",
			args: "disks: [/dev/nvme0n1]\npreset: iso\npartitions:\n  - {name: nixos, size: 20GiB, label: root}\n  - {name: ESP, size: 1GiB}\n",
			host: fakeHost{firmware: "uefi", disks: []fakeDisk{{path: "/dev/nvme0n1", bytes: 476 * gib}}},
		},
		{
			name:   "zfs-preset-mirror-bios",
			args:   "disks: [" + sdaID + ", " + sdbID + "]\npreset: zfs\n",
			host:   fakeHost{firmware: "bios", disks: []fakeDisk{blankSda(2000 * gib), blankSdb(2000 * gib)}},
			output: true,
		},
		{
			name: "zfs-preset-mirror-uefi-root-mounted",
			args: "disks: [/dev/sda, /dev/sdb]\npreset: zfs\n",
			host: fakeHost{firmware: "uefi", disks: []fakeDisk{blankSda(2000 * gib), blankSdb(2000 * gib)},
				mounts: []hostfs.MountState{{Target: "/mnt", Source: "rpool/root/nixos", FSType: "zfs", MajMin: "0:50"}}},
			output: true,
		},
		{
			name: "zfs-preset-no-mount",
			args: "disks: [/dev/sda]\npreset: zfs\nmount: false\n",
			host: fakeHost{firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "zfs-preset-done-pool-imported",
			args: "disks: [/dev/sda]\npreset: zfs\nlabel: msdos\n",
			host: fakeHost{firmware: "bios", pools: []string{"rpool"}, disks: []fakeDisk{func() fakeDisk {
				d := blankSda(8 * gib)
				d.pttype = "dos"
				d.parts = []fakePart{
					{n: 1, startMiB: 1, sizeMiB: 512, flags: "0x80", fstype: "ext4", label: "boot"},
					{n: 2, startMiB: 513, sizeMiB: 7678, fstype: "zfs_member", label: "rpool"},
				}
				return d
			}()}, mounts: []hostfs.MountState{{Target: "/mnt", Source: "rpool/root/nixos", FSType: "zfs", MajMin: "0:50"}}},
		},
		{
			name: "matching-unmounted",
			args: oneDisk + biosLayout,
			host: fakeHost{firmware: "bios", disks: []fakeDisk{biosLayoutDone(false)}},
		},
		{
			name: "matching-mounted",
			args: oneDisk + biosLayout,
			host: fakeHost{firmware: "bios", disks: []fakeDisk{biosLayoutDone(true)}},
		},
		{
			// The same layout, but not made by the reinstall in progress:
			// an earlier install's files, refused without wipe.
			name: "earlier-install-refused",
			args: oneDisk + biosLayout,
			host: fakeHost{firmware: "bios", disks: []fakeDisk{biosLayoutDone(false)}, Memory: moduletest.Memory{M: map[string]string{}}},
		},
		{
			name: "earlier-install-wipe",
			args: oneDisk + biosLayout + "wipe: true\n",
			host: fakeHost{firmware: "bios", disks: []fakeDisk{biosLayoutDone(false)}, Memory: moduletest.Memory{M: map[string]string{}}},
		},
		{
			name: "half-done-formats-the-rest",
			args: oneDisk + biosLayout,
			host: fakeHost{firmware: "bios", disks: []fakeDisk{func() fakeDisk {
				d := biosLayoutDone(false)
				d.parts[2].fstype, d.parts[2].label = "", ""
				return d
			}()}},
		},
		{
			name: "unfinished-table-is-recreated",
			args: oneDisk + biosLayout,
			host: fakeHost{firmware: "bios", disks: []fakeDisk{func() fakeDisk {
				d := biosLayoutDone(false)
				d.parts = d.parts[:2]
				d.parts[1].fstype, d.parts[1].label = "", ""
				return d
			}()}},
		},
		{
			name: "empty-msdos-table-is-blank",
			args: oneDisk + biosLayout,
			host: fakeHost{firmware: "bios", disks: []fakeDisk{func() fakeDisk { d := blankSda(8 * gib); d.pttype = "dos"; return d }()}},
		},
		{
			name: "foreign-refused",
			args: oneDisk + biosLayout,
			host: fakeHost{name: "ks3", firmware: "bios", disks: []fakeDisk{oldOS()}},
		},
		{
			name: "foreign-wipe",
			args: oneDisk + "wipe: true\n" + biosLayout,
			host: fakeHost{name: "ks3", firmware: "bios", disks: []fakeDisk{oldOS()}},
		},
		{
			name: "foreign-raid-whole-disk-refused",
			args: oneDisk + biosLayout,
			host: fakeHost{name: "ks4", firmware: "bios", disks: []fakeDisk{func() fakeDisk {
				d := blankSda(8 * gib)
				d.fstype, d.label = "linux_raid_member", "ks4:0"
				return d
			}()}},
		},
		{
			name: "foreign-partition-content-refused",
			args: oneDisk + biosLayout,
			host: fakeHost{name: "ks3", firmware: "bios", disks: []fakeDisk{func() fakeDisk {
				d := biosLayoutDone(false)
				d.parts[1].fstype, d.parts[1].label = "xfs", "data"
				return d
			}()}},
		},
		{
			name: "foreign-partition-content-wipe",
			args: oneDisk + "wipe: true\n" + biosLayout,
			host: fakeHost{name: "ks3", firmware: "bios", disks: []fakeDisk{func() fakeDisk {
				d := biosLayoutDone(false)
				d.parts[1].fstype, d.parts[1].label = "xfs", "data"
				return d
			}()}},
		},
		{
			name: "in-use-refused-even-with-wipe",
			args: oneDisk + "wipe: true\n" + biosLayout,
			host: fakeHost{name: "ks5", firmware: "bios", disks: []fakeDisk{func() fakeDisk {
				d := oldOS()
				d.parts[0].mount = "/"
				d.parts[1].swap = true
				return d
			}()}},
		},
		{
			name: "in-use-raid-member-refused",
			args: oneDisk + "wipe: true\n" + biosLayout,
			host: fakeHost{name: "ks5", firmware: "bios", disks: []fakeDisk{func() fakeDisk {
				d := oldOS()
				d.parts[0].fstype, d.parts[0].label, d.parts[0].holders = "linux_raid_member", "rescue:0", []string{"md127"}
				return d
			}()}},
		},
		{
			name: "in-use-pool-member-refused",
			args: oneDisk + "wipe: true\n" + biosLayout,
			host: fakeHost{name: "ks5", firmware: "bios", pools: []string{"tank"}, disks: []fakeDisk{func() fakeDisk {
				d := oldOS()
				d.parts[0].fstype, d.parts[0].label = "zfs_member", "tank"
				return d
			}()}},
		},
		{
			name: "too-small",
			args: oneDisk + `partitions:
  - {name: bios_grub, size: 1MiB, type: bios_grub}
  - {name: nixos, size: 10GiB, type: ext4, mount: /}
  - {name: swap, size: 2559MiB, type: swap}
`,
			host: fakeHost{name: "ks2", firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "too-small-rest",
			args: oneDisk + `partitions:
  - {name: bios_grub, size: 1MiB, type: bios_grub}
  - {name: nixos, size: 8190MiB, type: ext4, mount: /}
  - {name: data, size: rest, type: xfs}
`,
			host: fakeHost{name: "ks2", firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "too-small-share",
			args: oneDisk + `partitions:
  - {name: bios_grub, size: 1MiB, type: bios_grub}
  - {name: data, size: 1%, type: xfs}
  - {name: nixos, size: rest, type: ext4, mount: /}
`,
			host: fakeHost{name: "ks2", firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "msdos-beyond-2tib",
			args: oneDisk + "label: msdos\n" + `partitions:
  - {name: nixos, size: rest, type: ext4, mount: /}
`,
			host: fakeHost{name: "ks6", firmware: "bios", disks: []fakeDisk{blankSda(4000 * gib)}},
		},
		{
			name: "gpt-bios-without-bios-grub",
			args: oneDisk + "partitions:\n  - {name: nixos, size: rest, type: ext4, mount: /}\n",
			host: fakeHost{name: "ks1", firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "uefi-without-esp",
			args: oneDisk + biosLayout,
			host: fakeHost{name: "ks1", firmware: "uefi", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "missing-disk",
			args: "disks: [/dev/sdb]\n" + biosLayout,
			host: fakeHost{name: "ks1", firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "same-disk-twice",
			args: "disks: [/dev/sda, " + sdaID + "]\n" + biosLayout,
			host: fakeHost{name: "ks1", firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)}},
		},
		{
			name: "mount-target-taken",
			args: oneDisk + biosLayout,
			host: fakeHost{name: "ks1", firmware: "bios", disks: []fakeDisk{blankSda(8 * gib)},
				mounts: []hostfs.MountState{{Target: "/mnt", Source: "/dev/sdc1", FSType: "ext4", MajMin: "8:33"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Spec.New(moduletest.Decoder(tt.args))
			if err != nil {
				t.Fatalf("new: %v", err)
			}
			h := tt.host
			if h.name == "" {
				h.name = "ks1"
			}
			if h.M == nil {
				// The reinstall in progress made the disks' tables.
				h.M = map[string]string{modules.MemoryReinstall: "0badcafe"}
			}
			var b strings.Builder
			b.WriteString("== " + strings.ReplaceAll(strings.TrimSpace(tt.args), "\n", "\n== ") + "\n")
			p, err := m.Check(context.Background(), &h)
			if err != nil {
				b.WriteString("error: " + err.Error() + "\n")
			} else {
				checkShownIsRun(t, p)
				if !tt.output {
					p.Output = nil
				}
				b.WriteString(moduletest.FormatPlan(p))
			}
			moduletest.Golden(t, filepath.Join("testdata", "plans", tt.name+".golden"), b.String(), *update)
			for _, probe := range h.probes {
				if strings.Contains(probe, "unknown") {
					t.Errorf("unexpected probe %s", probe)
				}
			}
		})
	}
}

// checkShownIsRun makes sure Apply would run exactly the lines the plan
// shows.
func checkShownIsRun(t *testing.T, p *modules.Plan) {
	t.Helper()
	data, ok := p.Data.(*plan)
	if !ok || len(data.steps) != len(p.Changes) {
		t.Fatalf("plan data %#v does not match %d changes", p.Data, len(p.Changes))
	}
	for i, steps := range data.steps {
		var lines []string
		for _, s := range steps {
			lines = append(lines, s.cmd.Line())
		}
		if strings.Join(lines, "\n") != strings.Join(p.Changes[i].Commands, "\n") {
			t.Errorf("change %q shows\n%s\nbut runs\n%s", p.Changes[i].Summary, strings.Join(p.Changes[i].Commands, "\n"), strings.Join(lines, "\n"))
		}
	}
}
