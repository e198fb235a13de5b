package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	"github.com/nixbook/nixbook/sim/internal/devtree"
)

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
			parts, _ := devtree.Partitions(d.Loop)
			for _, p := range parts {
				out = append(out, p.MachinePath)
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
		return sshWithin(f, "ks1", 5*time.Second)
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
