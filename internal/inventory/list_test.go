package inventory

import (
	"encoding/json"
	"os"
	"testing"
)

// TestListGolden: `nixbook inventory --list` in ansible-inventory's shape.
func TestListGolden(t *testing.T) {
	t.Setenv("HOME", "/home/fleet")
	for _, c := range []struct {
		inventory, golden, limit string
	}{
		{"testdata/nested.yml", "testdata/nested.list.golden", ""},
		{"testdata/nested.yml", "testdata/nested.list-paris.golden", "paris"},
	} {
		t.Run(c.golden, func(t *testing.T) {
			inv, err := Load(c.inventory)
			if err != nil {
				t.Fatal(err)
			}
			hosts := inv.Hosts
			if c.limit != "" {
				if hosts, err = inv.Limit(hosts, c.limit); err != nil {
					t.Fatal(err)
				}
			}
			got, err := inv.List(hosts)
			if err != nil {
				t.Fatal(err)
			}
			var shape map[string]any
			if err := json.Unmarshal(got, &shape); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if _, ok := shape["_meta"].(map[string]any)["hostvars"]; !ok {
				t.Fatalf("no _meta.hostvars")
			}
			if *update {
				if err := os.WriteFile(c.golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(c.golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
