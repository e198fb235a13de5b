package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadINI(t *testing.T) {
	inv, err := Load(filepath.Join("testdata", "ini", "hosts.ini"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, key string
		want      any
	}{
		{"host2", "ansible_port", 222},
		{"host1", "http_port", 8080},
		{"web02.example.net", "http_port", 8080},
		{"host1", "myvar", 23},
		{"host1", "motd", "hello world # not a literal: kept whole"},
		{"tomcat2", "myvar", 34},
		{"tomcat1", "myvar", 23},
		{"tomcat3", "mysecret", "03#pa33w0rd"},
		{"tomcat3", "tags", []any{1, "two"}},
		{"tomcat3", "quoted", "a b"},
		{"jenkins1", "has_java", true},
		{"host1", "has_java", false},
		{"lonely", "has_java", false},
	} {
		h, ok := inv.Host(tc.host)
		if !ok {
			t.Errorf("no host %s", tc.host)
			continue
		}
		if got := h.Vars[tc.key]; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %s = %#v, want %#v", tc.host, tc.key, got, tc.want)
		}
	}
	lonely, _ := inv.Host("lonely")
	if lonely.Address != "10.0.0.9" || !lonely.InGroup("ungrouped") {
		t.Errorf("lonely: address %q, groups %v", lonely.Address, lonely.Groups)
	}
	j, _ := inv.Host("jenkins1")
	if j.Port != 2222 || j.User != "admin" || !j.InGroup("web") || !j.InGroup("nginx") {
		t.Errorf("jenkins1: port %d, user %q, groups %v", j.Port, j.User, j.Groups)
	}
	if got := inv.Groups["web"].Children; !reflect.DeepEqual(got, []string{"apache", "nginx"}) {
		t.Errorf("web's children %v", got)
	}
}

func TestLoadINIErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"section type", "[web:hosts2]\n", "hosts.ini:1: section [web:hosts2] has unknown type"},
		{"spaces", "[web group]\n", "hosts.ini:1: invalid section [web group]"},
		{"vars undeclared", "[a]\nh1\n[b:vars]\nx=1\n", "hosts.ini:3: section [b:vars] is for group \"b\", which no section declares"},
		{"child undeclared", "[a:children]\nb\n", "hosts.ini:2: section [a:children] names group \"b\""},
		{"not kv", "[a]\nh1 x\n", "hosts.ini:2: group a: host \"h1\": want key=value after the host name, got \"x\""},
		{"vars not kv", "[a]\nh1\n[a:vars]\njust words\n", "hosts.ini:4: group a: want key=value"},
		{"bad port", "h1:99999\n", "hosts.ini:1: group ungrouped: host \"h1:99999\": port 99999 is out of range"},
		{"trailing colon", "h1:\n", "hosts.ini:1: group ungrouped: host \"h1:\": a host cannot end in ':'"},
		{"bad range", "[a]\nks[1:x]\n", "hosts.ini:2: group a: host \"ks[1:x]\": range"},
		{"quote", "[a]\nh1 x='open\n", "hosts.ini:2: group a: unterminated single quote"},
		{"cycle", "[a:children]\nb\n[b:children]\na\n", "cycle"},
		{"port type", "h1 ansible_port=abc\n", "hosts.ini:1: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hosts.ini")
			if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Files without an .ini extension are INI unless they are a YAML mapping.
func TestINIByContent(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"hosts":      "[fleet]\n10.0.0.1 ansible_user=toor\n",
		"list":       "10.0.0.1\n10.0.0.2\n",
		"inventory":  "all:\n  hosts:\n    10.0.0.1:\n",
		"single.txt": "10.0.0.1 ansible_port=2222\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		inv, err := Load(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, ok := inv.Host("10.0.0.1"); !ok {
			t.Errorf("%s: no host 10.0.0.1", name)
		}
	}
}

func TestINIValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"22", 22}, {"-3", -3}, {"1.5", 1.5}, {"1e3", 1000.0}, {"007", "007"},
		{"True", true}, {"False", false}, {"None", nil}, {"true", "true"},
		{"'22'", "22"}, {`"a b"`, "a b"}, {`'it\'s'`, "it's"}, {"'a' 'b'", "'a' 'b'"},
		{"[1, 'x']", []any{1, "x"}}, {"{'a': 1}", map[string]any{"a": 1}},
		{"8080 # port", 8080}, {"plain text", "plain text"}, {"", ""},
		{"http://x:3128", "http://x:3128"},
	} {
		if got := iniValue(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("iniValue(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}
