package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim"
)

// The stock install.yml with luks_key_file: the root lies in a LUKS volume
// made with the key of a local file; the installed system's initrd opens it
// with the key it holds, and the server comes back. The key is in no output,
// log or record of the run. A system whose initrd holds no key that opens
// the volume does not come back: it waits for a passphrase on a console
// nobody sees.
func TestInstallEncryptedRoot(t *testing.T) {
	if _, err := exec.LookPath("cryptsetup"); err != nil {
		t.Skip("cryptsetup is not installed (apt-get install cryptsetup-bin)")
	}
	f := start(t, 1)
	const secret = "luks key that must never be logged 7f3a9c"
	keyFile := filepath.Join(t.TempDir(), "root.key")
	if err := os.WriteFile(keyFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-e", "fs_layout=ext4", "-e", "luks_key_file=" + keyFile}

	check := f.nixbook(t, "install.yml", append(args, "--check")...)
	if check.code != 0 || !strings.Contains(check.out, "cryptsetup luksFormat --batch-mode --type luks2 --key-file /run/nixbook/luks.key") {
		t.Fatalf("--check exit %d, want the LUKS volume planned:\n%s", check.code, check.out)
	}
	r := f.nixbook(t, "install.yml", args...)
	if r.code != 0 || f.Mode("ks1") != sim.ModeDisk {
		t.Fatalf("exit %d, mode %s:\n%s", r.code, f.Mode("ks1"), r.out)
	}
	st := f.Status("ks1")
	if !st.SSH || !strings.Contains(st.Installed, "NixOS on /dev/sda3 (ext4 in a LUKS volume)") {
		t.Fatalf("ks1: %+v", st)
	}
	// The volume, nixbook's configuration opening it, and
	// nixos-generate-config naming it by its UUID, as on a server.
	got := f.sh(t, "ks1", `blkid -p -o value -s TYPE /dev/sda3
grep -c 'boot.initrd.luks.devices' /etc/nixos/configuration.nix
grep -o 'boot.initrd.luks.devices."rpool".device = "/dev/disk/by-uuid/' /etc/nixos/hardware-configuration.nix`)
	if got != "crypto_LUKS\n1\nboot.initrd.luks.devices.\"rpool\".device = \"/dev/disk/by-uuid/\n" {
		t.Errorf("ks1 holds:\n%s", got)
	}
	// Nothing nixbook wrote or printed holds the key.
	for _, out := range []string{check.out, r.out} {
		if strings.Contains(out, secret) {
			t.Errorf("the key is in nixbook's output")
		}
	}
	for _, dir := range []string{f.logs, filepath.Dir(f.knownHosts)} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if data, _ := os.ReadFile(p); strings.Contains(string(data), secret) {
				t.Errorf("%s holds the key", p)
			}
			return nil
		})
	}

	// A reinstall erases the volume and makes a new one: nothing of the
	// earlier root survives.
	f.sh(t, "ks1", "echo old > /root/old-marker")
	again := f.nixbook(t, "install.yml", append(args, "-e", "reinstall=true", "-e", "wipe=true")...)
	if again.code != 0 || f.Mode("ks1") != sim.ModeDisk || !f.Status("ks1").SSH {
		t.Fatalf("reinstall: exit %d, %+v:\n%s", again.code, f.Status("ks1"), again.out)
	}
	if left := f.sh(t, "ks1", "ls /root/old-marker 2>/dev/null || true"); strings.TrimSpace(left) != "" {
		t.Errorf("the earlier root survived the reinstall: %s", left)
	}

	// The key gone from the initrd: the root stays locked.
	f.sh(t, "ks1", "rm -f /boot/nixbook-sim-initrd-secrets/rpool.key")
	f.Reboot("ks1", sim.ModeDisk)
	deadline := time.Now().Add(30 * time.Second)
	for f.Status("ks1").Why == "" && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if st := f.Status("ks1"); st.SSH || !strings.Contains(st.Why, "no key in the initrd opens the LUKS volume on /dev/sda3") {
		t.Errorf("ks1 without its initrd key: %+v", st)
	}
}
