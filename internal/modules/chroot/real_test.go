package chroot

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/modules/unsquash"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
	"github.com/nixbook/nixbook/sim/payload"
	"github.com/nixbook/nixbook/sim/simtest"
)

// mountsUnder lists this process's mount points under dir, deepest last.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		target := strings.ReplaceAll(fields[4], `\040`, " ")
		if target == dir || strings.HasPrefix(target, dir+"/") {
			out = append(out, target)
		}
	}
	return out
}

// detachAll lazily unmounts everything under dir, deepest first, and stops
// the test process if anything is left: a removal of the directory must
// never walk into the bound /dev.
func detachAll(t *testing.T, dir string) {
	m := mountsUnder(t, dir)
	for i := len(m) - 1; i >= 0; i-- {
		exec.Command("umount", "-l", m[i]).Run()
	}
	if left := mountsUnder(t, dir); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "mounts left under %s, not removing it: %v\n", dir, left)
		os.Exit(3)
	}
}

// storeRoot unpacks the payload ISO's store into dir/rescue with the
// unsquash module, as the playbook does before chroot, and makes sure
// that nothing stays mounted under dir when the test ends.
func storeRoot(t *testing.T, p *payload.Payload, dir string) string {
	t.Helper()
	t.Cleanup(func() { detachAll(t, dir) })
	iso := filepath.Join(dir, "image")
	out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", p.ISO.Path, "-extract", "/", iso).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	root := filepath.Join(dir, "rescue")
	h := moduletest.NewLocalHost(t)
	h.Logf = nil
	m := moduletest.New(t, unsquash.Spec, fmt.Sprintf("src: %s\nroot: %s\n", filepath.Join(iso, "nix-store.squashfs"), root))
	plan, err := m.Check(context.Background(), h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(context.Background(), h, plan); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestChrootBootsTheISOSystem prepares a root from the payload ISO's store
// for real, in a private mount namespace with a tmpfs standing in for the
// target at /mnt: the contract suite, then commands through the runner's
// chroot wrapper with the NixOS environment, a write to /mnt from inside,
// and state: absent, which leaves the host's own mounts alone.
func TestChrootBootsTheISOSystem(t *testing.T) {
	if !moduletest.InPrivateMounts(t) {
		return
	}
	p := simtest.Payload(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "target", "/mnt").CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on /mnt in the private namespace: %v: %s", err, out)
	}
	moduletest.Run(t, Spec, func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
		return "root: " + storeRoot(t, p, dir), moduletest.NewLocalHost(t)
	})

	ctx := context.Background()
	dir := t.TempDir()
	root := storeRoot(t, p, dir)
	h := moduletest.NewLocalHost(t)
	m := moduletest.New(t, Spec, "root: "+root)
	plan, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, h, plan); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(h.Logs(), func(l string) bool { return strings.Contains(l, "running activation script") }) {
		t.Errorf("the init's output did not reach the log: %q", h.Logs())
	}

	in := transport.Chroot(&local.Conn{}, root)
	run := func(args ...string) string {
		t.Helper()
		res, err := in.Run(ctx, transport.Cmd{Args: args})
		if err != nil {
			t.Fatalf("inside the root: %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(res.Stdout))
	}
	if got := run("nixos-version"); !strings.HasPrefix(got, p.FullVersion) {
		t.Errorf("nixos-version = %q, want %s", got, p.FullVersion)
	}
	if got := run("readlink", "/run/current-system"); got != p.System {
		t.Errorf("/run/current-system -> %q, want %s", got, p.System)
	}
	env := run("sh", "-c", `echo "$PATH|$NIX_PATH|$HOME"`)
	if !strings.Contains(env, "/run/current-system/sw/bin") || !strings.Contains(env, "nixos-config=/etc/nixos/configuration.nix") || !strings.HasSuffix(env, "|/root") {
		t.Errorf("environment inside: %q", env)
	}
	if conf := run("cat", "/etc/nix/nix.conf"); !strings.Contains(conf, "\nsandbox = false\n") || strings.Contains(conf, "sandbox = true") {
		t.Errorf("nix.conf inside:\n%s", conf)
	}
	if got := run("cat", "/etc/resolv.conf"); !strings.Contains(got, "nameserver") {
		t.Errorf("resolv.conf inside: %q", got)
	}
	run("test", "-c", "/dev/null")
	run("test", "-e", "/proc/self/status")
	run("test", "-d", "/sys/class")
	// The target the installer writes to is the host's /mnt.
	run("nixos-generate-config", "--root", "/mnt")
	if _, err := os.Stat("/mnt/etc/nixos/hardware-configuration.nix"); err != nil {
		t.Errorf("nixos-generate-config inside the root did not write to the host's /mnt: %v", err)
	}
	if again, err := m.Check(ctx, h.ReadOnly()); err != nil || again.Changed() {
		t.Fatalf("check after apply: %v\n%s", err, moduletest.FormatPlan(again))
	}

	off := moduletest.New(t, Spec, "root: "+root+"\nstate: absent")
	plan, err = off.Check(ctx, h.ReadOnly())
	if err != nil || !plan.Changed() {
		t.Fatalf("absent: %v, changed %v", err, plan.Changed())
	}
	if _, err := off.Apply(ctx, h, plan); err != nil {
		t.Fatal(err)
	}
	if left := mountsUnder(t, root); len(left) > 0 {
		t.Errorf("still mounted after state: absent: %v", left)
	}
	if again, err := off.Check(ctx, h.ReadOnly()); err != nil || again.Changed() {
		t.Errorf("absent again: %v\n%s", err, moduletest.FormatPlan(again))
	}
	// Nothing of the host went with it.
	for _, target := range []string{"/mnt", "/dev", "/proc", "/sys"} {
		if out, err := exec.Command("findmnt", "-n", target).Output(); err != nil || len(out) == 0 {
			t.Errorf("the host's %s is no longer mounted", target)
		}
	}
	if _, err := os.Stat("/mnt/etc/nixos/hardware-configuration.nix"); err != nil {
		t.Errorf("the target's files went with the chroot: %v", err)
	}
}
