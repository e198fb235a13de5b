package partition

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
	sshtransport "github.com/nixbook/nixbook/internal/transport/ssh"
	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// TestMain lets the test binary serve as the simulated hosts' helper.
func TestMain(m *testing.M) { simtest.Main(m) }

// startFleet brings up simulated servers, where partitioning is real: parted,
// mkfs and mount run inside each host on its own loop-backed disks, never
// on this machine's.
func startFleet(t *testing.T, hosts int, overrides *sim.Overrides) *sim.Fleet {
	t.Helper()
	for _, tool := range []string{"wipefs", "mkfs.ext4", "mkfs.vfat", "mkfs.xfs", "mkswap", "swapon"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the simulated fleet's hosts need %s: %v", tool, err)
		}
	}
	return simtest.Start(t, hosts, simtest.WithOverrides(overrides), simtest.WithoutPayload(), simtest.WithBootDelay(200*time.Millisecond)).Sim()
}

// simHost is a module host over SSH to a simulated server, with facts
// gathered there as the runner gathers them.
type simHost struct {
	*moduletest.LocalHost
	sim *sim.Host
	f   *sim.Fleet
}

func dialSim(t *testing.T, f *sim.Fleet, name string) *simHost {
	t.Helper()
	sh, ok := f.Host(name)
	if !ok {
		t.Fatalf("no host %s", name)
	}
	d := sshtransport.NewDialer(sshtransport.DialerOptions{
		Store:         hostkeys.New(filepath.Join(t.TempDir(), "known_hosts")),
		SSHConfigPath: "none",
	})
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	conn, err := d.Dial(ctx, transport.Target{Name: name, Address: sh.Addr().String(), Port: 22, User: "root", KeyFiles: []string{f.ClientKeyFile()}}, transport.DialOptions{})
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	h := moduletest.NewLocalHost(t)
	h.HostName = name
	h.Conn = conn
	h.FactsVal, err = facts.Gather(ctx, func(ctx context.Context, argv []string) ([]byte, error) {
		res, err := conn.Run(ctx, transport.Cmd{Args: argv})
		return res.Stdout, err
	})
	if err != nil {
		t.Fatalf("facts of %s: %v", name, err)
	}
	return &simHost{LocalHost: h, sim: sh, f: f}
}

// sh runs a shell script on the host for the test's own checks, with args
// as $1, $2...
func (h *simHost) sh(t *testing.T, script string, args ...string) string {
	t.Helper()
	res, err := h.Run(context.Background(), transport.Cmd{Args: append([]string{"sh", "-c", script, "sh"}, args...)})
	if err != nil {
		t.Fatalf("%s: %v: %s", script, err, res.Stderr)
	}
	return string(res.Stdout)
}

func (h *simHost) diskSums(t *testing.T) map[string]string {
	t.Helper()
	sums, err := h.f.DiskSHA256(h.Name())
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// checkTimeout bounds a Check under frozen file systems: one that writes
// there blocks until they thaw, and must fail, not hang the test.
const checkTimeout = time.Minute

// check runs Check the way a dry run does and proves it wrote nothing.
//
// A mounted ext4 writes by itself for a while (its journal, the lazy
// initialisation of its inode tables): the file systems mounted under /mnt
// are frozen meanwhile, so that a write the checksums see is the check's.
func (h *simHost) check(t *testing.T, m modules.Module) (*modules.Plan, error) {
	t.Helper()
	mounted := strings.Fields(h.sh(t, `findmnt -rn -o TARGET | grep -E '^/mnt(/|$)' || true`))
	for _, mp := range mounted {
		h.sh(t, `sync -f "$1" && fsfreeze -f "$1"`, mp)
	}
	defer func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			h.sh(t, `fsfreeze -u "$1"`, mounted[i])
		}
	}()
	before := h.diskSums(t)
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	p, err := m.Check(ctx, h.ReadOnly())
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("check did not finish within %s with the file systems under /mnt frozen, as when it writes there: %w", checkTimeout, err)
	}
	if after := h.diskSums(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("check changed the disks of %s: %v -> %v", h.Name(), before, after)
	}
	return p, err
}

// converge checks, applies and checks again: the second plan must be empty.
func (h *simHost) converge(t *testing.T, m modules.Module) *modules.Plan {
	t.Helper()
	p, err := h.check(t, m)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !p.Changed() {
		t.Fatal("the first check plans nothing")
	}
	again, err := h.check(t, m)
	if err != nil {
		t.Fatalf("second check: %v", err)
	}
	if moduletest.FormatPlan(again) != moduletest.FormatPlan(p) {
		t.Errorf("two checks disagree:\n%s\n%s", moduletest.FormatPlan(p), moduletest.FormatPlan(again))
	}
	out, err := m.Apply(context.Background(), h, p)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if fmt.Sprint(out) != fmt.Sprint(p.Output) {
		t.Errorf("apply output %v, check said %v", out, p.Output)
	}
	after, err := h.check(t, m)
	if err != nil {
		t.Fatalf("check after apply: %v", err)
	}
	if after.Changed() {
		t.Errorf("check after apply still plans:\n%s", moduletest.FormatPlan(after))
	}
	return p
}

