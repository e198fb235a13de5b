package fetchiso

import (
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	isoURL = "https://channels.nixos.org/nixos-24.05/latest-nixos-minimal-x86_64-linux.iso"
	isoSum = "401644f71f68b4aeed7c625d3956b776ef46ad2b5dd920daa98f8b51396598f4"
	badSum = "0000000000000000000000000000000000000000000000000000000000000000"
)

var line = moduletest.Line

// rescue is a fresh rescue system: nothing downloaded, nothing mounted,
// curl and wget installed.
func rescue() *moduletest.ScriptedHost {
	return &moduletest.ScriptedHost{
		Files: map[string]string{},
		Probes: map[string]moduletest.Reply{
			line("stat", "-c", "%s\t%F\t%n", "--", "/root/nixos.iso", "/root/nixos.iso.part"): moduletest.Missing("/root/nixos.iso"),
			line(hostfs.MountsArgv()...): {Stdout: `TARGET="/" SOURCE="tmpfs" FSTYPE="tmpfs" FSROOT="/" OPTIONS="rw,relatime"
TARGET="/proc" SOURCE="proc" FSTYPE="proc" FSROOT="/" OPTIONS="rw,relatime"
TARGET="/mnt" SOURCE="/dev/sda1" FSTYPE="ext4" FSROOT="/" OPTIONS="rw,relatime"
`},
			line("which", "curl", "wget"): {Stdout: "/usr/bin/curl\n/usr/bin/wget\n"},
		},
	}
}

func withISO(h *moduletest.ScriptedHost, sum string) {
	h.Probes[line("stat", "-c", "%s\t%F\t%n", "--", "/root/nixos.iso", "/root/nixos.iso.part")] = moduletest.Reply{Stdout: "1048576000\tregular file\t/root/nixos.iso\n", Exit: 1}
	h.Probes[line("sha256sum", "--", "/root/nixos.iso")] = moduletest.Reply{Stdout: sum + "  /root/nixos.iso\n"}
}

func mounted(h *moduletest.ScriptedHost, opts string) {
	key := line(hostfs.MountsArgv()...)
	r := h.Probes[key]
	r.Stdout += `TARGET="/root/image" SOURCE="/dev/loop0" FSTYPE="iso9660" FSROOT="/" OPTIONS="` + opts + `"` + "\n"
	h.Probes[key] = r
	h.Files["/sys/block/loop0/loop/backing_file"] = "/root/nixos.iso\n"
}

func TestCheckGolden(t *testing.T) {
	tests := []struct {
		name  string
		args  string
		setup func(h *moduletest.ScriptedHost)
	}{
		{name: "fresh", args: "url: " + isoURL + "\nsha256: " + isoSum},
		{
			name: "resume-with-wget",
			args: "url: " + isoURL + "\nsha256: " + strings.ToUpper(isoSum) + "\ntool: auto",
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line("stat", "-c", "%s\t%F\t%n", "--", "/root/nixos.iso", "/root/nixos.iso.part")] = moduletest.Reply{Stdout: "52428800\tregular file\t/root/nixos.iso.part\n", Exit: 1}
				h.Probes[line("which", "curl", "wget")] = moduletest.Reply{Stdout: "/usr/bin/wget\n", Exit: 1}
			},
		},
		{name: "downloaded-not-mounted", args: "url: " + isoURL + "\nsha256: " + isoSum, setup: func(h *moduletest.ScriptedHost) { withISO(h, isoSum) }},
		{name: "done", args: "url: " + isoURL + "\nsha256: " + isoSum, setup: func(h *moduletest.ScriptedHost) { withISO(h, isoSum); mounted(h, "ro,relatime") }},
		{name: "mounted-rw", args: "url: " + isoURL + "\nsha256: " + isoSum, setup: func(h *moduletest.ScriptedHost) { withISO(h, isoSum); mounted(h, "rw,relatime") }},
		{name: "wrong-iso-mounted", args: "url: " + isoURL + "\nsha256: " + isoSum, setup: func(h *moduletest.ScriptedHost) { withISO(h, badSum); mounted(h, "ro") }},
		{
			name: "no-checksum-on-disk-partition",
			args: "url: " + isoURL + "\nchecksum: false\ndest: /root/rescue/nixos.iso\nmount: /root/iso",
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line("stat", "-c", "%s\t%F\t%n", "--", "/root/rescue/nixos.iso", "/root/rescue/nixos.iso.part")] = moduletest.Reply{Stdout: "1048576000\tregular file\t/root/rescue/nixos.iso\n"}
			},
		},
		{name: "curl-forced", args: "url: " + isoURL + "\nsha256: " + isoSum + "\ntool: curl"},
		{
			name: "curl-missing",
			args: "url: " + isoURL + "\nsha256: " + isoSum + "\ntool: curl",
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line("which", "curl", "wget")] = moduletest.Reply{Stdout: "/usr/bin/wget\n", Exit: 1}
			},
		},
		{
			name: "no-download-tool",
			args: "url: " + isoURL + "\nsha256: " + isoSum,
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line("which", "curl", "wget")] = moduletest.Reply{Exit: 1}
			},
		},
		{
			name: "mount-point-taken",
			args: "url: " + isoURL + "\nsha256: " + isoSum + "\nmount: /srv",
			setup: func(h *moduletest.ScriptedHost) {
				withISO(h, isoSum)
				key := line(hostfs.MountsArgv()...)
				r := h.Probes[key]
				r.Stdout += `TARGET="/srv" SOURCE="/dev/sdb1" FSTYPE="xfs" FSROOT="/" OPTIONS="rw"` + "\n"
				h.Probes[key] = r
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

func TestArgs(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string
	}{
		{args: "url: " + isoURL, wantErr: "sha256 is required"},
		{args: "url: " + isoURL + "\nsha256: abc", wantErr: "want 64 hexadecimal digits"},
		{args: "url: " + isoURL + "\nchecksum: false\nsha256: " + isoSum, wantErr: "drop one of them"},
		{args: "url: /local/file.iso\nsha256: " + isoSum, wantErr: "want an http, https or ftp URL"},
		{args: "url: " + isoURL + "\nsha256: " + isoSum + "\nmount: /mnt/iso", wantErr: "under /mnt, the installed system's root"},
		{args: "url: " + isoURL + "\nsha256: " + isoSum + "\nmount: /mnt", wantErr: "under /mnt"},
		{args: "url: " + isoURL + "\nsha256: " + isoSum + "\ndest: nixos.iso", wantErr: "want an absolute path"},
		{args: "url: " + isoURL + "\nsha256: " + isoSum + "\ndest: /root/image/x.iso", wantErr: "hidden by its own mount"},
		{args: "url: " + isoURL + "\nsha256: " + isoSum + "\ntool: aria2", wantErr: "want auto, curl or wget"},
		{args: "url: " + isoURL + "\nsha256: sha256:" + isoSum},
		{args: "url: " + isoURL + "\nchecksum: false"},
		{args: "url: " + isoURL + "\nsha256: " + isoSum + "\nmount: /mntiso"},
	}
	for _, tt := range tests {
		_, err := Spec.New(moduletest.Decoder(tt.args))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: err = %v, want it to contain %q", tt.args, err, tt.wantErr)
		}
	}
}
