package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim"
)

// The 2024 path with generate_host_key and extra_files: the installed
// system boots with the key nixbook generated and pinned before the reboot
// (no "host key replaced" at the final boot), and holds the extra files
// with their owners and modes (under /root, which the simulated disk boot
// mounts from the installed root).
func TestInstallPinnedKeyAndExtraFiles(t *testing.T) {
	f := start(t, 1)
	extra := t.TempDir()
	const secret = "AGE-SECRET-KEY-1SIMULATED"
	if err := os.MkdirAll(filepath.Join(extra, "root/.config/sops/age"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(extra, "root/.config/sops/age/keys.txt"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-e", "fs_layout=ext4", "-e", "generate_host_key=true", "-e", "extra_files=" + extra}

	r := f.nixbook(t, "install.yml", args...)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	if m := f.Mode("ks1"); m != sim.ModeDisk {
		t.Fatalf("ks1 is in %s mode: %+v", m, f.Status("ks1"))
	}
	if strings.Contains(r.out, "host key replaced") {
		t.Errorf("a host key was replaced; the final key should have been pinned:\n%s", r.out)
	}
	if !strings.Contains(r.out, "pinned the host key nixbook generated") {
		t.Errorf("no pin notice:\n%s", r.out)
	}
	if strings.Contains(r.out, secret) {
		t.Errorf("the secret is in the output")
	}
	if rec, live := f.recordedKey(t, "ks1"), f.liveKey(t, "ks1"); rec != live {
		t.Errorf("recorded %s, live %s", rec, live)
	}
	kept := filepath.Join(filepath.Dir(f.knownHosts), "host-keys", "ks1", "ssh_host_ed25519_key")
	if st, err := os.Stat(kept); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("kept key %s: %v, %v", kept, st, err)
	}
	if got := f.sh(t, "ks1", "stat -c '%a %u' /root/.config/sops/age /root/.config/sops/age/keys.txt && cat /root/.config/sops/age/keys.txt"); got != "700 0\n600 0\n"+secret {
		t.Errorf("extra files on the installed system:\n%s", got)
	}
	logs, err := os.ReadFile(filepath.Join(f.logs, "ks1.log"))
	if err == nil && strings.Contains(string(logs), secret) {
		t.Errorf("the secret is in the host's log")
	}
}
