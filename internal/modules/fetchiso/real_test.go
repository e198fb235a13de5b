package fetchiso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/fetch"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/sshdtest"
	"github.com/nixbook/nixbook/internal/transport"
	sshtransport "github.com/nixbook/nixbook/internal/transport/ssh"
	"github.com/nixbook/nixbook/sim/payload"
	"github.com/nixbook/nixbook/sim/simtest"
)

// isoServer serves one file on loopback, with ranges, and counts what it
// was asked. bogusLength makes HEAD announce that many bytes.
type isoServer struct {
	data        []byte
	bogusLength int64

	mu     sync.Mutex
	gets   int
	ranges []string
}

func (s *isoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead && s.bogusLength > 0 {
		w.Header().Set("Content-Length", fmt.Sprint(s.bogusLength))
		return
	}
	if r.Method == http.MethodGet {
		s.mu.Lock()
		s.gets++
		if rg := r.Header.Get("Range"); rg != "" {
			s.ranges = append(s.ranges, rg)
		}
		s.mu.Unlock()
	}
	http.ServeContent(w, r, "nixos.iso", time.Unix(1, 0), bytes.NewReader(s.data))
}

func (s *isoServer) counts() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets, append([]string(nil), s.ranges...)
}

// sshHost is a module host on a real sshd on loopback, as root.
func sshHost(t *testing.T) *moduletest.LocalHost {
	t.Helper()
	heavytest.Root(t, "root: the test sshd logs in as root")
	srv := sshdtest.Start(t, sshdtest.Options{})
	d := sshtransport.NewDialer(sshtransport.DialerOptions{
		Store:         hostkeys.New(filepath.Join(t.TempDir(), "known_hosts")),
		SSHConfigPath: "none",
	})
	t.Cleanup(func() { d.Close() })
	conn, err := d.Dial(context.Background(), srv.Target(), transport.DialOptions{})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, srv.Log())
	}
	t.Cleanup(func() { conn.Close() })
	h := moduletest.NewLocalHost(t)
	h.HostName = srv.Name
	h.Conn = conn
	return h
}

func randomData(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestDownloadOverSSH runs the download steps for real: curl and wget on
// the far side of a real SSH connection, fetching from loopback HTTP.
func TestDownloadOverSSH(t *testing.T) {
	h := sshHost(t)
	data := randomData(3<<20 + 12345)
	for _, tool := range []string{"curl", "wget"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Errorf("%s is not installed (make deps installs it)", tool)
			continue
		}
		t.Run(tool, func(t *testing.T) {
			ctx := context.Background()
			tests := []struct {
				name        string
				partial     int // bytes already in dest.part
				sum         string
				bogusLength int64 // HEAD announces this
				wantErr     []string
				wantRange   bool
			}{
				{name: "fresh", sum: hexSum(data)},
				{name: "resume", partial: 1 << 20, sum: hexSum(data), wantRange: true},
				{name: "unverified", sum: ""},
				{name: "checksum mismatch", sum: strings.Repeat("ab", 32), wantErr: []string{"got sha256 " + hexSum(data), "want " + strings.Repeat("ab", 32), "deleted"}},
				{name: "no room", sum: hexSum(data), bogusLength: 1 << 60, wantErr: []string{"1024.0 PiB", "available", "choose a dest on a larger file system"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					srv := &isoServer{data: data, bogusLength: tt.bogusLength}
					hs := httptest.NewServer(srv)
					defer hs.Close()
					dest := filepath.Join(t.TempDir(), "sub dir", "nixos.iso")
					d := fetch.Download{URL: hs.URL + "/nixos.iso", SHA256: tt.sum, Dest: dest, Tool: tool}
					if tt.partial > 0 {
						os.MkdirAll(filepath.Dir(dest), 0o755)
						if err := os.WriteFile(d.Part(), data[:tt.partial], 0o644); err != nil {
							t.Fatal(err)
						}
					}
					state, err := d.Inspect(ctx, h.ReadOnly())
					if err != nil {
						t.Fatal(err)
					}
					if d.Complete(state) || state.PartSize != int64(tt.partial) {
						t.Fatalf("state before = %+v", state)
					}
					var c modules.Change
					steps := d.Plan(&c, state)
					sum, err := steps.Run(ctx, h)
					if len(tt.wantErr) > 0 {
						if err == nil {
							t.Fatal("download succeeded")
						}
						t.Logf("error: %v", err)
						for _, w := range tt.wantErr {
							if !strings.Contains(err.Error(), w) {
								t.Errorf("error %q lacks %q", err, w)
							}
						}
						if _, serr := os.Stat(dest); !errors.Is(serr, fs.ErrNotExist) {
							t.Errorf("dest exists after a failed download: %v", serr)
						}
						if tt.bogusLength > 0 {
							if gets, _ := srv.counts(); gets != 0 {
								t.Errorf("%d downloads started although the file cannot fit", gets)
							}
						} else if _, serr := os.Stat(d.Part()); !errors.Is(serr, fs.ErrNotExist) {
							t.Errorf("the partial file is still there after a checksum mismatch")
						}
						return
					}
					if err != nil {
						t.Fatalf("download: %v\nlogs: %q", err, h.Logs())
					}
					got, err := os.ReadFile(dest)
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("dest holds %d bytes (err %v), want the %d served", len(got), err, len(data))
					}
					if tt.sum != "" && sum != tt.sum {
						t.Errorf("sum = %s, want %s", sum, tt.sum)
					}
					if _, err := os.Stat(d.Part()); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s left behind", d.Part())
					}
					if _, ranges := srv.counts(); tt.wantRange != (len(ranges) > 0) {
						t.Errorf("range requests %q, want some: %v", ranges, tt.wantRange)
					} else if tt.wantRange && ranges[0] != fmt.Sprintf("bytes=%d-", tt.partial) {
						t.Errorf("range %q, want bytes=%d-", ranges[0], tt.partial)
					}
					after, err := d.Inspect(ctx, h.ReadOnly())
					if err != nil || !d.Complete(after) {
						t.Errorf("after: %+v, %v: want complete", after, err)
					}
				})
			}
		})
	}
}

