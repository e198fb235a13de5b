package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets check that no inventory, host range or pattern panics:
// each loads or reports an error. Their seed corpora are testdata/fuzz and
// the inventories of testdata.

func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.yml"))
	more, _ := filepath.Glob(filepath.Join("testdata", "*", "*.yml"))
	for _, p := range append(seeds, more...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "inventory.yml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		inv, err := Load(path)
		if err != nil {
			return
		}
		if len(inv.Hosts) > MaxHosts {
			t.Fatalf("%d hosts, more than MaxHosts", len(inv.Hosts))
		}
		if _, err := inv.Dump(); err != nil {
			t.Fatalf("dump: %v", err)
		}
	})
}

func FuzzHostRange(f *testing.F) {
	for _, s := range []string{"ks[01:20]", "web[a:f].example", "db[1:9:2]-[a:b]", "x[:5]", "a[1:2", "b]", "c[09:10]", "d[0:99999999999999999999]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		names, err := expandHostRange(name)
		if err != nil {
			return
		}
		if len(names) > maxRangeHosts {
			t.Fatalf("%q expands to %d names", name, len(names))
		}
		if !strings.ContainsAny(name, "[]") && (len(names) != 1 || names[0] != name) {
			t.Fatalf("%q without a range expands to %q", name, names)
		}
	})
}

func FuzzSelect(f *testing.F) {
	for _, s := range []string{"all", "kimsufi:!ks03", "ks*", "~ks0[12]", "web:&prod", "a,b,,c", "!all", "@", "~("} {
		f.Add(s)
	}
	inv, err := Load(filepath.Join("testdata", "ranges.yml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		if strings.HasPrefix(pattern, "@") || strings.Contains(pattern, ",@") || strings.Contains(pattern, ":@") {
			return // a file of patterns: not what this target explores
		}
		hosts, err := inv.Select(pattern)
		if err == nil && len(hosts) > len(inv.Hosts) {
			t.Fatalf("%q selects %d of %d hosts", pattern, len(hosts), len(inv.Hosts))
		}
	})
}

func FuzzLoadINI(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "ini", "*.ini"))
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("[a:children]\nb\n[b]\nh[1:3]:22 x='1' y=[1]\n[b:vars]\nz = {'k': None}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "hosts.ini")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		inv, err := Load(path)
		if err != nil {
			return
		}
		if len(inv.Hosts) > MaxHosts {
			t.Fatalf("%d hosts, more than MaxHosts", len(inv.Hosts))
		}
		// Dumping 100000 hosts takes seconds; small inventories cover it.
		if len(inv.Hosts) > 1000 {
			return
		}
		if _, err := inv.Dump(); err != nil {
			t.Fatalf("dump: %v", err)
		}
	})
}