// layoutOf reads what the host's disk holds with blkid and findmnt, not with
// the module's own probes: "sda2 name=nixos type=ext4 label=nixos at /mnt".
func (h *simHost) layoutOf(t *testing.T, dev string) string {
	t.Helper()
	out := h.sh(t, `set -e
dev=$1
printf 'table=%s\n' "$(blkid -p -s PTTYPE -o value "$dev")"
# lsblk lists partitions in the order their nodes appeared: sort them by number.
for p in $(lsblk -ln -o NAME "$dev" | tail -n +2 | sort -V); do
  v() { blkid -p -s "$1" -o value /dev/$p || true; }
  printf '%s name=%s type=%s label=%s size=%s' "$p" "$(v PART_ENTRY_NAME)" "$(v TYPE)" "$(v LABEL)" "$(( $(v PART_ENTRY_SIZE) / 2048 ))MiB"
  m=$(findmnt -n -o TARGET --source /dev/$p | tr '\n' ' ' || true)
  [ -n "$m" ] && printf ' at %s' "$m"
  # The size must match too, so a stale entry of another size is not taken
  # for this partition.
  kib=$(( $(v PART_ENTRY_SIZE) / 2 - 4 ))
  awk -v d=/dev/$p -v k=$kib '$1 == d && $3 == k { found = 1 } END { exit !found }' /proc/swaps && printf ' swap-on'
  printf '\n'
done
`, dev)
	return strings.TrimSpace(strings.ReplaceAll(out, " \n", "\n"))
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func build(t *testing.T, args string) modules.Module {
	t.Helper()
	return moduletest.New(t, Spec, args)
}

func TestOnSimulatedServers(t *testing.T) {
	f := startFleet(t, 6, &sim.Overrides{
		All: sim.HostOverride{DiskSize: "2GiB"},
		Hosts: map[string]sim.HostOverride{
			"ks2": {DiskKind: sim.NVMe},
			// NVMe disks, and one holding an old OS, whose partitions
			// are checked for use before anything is refused.
			"ks3": {Data: "old-os", DiskKind: sim.NVMe},
			"ks4": {DiskCount: 2},
			"ks6": {DiskKind: sim.NVMe},
		},
	})

	t.Run("gpt-bios-sda", func(t *testing.T) {
		t.Parallel()
		h := dialSim(t, f, "ks1")
		m := build(t, `disks: [/dev/sda]
partitions:
  - {name: bios_grub, size: 1MiB, type: bios_grub}
  - {name: boot, size: 256MiB, type: ext4, label: boot, mount: /boot}
  - {name: nixos, size: rest, type: ext4, label: nixos, mount: /}
  - {name: swap, size: 64MiB, type: swap, label: swap}
`)
		h.converge(t, m)
		want := `table=gpt
sda1 name=bios_grub type= label= size=1MiB
sda2 name=boot type=ext4 label=boot size=256MiB at /mnt/boot
sda3 name=nixos type=ext4 label=nixos size=1725MiB at /mnt
sda4 name=swap type=swap label=swap size=64MiB swap-on`
		if got := h.layoutOf(t, "/dev/sda"); got != want {
			t.Errorf("layout:\n%s\nwant:\n%s", got, want)
		}
		if got := h.sh(t, "blkid -p -s PART_ENTRY_TYPE -o value /dev/sda1"); strings.TrimSpace(got) != guidBIOSGrub {
			t.Errorf("sda1 type %s, want bios_grub's", got)
		}

		// The disk is in use now: another layout is refused even with wipe.
		other := build(t, "disks: [/dev/sda]\nwipe: true\nlabel: msdos\npartitions:\n  - {name: root, size: rest, type: ext4, mount: /}\n")
		_, err := h.check(t, other)
		// Another fleet's swap of the same name may add to the list.
		if err == nil || !strings.Contains(err.Error(), "/dev/sda is in use by the running system (sda2 mounted at /mnt/boot, sda3 mounted at /mnt") || !strings.Contains(err.Error(), "sda4 active swap") {
			t.Errorf("in-use disk: err = %v", err)
		}
		h.sh(t, "swapoff /dev/sda4")
	})

	t.Run("uefi-nvme-by-id", func(t *testing.T) {
		t.Parallel()
		h := dialSim(t, f, "ks2")
		disk := h.sim.Disks()[0]
		// Mounting FAT needs the kernel's vfat, which not every test
		// machine's kernel has; the ESP is still made and checked.
		espMount, espAt := ", mount: /boot, mount_options: [umask=0077]", " at /mnt/boot"
		vfat := strings.Contains(readFile(t, "/proc/filesystems"), "\tvfat\n")
		if !vfat {
			t.Log("this kernel cannot mount vfat: the ESP is made but not mounted")
			espMount, espAt = "", ""
		}
		m := build(t, `disks: [`+disk.ByIDPath()+`]
firmware: uefi
partitions:
  - {name: ESP, size: 64MiB, type: esp, label: ESP`+espMount+`}
  - {name: nixos, size: 1GiB, type: xfs, label: nixos, mount: /}
  - {name: rpool, size: rest, type: zfs}
`)
		p := h.converge(t, m)
		want := `table=gpt
nvme0n1p1 name=ESP type=vfat label=ESP size=64MiB` + espAt + `
nvme0n1p2 name=nixos type=xfs label=nixos size=1024MiB at /mnt
nvme0n1p3 name=rpool type= label= size=958MiB`
		if got := h.layoutOf(t, "/dev/nvme0n1"); got != want {
			t.Errorf("layout:\n%s\nwant:\n%s", got, want)
		}
		if got := h.sh(t, "blkid -p -s PART_ENTRY_TYPE -o value /dev/nvme0n1p1"); strings.TrimSpace(got) != guidESP {
			t.Errorf("ESP type %s", got)
		}
		// The links the output promises exist and lead to the partitions.
		paths := p.Output["paths"].(map[string]any)
		for name, n := range map[string]string{"ESP": "1", "nixos": "2", "rpool": "3"} {
			link := paths[name].([]any)[0].(string)
			if link != disk.ByIDPath()+"-part"+n {
				t.Errorf("path of %s = %s", name, link)
			}
			if got := strings.TrimSpace(h.sh(t, "readlink -f "+link)); got != "/dev/nvme0n1p"+n {
				t.Errorf("%s -> %s", link, got)
			}
		}
		if got := fmt.Sprint(p.Output["boot_devices"]); got != "["+disk.ByIDPath()+"]" {
			t.Errorf("boot devices %s", got)
		}
		if got := h.sh(t, "findmnt -n -o OPTIONS /mnt/boot || true"); vfat && !strings.Contains(got, "fmask=0077") {
			t.Errorf("ESP mount options %s", got)
		}
	})

	t.Run("old-os-refused-then-wiped", func(t *testing.T) {
		t.Parallel()
		h := dialSim(t, f, "ks3")
		layout := `disks: [/dev/nvme0n1]
label: msdos
partitions:
  - {name: boot, size: 128MiB, type: ext4, label: boot, mount: /boot}
  - {name: nixos, size: rest, type: ext4, label: nixos, mount: /}
`
		_, err := h.check(t, build(t, layout))
		want := "/dev/nvme0n1 holds an msdos partition table with 2 partitions (nvme0n1p1 ext4 'debian', nvme0n1p2 swap 'swap'); set wipe: true to erase it"
		if err == nil || err.Error() != want {
			t.Fatalf("err = %v\nwant %s", err, want)
		}
		h.converge(t, build(t, layout+"wipe: true\n"))
		wantLayout := `table=dos
nvme0n1p1 name= type=ext4 label=boot size=128MiB at /mnt/boot
nvme0n1p2 name= type=ext4 label=nixos size=1918MiB at /mnt`
		if got := h.layoutOf(t, "/dev/nvme0n1"); got != wantLayout {
			t.Errorf("layout:\n%s\nwant:\n%s", got, wantLayout)
		}
		if got := strings.TrimSpace(h.sh(t, "blkid -p -s PART_ENTRY_FLAGS -o value /dev/nvme0n1p1")); got != "0x80" {
			t.Errorf("boot flag of nvme0n1p1 = %q", got)
		}
		if out := h.sh(t, "ls /mnt; test ! -e /mnt/etc/os-release && echo old-os-gone"); !strings.Contains(out, "old-os-gone") {
			t.Errorf("the old system is still there: %s", out)
		}
		// Without wipe the finished disk is fine: it holds this layout.
		if p, err := h.check(t, build(t, layout)); err != nil || p.Changed() {
			t.Errorf("rerun without wipe: %v %s", err, moduletest.FormatPlan(p))
		}
	})

	t.Run("two-disks-every-disk-boot", func(t *testing.T) {
		t.Parallel()
		h := dialSim(t, f, "ks4")
		m := build(t, `disks: [/dev/sda, /dev/sdb]
partitions:
  - {name: bios_grub, size: 1MiB, type: bios_grub}
  - {name: boot, size: 128MiB, type: ext4, label: boot, mount: /boot, every_disk: true}
  - {name: nixos, size: 1GiB, type: ext4, label: nixos, mount: /}
  - {name: rpool, size: rest, type: zfs}
`)
		p := h.converge(t, m)
		for _, want := range []string{
			`table=gpt
sda1 name=bios_grub type= label= size=1MiB
sda2 name=boot type=ext4 label=boot size=128MiB at /mnt/boot
sda3 name=nixos type=ext4 label=nixos size=1024MiB at /mnt
sda4 name=rpool type= label= size=893MiB`,
			`table=gpt
sdb1 name=bios_grub-2 type= label= size=1MiB
sdb2 name=boot-2 type=ext4 label=boot-2 size=128MiB at /mnt/boot-2
sdb3 name=nixos-2 type=ext4 label=nixos-2 size=1024MiB
sdb4 name=rpool-2 type= label= size=893MiB`,
		} {
			dev := "/dev/" + strings.Fields(strings.Split(want, "\n")[1])[0][:3]
			if got := h.layoutOf(t, dev); got != want {
				t.Errorf("layout of %s:\n%s\nwant:\n%s", dev, got, want)
			}
		}
		var ids []string
		for _, d := range h.sim.Disks() {
			ids = append(ids, d.ByIDPath())
		}
		if got, want := fmt.Sprint(p.Output["boot_devices"]), fmt.Sprint(ids); got != want {
			t.Errorf("boot devices %s, want %s", got, want)
		}
		if got, want := fmt.Sprint(p.Output["mirrored_boots"]), fmt.Sprintf("[map[devices:[%s] path:/boot] map[devices:[%s] path:/boot-2]]", ids[0], ids[1]); got != want {
			t.Errorf("mirrored boots %s, want %s", got, want)
		}
	})

	t.Run("zfs-preset-waits-for-root", func(t *testing.T) {
		t.Parallel()
		h := dialSim(t, f, "ks5")
		m := build(t, "disks: [/dev/sda]\npreset: zfs\n")
		p := h.converge(t, m)
		if !strings.Contains(p.Message, "not mounted yet: /mnt/boot") {
			t.Errorf("message %q", p.Message)
		}
		if out := h.sh(t, "findmnt -n /mnt/boot || echo unmounted"); strings.TrimSpace(out) != "unmounted" {
			t.Errorf("/mnt/boot mounted before the root: %s", out)
		}
		// Once something mounts the root (here an ext4 on the pool's
		// partition, standing in for the zfs module), a rerun mounts /boot
		// over it and changes nothing else.
		h.sh(t, "mkfs.ext4 -q -F -L root /dev/sda3 && mount /dev/sda3 /mnt")
		again, err := h.check(t, build(t, "disks: [/dev/sda]\npreset: zfs\npartitions:\n  - {name: rpool, type: none}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(again.Commands(), "\n"); got != "mkdir -p /mnt/boot\nmount -t ext4 /dev/sda2 /mnt/boot" {
			t.Errorf("rerun with the root mounted plans:\n%s", got)
		}
	})

	t.Run("interrupted-run-recovers", func(t *testing.T) {
		t.Parallel()
		h := dialSim(t, f, "ks6")
		args := `disks: [/dev/nvme0n1]
partitions:
  - {name: bios_grub, size: 1MiB, type: bios_grub}
  - {name: nixos, size: 1GiB, type: ext4, label: nixos, mount: /}
  - {name: data, size: rest, type: xfs, label: data, mount: /data}
`
		m := build(t, args)
		p, err := h.check(t, m)
		if err != nil {
			t.Fatal(err)
		}
		// The run dies after parted: the table is there, no filesystem yet.
		for _, s := range p.Data.(*plan).steps[0] {
			if err := runStep(context.Background(), h, s, nodeWait); err != nil {
				t.Fatal(err)
			}
		}
		again, err := h.check(t, m)
		if err != nil {
			t.Fatalf("check after the interruption: %v", err)
		}
		want := "mkfs.ext4 -F -L nixos /dev/nvme0n1p2\nmkfs.xfs -f -L data /dev/nvme0n1p3\nmkdir -p /mnt\nmount -t ext4 /dev/nvme0n1p2 /mnt\nmkdir -p /mnt/data\nmount -t xfs /dev/nvme0n1p3 /mnt/data"
		if got := strings.Join(again.Commands(), "\n"); got != want {
			t.Errorf("the rerun plans:\n%s\nwant:\n%s", got, want)
		}
		h.converge(t, m)

		// Too big a layout fails in Check, before any write.
		_, err = h.check(t, build(t, "disks: [/dev/nvme0n1]\nwipe: true\nmount: false\npartitions:\n  - {name: bios_grub, size: 1MiB, type: bios_grub}\n  - {name: nixos, size: 4GiB, type: ext4}\n"))
		if err == nil || err.Error() != "/dev/nvme0n1 is 2.0 GiB; the layout needs 4.0 GiB" {
			t.Errorf("too small: %v", err)
		}
	})
}
