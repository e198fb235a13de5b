package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func loadFleet(t *testing.T) *Inventory {
	t.Helper()
	inv, err := Load("testdata/kimsufi/fleet.yml")
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func names(hosts []*Host) string {
	var out []string
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return strings.Join(out, " ")
}

func TestSelect(t *testing.T) {
	inv := loadFleet(t)
	dir := t.TempDir()
	retry := filepath.Join(dir, "install.retry")
	if err := os.WriteFile(retry, []byte("sys3\n# failed last time\n\n  ks02  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nested := filepath.Join(dir, "nested.txt")
	if err := os.WriteFile(nested, []byte("@"+retry+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pattern string
		want    string // host names in order
		err     string
	}{
		{pattern: "all", want: "ks01 ks02 ks03 ks04 sys1 sys3 sys5"},
		{pattern: "*", want: "ks01 ks02 ks03 ks04 sys1 sys3 sys5"},
		{pattern: "ks03", want: "ks03"},
		{pattern: "kimsufi", want: "ks01 ks02 ks03 ks04"},
		{pattern: "production", want: "ks01 ks02 ks03 ks04 sys1 sys3 sys5"},
		{pattern: "kimsufi_zfs", want: "ks03"},
		{pattern: "ungrouped", want: ""},
		{pattern: "soyoustart:kimsufi", want: "ks01 ks02 ks03 ks04 sys1 sys3 sys5"},
		{pattern: "sys5,ks02", want: "ks02 sys5"},
		{pattern: " ks01 , sys5 ", want: "ks01 sys5"},
		{pattern: "ks0*", want: "ks01 ks02 ks03 ks04"},
		{pattern: "ks?1", want: "ks01"},
		{pattern: "ks0[2-3]", want: "ks02 ks03"},
		{pattern: "ks0[!13]", want: "ks02 ks04"},
		{pattern: "*5", want: "sys5"},
		{pattern: "k*", want: "ks01 ks02 ks03 ks04"},
		{pattern: "ks9*", want: ""},
		{pattern: "~ks0[12]", want: "ks01 ks02"},
		{pattern: "~sys", want: "sys1 sys3 sys5"},
		{pattern: "~.*5$", want: "sys5"},
		{pattern: "~kim", want: "ks01 ks02 ks03 ks04"},
		{pattern: "~ys", want: ""},
		{pattern: "kimsufi:!ks03", want: "ks01 ks02 ks04"},
		{pattern: "kimsufi:!kimsufi_zfs", want: "ks01 ks02 ks04"},
		{pattern: "!ks03", want: "ks01 ks02 ks04 sys1 sys3 sys5"},
		{pattern: "!kimsufi:!sys3", want: "sys1 sys5"},
		{pattern: "kimsufi:&canary", want: "ks01"},
		{pattern: "kimsufi,&canary", want: "ks01"},
		{pattern: "&canary", want: "ks01 sys1"},
		{pattern: "!sys1:production:&canary", want: "ks01"},
		{pattern: "canary:!canary", want: ""},
		{pattern: "kimsufi[0]", want: "ks01"},
		{pattern: "kimsufi[-1]", want: "ks04"},
		{pattern: "kimsufi[1:2]", want: "ks02 ks03"},
		{pattern: "kimsufi[2:]", want: "ks03 ks04"},
		{pattern: "soyoustart[5:9]", want: ""},
		{pattern: "ks*[1]", want: "ks02"},
		{pattern: "kimsufi[0]:soyoustart[-1]", want: "ks01 sys5"},
		{pattern: "@" + retry, want: "ks02 sys3"},
		{pattern: "@" + retry + ",ks01,!sys3", want: "ks01 ks02"},

		{pattern: "ks1", err: `host pattern "ks1": no host or group named ks1`},
		{pattern: "kimsufi:!ks99", err: `host pattern "ks99": no host or group named ks99`},
		{pattern: "&kimsufy", err: `host pattern "kimsufy": no host or group named kimsufy`},
		{pattern: "ks0[13]", err: `host pattern "ks0[13]": no host or group named ks0`},
		{pattern: "kimsufi[4]", err: `host pattern "kimsufi[4]": index 4 is out of range (kimsufi matches 4 hosts)`},
		{pattern: "kimsufi[-5]", err: `host pattern "kimsufi[-5]": index -5 is out of range (kimsufi matches 4 hosts)`},
		{pattern: "~ks(", err: "host pattern \"~ks(\": error parsing regexp: missing closing ): `^(?:ks()`"},
		{pattern: "", err: `host pattern "": empty`},
		{pattern: " , :", err: `host pattern " , :": empty`},
		{pattern: "kimsufi:!", err: `host pattern "kimsufi:!": ! without a name`},
		{pattern: "@", err: `host pattern @: missing file name`},
		{pattern: "@" + dir + "/none", err: "host pattern file: open " + dir + "/none: no such file or directory"},
		{pattern: "@" + nested, err: nested + `: host pattern "@` + retry + `": @file inside a pattern file`},
	}
	for _, tt := range tests {
		got, err := inv.Select(tt.pattern)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Select(%q) error = %v, want %s", tt.pattern, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Select(%q): %v", tt.pattern, err)
			continue
		}
		if names(got) != tt.want {
			t.Errorf("Select(%q) = %q, want %q", tt.pattern, names(got), tt.want)
		}
	}
}

func TestSelectNameClashesAndIPv6(t *testing.T) {
	inv, _, err := loadTree(t, map[string]string{"fleet.yml": `db:
  hosts:
    db:
    db-replica:
ipv6:
  hosts:
    2001:db8::10:
    "[2001:db8::11]":
`}, "fleet.yml")
	if err == nil {
		t.Fatalf("bracketed IPv6 name loaded as %v, want a range error", names(inv.Hosts))
	}
	inv, _, err = loadTree(t, map[string]string{"fleet.yml": `db:
  hosts:
    db:
    db-replica:
ipv6:
  hosts:
    2001:db8::10:
`}, "fleet.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		// A plain name that is a host and a group selects the host.
		"db":                      "db",
		"db*":                     "db db-replica",
		"~d":                      "db db-replica",
		"2001:db8::10":            "2001:db8::10",
		"db-replica,2001:db8::10": "db-replica 2001:db8::10",
		"ipv6:db":                 "db 2001:db8::10",
	}
	for pattern, want := range tests {
		got, err := inv.Select(pattern)
		if err != nil {
			t.Errorf("Select(%q): %v", pattern, err)
			continue
		}
		if names(got) != want {
			t.Errorf("Select(%q) = %q, want %q", pattern, names(got), want)
		}
	}
}

func TestSelectHandBuiltInventory(t *testing.T) {
	inv := &Inventory{Hosts: []*Host{
		{Name: "a", Groups: []string{"all", "web"}},
		{Name: "b", Groups: []string{"all"}},
	}}
	for pattern, want := range map[string]string{"web": "a", "all": "a b", "!web": "b", "w*": "a"} {
		got, err := inv.Select(pattern)
		if err != nil || names(got) != want {
			t.Errorf("Select(%q) = %q, %v; want %q", pattern, names(got), err, want)
		}
	}
	if h, ok := inv.Host("b"); !ok || h.Name != "b" {
		t.Errorf("Host(b) = %v, %v", h, ok)
	}
	if _, ok := inv.Host("c"); ok {
		t.Errorf("Host(c) found a host")
	}
}

func TestLimit(t *testing.T) {
	inv := loadFleet(t)
	reversed := make([]*Host, len(inv.Hosts))
	for i, h := range inv.Hosts {
		reversed[len(reversed)-1-i] = h
	}
	soyoustart, err := inv.Select("soyoustart")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		hosts   []*Host
		pattern string
		want    string
		err     string
	}{
		{hosts: reversed, pattern: "kimsufi", want: "ks04 ks03 ks02 ks01"},
		{hosts: reversed, pattern: "canary,ks03", want: "sys1 ks03 ks01"},
		{hosts: soyoustart, pattern: "", want: "sys1 sys3 sys5"},
		{hosts: soyoustart, pattern: "all:!sys3", want: "sys1 sys5"},
		{hosts: soyoustart, pattern: "kimsufi", want: ""},
		{hosts: soyoustart, pattern: "sys7", err: `limit: host pattern "sys7": no host or group named sys7`},
	}
	for _, tt := range tests {
		got, err := inv.Limit(tt.hosts, tt.pattern)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Limit(%q) error = %v, want %s", tt.pattern, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Limit(%q): %v", tt.pattern, err)
			continue
		}
		if names(got) != tt.want {
			t.Errorf("Limit(%s, %q) = %q, want %q", names(tt.hosts), tt.pattern, names(got), tt.want)
		}
	}
}