// kernelHas reports whether this kernel mounts fstype (built in or loaded).
func kernelHas(fstype string) bool {
	b, _ := os.ReadFile("/proc/filesystems")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == fstype {
			return true
		}
	}
	return false
}

// TestFetchISOPayloadISO runs the whole module on this machine in a private
// mount namespace with the simulated fleet's ISO from loopback: download,
// verify, then a read-only loop mount, or, where the kernel has no iso9660
// (as here, and in the simulated hosts that share it), the extraction
// fallback. Then the contract suite.
func TestFetchISOPayloadISO(t *testing.T) {
	if !moduletest.InPrivateMounts(t) {
		return
	}
	p := simtest.Payload(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, stop, err := payload.Serve(ctx, p, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	url := base + "/" + p.ISO.Name

	setup := func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
		mount := filepath.Join(dir, "image")
		t.Cleanup(func() { exec.Command("umount", mount).Run() })
		args := fmt.Sprintf("url: %s\nsha256: %s\ndest: %s\nmount: %s\n", url, p.ISO.SHA256, filepath.Join(dir, "nixos.iso"), mount)
		return args, moduletest.NewLocalHost(t)
	}
	moduletest.Run(t, Spec, setup)

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
	mount := filepath.Join(dir, "image")
	if kernelHas("iso9660") {
		got, err := exec.Command("findmnt", "-n", "-o", "FSTYPE,OPTIONS", mount).Output()
		if err != nil || !strings.HasPrefix(string(got), "iso9660 ro,") {
			t.Fatalf("findmnt %s = %q, %v; want a read-only iso9660", mount, got, err)
		}
	} else {
		marker, err := os.ReadFile(filepath.Join(mount, ExtractedMarker))
		if err != nil || strings.TrimSpace(string(marker)) != p.ISO.SHA256 || out["extracted"] != true {
			t.Fatalf("no iso9660 here: want the extraction recorded with the ISO's sha256; marker %q (%v), output %v", marker, err, out)
		}
	}
	squash, err := os.ReadFile(filepath.Join(mount, "nix-store.squashfs"))
	if err != nil || !bytes.HasPrefix(squash, []byte("hsqs")) {
		t.Errorf("no squashfs image at %s/nix-store.squashfs: %v", mount, err)
	}
	if again, err := m.Check(ctx, h.ReadOnly()); err != nil || again.Changed() {
		t.Fatalf("second check: %v\n%s", err, moduletest.FormatPlan(again))
	}
}

// TestFetchISOLoopMount proves the loop-mount path on a kernel without
// iso9660: the "ISO" served is a squashfs image, which mount -o loop
// recognises alike. A file replacing dest under the mount (the loop device
// keeps the deleted one) is unmounted, fetched again and mounted again.
func TestFetchISOLoopMount(t *testing.T) {
	if !moduletest.InPrivateMounts(t) {
		return
	}
	if !kernelHas("squashfs") {
		t.Skip("the kernel has no squashfs")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "nix-store.squashfs"), []byte("hsqs stand-in"), 0o444); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(t.TempDir(), "image.iso")
	if out, err := exec.Command("mksquashfs", src, image, "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	data, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(&isoServer{data: data})
	defer hs.Close()

	ctx := context.Background()
	dir := t.TempDir()
	dest, mount := filepath.Join(dir, "nixos.iso"), filepath.Join(dir, "image")
	defer exec.Command("umount", mount).Run()
	h := moduletest.NewLocalHost(t)
	m := moduletest.New(t, Spec, fmt.Sprintf("url: %s/nixos.iso\nsha256: %s\ndest: %s\nmount: %s\n", hs.URL, hexSum(data), dest, mount))
	apply := func() {
		t.Helper()
		plan, err := m.Check(ctx, h.ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Apply(ctx, h, plan); err != nil {
			t.Fatal(err)
		}
		got, err := exec.Command("findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", mount).Output()
		if err != nil || !strings.Contains(string(got), "/dev/loop") || !strings.Contains(string(got), "squashfs ro,") {
			t.Fatalf("findmnt %s = %q, %v; want a read-only loop mount", mount, got, err)
		}
		if again, err := m.Check(ctx, h.ReadOnly()); err != nil || again.Changed() {
			t.Fatalf("second check: %v\n%s", err, moduletest.FormatPlan(again))
		}
	}
	apply()

	if err := os.WriteFile(dest+".tmp", []byte("not the ISO"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dest+".tmp", dest); err != nil {
		t.Fatal(err)
	}
	plan, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	got := moduletest.FormatPlan(plan)
	for _, want := range []string{"$ umount -- " + mount, "(" + dest + " has sha256 " + hexSum([]byte("not the ISO")), "$ mount -o loop,ro"} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	apply()
	// Still one mount: the old one went first.
	if n, _ := exec.Command("findmnt", "-n", "-o", "TARGET", mount).Output(); strings.Count(string(n), "\n") != 1 {
		t.Errorf("mounts at %s: %q", mount, n)
	}
}
