package sim

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestEveryWayToRebootFromInside(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1, BootDelay: 100 * time.Millisecond})
	h, _ := f.Host("ks1")
	for _, cmd := range []string{"reboot", "systemctl reboot", "shutdown -r now", "/sbin/reboot -f"} {
		t.Run(cmd, func(t *testing.T) {
			c, _ := dial(t, f, "ks1")
			before := h.BootID()
			_, _ = runErr(c, cmd)
			c.Close()
			eventually(t, 20*time.Second, "back after "+cmd, func() error {
				if h.BootID() == before {
					return fmt.Errorf("same boot id")
				}
				return sshWithin(f, "ks1", 5*time.Second)
			})
			if h.Mode() != ModeRescue {
				t.Errorf("mode %s after %s", h.Mode(), cmd)
			}
		})
	}
	t.Run("poweroff", func(t *testing.T) {
		c, _ := dial(t, f, "ks1")
		_, _ = runErr(c, "poweroff")
		c.Close()
		eventually(t, 10*time.Second, "off", func() error {
			if h.Mode() != ModeOff {
				return fmt.Errorf("mode %s", h.Mode())
			}
			return nil
		})
		if st := h.Status(context.Background()); st.SSH || st.PID != 0 {
			t.Errorf("after poweroff: %+v", st)
		}
	})
}

func TestPredictedNamesAndOldOS(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 2, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks1": {NIC: "enp3s0", MAC: "00:25:90:aa:bb:cc"},
		"ks2": {Data: "old-os", DiskCount: 2, DiskSize: "2GiB"},
	}}})
	c1, _ := dial(t, f, "ks1")
	defer c1.Close()
	out := run(t, c1, "udevadm test-builtin net_id /sys/class/net/enp3s0 2>/dev/null")
	for _, want := range []string{"ID_NET_NAME_PATH=enp3s0", "ID_NET_NAME_MAC=enx002590aabbcc"} {
		if !strings.Contains(out, want) {
			t.Errorf("net_id printed no %s:\n%s", want, out)
		}
	}
	if out := run(t, c1, "cat /sys/class/net/enp3s0/address; ip -o -4 addr show dev enp3s0 | wc -l"); out != "00:25:90:aa:bb:cc\n1\n" {
		t.Errorf("enp3s0: %q", out)
	}
	if _, err := runErr(c1, "udevadm test-builtin net_id /sys/class/net/eth9"); err == nil {
		t.Errorf("net_id of a missing interface succeeded")
	}

	c2, _ := dial(t, f, "ks2")
	defer c2.Close()
	out = run(t, c2, "parted -s /dev/sda print; readlink /dev/disk/by-label/debian; ls /dev/sdb; blkid -s TYPE -o value /dev/sda2")
	for _, want := range []string{"Partition Table: msdos", "ext4", "../../sda1", "/dev/sdb", "swap"} {
		if !strings.Contains(out, want) {
			t.Errorf("old OS: no %q in\n%s", want, out)
		}
	}
	if out := run(t, c2, "mount -o ro /dev/sda1 /mnt && cat /mnt/etc/os-release /mnt/root/data.txt; umount /mnt"); !strings.Contains(out, "bullseye") || !strings.Contains(out, "data the old OS kept") {
		t.Errorf("old OS files:\n%s", out)
	}
}

func TestFirstBootModes(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 3, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks2": {Mode: "installer"}, "ks3": {Mode: "disk"},
	}}})
	c, _ := dial(t, f, "ks2")
	defer c.Close()
	if out := run(t, c, ". /etc/os-release; echo $VARIANT_ID"); out != "installer\n" {
		t.Errorf("ks2 starts as %q", out)
	}
	h3, _ := f.Host("ks3")
	if st := h3.Status(context.Background()); st.Mode != ModeDisk || st.SSH || !strings.Contains(st.Why, "no installed system") {
		t.Errorf("ks3 on empty disks: %+v", st)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 2, BootDelay: 100 * time.Millisecond, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks1": {Faults: []string{FaultNeverReturns}},
	}}})
	h1, _ := f.Host("ks1")
	h2, _ := f.Host("ks2")
	h2.InjectFault(FaultKexecHangs, true)

	// The fault spares the first boot: ks1 answered, and never comes back.
	if err := f.Reboot(context.Background(), "ks1", ModeRescue); err != nil {
		t.Fatal(err)
	}
	c2, _ := dial(t, f, "ks2")
	run(t, c2, "kexec -l /tmp/k")
	_, _ = runErr(c2, "kexec -e")
	c2.Close()
	time.Sleep(2 * time.Second)
	for _, h := range []*Host{h1, h2} {
		st := h.Status(context.Background())
		if st.SSH || !strings.Contains(st.Why, "fault injected") {
			t.Errorf("%s: %+v", h.Name(), st)
		}
	}
	if h2.Mode() != ModeInstaller {
		t.Errorf("ks2 mode %s, want installer (hung)", h2.Mode())
	}
	// Taking the fault away lets the next boot through.
	h1.InjectFault(FaultNeverReturns, false)
	if err := f.Reboot(context.Background(), "ks1", ModeRescue); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.WaitSSH(ctx, "ks1"); err != nil {
		t.Fatal(err)
	}
}

