package inventory

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files from the current output")

// goldenCases lists each testdata/*.yml inventory (dumped to <name>.golden)
// and each testdata/<dir>/ whose *.yml files load together, in name order
// (dumped to <dir>/dump.golden).
func goldenCases(t *testing.T) map[string][]string {
	t.Helper()
	cases := map[string][]string{}
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		cases[strings.TrimSuffix(f, ".yml")+".golden"] = []string{f}
	}
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if info, err := os.Stat(d); err != nil || !info.IsDir() {
			continue
		}
		files, err := filepath.Glob(filepath.Join(d, "*.yml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) > 0 {
			sort.Strings(files)
			cases[filepath.Join(d, "dump.golden")] = files
		}
	}
	if len(cases) < 4 {
		t.Fatalf("found %d golden cases in testdata, want at least 4", len(cases))
	}
	return cases
}

func TestLoadGolden(t *testing.T) {
	// ~ in ssh_key expands to the home directory; pin it for stable output.
	t.Setenv("HOME", "/home/fleet")
	for golden, files := range goldenCases(t) {
		t.Run(golden, func(t *testing.T) {
			inv, err := Load(files...)
			if err != nil {
				t.Fatalf("Load(%v): %v", files, err)
			}
			got, err := inv.Dump()
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./inventory -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("dump of %v differs from %s (run with -update after checking):\n--- got\n%s\n--- want\n%s", files, golden, got, want)
			}
		})
	}
}
