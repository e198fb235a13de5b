package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/apt"
	"github.com/nixbook/nixbook/internal/heavytest"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// shared builds the payload once for the package's tests.
var shared struct {
	once sync.Once
	dir  string
	p    *Payload
	cold time.Duration
	err  error
}

func built(t *testing.T) *Payload {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "payload-test-")
		if shared.err != nil {
			return
		}
		start := time.Now()
		shared.p, shared.err = Build(context.Background(), Options{Dir: shared.dir, Version: "24.05"})
		shared.cold = time.Since(start)
	})
	if shared.err != nil {
		t.Fatalf("Build: %v", shared.err)
	}
	return shared.p
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func requireRoot(t *testing.T) {
	t.Helper()
	heavytest.Root(t, "chroot, mount namespaces and loop devices")
	requireCommands(t, map[string]string{
		"unshare": "util-linux", "setpriv": "util-linux", "losetup": "mount",
		"sfdisk": "fdisk", "mkfs.ext4": "e2fsprogs", "unsquashfs": "squashfs-tools",
	})
}

// requireCommands installs the Debian packages of missing test tools.
func requireCommands(t *testing.T, cmdToPkg map[string]string) {
	t.Helper()
	var missing []string
	for cmd, pkg := range cmdToPkg {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return
	}
	heavytest.Root(t, fmt.Sprintf("%v, installed with apt", missing))
	if err := apt.Install(context.Background(), missing...); err != nil {
		t.Fatal(err)
	}
}

