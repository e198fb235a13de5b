package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/sim/hostinit"
)

func TestSwapsFileIsTheKernels(t *testing.T) {
	tests := []struct {
		name  string
		areas []*swapArea
		want  string
	}{
		{"none", nil, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"},
		{
			"partition and file",
			[]*swapArea{
				{path: "/dev/sda2", kib: 524284, prio: -2},
				{path: "/mnt/swap file", file: true, kib: 12582908, prio: 5},
			},
			"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
				"/dev/sda2                               partition\t524284\t\t0\t\t-2\n" +
				"/mnt/swap\\040file                       file\t\t12582908\t0\t\t5\n",
		},
		{
			"long name",
			[]*swapArea{{path: "/dev/disk/by-id/ata-NIXBOOK_SIM_HDD_0123456789-part2", kib: 1024, prio: -3}},
			"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
				"/dev/disk/by-id/ata-NIXBOOK_SIM_HDD_0123456789-part2 partition\t1024\t\t0\t\t-3\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := swapsFile(tt.areas); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestHumanBytesLikeUtilLinux(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0B"},
		{1000, "1000B"},
		{1024, "1K"},
		{1536, "1.5K"},
		{134213632, "128M"}, // a 128 MiB swap partition less its header page
		{536866816, "512M"},
		{2147479552, "2G"},
		{1610612736, "1.5G"},
		{1<<30 + 1<<20*100, "1.1G"},
		{1 << 40, "1T"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestGetoptLikeGlibc(t *testing.T) {
	longs := []longOpt{{"priority", requiredArg, "p"}, {"show", optionalArg, "show"}, {"summary", noArg, "s"}, {"all", noArg, "a"}}
	tests := []struct {
		args     []string
		opts     []option
		operands []string
		bad      string
	}{
		{args: []string{"/dev/sda2"}, operands: []string{"/dev/sda2"}},
		{args: []string{"-p", "5", "/dev/sda2", "-a"}, opts: []option{{key: "p", val: "5", hasVal: true}, {key: "a"}}, operands: []string{"/dev/sda2"}},
		{args: []string{"-ap5"}, opts: []option{{key: "a"}, {key: "p", val: "5", hasVal: true}}},
		{args: []string{"--show=NAME,SIZE"}, opts: []option{{key: "show", val: "NAME,SIZE", hasVal: true}}},
		{args: []string{"--sh"}, opts: []option{{key: "show"}}},
		{args: []string{"--pri", "3"}, opts: []option{{key: "p", val: "3", hasVal: true}}},
		{args: []string{"--", "-a"}, operands: []string{"-a"}},
		{args: []string{"--s"}, bad: "swapon: option '--s' is ambiguous; possibilities: '--show' '--summary'\n"},
		{args: []string{"--bogus=1"}, bad: "swapon: unrecognized option '--bogus=1'\n"},
		{args: []string{"-Q"}, bad: "swapon: invalid option -- 'Q'\n"},
		{args: []string{"-p"}, bad: "swapon: option requires an argument -- 'p'\n"},
		{args: []string{"--priority"}, bad: "swapon: option '--priority' requires an argument\n"},
		{args: []string{"--all=yes"}, bad: "swapon: option '--all' doesn't allow an argument\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			opts, operands, bad := getopt("swapon", tt.args, "asp:", longs)
			if bad != tt.bad || !reflect.DeepEqual(opts, tt.opts) || !reflect.DeepEqual(operands, tt.operands) {
				t.Errorf("got %+v %q %q, want %+v %q %q", opts, operands, bad, tt.opts, tt.operands, tt.bad)
			}
		})
	}
}

func TestSwapTableLikeLibsmartcols(t *testing.T) {
	areas := []*swapArea{
		{path: "/dev/sda2", kib: 131068, prio: -2, uuid: "0a8d3f0e-5e6c-4c9b-9d5e-2f1b0c6a7e11", label: "swap"},
		{path: "/mnt/swapfile", file: true, kib: 65532, prio: 10},
	}
	tests := []struct {
		name                   string
		columns                []string
		noHeadings, raw, bytes bool
		want                   string
	}{
		{name: "default", columns: []string{"NAME", "TYPE", "SIZE", "USED", "PRIO"},
			want: "NAME          TYPE      SIZE USED PRIO\n" +
				"/dev/sda2     partition 128M   0B   -2\n" +
				"/mnt/swapfile file       64M   0B   10\n"},
		{name: "bytes, no headings", columns: []string{"NAME", "SIZE"}, noHeadings: true, bytes: true,
			want: "/dev/sda2     134213632\n/mnt/swapfile  67104768\n"},
		{name: "raw", columns: []string{"NAME", "LABEL", "UUID"}, raw: true,
			want: "NAME LABEL UUID\n/dev/sda2 swap 0a8d3f0e-5e6c-4c9b-9d5e-2f1b0c6a7e11\n/mnt/swapfile  \n"},
		{name: "last column left-aligned", columns: []string{"LABEL", "NAME"},
			want: "LABEL NAME\nswap  /dev/sda2\n      /mnt/swapfile\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := swapTable(areas, tt.columns, tt.noHeadings, tt.raw, tt.bytes); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	if got := swapTable(nil, []string{"NAME"}, false, false, false); got != "" {
		t.Errorf("no swap: %q, want nothing (as swapon prints)", got)
	}
}

func TestReadSwapHeaderOfMkswap(t *testing.T) {
	mkswap, err := exec.LookPath("mkswap")
	if err != nil {
		t.Skip("needs mkswap (util-linux)")
	}
	// A swap area in a regular file: mkswap never touches a device here.
	img := filepath.Join(t.TempDir(), "swap.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	const uuid = "0a8d3f0e-5e6c-4c9b-9d5e-2f1b0c6a7e11"
	if out, err := exec.Command(mkswap, "-L", "swap", "-U", uuid, img).CombinedOutput(); err != nil {
		t.Fatalf("mkswap: %v: %s", err, out)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr, ok := readSwapHeader(f)
	if !ok {
		t.Fatal("no swap header found")
	}
	want := swapHeader{pageSize: os.Getpagesize(), version: 1, lastPage: uint32(8<<20/os.Getpagesize() - 1), uuid: uuid, label: "swap"}
	if *hdr != want {
		t.Errorf("header %+v, want %+v", *hdr, want)
	}
	other := filepath.Join(t.TempDir(), "zero.img")
	if err := os.WriteFile(other, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	z, err := os.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if _, ok := readSwapHeader(z); ok {
		t.Error("a swap header in zeros")
	}
}

// machineSwaps is the machine's own /proc/swaps, header left out.
func machineSwaps(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/swaps")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return lines[1:]
}

// fleetLoopParts lists the machine's nodes of the fleet's disks and
// partitions.
func fleetLoopParts(f *Fleet) []string {
	var out []string
	for _, h := range f.Hosts() {
		for _, d := range h.Disks() {
			out = append(out, d.Loop)
			parts, _ := partitions(d.Loop)
			for _, p := range parts {
				out = append(out, p.machinePath)
			}
		}
	}
	return out
}

func TestSwapIsPerHost(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "fleet")
	f := startFleet(t, Config{Dir: dir, Hosts: 2, BootDelay: 100 * time.Millisecond, Overrides: &Overrides{All: HostOverride{DiskSize: "1GiB"}}})
	before := machineSwaps(t)
	t.Cleanup(func() {
		// Should a real swapon ever get through, the machine must not keep it.
		if len(machineSwaps(t)) != len(before) {
			for _, p := range fleetLoopParts(f) {
				if ptr, err := unix.BytePtrFromString(p); err == nil {
					_, _, _ = unix.Syscall(unix.SYS_SWAPOFF, uintptr(unsafe.Pointer(ptr)), 0, 0)
				}
			}
		}
	})
	clients := map[string]*ssh.Client{}
	for _, name := range []string{"ks1", "ks2"} {
		c, _ := dial(t, f, name)
		defer c.Close()
		clients[name] = c
		run(t, c, "parted -s /dev/sda mklabel gpt mkpart root ext4 1MiB 200MiB mkpart swap linux-swap 200MiB 328MiB && udevadm settle && mkfs.ext4 -q /dev/sda1")
	}

	// The same command at the same time on both: each host's /dev/sda2 is
	// its own, and neither sees the other's swap.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, name := range []string{"ks1", "ks2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = runErr(clients[name], "mkswap -L swap /dev/sda2 && swapon /dev/sda2")
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("mkswap && swapon on both hosts: %v", err)
	}
	// 128 MiB: 32768 pages, less the header's.
	wantSwaps := "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
		"/dev/sda2                               partition\t131068\t\t0\t\t-2\n"
	for name, c := range clients {
		if out := run(t, c, "cat /proc/swaps"); out != wantSwaps {
			t.Errorf("%s /proc/swaps:\n%q\nwant\n%q", name, out, wantSwaps)
		}
		if out := run(t, c, "lsblk -n -o NAME,MOUNTPOINT /dev/sda"); !regexp.MustCompile(`(?m)^.*sda2 +\[SWAP\]$`).MatchString(out) || strings.Count(out, "[SWAP]") != 1 {
			t.Errorf("%s lsblk:\n%s", name, out)
		}
		if out := run(t, c, "swapon --show"); out != "NAME      TYPE      SIZE USED PRIO\n/dev/sda2 partition 128M   0B   -2\n" {
			t.Errorf("%s swapon --show:\n%s", name, out)
		}
		if out := run(t, c, "swapon --show=NAME,LABEL --noheadings --raw; swapon -s | tail -n 1"); out != "/dev/sda2 swap\n/dev/sda2                               partition\t131068\t\t0\t\t-2\n" {
			t.Errorf("%s swapon --show=NAME,LABEL, -s:\n%q", name, out)
		}
	}
	for _, line := range machineSwaps(t) {
		for _, p := range append(fleetLoopParts(f), "/dev/sda2") {
			if strings.HasPrefix(line, p+" ") {
				t.Errorf("the machine's /proc/swaps lists a host's swap: %s", line)
			}
		}
	}

	c1, c2 := clients["ks1"], clients["ks2"]
	t.Run("an active swap is in use", func(t *testing.T) {
		for cmd, want := range map[string]string{
			"swapon /dev/disk/by-label/swap": "swapon: /dev/disk/by-label/swap: swapon failed: Device or resource busy",
			"mkswap /dev/sda2":               "/dev/sda2 is mounted; will not make swapspace",
			"mkfs.ext4 -q -F /dev/sda2":      "/dev/sda2 is mounted",
			"wipefs -a /dev/sda2":            "Device or resource busy",
		} {
			out, err := runErr(c1, cmd+" 2>&1")
			if err == nil || !strings.Contains(out+err.Error(), want) {
				t.Errorf("%s: %v %q, want a failure saying %q", cmd, err, out, want)
			}
		}
	})

	t.Run("options and errors like util-linux", func(t *testing.T) {
		tests := []struct{ cmd, out string }{
			{"swapon --bogus; echo $?", "swapon: unrecognized option '--bogus'\nTry 'swapon --help' for more information.\n1\n"},
			{"swapon --show=NAME,BOGUS; echo $?", "swapon: unknown column: BOGUS\n1\n"},
			{"swapon /dev/sda1; echo $?", "swapon: /dev/sda1: read swap header failed\n255\n"},
			{"swapon /dev/sdz9; echo $?", "swapon: cannot open /dev/sdz9: No such file or directory\n255\n"},
			{"swapon LABEL=nope; echo $?", "swapon: cannot find the device for LABEL=nope\n255\n"},
			{"swapoff /dev/sda1; echo $?", "swapoff: /dev/sda1: swapoff failed: Invalid argument\n4\n"},
			{"swapoff; echo $?", "swapoff: bad usage\nTry 'swapoff --help' for more information.\n16\n"},
		}
		for _, tt := range tests {
			if out := run(t, c2, "("+tt.cmd+") 2>&1"); out != tt.out {
				t.Errorf("%s:\n%q\nwant\n%q", tt.cmd, out, tt.out)
			}
		}
	})

	t.Run("swap files", func(t *testing.T) {
		run(t, c2, "mount /dev/sda1 /mnt && fallocate -l 64M /mnt/swapfile && chmod 600 /mnt/swapfile && mkswap -q /mnt/swapfile && cd /mnt && swapon -p 7 swapfile")
		if out := run(t, c2, "tail -n 1 /proc/swaps"); out != "/mnt/swapfile                           file\t\t65532\t\t0\t\t7\n" {
			t.Errorf("swap file in /proc/swaps: %q", out)
		}
		if _, err := runErr(c2, "umount /mnt"); err == nil {
			t.Error("unmounted the file system of an active swap file")
		}
		run(t, c2, "swapoff /mnt/swapfile && umount /mnt")
		// The RAM disk (tmpfs under an overlay) cannot hold swap.
		if out, err := runErr(c2, "fallocate -l 1M /root/swap && chmod 600 /root/swap && mkswap -q /root/swap && swapon /root/swap 2>&1"); err == nil || !strings.Contains(out, "swapon failed: Invalid argument") {
			t.Errorf("swap on the RAM disk: %v %q", err, out)
		}
	})

	t.Run("swapon(2) never reaches the machine", func(t *testing.T) {
		// On an ext4 partition: were the call let through, the kernel would
		// refuse it (EINVAL) without turning anything on.
		out, err := runErr(c2, swaponEnv+"=/dev/sda1 "+hostinit.HelperPath)
		if err == nil || out != "Operation not permitted\n" {
			t.Errorf("swapon(2) in a host: %v %q, want EPERM", err, out)
		}
		if got := machineSwaps(t); !reflect.DeepEqual(got, before) {
			t.Errorf("the machine's swaps changed: %q", got)
		}
	})

	// Off by name, by label and all at once.
	run(t, c1, "swapoff LABEL=swap && swapon -v LABEL=swap && swapoff -a")
	run(t, c2, "swapoff -a")
	for name, c := range clients {
		if out := run(t, c, "cat /proc/swaps; swapon --show"); out != "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" {
			t.Errorf("%s after swapoff -a:\n%q", name, out)
		}
	}

	// A reboot ends swap and lets its device go.
	run(t, c1, "swapon /dev/sda2")
	h1, _ := f.Host("ks1")
	boot := h1.BootID()
	if err := f.Reboot(context.Background(), "ks1", ModeRescue); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "ks1 back", func() error {
		if h1.BootID() == boot {
			return fmt.Errorf("same boot")
		}
		return f.WaitSSH(context.Background(), "ks1")
	})
	c1, _ = dial(t, f, "ks1")
	defer c1.Close()
	if out := run(t, c1, "swapon --show; blkid -s TYPE -o value /dev/sda2"); out != "swap\n" {
		t.Errorf("after a reboot: %q, want no active swap and the swap still on the disk", out)
	}

	// Down with a swap on: nothing stays.
	run(t, c2, "swapon /dev/sda2")
	var pids []int
	var images []string
	for _, h := range f.Hosts() {
		pids = append(pids, h.pid())
		for _, d := range h.Disks() {
			images = append(images, d.Image)
		}
	}
	if err := f.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := machineSwaps(t); !reflect.DeepEqual(got, before) {
		t.Errorf("the machine's /proc/swaps after down: %q", got)
	}
	assertNothingLeft(t, f.ID(), dir, pids, images)
}
