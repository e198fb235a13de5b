package partition

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// An encrypted root on a simulated server, in the NixOS installer whose
// cryptsetup opens volumes (see sim/payload): the LUKS volume is made with
// the key from the controller's file, its filesystem inside, mounted at
// /mnt, the key placed for the installed system's initrd; a rerun changes
// nothing, a closed volume is opened again without being formatted, a wrong
// key opens nothing, and the key is in no plan and no log.
func TestEncryptedRootOnASimulatedServer(t *testing.T) {
	if _, err := exec.LookPath("cryptsetup"); err != nil {
		t.Skip("cryptsetup is not installed (apt-get install cryptsetup-bin)")
	}
	sf := simtest.Start(t, 1, simtest.WithBootDelay(200*time.Millisecond))
	sf.Reboot("ks1", sim.ModeInstaller)
	if err := sf.WaitSSH(2*time.Minute, "ks1"); err != nil {
		t.Fatal(err)
	}
	f := sf.Sim()
	h := dialSim(t, f, "ks1")
	const secret = "correct horse battery staple 42"
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "luks.key")
	if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	args := func(key string) string {
		return `disks: [/dev/sda]
partitions:
  - {name: bios_grub, size: 1MiB, type: bios_grub}
  - {name: boot, size: 256MiB, type: ext4, label: boot, mount: /boot}
  - {name: nixos, size: rest, type: ext4, label: nixos, mount: /, encrypt: true}
luks_key_file: ` + key + "\n"
	}
	m := build(t, args(keyFile))
	p := h.converge(t, m)
	shown := moduletest.FormatPlan(p) + strings.Join(h.Logs(), "\n")
	if strings.Contains(shown, secret) || strings.Contains(shown, "horse") {
		t.Errorf("the key shows in the plan or the log:\n%s", shown)
	}
	for _, want := range []string{"cryptsetup luksFormat --batch-mode --type luks2 --key-file /run/nixbook/luks.key /dev/sda3",
		"cryptsetup open --key-file /run/nixbook/luks.key /dev/sda3 nixos", "mkfs.ext4 -F -L nixos /dev/mapper/nixos", "mount -t ext4 /dev/mapper/nixos /mnt"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the plan lacks %q:\n%s", want, shown)
		}
	}
	luks, _ := p.Output["luks"].([]any)
	if len(luks) != 1 || !strings.Contains(moduletest.FormatPlan(p), `"key_file":"/etc/secrets/initrd/nixos.key","mapper":"/dev/mapper/nixos","name":"nixos"`) {
		t.Errorf("output luks: %v", p.Output["luks"])
	}
	got := h.sh(t, `blkid -p -o value -s TYPE /dev/sda3; blkid -p -o value -s LABEL /dev/mapper/nixos; stat -c '%a' /mnt/etc/secrets/initrd/nixos.key; cat /mnt/etc/secrets/initrd/nixos.key; echo; findmnt -n -o TARGET /mnt/boot`)
	if want := "crypto_LUKS\nnixos\n400\n" + secret + "\n/mnt/boot\n"; got != want {
		t.Errorf("the host holds:\n%s\nwant:\n%s", got, want)
	}

	// Closed, as after a reboot of the installer: opened again, with the
	// files it holds.
	h.sh(t, `echo kept > /mnt/kept && umount /mnt/boot /mnt && cryptsetup close nixos`)
	again, err := h.check(t, m)
	if err != nil {
		t.Fatal(err)
	}
	if plan := moduletest.FormatPlan(again); strings.Contains(plan, "luksFormat") || !strings.Contains(plan, "open the LUKS volume on /dev/sda3") {
		t.Errorf("the plan for a closed volume:\n%s", plan)
	}
	if _, err := m.Apply(context.Background(), h, again); err != nil {
		t.Fatal(err)
	}
	if got := h.sh(t, `cat /mnt/kept`); got != "kept\n" {
		t.Errorf("the reopened volume holds %q: it was formatted again", got)
	}
	if after, err := h.check(t, m); err != nil || after.Changed() {
		t.Errorf("after reopening: %v\n%s", err, moduletest.FormatPlan(after))
	}

	// A wrong key opens nothing.
	h.sh(t, `umount /mnt/boot /mnt && cryptsetup close nixos`)
	wrong := filepath.Join(dir, "wrong.key")
	if err := os.WriteFile(wrong, []byte("not the key"), 0o600); err != nil {
		t.Fatal(err)
	}
	mw := build(t, args(wrong))
	pw, err := h.check(t, mw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mw.Apply(context.Background(), h, pw); err == nil || !strings.Contains(err.Error(), "cryptsetup open") {
		t.Errorf("a wrong key: %v", err)
	}
	if got := h.sh(t, `ls /dev/mapper 2>/dev/null; findmnt -n /mnt || true`); strings.TrimSpace(got) != "" {
		t.Errorf("a wrong key left %q", got)
	}
}
