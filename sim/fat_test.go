package sim

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fatFiles reads what the real tools wrote: mkfs.vfat makes each FAT
// type, mtools (another FAT implementation) writes long and short names,
// and mdir's listing is the reference.
func TestFATFilesAgreesWithMtools(t *testing.T) {
	for _, tool := range []string{"mkfs.vfat", "mcopy", "mmd", "mdir"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
	}
	cases := []struct {
		name string
		size string
		mkfs []string
	}{
		{"FAT12", "4M", []string{"-F", "12"}},
		{"FAT16", "32M", []string{"-F", "16"}},
		{"FAT32", "64M", []string{"-F", "32"}},
		{"FAT32 one sector a cluster", "40M", []string{"-F", "32", "-s", "1"}},
	}
	dirs := []string{"/EFI", "/EFI/BOOT", "/EFI/NixOS-boot", "/EFI/debian", "/EFI/a directory with a long name", "/loader"}
	files := []string{"/EFI/BOOT/BOOTX64.EFI", "/EFI/NixOS-boot/grubx64.efi", "/EFI/debian/grubx64.efi", "/EFI/debian/shimx64.efi",
		"/EFI/a directory with a long name/Ünïcode file name.conf", "/loader/loader.conf", "/kernel-6.1.0-20-amd64.img"}
	// Enough files in one directory that it spans several clusters.
	for i := range 40 {
		files = append(files, "/loader/entry number "+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('0'+i/26))+".conf")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "esp.img")
			src := filepath.Join(dir, "content")
			if err := os.WriteFile(src, []byte("a loader\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(args ...string) string {
				t.Helper()
				out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
				if err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return string(out)
			}
			run("truncate", "-s", c.size, img)
			run(append(append([]string{"mkfs.vfat"}, c.mkfs...), "-n", "ESP", img)...)
			for _, d := range dirs {
				run("mmd", "-i", img, "::"+d)
			}
			for _, f := range files {
				run("mcopy", "-i", img, src, "::"+f)
			}
			var want []string
			for _, line := range strings.Split(run("mdir", "-i", img, "-/", "-b", "::/"), "\n") {
				if p, ok := strings.CutPrefix(line, "::"); ok && !strings.HasSuffix(p, "/") {
					want = append(want, strings.ReplaceAll(p, "/", `\`))
				}
			}
			fh, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			got, err := fatFiles(fh)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			slices.Sort(want)
			if len(want) != len(files) || !slices.Equal(got, want) {
				t.Errorf("fatFiles:\n%s\nmdir:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestFATFilesRefusesWhatIsNotFAT(t *testing.T) {
	cases := map[string][]byte{
		"zeros":                make([]byte, 4096),
		"signature only":       append(make([]byte, 510), 0x55, 0xaa),
		"short":                {0xeb, 0x3c},
		"bad sector size":      bootSector(func(b []byte) { b[11], b[12] = 0x10, 0 }),
		"cluster size not 2^n": bootSector(func(b []byte) { b[13] = 3 }),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := fatFiles(strings.NewReader(string(data))); err == nil {
				t.Errorf("fatFiles accepted %s", name)
			}
		})
	}
}

// bootSector is a plausible FAT16 boot sector changed by edit.
func bootSector(edit func([]byte)) []byte {
	b := make([]byte, 4096)
	b[11], b[12] = 0, 2 // 512-byte sectors
	b[13] = 4           // sectors a cluster
	b[14] = 1           // reserved sectors
	b[16] = 2           // FATs
	b[17] = 0x00        // 512 root entries
	b[18] = 0x02
	b[19], b[20] = 0x00, 0x80 // 32768 sectors
	b[22] = 32                // sectors a FAT
	b[510], b[511] = 0x55, 0xaa
	edit(b)
	return b
}

// No bytes on a partition make fatFiles panic or loop.
func FuzzFATFiles(f *testing.F) {
	f.Add(bootSector(func([]byte) {}))
	f.Add(bootSector(func(b []byte) { b[13] = 1; b[22] = 0; b[36] = 8; b[44] = 2 }))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = fatFiles(strings.NewReader(string(data)))
	})
}
