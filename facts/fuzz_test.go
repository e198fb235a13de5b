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