func TestGlobRegexp(t *testing.T) {
	tests := []struct {
		glob, name string
		match      bool
	}{
		{"ks*", "ks01.example.net", true},
		{"*.example.net", "ks01.example.net", true},
		{"*.example.net", "ks01.exampleXnet", false},
		{"ks?", "ks1", true},
		{"ks?", "ks10", false},
		{"ks[!0]*", "ks10", true},
		{"ks[!1]*", "ks10", false},
		{"ks[^]", "ks^", true},
		{"ks[", "ks[", true},
		{"a+b", "a+b", true},
		{"a+b", "aab", false},
		{`x[\]`, `x\`, true},
	}
	for _, tt := range tests {
		re, err := globRegexp(tt.glob)
		if err != nil {
			t.Errorf("globRegexp(%q): %v", tt.glob, err)
			continue
		}
		if got := re.MatchString(tt.name); got != tt.match {
			t.Errorf("glob %q on %q = %v, want %v (regexp %s)", tt.glob, tt.name, got, tt.match, re)
		}
	}
}

func TestSplitOutsideBrackets(t *testing.T) {
	got := splitOutsideBrackets("web[0:2]:db: !ks3 ::&x", ':')
	want := []string{"web[0:2]", "db", "!ks3", "&x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("split = %q, want %q", got, want)
	}
}