func TestAHostCannotChangeTheMachinesFiles(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1})
	c, _ := dial(t, f, "ks1")
	defer c.Close()
	marker := "/usr/share/nixbook-sim-test-" + f.ID()
	run(t, c, "echo written > "+marker+" && rm -f /usr/bin/hostname && echo x >> /etc/passwd")
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Errorf("a host's write reached the machine's %s", marker)
	}
	if _, err := os.Stat("/usr/bin/hostname"); err != nil {
		t.Errorf("a host's rm reached the machine: %v", err)
	}
	if data, _ := os.ReadFile("/etc/passwd"); strings.HasSuffix(string(data), "x\n") {
		t.Errorf("a host's append reached the machine's /etc/passwd")
	}
	// And what the host saw is gone at its next boot.
	h, _ := f.Host("ks1")
	boot := h.BootID()
	_, _ = runErr(c, "reboot")
	eventually(t, 20*time.Second, "reboot", func() error {
		if h.BootID() == boot {
			return fmt.Errorf("not yet")
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	c2, _ := dial(t, f, "ks1")
	defer c2.Close()
	run(t, c2, "test ! -e "+marker+" && test -x /usr/bin/hostname")
}

func TestAnInitThatDiesTakesItsHostDown(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1})
	h, _ := f.Host("ks1")
	if err := syscall.Kill(h.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "host down", func() error {
		if st := h.Status(context.Background()); st.Mode != ModeOff || !strings.Contains(st.Why, "init died") {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
}

// TestADiskBootOutwaitsACopyOfItsRoot holds a read-only mount of a host's
// root file system in another mount namespace, as a host booting while the
// controller looks at the disk holds a copy of that look: the kernel then
// refuses the read-write mount of the disk boot until the copy is gone,
// and the host must come up once it is.
func TestADiskBootOutwaitsACopyOfItsRoot(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1, BootDelay: 100 * time.Millisecond, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks1": {Data: "old-os", DiskSize: "2GiB"},
	}}})
	h, _ := f.Host("ks1")
	root := h.Disks()[0].Loop + "p1"
	held := t.TempDir()
	holder := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -o ro "$1" "$2" && echo held && sleep 3`, "sh", root, held)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("holding %s read-only: %q %v", root, line, err)
	}
	if err := f.Reboot(context.Background(), "ks1", ModeDisk); err != nil {
		t.Fatalf("disk boot while its root is held: %v", err)
	}
	eventually(t, 40*time.Second, "the old OS to answer SSH", func() error {
		if st := h.Status(context.Background()); !st.SSH {
			return fmt.Errorf("%s: %s", st.Mode, st.Why)
		}
		return nil
	})
	c, _ := dial(t, f, "ks1")
	defer c.Close()
	if out := run(t, c, "cat /etc/os-release; touch /root/written"); !strings.Contains(out, "bullseye") {
		t.Errorf("disk boot runs:\n%s", out)
	}
}

// A power-off asked for inside the host is carried out a moment later, as
// a shutdown takes; a reboot by the controller meanwhile ends that boot,
// and the power-off with it: it does not stop the host's next boot.
func TestACommandOfABootThatIsOverActsOnNothing(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1})
	c, _ := dial(t, f, "ks1")
	run(t, c, "poweroff")
	c.Close()
	if err := f.Reboot(context.Background(), "ks1", ModeRescue); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the rescue", func() error { return sshWithin(f, "ks1", 5*time.Second) })
	time.Sleep(3 * shutdownGrace)
	if h, _ := f.Host("ks1"); h.Mode() != ModeRescue || sshWithin(f, "ks1", 2*time.Second) != nil {
		t.Errorf("the power-off of the boot before stopped the host: mode %s, %s", h.Mode(), h.Status(context.Background()).Why)
	}
}
