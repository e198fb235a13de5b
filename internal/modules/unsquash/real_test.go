package unsquash

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/sim/payload"
	"github.com/nixbook/nixbook/sim/simtest"
)

// payloadSquashfs is the simulated fleet's ISO's nix-store.squashfs, taken
// out of the ISO with xorriso, with the payload it comes from.
func payloadSquashfs(t *testing.T) (string, *payload.Payload) {
	t.Helper()
	p := simtest.Payload(t)
	dst := filepath.Join(t.TempDir(), "nix-store.squashfs")
	out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", p.ISO.Path, "-extract", "/nix-store.squashfs", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	return dst, p
}

func duBytes(t *testing.T, dir string) int64 {
	t.Helper()
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUnsquashPayloadStore extracts the payload ISO's store for real into
// a directory and runs the contract suite; the extracted store holds the
// installer system the chroot module boots.
func TestUnsquashPayloadStore(t *testing.T) {
	squash, p := payloadSquashfs(t)
	setup := func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
		return fmt.Sprintf("src: %s\nroot: %s\n", squash, filepath.Join(dir, "rescue")), moduletest.NewLocalHost(t)
	}
	moduletest.Run(t, Spec, setup)

	ctx := context.Background()
	dir := t.TempDir()
	args, h := setup(t, dir)
	m := moduletest.New(t, Spec, args)
	plan, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Apply(ctx, h, plan)
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "rescue", "nix", "store")
	if _, err := os.Stat(filepath.Join(store, path.Base(p.System), "init")); err != nil {
		t.Errorf("the installer system's init is not in the extracted store: %v", err)
	}
	marker, err := os.ReadFile(filepath.Join(store, MarkerName))
	want := fmt.Sprint(out["sha256"])
	if err != nil || strings.TrimSpace(string(marker)) != want || len(want) != 64 {
		t.Errorf("marker = %q (%v), want the image's sha256 %q", marker, err, want)
	}
	// The estimate is meant to err on the safe side, but not wildly.
	estimate, _ := out["size"].(int64)
	actual := duBytes(t, store)
	t.Logf("estimated %d bytes, extracted store takes %d (du)", estimate, actual)
	if estimate < actual || estimate > 2*actual {
		t.Errorf("estimate %d for a store that takes %d", estimate, actual)
	}

	// A run cut short: the marker is gone, some files too; the rerun puts
	// everything back.
	os.Remove(filepath.Join(store, MarkerName))
	os.RemoveAll(filepath.Join(store, path.Base(p.System)))
	plan, err = m.Check(ctx, h.ReadOnly())
	if err != nil || !plan.Changed() {
		t.Fatalf("check after a cut-short run: %v, changed %v", err, plan.Changed())
	}
	if _, err := m.Apply(ctx, h, plan); err != nil {
		t.Fatalf("rerun over a partial extraction: %v", err)
	}
	if _, err := os.Stat(filepath.Join(store, path.Base(p.System), "init")); err != nil {
		t.Errorf("the rerun did not restore the system: %v", err)
	}
}

// TestUnsquashRefusesASmallPartition puts the root on a 2 MiB tmpfs, in a
// private mount namespace: the check fails with the sizes, before anything
// is written.
func TestUnsquashRefusesASmallPartition(t *testing.T) {
	if !moduletest.InPrivateMounts(t) {
		return
	}
	squash, _ := payloadSquashfs(t)
	root := filepath.Join(t.TempDir(), "rescue")
	os.MkdirAll(root, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", root).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	defer exec.Command("umount", root).Run()
	h := moduletest.NewLocalHost(t)
	m := moduletest.New(t, Spec, fmt.Sprintf("src: %s\nroot: %s\n", squash, root))
	_, err := m.Check(context.Background(), h.ReadOnly())
	if err == nil {
		t.Fatal("check passed on a 2 MiB root")
	}
	t.Logf("check: %v", err)
	for _, want := range []string{"unpacking nix-store.squashfs requires about", root + " has 2.0 MiB available", "more space than the rescue system has"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("the check wrote into the root: %v", entries)
	}
}
