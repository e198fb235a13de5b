package unsquash

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

var update = flag.Bool("update", false, "rewrite golden files")

var line = moduletest.Line

const (
	src    = "/root/image/nix-store.squashfs"
	dest   = "/root/rescue/nix/store"
	sum    = "7d9c0b4b0c3c49a3a5e3a1c0c7e4b0c8a2b5d9e1f3a4c6b8d0e2f4a6c8b0d2e4"
	device = "/dev/disk/by-label/nixos-rescue"
)

// listing is `unsquashfs -lls` of a store: a file of 1 GiB, small files,
// directories and links long and short.
var listing = `Parallel unsquashfs: Using 4 processors
9 inodes (8200 blocks) to write

drwxr-xr-x root/root               112 1970-01-01 00:00 squashfs-root
drwxr-xr-x root/root                65 1970-01-01 00:00 squashfs-root/abc-linux-6.1
-r--r--r-- root/root        1073741824 1970-01-01 00:00 squashfs-root/abc-linux-6.1/bzImage
-r--r--r-- root/root                10 1970-01-01 00:00 squashfs-root/abc-linux-6.1/version
lrwxrwxrwx root/root                 4 1970-01-01 00:00 squashfs-root/abc-linux-6.1/sh -> bash
lrwxrwxrwx root/root                79 1970-01-01 00:00 squashfs-root/abc-linux-6.1/long -> /nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a-rather-long-name-that-is-not-inline
-r--r--r-- root/root             10000 1970-01-01 00:00 squashfs-root/nix-path-registration
crw-r--r-- root/root             1,  3 1970-01-01 00:00 squashfs-root/null
-rw-r--r-- root/root                 0 1970-01-01 00:00 squashfs-root/empty
`

func mounts(extra string) string {
	return `TARGET="/" SOURCE="tmpfs" FSTYPE="tmpfs" FSROOT="/" OPTIONS="rw"
TARGET="/root/image" SOURCE="/dev/loop0" FSTYPE="iso9660" FSROOT="/" OPTIONS="ro"
` + extra
}

// rescue: the ISO is mounted, the rescue partition mounted at the root,
// unsquashfs installed, 2 GiB free, nothing extracted yet.
func rescue() *moduletest.ScriptedHost {
	return &moduletest.ScriptedHost{
		Files: map[string]string{},
		Probes: map[string]moduletest.Reply{
			line(hostfs.MountsArgv()...):                                   {Stdout: mounts(`TARGET="/root/rescue" SOURCE="/dev/sda4" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"` + "\n")},
			line("readlink", "-m", "--", device):                           {Stdout: "/dev/sda4\n"},
			line("stat", "-c", "%s\t%F\t%n", "--", src):                    {Stdout: "1048576000\tregular file\t" + src + "\n"},
			line("sha256sum", "--", src):                                   {Stdout: sum + "  " + src + "\n"},
			line("which", "unsquashfs"):                                    {Stdout: "/usr/bin/unsquashfs\n"},
			line("unsquashfs", "-lls", src):                                {Stdout: listing},
			line("stat", "-f", "-c", "%a %S %d", "--", dest):               moduletest.Missing(dest),
			line("stat", "-f", "-c", "%a %S %d", "--", "/root/rescue/nix"): moduletest.Missing("/root/rescue/nix"),
			line("stat", "-f", "-c", "%a %S %d", "--", "/root/rescue"):     {Stdout: "524288 4096 131061\n"},
			line("stat", "-c", "%s\t%F\t%n", "--", dest):                   moduletest.Missing(dest),
		},
	}
}