func TestBuildIsCachedAndReproducible(t *testing.T) {
	p := built(t)
	t.Logf("cold Build: %v (ISO %d bytes, kexec tarball %d bytes)", shared.cold, p.ISO.Size, p.Kexec.Size)

	start := time.Now()
	again, err := Build(context.Background(), Options{Dir: shared.dir})
	if err != nil {
		t.Fatal(err)
	}
	warm := time.Since(start)
	t.Logf("warm Build: %v", warm)
	if *again != *p {
		t.Errorf("warm Build = %+v, want the cached %+v", again, p)
	}
	if warm > 2*time.Second {
		t.Errorf("warm Build took %v; the cache should make it fast", warm)
	}

	// The same inputs in another directory give the same bytes.
	other, err := Build(context.Background(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if other.ISO.SHA256 != p.ISO.SHA256 || other.Kexec.SHA256 != p.Kexec.SHA256 {
		t.Errorf("rebuild differs: ISO %s vs %s, kexec %s vs %s", other.ISO.SHA256, p.ISO.SHA256, other.Kexec.SHA256, p.Kexec.SHA256)
	}
	// Another release is another payload.
	older, err := Build(context.Background(), Options{Dir: shared.dir, Version: "22.11"})
	if err != nil {
		t.Fatal(err)
	}
	if older.ISO.SHA256 == p.ISO.SHA256 || !strings.Contains(older.ISO.Name, "22.11") || older.Label != "nixos-minimal-22.11-x86_64" {
		t.Errorf("22.11 payload = %+v", older.ISO)
	}
	for _, a := range []Artifact{p.ISO, p.Kexec} {
		data, err := os.ReadFile(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != a.SHA256 || int64(len(data)) != a.Size {
			t.Errorf("%s: sha256/size do not match the file", a.Name)
		}
	}
	if _, err := Build(context.Background(), Options{Dir: shared.dir, Version: "24.5"}); err == nil {
		t.Error("Build accepted version 24.5")
	}
}

func TestISOHoldsANixOSStore(t *testing.T) {
	p := built(t)
	files := run(t, "xorriso", "-indev", p.ISO.Path, "-find", "/", "-type", "f")
	for _, want := range []string{"'/nix-store.squashfs'", "'/boot/bzImage'", "'/boot/initrd'", "'/isolinux/isolinux.cfg'", "'/EFI/boot/bootx64.efi'", "'/version.txt'"} {
		if !strings.Contains(files, want) {
			t.Errorf("ISO lacks %s:\n%s", want, files)
		}
	}
	if pvd := run(t, "xorriso", "-indev", p.ISO.Path, "-pvd_info"); !regexp.MustCompile(`Volume Id\s*: nixos-minimal-24.05-x86_64`).MatchString(pvd) {
		t.Errorf("volume label:\n%s", pvd)
	}
	squashfs := filepath.Join(t.TempDir(), "nix-store.squashfs")
	run(t, "xorriso", "-osirrox", "on", "-indev", p.ISO.Path, "-extract", "/nix-store.squashfs", squashfs)
	listing := run(t, "unsquashfs", "-l", squashfs)
	for _, pattern := range []string{
		`/[0-9a-z]{32}-nixos-system-nixos-24\.05\.[0-9]{8}\.[0-9a-f]{12}/init\n`,
		`/[0-9a-z]{32}-bash-static-[0-9.]+/bin/bash\n`,
		`/[0-9a-z]{32}-busybox-[0-9.]+/bin/busybox\n`,
		`/[0-9a-z]{32}-busybox-[0-9.]+/bin/mount\n`,
		`/[0-9a-z]{32}-openssh-[0-9.p]+/bin/ssh-keygen\n`,
		`/[0-9a-z]{32}-nixos-generate-config/bin/nixos-generate-config\n`,
		`/[0-9a-z]{32}-nixos-install/bin/nixos-install\n`,
		`/[0-9a-z]{32}-nix-2\.18\.1/bin/nix-channel\n`,
		`/[0-9a-z]{32}-nix-2\.18\.1/bin/nix-env\n`,
		`/[0-9a-z]{32}-nix\.conf\n`,
	} {
		if !regexp.MustCompile(pattern).MatchString(listing) {
			t.Errorf("nix-store.squashfs has no path like %s", pattern)
		}
	}

	// What the 2015 procedure finds with find(1) must be unambiguous.
	unpacked := filepath.Join(t.TempDir(), "nix")
	if err := os.MkdirAll(unpacked, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "unsquashfs", "-q", "-d", filepath.Join(unpacked, "store"), squashfs)
	inits := strings.Fields(run(t, "find", unpacked, "-type", "f", "-path", "*nixos*/init"))
	if len(inits) != 1 {
		t.Fatalf("find -path '*nixos*/init' = %q, want one file", inits)
	}
	bashes := strings.Fields(run(t, "find", unpacked, "-type", "f", "-path", "*/bin/bash"))
	if len(bashes) != 1 || !strings.Contains(bashes[0], "-bash-static-") {
		t.Errorf("find -path '*/bin/bash' = %q, want bash-static only", bashes)
	}
	init, err := os.ReadFile(inits[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(init)), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "exec systemd" {
		t.Errorf("init ends with %q, want exec systemd", last)
	}
	if !strings.Contains(string(init), "systemConfig="+p.System+"\n") || !strings.Contains(string(init), `PATH="`+p.System+`/sw/bin"`) {
		t.Errorf("init does not point at its system %s:\n%s", p.System, init)
	}
	confs := strings.Fields(run(t, "find", unpacked, "-type", "f", "-path", "*-nix.conf"))
	if len(confs) != 1 {
		t.Fatalf("find -path '*-nix.conf' = %q", confs)
	}
	if conf, _ := os.ReadFile(confs[0]); !bytes.Contains(conf, []byte("sandbox = true\n")) {
		t.Errorf("nix.conf has no 'sandbox = true' for the procedure to turn off:\n%s", conf)
	}
	// The store unpacked by Build for the installer mode is the same one.
	if _, err := os.Stat(filepath.Join(p.StoreDir, strings.TrimPrefix(p.System, "/nix/store/"), "init")); err != nil {
		t.Errorf("StoreDir lacks the system: %v", err)
	}
}

func TestServeAnswersRangesAndChecksums(t *testing.T) {
	p := built(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, stop, err := Serve(ctx, p, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	whole, err := os.ReadFile(p.ISO.Path)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, rangeHeader string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rangeHeader != "" {
			req.Header.Set("Range", rangeHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	resp, sum := get("/"+p.ISO.Name+".sha256", "")
	if resp.StatusCode != http.StatusOK || string(sum) != p.ISO.SHA256+"  "+p.ISO.Name+"\n" {
		t.Errorf("sha256 file = %d %q", resp.StatusCode, sum)
	}
	// A download cut half-way, resumed with a Range request, as curl -C - does.
	half := len(whole) / 2
	resp, first := get("/"+p.ISO.Name, fmt.Sprintf("bytes=0-%d", half-1))
	if resp.StatusCode != http.StatusPartialContent || len(first) != half {
		t.Fatalf("first half: %d, %d bytes", resp.StatusCode, len(first))
	}
	resp, rest := get("/"+p.ISO.Name, fmt.Sprintf("bytes=%d-", half))
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", half, len(whole)-1, len(whole)) {
		t.Fatalf("rest: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	joined := sha256.Sum256(append(first, rest...))
	if hex.EncodeToString(joined[:]) != p.ISO.SHA256 {
		t.Error("resumed download does not match the sha256")
	}
	resp, tarball := get("/"+p.Kexec.Name, "")
	kexecSum := sha256.Sum256(tarball)
	if resp.StatusCode != http.StatusOK || hex.EncodeToString(kexecSum[:]) != p.Kexec.SHA256 {
		t.Errorf("kexec tarball: %d, sha256 mismatch", resp.StatusCode)
	}
	if resp, _ := get("/nixos-unknown.iso", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown file: %d, want 404", resp.StatusCode)
	}
	head, err := http.Head(base + "/" + p.ISO.Name)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.ContentLength != p.ISO.Size || head.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("HEAD: length %d, Accept-Ranges %q", head.ContentLength, head.Header.Get("Accept-Ranges"))
	}

	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get(base + "/"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server still answers after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Errorf("stop after cancel: %v", err)
	}
}

func TestKexecTarball(t *testing.T) {
	p := built(t)
	// Readable by the unprivileged user of the "not root" case.
	dir, err := os.MkdirTemp("", "kexec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	listing := run(t, "tar", "-tvzf", p.Kexec.Path)
	for _, want := range []string{"kexec/run", "kexec/bzImage", "kexec/initrd", "kexec/ip", "kexec/kexec"} {
		if !strings.Contains(listing, want+"\n") {
			t.Errorf("tarball lacks %s:\n%s", want, listing)
		}
	}
	run(t, "tar", "-C", dir, "-xzf", p.Kexec.Path)
	// ip(8) is busybox by its name, as the real tarball ships a static one.
	if out, _ := exec.Command(filepath.Join(dir, "kexec", "ip")).CombinedOutput(); !strings.Contains(string(out), "Usage: ip ") {
		t.Errorf("kexec/ip: %s", out)
	}

	// The fleet's kexec, as the simulated host provides it.
	bin := filepath.Join(dir, "bin")
	called := filepath.Join(dir, "kexec-called")
	// Written whole or not at all: the test polls for the file.
	fake := "#!/bin/sh\necho \"$@\" > " + called + ".tmp && mv " + called + ".tmp " + called + "\n"
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "kexec"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		asUser   bool
		wantErr  bool
		wantOut  string
		wantCall bool
	}{
		{name: "root", wantOut: "machine will boot into nixos in 1s...", wantCall: true},
		{name: "not root", asUser: true, wantErr: true, wantOut: "needs to be run as root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(called)
			args := []string{filepath.Join(dir, "kexec", "run")}
			if tt.asUser {
				requireRoot(t)
				args = append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
			} else {
				heavytest.Root(t, "kexec/run, which runs as root")
			}
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "NIXBOOK_SIM_KEXEC_DELAY=1")
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr || !strings.Contains(string(out), tt.wantOut) {
				t.Fatalf("kexec/run: err %v, output %q; want error %v and %q", err, out, tt.wantErr, tt.wantOut)
			}
			// It returns at once and switches the host later, in the background.
			if _, err := os.Stat(called); err == nil {
				t.Error("kexec ran before the delay")
			}
			deadline := time.Now().Add(10 * time.Second)
			for tt.wantCall {
				if got, err := os.ReadFile(called); err == nil {
					if strings.TrimSpace(string(got)) != "--nixbook-sim-installer" {
						t.Errorf("kexec called with %q", got)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("kexec --nixbook-sim-installer was never run")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !tt.wantCall {
				time.Sleep(1500 * time.Millisecond)
				if _, err := os.Stat(called); err == nil {
					t.Error("kexec ran although kexec/run failed")
				}
			}
		})
	}
}
