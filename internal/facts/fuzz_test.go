package facts

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no output of the facts script, however garbled (a
// host controls it), panics the parser. The seed corpus is testdata/fuzz
// and the recorded outputs of testdata.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		fa, err := Parse(out)
		if err == nil && fa == nil {
			t.Fatal("no facts and no error")
		}
		if err == nil {
			_ = fa.Map()
		}
	})
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add("ID=nixos\nPRETTY_NAME=\"NixOS 24.05\"\n")
	f.Add("ID='debian'\nVERSION_ID=\"12\\\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		_ = ParseOSRelease(text)
	})
}

// FuzzParseProcMounts: any text parses, and every mount has the three
// fields a line of /proc/mounts starts with.
func FuzzParseProcMounts(f *testing.F) {
	f.Add("/dev/sda1 / ext4 rw 0 0\ntank/root /mnt zfs rw 0 0\n")
	f.Add(`/dev/sdb1 /mnt/my\040disk vfat rw 0 0`)
	f.Add("short line\n\\0\\\n")
	f.Fuzz(func(t *testing.T, text string) {
		for _, m := range ParseProcMounts(text) {
			if m.Device == "" && m.Mountpoint == "" || m.FSType == "" {
				t.Fatalf("mount %+v from %q", m, text)
			}
		}
	})
}
