package install

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/modules"
)

// keeperMachine is the fake machine with the runner's KeyKeeper: a state
// directory, and a known_hosts reduced to the machine's known key.
type keeperMachine struct {
	*machine
	dir  string
	pins []string
}

var _ modules.KeyKeeper = (*keeperMachine)(nil)

func (k *keeperMachine) StateDir() string { return k.dir }

func (k *keeperMachine) PinHostKey(key ssh.PublicKey) ([]ssh.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	pinned := "pinned:" + ssh.FingerprintSHA256(key)
	k.KnowKey(pinned)
	k.pins = append(k.pins, pinned)
	k.runs = append(k.runs, "(pin the host key in known_hosts)")
	return []ssh.PublicKey{}, nil
}

// bootsInstalledKey boots a system whose key is the one installed under
// /mnt (the fake has no disk: the file stays in its map).
func (k *keeperMachine) bootsInstalledKey(t *testing.T) {
	k.bootTarget = func() system {
		next := installedNixOS
		pub, ok := k.files["/mnt/"+hostKeyFile+".pub"]
		if !ok {
			return next
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
		if err != nil {
			t.Errorf("installed public key: %v", err)
			return next
		}
		next.HostKey = "pinned:" + ssh.FingerprintSHA256(key)
		return next
	}
}

func TestGenerateHostKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var fingerprint string
	for run := 1; run <= 2; run++ {
		k := &keeperMachine{machine: newMachine(kexecInstaller), dir: dir}
		rescueLayout(k.machine)
		withConfig(k.machine)
		k.dirs["/mnt"] = true
		k.bootsInstalledKey(t)
		mod := testModule(t, "generate_host_key: true")
		p, err := mod.Check(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mod.Apply(ctx, k, p); err != nil {
			t.Fatalf("%v\n%s", err, k.AllLogs())
		}
		keyFile := hostKeyPath(dir, "ks1")
		st, err := os.Stat(keyFile)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("kept key: %v, %v", st, err)
		}
		if dst, err := os.Stat(filepath.Dir(keyFile)); err != nil || dst.Mode().Perm() != 0o700 {
			t.Errorf("key folder: %v, %v", dst, err)
		}
		priv, _ := os.ReadFile(keyFile)
		if k.files["/mnt/"+hostKeyFile] != string(priv) {
			t.Errorf("the installed key is not the kept one")
		}
		// Pinned before the reboot, so the final boot replaced no key.
		runs := strings.Join(k.commands(), "\n")
		pin, reboot := strings.Index(runs, "(pin the host key"), strings.Index(runs, "reboot'")
		if pin < 0 || reboot < 0 || pin > reboot {
			t.Errorf("pin at %d, reboot at %d:\n%s", pin, reboot, runs)
		}
		if len(k.KeyChanges()) != 0 {
			t.Errorf("host key replaced at the final boot: %q", k.KeyChanges())
		}
		if strings.Contains(k.AllLogs(), string(priv)) {
			t.Errorf("the private key is in the log")
		}
		// A rerun installs the same key.
		if run == 1 {
			fingerprint = k.pins[0]
		} else if k.pins[0] != fingerprint {
			t.Errorf("run 2 pinned %s, run 1 %s", k.pins[0], fingerprint)
		}
	}
}

func TestGenerateHostKeyNeedsState(t *testing.T) {
	m := newMachine(kexecInstaller)
	rescueLayout(m)
	withConfig(m)
	mod := testModule(t, "generate_host_key: true\nstage: system")
	p, err := mod.Check(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.Apply(context.Background(), m, p); err == nil || !strings.Contains(err.Error(), "keeps no state on the controller") {
		t.Fatalf("error %v", err)
	}
	for _, c := range m.commands() {
		if strings.HasPrefix(c, "nixos-install") {
			t.Errorf("installed without the key")
		}
	}
}

func TestExtraFiles(t *testing.T) {
	src := t.TempDir()
	const secret = "AGE-SECRET-KEY-1QQQQ"
	if err := os.MkdirAll(filepath.Join(src, "var/lib/sops-nix"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "var/lib/sops-nix/key.txt"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("key.txt", filepath.Join(src, "var/lib/sops-nix/current")); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	owner := func(s string) string { return strings.ReplaceAll(s, "U:G", strconv.Itoa(uid)+":"+strconv.Itoa(gid)) }

	m := newMachine(kexecInstaller)
	rescueLayout(m)
	withConfig(m)
	m.dirs["/mnt"] = true
	mod := testModule(t, "stage: system\nextra_files: "+src)
	p, err := mod.Check(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Changes[0].Sensitive || !strings.Contains(p.Changes[0].Summary, "(5 entries)") {
		t.Errorf("plan: %+v", p.Changes[0])
	}
	if _, err := mod.Apply(context.Background(), m, p); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"mkdir -p /mnt/var", owner("chown U:G /mnt/var"), "chmod 700 /mnt/var",
		"mkdir -p /mnt/var/lib", owner("chown U:G /mnt/var/lib"), "chmod 700 /mnt/var/lib",
		"mkdir -p /mnt/var/lib/sops-nix", owner("chown U:G /mnt/var/lib/sops-nix"), "chmod 700 /mnt/var/lib/sops-nix",
		"ln -sfn key.txt /mnt/var/lib/sops-nix/current", owner("chown -h U:G /mnt/var/lib/sops-nix/current"),
		owner("chown U:G /mnt/var/lib/sops-nix/key.txt"), "chmod 600 /mnt/var/lib/sops-nix/key.txt",
		"mkdir -p /mnt/var/lib/nixbook",
	}
	var got []string
	for _, c := range m.commands() {
		if strings.Contains(c, "/mnt/var/") || strings.HasSuffix(c, "/mnt/var") {
			got = append(got, c)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m.files["/mnt/var/lib/sops-nix/key.txt"] != secret {
		t.Errorf("the key was not copied")
	}
	if strings.Contains(m.AllLogs(), secret) {
		t.Errorf("the secret is in the log")
	}
	if i, j := indexOf(m.commands(), "chmod 600 /mnt/var/lib/sops-nix/key.txt"), indexOf(m.commands(), "nixos-install --root /mnt --no-root-passwd"); i < 0 || j < i {
		t.Errorf("extra files at %d, nixos-install at %d", i, j)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
