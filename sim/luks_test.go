package sim

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The installer's cryptsetup works on a simulated disk as on a server,
// although this kernel has no device-mapper: the LUKS header and every key
// check are the real cryptsetup's, and the opened volume is a block device
// that mkfs and mount take; a wrong key opens nothing, and a reboot ends
// the mapping.
func TestInstallerCryptsetup(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("cryptsetup"); err != nil {
		t.Skip("cryptsetup is not installed (apt-get install cryptsetup-bin)")
	}
	f := startFleet(t, Config{Hosts: 1, Payload: true, CalmAPI: true})
	h, _ := f.Host("ks1")
	if err := f.Reboot(context.Background(), "ks1", ModeInstaller); err != nil {
		t.Fatal(err)
	}
	c, _ := dial(t, f, "ks1")
	defer c.Close()
	if got := run(t, c, "command -v cryptsetup"); !strings.Contains(got, "/usr/local/bin/cryptsetup") {
		t.Fatalf("cryptsetup is %s", got)
	}
	run(t, c, "parted -s /dev/sda -- mklabel gpt mkpart boot 1MiB 100MiB mkpart root 100MiB 600MiB && udevadm settle")
	run(t, c, "printf 'the right key' > /tmp/key && printf 'a wrong key' > /tmp/wrong")
	run(t, c, "cryptsetup luksFormat --batch-mode --type luks2 --key-file /tmp/key /dev/sda2")
	if got := run(t, c, "blkid -o value -s TYPE /dev/sda2"); strings.TrimSpace(got) != "crypto_LUKS" {
		t.Fatalf("/dev/sda2 holds %q after luksFormat", got)
	}
	out, err := runErr(c, "cryptsetup open --key-file /tmp/wrong /dev/sda2 cryptroot")
	if err == nil || !strings.Contains(err.Error(), "No key available with this passphrase") {
		t.Fatalf("a wrong key: %v %s", err, out)
	}
	if _, err := runErr(c, "test -e /dev/mapper/cryptroot"); err == nil {
		t.Fatal("a wrong key mapped the volume")
	}
	run(t, c, "cryptsetup open --key-file /tmp/key /dev/sda2 cryptroot")
	if _, err := runErr(c, "cryptsetup open --key-file /tmp/key /dev/sda2 cryptroot"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("opened twice: %v", err)
	}
	run(t, c, "mkfs.ext4 -q -F -L nixos /dev/mapper/cryptroot && mount /dev/mapper/cryptroot /mnt && echo kept > /mnt/file")
	if _, err := runErr(c, "cryptsetup close cryptroot"); err == nil || !strings.Contains(err.Error(), "still in use") {
		t.Errorf("closed while mounted: %v", err)
	}
	run(t, c, "umount /mnt && cryptsetup close cryptroot")
	if out, err := runErr(c, "cryptsetup status cryptroot"); err == nil || !strings.Contains(out, "inactive") {
		t.Errorf("status after close: %v %s", err, out)
	}
	// The LUKS header is where the partition starts: the file system lies
	// past it, where only an opened volume shows it.
	if got, _ := runErr(c, "blkid -o value -s TYPE /dev/sda2"); strings.TrimSpace(got) != "crypto_LUKS" {
		t.Errorf("/dev/sda2 holds %q", got)
	}
	run(t, c, "cryptsetup open --key-file - /dev/sda2 cryptroot < /tmp/key && mount -o ro /dev/mapper/cryptroot /mnt")
	if got := run(t, c, "cat /mnt/file"); strings.TrimSpace(got) != "kept" {
		t.Errorf("reopened volume holds %q", got)
	}

	boot := h.BootID()
	_, _ = runErr(c, "reboot")
	c.Close()
	eventually(t, 30*time.Second, "back after the reboot", func() error {
		if h.BootID() == boot {
			return context.DeadlineExceeded
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	c2, _ := dial(t, f, "ks1")
	defer c2.Close()
	if out, err := runErr(c2, "ls /dev/mapper/ 2>/dev/null; losetup -a"); strings.Contains(out, "cryptroot") || strings.Contains(out, "sda2") {
		t.Errorf("the mapping survived the reboot: %v %s", err, out)
	}
}
