package sim

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/sim/ovhapi"
	"github.com/nixbook/nixbook/sim/vm"
)

// requireVM skips without QEMU and builds the vm hosts' image first (once
// per machine, minutes), so that a fleet's Up only boots it.
func requireVM(t testing.TB) {
	t.Helper()
	requireRoot(t)
	if _, err := exec.LookPath(vm.QEMU); err != nil {
		t.Skipf("a vm host needs %s (make deps installs qemu-system-x86)", vm.QEMU)
	}
	if _, err := vm.Ensure(context.Background(), t.Logf); err != nil {
		t.Fatal(err)
	}
}

// dialVM logs in on a vm host's forwarded port.
func dialVM(t testing.TB, h *Host, keyFile string) (*ssh.Client, ssh.PublicKey) {
	t.Helper()
	c, key, err := dialAddr(h.SSHAddr().String(), keyFile)
	if err != nil {
		t.Fatalf("ssh %s at %s: %v", h.Name(), h.SSHAddr(), err)
	}
	return c, key
}

func keyLine(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }

// A vm host is a QEMU machine driven like the others: it starts in the
// rescue (Debian's kernel with real ZFS, in RAM) with a host key of its own,
// reboots through the API into a new rescue with a new host key and boot id
// while its disks keep what was written, and reboots from inside into what
// its netboot says.
func TestVMHostRescueAndReboots(t *testing.T) {
	requireVM(t)
	f := startFleet(t, Config{
		Hosts: 1, CalmAPI: true,
		Timings:   ovhapi.Timings{Init: 100 * time.Millisecond, Todo: 100 * time.Millisecond, Doing: 300 * time.Millisecond},
		Overrides: &Overrides{Hosts: map[string]HostOverride{"ks1": {Kind: KindVM, DiskCount: 2, DiskSize: "2GiB"}}},
	})
	h, _ := f.Host("ks1")
	if a := h.SSHAddr().Addr(); !a.IsLoopback() || a.String() == "127.0.0.1" {
		t.Fatalf("a vm host is reached at %s, want a loopback address of its own", h.SSHAddr())
	}
	c, key1 := dialVM(t, h, f.ClientKeyFile())
	if got, want := keyLine(key1), h.HostKey(); !strings.HasPrefix(want, got) {
		t.Errorf("host key %s, the fleet says %s", got, want)
	}
	boot1 := h.BootID()
	if boot1 == "" {
		t.Fatal("no boot id known for the vm host")
	}
	checks := []struct{ cmd, want string }{
		{"hostname", "rescue12-customer-eu\n"},
		{". /etc/os-release && echo $ID $VERSION_ID", "debian 12\n"},
		{"cat /proc/sys/kernel/random/boot_id", boot1 + "\n"},
		{"readlink -f " + h.Disks()[0].ByIDPath(), "/dev/vda\n"},
		{"readlink -f " + h.Disks()[1].ByIDPath(), "/dev/vdb\n"},
		{"blockdev --getsize64 /dev/vdb", "2147483648\n"},
		{"zpool version | grep -c zfs-kmod-2", "1\n"},
		{"test -e /etc/hostid || echo none", "none\n"},
		{"printf nixbook-vm | dd of=/dev/vdb bs=512 seek=1 conv=fsync 2>/dev/null && echo written", "written\n"},
	}
	for _, tt := range checks {
		if got := run(t, c, tt.cmd); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.cmd, got, tt.want)
		}
	}
	c.Close()

	inv, err := os.ReadFile(f.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("port: %d", h.SSHAddr().Port()); !bytes.Contains(inv, []byte(want)) || !bytes.Contains(inv, []byte("host: "+h.SSHAddr().Addr().String())) {
		t.Errorf("fleet.yml does not say host %s, %s:\n%s", h.SSHAddr().Addr(), want, inv)
	}

	// Through the API, with a rescue key of the user's own.
	user, err := newKeyPair("user@example.org")
	if err != nil {
		t.Fatal(err)
	}
	userKey := t.TempDir() + "/user_key"
	if err := writeFileMode(userKey, user.Private); err != nil {
		t.Fatal(err)
	}
	rebootThroughAPI(t, f, "ks1", "rescue", "rescue12-customer", strings.TrimSpace(user.Public))
	waitNewBoot(t, f, h, boot1)
	if _, _, err := dialAddr(h.SSHAddr().String(), f.ClientKeyFile()); err == nil {
		t.Error("the fleet's key still opens a rescue booted with another rescueSshKey")
	}
	c, key2 := dialVM(t, h, userKey)
	if keyLine(key1) == keyLine(key2) {
		t.Error("host key unchanged by a reboot into rescue")
	}
	if got := run(t, c, "dd if=/dev/vdb bs=512 skip=1 count=1 2>/dev/null | head -c 9"); got != "nixbook-v" {
		t.Errorf("the disk lost what was written before the reboot: %q", got)
	}
	boot2 := h.BootID()

	// From inside: the guest reboots, QEMU ends, the netboot (rescue) boots.
	_, _ = runErr(c, "reboot")
	c.Close()
	waitNewBoot(t, f, h, boot2)
	c, _ = dialVM(t, h, userKey)
	if got := run(t, c, "hostname"); got != "rescue12-customer-eu\n" {
		t.Errorf("after a reboot from inside: hostname %q", got)
	}
	if st := h.Status(context.Background()); st.Mode != ModeRescue || !st.SSH || st.Boots != 3 {
		t.Errorf("status %+v", st)
	}
	c.Close()

	// A disk pulled out is gone from the next boot on.
	if err := h.PullDisk(1); err != nil {
		t.Fatal(err)
	}
	boot3 := h.BootID()
	if err := f.Reboot(context.Background(), "ks1", ModeRescue); err != nil {
		t.Fatal(err)
	}
	waitNewBoot(t, f, h, boot3)
	c, _ = dialVM(t, h, userKey)
	defer c.Close()
	if got := run(t, c, "ls /sys/block | grep vd"); got != "vda\n" {
		t.Errorf("disks after pulling vdb: %q", got)
	}
}

// waitNewBoot waits for the host to come back with another boot id than
// before, answering SSH.
func waitNewBoot(t testing.TB, f *Fleet, h *Host, before string) {
	t.Helper()
	eventually(t, 3*time.Minute, h.Name()+" back from its reboot", func() error {
		if id := h.BootID(); id == "" || id == before {
			return fmt.Errorf("not rebooted yet")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return f.WaitSSH(ctx, h.Name())
	})
}
