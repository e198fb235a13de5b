package inventory

import (
	"reflect"
	"testing"
)

func TestMagicVars(t *testing.T) {
	inv, err := Load("testdata/nested.yml")
	if err != nil {
		t.Fatal(err)
	}
	groups := inv.GroupMembers()
	for _, c := range []struct {
		group string
		want  []string
	}{
		{"all", []string{"lonely", "p1", "p2", "r1", "stray"}},
		{"europe", []string{"p1", "p2", "r1"}},
		{"rack_a", []string{"p1", "p2"}},
		{"ungrouped", []string{"lonely", "stray"}},
	} {
		got := groups[c.group].([]string)
		if !sameSet(got, c.want) {
			t.Errorf("groups[%s] = %v, want %v", c.group, got, c.want)
		}
	}
	hv := inv.HostVars()
	p2 := hv["p2"].(map[string]any)
	if p2["level"] != "host" || p2["inventory_hostname"] != "p2" {
		t.Errorf("hostvars.p2 = %v", p2)
	}
	if got := p2["group_names"]; !reflect.DeepEqual(got, []string{"europe", "paris", "rack_a", "roubaix"}) {
		t.Errorf("group_names = %v", got)
	}
	for _, c := range []struct{ name, short string }{
		{"web1.example.net", "web1"}, {"web1", "web1"}, {"192.0.2.7", "192.0.2.7"}, {"2001:db8::1", "2001:db8::1"},
	} {
		if got := (&Host{Name: c.name}).Magic()["inventory_hostname_short"]; got != c.short {
			t.Errorf("%s: inventory_hostname_short = %v, want %s", c.name, got, c.short)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
