package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostDump(t *testing.T) {
	inv := loadFleet(t)
	ks04, ok := inv.Host("ks04")
	if !ok {
		t.Fatal("no ks04")
	}
	got, err := ks04.Dump()
	if err != nil {
		t.Fatal(err)
	}
	want := `ks04:
  source: testdata/kimsufi/fleet.yml:17
  address: 203.0.113.14
  port: 2222
  user: root
  key_files:
    - testdata/kimsufi/keys/fleet_ed25519
  groups: [all, production, kimsufi]
  vars:
    ansible_host: 203.0.113.14
    ansible_user: root
    disks:
      - /dev/sda
    filesystem: ext4
    install_method: rescue-iso
    ipv4_prefix: 24
    ipv6_prefix: 64
    nameservers:
      - 213.186.33.99
      - 2001:41d0:3:163::1
    nixos_channel: nixos-24.05
    ovh_endpoint: ovh-eu
    port: 2222
    ssh_key: keys/fleet_ed25519
    state_version: "24.05"
`
	if string(got) != want {
		t.Errorf("dump:\n%s\nwant:\n%s", got, want)
	}
}

// The dump is itself YAML: reading it back gives the same hosts.
func TestDumpParses(t *testing.T) {
	inv := loadFleet(t)
	out, err := inv.Dump()
	if err != nil {
		t.Fatal(err)
	}
	root, err := parseDocument("dump", out)
	if err != nil {
		t.Fatalf("dump is not YAML: %v", err)
	}
	var dump struct {
		Hosts map[string]struct {
			Vars map[string]any
		}
	}
	if err := root.Decode(&dump); err != nil {
		t.Fatal(err)
	}
	if len(dump.Hosts) != len(inv.Hosts) {
		t.Fatalf("dump has %d hosts, inventory %d", len(dump.Hosts), len(inv.Hosts))
	}
	if got := dump.Hosts["ks01"].Vars["ipv6"]; got != "2001:db8:1:11::1" {
		t.Errorf("ks01 ipv6 read back as %#v", got)
	}
}

// writeLargeInventory writes n hosts in groups of 50 under two parents, with
// one line of inline vars each.
func writeLargeInventory(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("all:\n  vars:\n    ansible_user: root\n  children:\n")
	for g := 0; g < n/50; g++ {
		fmt.Fprintf(&b, "    rack%d:\n      vars:\n        rack: %d\n      hosts:\n", g, g)
		for h := 0; h < 50; h++ {
			fmt.Fprintf(&b, "        ks%04d: {ansible_host: 203.0.113.%d, disk: sda}\n", g*50+h, h+1)
		}
	}
	b.WriteString("kimsufi:\n  children:\n")
	for g := 0; g < n/50; g++ {
		fmt.Fprintf(&b, "    rack%d:\n", g)
	}
	path := filepath.Join(tb.TempDir(), "fleet.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestSyntaxErrorLineInLargeFile(t *testing.T) {
	path := writeLargeInventory(t, 1000)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(data), "\n")
	data = append(data, "  oops: [\n"...)
	_, err = parseDocument("fleet.yml", data)
	want := fmt.Sprintf("fleet.yml:%d: did not find expected node content", lines+1)
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func BenchmarkLoad500(b *testing.B) {
	path := writeLargeInventory(b, 500)
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSelect500(b *testing.B) {
	inv, err := Load(writeLargeInventory(b, 500))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := inv.Select("kimsufi:!rack3:&~ks0[0-4].*"); err != nil {
			b.Fatal(err)
		}
	}
}

// A syntax error near the end of a large file is located by reparsing
// prefixes; it must stay quick.
func BenchmarkSyntaxErrorLocate(b *testing.B) {
	path := writeLargeInventory(b, 1000)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	data = append(data, "  oops: [\n"...)
	for b.Loop() {
		if _, err := parseDocument("fleet.yml", data); err == nil {
			b.Fatal("no error")
		}
	}
}