func TestCheckGolden(t *testing.T) {
	tests := []struct {
		name  string
		args  string
		setup func(h *moduletest.ScriptedHost)
	}{
		{name: "extract", args: "device: " + device},
		{
			name: "fresh-rescue",
			args: "device: " + device,
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: mounts("")}
				h.Probes[line("which", "unsquashfs")] = moduletest.Reply{Exit: 1}
			},
		},
		{
			name: "too-small",
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line("stat", "-f", "-c", "%a %S %d", "--", "/root/rescue")] = moduletest.Reply{Stdout: "262144 4096 131061\n"}
			},
		},
		{
			name: "too-few-inodes",
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line("stat", "-f", "-c", "%a %S %d", "--", "/root/rescue")] = moduletest.Reply{Stdout: "524288 4096 5\n"}
			},
		},
		{
			name: "resume-cut-short",
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line("stat", "-f", "-c", "%a %S %d", "--", "/root/rescue")] = moduletest.Reply{Stdout: "200000 4096 131000\n"}
				h.Probes[line("stat", "-f", "-c", "%a %S %d", "--", dest)] = moduletest.Reply{Stdout: "200000 4096 131000\n"}
				h.Probes[line("stat", "-c", "%s\t%F\t%n", "--", dest)] = moduletest.Reply{Stdout: "4096\tdirectory\t" + dest + "\n"}
				h.Probes[line("du", "-s", "-x", "-B1", "--", dest)] = moduletest.Reply{Stdout: "900000000\t" + dest + "\n"}
				h.Probes[line("du", "-s", "-x", "--inodes", "--", dest)] = moduletest.Reply{Stdout: "5\t" + dest + "\n"}
			},
		},
		{name: "done", args: "device: " + device, setup: func(h *moduletest.ScriptedHost) { h.Files[dest+"/"+MarkerName] = sum + "\n" }},
		{
			name: "other-image-extracted",
			setup: func(h *moduletest.ScriptedHost) {
				h.Files[dest+"/"+MarkerName] = strings.Repeat("0", 64) + "\n"
			},
		},
		{
			name: "iso-not-there-yet",
			args: "device: " + device,
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: `TARGET="/" SOURCE="tmpfs" FSTYPE="tmpfs" FSROOT="/" OPTIONS="rw"` + "\n"}
				h.Probes[line("stat", "-c", "%s\t%F\t%n", "--", src)] = moduletest.Missing(src)
				h.Probes[line("which", "unsquashfs")] = moduletest.Reply{Exit: 1}
			},
		},
		{
			name: "done-iso-gone",
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line("stat", "-c", "%s\t%F\t%n", "--", src)] = moduletest.Missing(src)
				h.Files[dest+"/"+MarkerName] = sum + "\n"
			},
		},
		{
			name: "root-taken",
			args: "device: " + device,
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: mounts(`TARGET="/root/rescue" SOURCE="/dev/nvme0n1p2" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"` + "\n")}
				h.Probes[line("readlink", "-m", "--", "/dev/nvme0n1p2")] = moduletest.Reply{Stdout: "/dev/nvme0n1p2\n"}
			},
		},
		{
			name: "by-id-device-and-own-paths",
			args: "device: /dev/disk/by-id/nvme-SAMSUNG_MZVL2512_S123-part4\nroot: /srv/rescue\nsrc: /srv/iso/nix-store.squashfs\ndest: /srv/rescue/nix/store",
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes = map[string]moduletest.Reply{
					line(hostfs.MountsArgv()...):                                          {Stdout: `TARGET="/" SOURCE="tmpfs" FSTYPE="tmpfs" FSROOT="/" OPTIONS="rw"` + "\n"},
					line("stat", "-c", "%s\t%F\t%n", "--", "/srv/iso/nix-store.squashfs"): {Stdout: "1\tregular file\t/srv/iso/nix-store.squashfs\n"},
					line("sha256sum", "--", "/srv/iso/nix-store.squashfs"):                {Stdout: sum + "  /srv/iso/nix-store.squashfs\n"},
					line("which", "unsquashfs"):                                           {Stdout: "/usr/bin/unsquashfs\n"},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := rescue()
			if tt.setup != nil {
				tt.setup(h)
			}
			m := moduletest.New(t, Spec, tt.args)
			p, err := moduletest.CheckScripted(context.Background(), m, h)
			got := moduletest.Outcome(p, err, h, moduletest.FormatPlan)
			moduletest.Golden(t, filepath.Join("testdata", tt.name+".golden"), got, *update)
		})
	}
}

func TestEstimateNeed(t *testing.T) {
	got, err := EstimateNeed([]byte(listing))
	if err != nil {
		t.Fatal(err)
	}
	// 1 GiB + 4 blocks of small files + 2 directory blocks + 1 long link,
	// plus 2% of metadata; 9 entries.
	bytes := int64(1<<30 + 7*4096)
	want := Need{Bytes: bytes + bytes/50, Inodes: 9}
	if got != want {
		t.Errorf("EstimateNeed = %+v, want %+v", got, want)
	}
	if _, err := EstimateNeed([]byte("Parallel unsquashfs: Using 4 processors\n")); err == nil {
		t.Error("an empty listing gave no error")
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string
		dest    string
	}{
		{args: "", dest: "/root/rescue/nix/store"},
		{args: "root: /srv/r/", dest: "/srv/r/nix/store"},
		{args: "root: /", wantErr: "would put the store on the rescue system itself"},
		{args: "root: /mnt/rescue", wantErr: "under /mnt"},
		{args: "root: rescue", wantErr: "want an absolute path"},
		{args: "dest: /nix/store", wantErr: "the rescue system's own"},
		{args: "device: sda4", wantErr: "want an absolute path"},
	}
	for _, tt := range tests {
		m, err := Spec.New(moduletest.Decoder(tt.args))
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.args, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.args, err)
		default:
			if got := m.(*module).args.Dest; got != tt.dest {
				t.Errorf("%q: dest = %s, want %s", tt.args, got, tt.dest)
			}
		}
	}
}

func ExampleEstimateNeed() {
	need, _ := EstimateNeed([]byte("-r--r--r-- root/root 5000 1970-01-01 00:00 squashfs-root/a\n"))
	fmt.Println(need.Bytes, need.Inodes)
	// Output: 8355 1
}
