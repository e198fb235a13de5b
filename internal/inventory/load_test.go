package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeTree writes files (path relative to a new temporary directory ->
// content) and returns the directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadTree loads the named inventory files of a tree written by writeTree.
func loadTree(t *testing.T, files map[string]string, inventories ...string) (*Inventory, string, error) {
	t.Helper()
	dir := writeTree(t, files)
	paths := make([]string, len(inventories))
	for i, name := range inventories {
		paths[i] = filepath.Join(dir, name)
	}
	inv, err := Load(paths...)
	return inv, dir, err
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		load  []string // inventory files; fleet.yml when empty
		want  string   // the error, with the temporary directory removed
	}{
		{
			name: "unknown group key",
			files: map[string]string{"fleet.yml": `all:
  children:
    web:
      host:
        ks1:
`},
			want: `fleet.yml:4: group web: unknown key "host" (want hosts, vars or children)`,
		},
		{
			name: "port not an integer",
			files: map[string]string{"fleet.yml": `all:
  hosts:
    ks1:
      ansible_host: 203.0.113.1
      port: abc
`},
			want: `fleet.yml:5: host ks1: port: want an integer, got "abc"`,
		},
		{
			name: "port out of range",
			files: map[string]string{"fleet.yml": `all:
  hosts:
    ks1:
      ansible_port: 70000
`},
			want: `fleet.yml:4: host ks1: ansible_port: 70000 is out of range (1 to 65535)`,
		},
		{
			name: "port zero",
			files: map[string]string{"fleet.yml": `all:
  hosts:
    ks1:
      port: 0
`},
			want: `fleet.yml:4: host ks1: port: 0 is out of range (1 to 65535)`,
		},
		{
			name: "group port a float",
			files: map[string]string{"fleet.yml": `web:
  vars:
    ansible_port: 22.5
`},
			want: `fleet.yml:3: group web: ansible_port: want an integer, got 22.5`,
		},
		{
			name: "user not a string",
			files: map[string]string{"fleet.yml": `all:
  hosts:
    ks1:
      user: 0
`},
			want: `fleet.yml:4: host ks1: user: want a string, got 0`,
		},
		{
			name: "empty host address",
			files: map[string]string{"fleet.yml": `all:
  hosts:
    ks1:
      ansible_host: ""
`},
			want: `fleet.yml:4: host ks1: ansible_host: want a string, got ""`,
		},
		{
			name: "ssh_key a mapping",
			files: map[string]string{"fleet.yml": `all:
  vars:
    ssh_key: {path: a}
`},
			want: `fleet.yml:3: group all: ssh_key: want a path or a list of paths, got a mapping`,
		},
		{
			name: "ssh_key list item not a string",
			files: map[string]string{"fleet.yml": `all:
  vars:
    ssh_key:
      - keys/a
      - [keys/b]
`},
			want: `fleet.yml:5: group all: ssh_key: want a path, got a list`,
		},
		{
			name: "ssh_key of another user",
			files: map[string]string{"fleet.yml": `all:
  vars:
    ssh_key: ~admin/.ssh/id_ed25519
`},
			want: `fleet.yml:3: group all: ssh_key: ~admin/.ssh/id_ed25519: only ~/ is expanded, not ~user`,
		},
		{
			name: "two names of one setting",
			files: map[string]string{"fleet.yml": `all:
  hosts:
    ks1:
      ansible_user: root
      user: admin
`},
			want: `fleet.yml:5: host ks1: ansible_user and user both set`,
		},
		{
			name: "group priority not an integer",
			files: map[string]string{"fleet.yml": `web:
  vars:
    ansible_group_priority: high
`},
			want: `fleet.yml:3: group web: ansible_group_priority: want an integer, got "high"`,
		},
		{
			name: "zero padding of different width",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks[01:3]:
`},
			want: `fleet.yml:3: group kimsufi: host "ks[01:3]": range [01:3]: zero-padded start 01 and end 3 differ in width`,
		},
		{
			name: "range backwards",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks[5:1]:
`},
			want: `fleet.yml:3: group kimsufi: host "ks[5:1]": range [5:1]: start 5 is after end 1`,
		},
		{
			name: "range without end",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks[1:]:
`},
			want: `fleet.yml:3: group kimsufi: host "ks[1:]": range [1:]: missing end`,
		},
		{
			name: "range with zero step",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks[1:9:0]:
`},
			want: `fleet.yml:3: group kimsufi: host "ks[1:9:0]": range [1:9:0]: step "0" is not a positive integer`,
		},
		{
			name: "range of a number and a letter",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks[1:c]:
`},
			want: `fleet.yml:3: group kimsufi: host "ks[1:c]": range [1:c]: want two numbers or two letters, got "1" and "c"`,
		},
		{
			name: "range not closed",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks[1:3:
`},
			want: `fleet.yml:3: group kimsufi: host "ks[1:3": [ without ]`,
		},
		{
			name: "range with one part",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks[7]:
`},
			want: `fleet.yml:3: group kimsufi: host "ks[7]": range [7]: want [start:end] or [start:end:step]`,
		},
		{
			name: "range too large",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks[1:999999999]:
`},
			want: `fleet.yml:3: group kimsufi: host "ks[1:999999999]": range [1:999999999]: expands to more than 100000 hosts`,
		},
		{
			name: "port in host name out of range",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks1:99999:
`},
			want: `fleet.yml:3: group kimsufi: host "ks1:99999": port 99999 is out of range (1 to 65535)`,
		},
		{
			name: "duplicate host",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks1:
    ks2:
    ks1:
`},
			want: `fleet.yml:5: duplicate key "ks1" (first at line 3)`,
		},
		{
			name: "duplicate variable deep down",
			files: map[string]string{"fleet.yml": `kimsufi:
  vars:
    zfs:
      pool: rpool
      pool: tank
`},
			want: `fleet.yml:5: duplicate key "pool" (first at line 4)`,
		},
		{
			name:  "empty file",
			files: map[string]string{"fleet.yml": ""},
			want:  `fleet.yml: empty inventory (want a mapping of groups, usually all:)`,
		},
		{
			name:  "only comments",
			files: map[string]string{"fleet.yml": "# nothing yet\n"},
			want:  `fleet.yml: empty inventory (want a mapping of groups, usually all:)`,
		},
		{
			name:  "top level list",
			files: map[string]string{"fleet.yml": "- ks1\n- ks2\n"},
			want:  `fleet.yml:1: want a mapping of groups at the top level, got a list`,
		},
		{
			name: "hosts as a list",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    - ks1
`},
			want: `fleet.yml:3: group kimsufi: hosts: want a mapping of host names (name: or name: {vars}), got a list`,
		},
		{
			name: "children as a list",
			files: map[string]string{"fleet.yml": `all:
  children: [kimsufi]
`},
			want: `fleet.yml:2: group all: children: want a mapping of group names, got a list`,
		},
		{
			name: "vars as a list",
			files: map[string]string{"fleet.yml": `kimsufi:
  vars:
    - a: 1
`},
			want: `fleet.yml:3: group kimsufi: want a mapping of variables, got a list`,
		},
		{
			name: "group body a string",
			files: map[string]string{"fleet.yml": `kimsufi: ks1
`},
			want: `fleet.yml:1: group kimsufi: want a mapping with hosts, vars or children, got "ks1"`,
		},
		{
			name: "host vars a string",
			files: map[string]string{"fleet.yml": `kimsufi:
  hosts:
    ks1: 203.0.113.1
`},
			want: `fleet.yml:3: host ks1: want a mapping of variables or nothing, got "203.0.113.1"`,
		},
		{
			name: "space in group name",
			files: map[string]string{"fleet.yml": `web servers:
  hosts:
    ks1:
`},
			want: `fleet.yml:1: group "web servers": " " is not allowed in group names`,
		},
		{
			name: "glob in host name",
			files: map[string]string{"fleet.yml": `web:
  hosts:
    ks*:
`},
			want: `fleet.yml:3: group web: host "ks*": "*" is not allowed in host names`,
		},
		{
			name: "cycle",
			files: map[string]string{"fleet.yml": `a:
  children:
    b:
      children:
        c:
          children:
            a:
`},
			want: `fleet.yml:7: group c: child group a makes a cycle: c > a > b > c`,
		},
		{
			name: "cycle across files",
			files: map[string]string{
				"one.yml": "a:\n  children:\n    b:\n",
				"two.yml": "b:\n  children:\n    a:\n",
			},
			load: []string{"one.yml", "two.yml"},
			want: `two.yml:3: group b: child group a makes a cycle: b > a > b`,
		},
		{
			name:  "group its own child",
			files: map[string]string{"fleet.yml": "a:\n  children:\n    a:\n"},
			want:  `fleet.yml:3: group a: child group a makes a cycle: a > a`,
		},
		{
			name:  "all as a child",
			files: map[string]string{"fleet.yml": "web:\n  children:\n    all:\n"},
			want:  `fleet.yml:3: group web: all cannot be a child group`,
		},
		{
			name:  "yaml syntax",
			files: map[string]string{"fleet.yml": "all:\n  hosts:\n    ks1: [a\n"},
			want:  `fleet.yml:3: did not find expected ',' or ']'`,
		},
		{
			name:  "tab indentation",
			files: map[string]string{"fleet.yml": "all:\n\thosts:\n"},
			want:  `fleet.yml:2: found character that cannot start any token`,
		},
		{
			name:  "bad indentation",
			files: map[string]string{"fleet.yml": "all:\n  hosts:\n    ks1:\n   bad: 1\n    ks2:\n"},
			want:  `fleet.yml:4: did not find expected key`,
		},
		{
			name:  "unclosed quote",
			files: map[string]string{"fleet.yml": "all:\n  vars:\n    a: \"unclosed\n    b: 2\n"},
			want:  `fleet.yml:3: found unexpected end of stream`,
		},
		{
			name:  "unknown anchor",
			files: map[string]string{"fleet.yml": "all:\n  vars:\n    a: *nope\n"},
			want:  `fleet.yml:3: unknown anchor 'nope' referenced`,
		},
		{
			name:  "list item among keys",
			files: map[string]string{"fleet.yml": "all:\n  vars:\n    - a\n    b: 2\n"},
			want:  `fleet.yml:4: did not find expected '-' indicator`,
		},
		{
			name:  "two documents",
			files: map[string]string{"fleet.yml": "all:\n---\nweb:\n"},
			want:  `fleet.yml:2: more than one YAML document`,
		},
		{
			name: "merge key among groups",
			files: map[string]string{"fleet.yml": `base: &base
  hosts:
    ks1:
web:
  <<: *base
`},
			want: `fleet.yml:5: group web: unknown key "<<" (want hosts, vars or children)`,
		},
		{
			name: "second file named",
			files: map[string]string{
				"fleet.yml": "all:\n  hosts:\n    ks1:\n",
				"more.yml":  "all:\n  hosts:\n    ks1:\n      port: ssh\n",
			},
			load: []string{"fleet.yml", "more.yml"},
			want: `more.yml:4: host ks1: port: want an integer, got "ssh"`,
		},
		{
			name: "group_vars file value",
			files: map[string]string{
				"fleet.yml":           "web:\n  hosts:\n    ks1:\n",
				"group_vars/web.yml":  "# web servers\nansible_port: abc\n",
				"group_vars/db.yml":   "ignored: because there is no db group\n",
				"host_vars/other.yml": "ignored: too\n",
			},
			want: `group_vars/web.yml:2: group web: ansible_port: want an integer, got "abc"`,
		},
		{
			name: "group_vars file not a mapping",
			files: map[string]string{
				"fleet.yml":          "web:\n  hosts:\n    ks1:\n",
				"group_vars/web.yml": "- a\n",
			},
			want: `group_vars/web.yml:1: group web: want a mapping of variables, got a list`,
		},
		{
			name: "group_vars directory file",
			files: map[string]string{
				"fleet.yml":                "web:\n  hosts:\n    ks1:\n",
				"group_vars/web/a.yml":     "a: 1\n",
				"group_vars/web/b/net.yml": "a: 1\nuser: [root]\n",
			},
			want: `group_vars/web/b/net.yml:2: group web: user: want a string, got a list`,
		},
		{
			name: "host_vars syntax",
			files: map[string]string{
				"fleet.yml":         "web:\n  hosts:\n    ks1:\n",
				"host_vars/ks1.yml": "a: b: c\n",
			},
			want: `host_vars/ks1.yml:1: mapping values are not allowed in this context`,
		},
		{
			name: "host_vars duplicate",
			files: map[string]string{
				"fleet.yml":          "web:\n  hosts:\n    ks1:\n",
				"host_vars/ks1.yaml": "a: 1\nb: 2\na: 3\n",
			},
			want: `host_vars/ks1.yaml:3: duplicate key "a" (first at line 1)`,
		},
		{
			name:  "missing file",
			files: map[string]string{},
			load:  []string{"nope.yml"},
			want:  `read inventory: open nope.yml: no such file or directory`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			load := tt.load
			if len(load) == 0 {
				load = []string{"fleet.yml"}
			}
			inv, dir, err := loadTree(t, tt.files, load...)
			if err == nil {
				t.Fatalf("Load succeeded with %d hosts, want error %q", len(inv.Hosts), tt.want)
			}
			if got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLoadNoFiles(t *testing.T) {
	if _, err := Load(); err == nil || err.Error() != "no inventory file given" {
		t.Errorf("Load() error = %v, want no inventory file given", err)
	}
}

// hostView is what precedence tests check of a host.
type hostView struct {
	Address  string
	Port     int
	User     string
	KeyFiles []string
	Vars     map[string]any
}

func TestLoadPrecedence(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		load  []string
		host  string
		want  hostView
	}{
		{
			name: "all < parent < child < host",
			files: map[string]string{"fleet.yml": `all:
  vars: {a: all, b: all, c: all, d: all}
  children:
    parent:
      vars: {b: parent, c: parent, d: parent}
      children:
        child:
          vars: {c: child, d: child}
          hosts:
            ks1: {d: host}
`},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"a": "all", "b": "parent", "c": "child", "d": "host"}},
		},
		{
			name: "depth, not file order, decides",
			files: map[string]string{"fleet.yml": `child:
  vars: {v: child}
  hosts:
    ks1:
parent:
  vars: {v: parent}
  children:
    child:
`},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"v": "child"}},
		},
		{
			name: "same depth merges in ASCII order",
			files: map[string]string{"fleet.yml": `zulu:
  vars: {v: zulu, z: 1}
  hosts: {ks1: }
Alpha:
  vars: {v: Alpha}
  hosts: {ks1: }
beta:
  vars: {v: beta}
  hosts: {ks1: }
`},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"v": "zulu", "z": 1}},
		},
		{
			name: "group priority beats name at the same depth",
			files: map[string]string{"fleet.yml": `alpha:
  vars: {v: alpha, ansible_group_priority: 10}
  hosts: {ks1: }
beta:
  vars: {v: beta}
  hosts: {ks1: }
`},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"v": "alpha", "ansible_group_priority": 10}},
		},
		{
			// Ansible's VARIABLE_PRECEDENCE: every group's inline vars, then
			// group_vars/all, then the other groups' files.
			name: "group_vars/all beats every group's inline vars, not other groups' files",
			files: map[string]string{
				"fleet.yml": `all:
  vars: {a: inline, b: inline, c: inline}
  children:
    kimsufi:
      vars: {b: kimsufi, c: kimsufi}
      hosts: {ks1: {d: host}}
`,
				"group_vars/all.yml":     "a: file\nb: file\nc: file\nd: file\n",
				"group_vars/kimsufi.yml": "c: kimsufi file\n",
			},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"a": "file", "b": "file", "c": "kimsufi file", "d": "host"}},
		},
		{
			name: "a parent's group_vars file beats a child's inline vars",
			files: map[string]string{
				"fleet.yml": `parent:
  children:
    child:
      vars: {v: child inline}
      hosts: {ks1: }
`,
				"group_vars/parent.yml": "v: parent file\n",
			},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"v": "parent file"}},
		},
		{
			name: "a child's group_vars file beats its parent's",
			files: map[string]string{
				"fleet.yml": `parent:
  children:
    child:
      hosts: {ks1: }
`,
				"group_vars/parent.yml": "v: parent file\n",
				"group_vars/child.yml":  "v: child file\n",
			},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"v": "child file"}},
		},
		{
			name: "group_vars files in a fixed order",
			files: map[string]string{
				"fleet.yml":               "kimsufi:\n  hosts: {ks1: }\n",
				"group_vars/kimsufi":      "a: bare\nb: bare\nc: bare\nd: bare\n",
				"group_vars/kimsufi.yml":  "b: yml\nc: yml\nd: yml\n",
				"group_vars/kimsufi.yaml": "c: yaml\nd: yaml\n",
				"group_vars/kimsufi.json": `{"d": "json"}`,
				"group_vars/kimsufi.bak":  "a: bak\n",
			},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"a": "bare", "b": "yml", "c": "yaml", "d": "json"}},
		},
		{
			name: "group_vars file then directory, in name order",
			files: map[string]string{
				"fleet.yml":                      "kimsufi:\n  hosts: {ks1: }\n",
				"group_vars/kimsufi.yml":         "a: yml\nb: yml\nc: yml\n",
				"group_vars/kimsufi/1.yml":       "b: dir1\nc: dir1\n",
				"group_vars/kimsufi/2/net":       "c: dir2\n",
				"group_vars/kimsufi/.hidden.yml": "c: hidden\n",
				"group_vars/kimsufi/notes.txt":   "c: txt\n",
				"group_vars/kimsufi/3.yml~":      "c: backup\n",
			},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"a": "yml", "b": "dir1", "c": "dir2"}},
		},
		{
			name: "host_vars file beats inline host vars",
			files: map[string]string{
				"fleet.yml":         "web:\n  hosts:\n    ks1: {a: inline, b: inline}\n",
				"host_vars/ks1.yml": "b: file\n",
			},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"a": "inline", "b": "file"}},
		},
		{
			name: "host defined twice merges in order",
			files: map[string]string{"fleet.yml": `a:
  hosts:
    ks1: {x: 1, y: 1}
b:
  hosts:
    ks1: {y: 2}
`},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"x": 1, "y": 2}},
		},
		{
			name: "mappings replace, not merge",
			files: map[string]string{"fleet.yml": `all:
  vars:
    zfs: {pool: rpool, ashift: 12}
  hosts:
    ks1:
      zfs: {pool: tank}
`},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"zfs": map[string]any{"pool": "tank"}}},
		},
		{
			name: "connection keys and their Ansible names",
			files: map[string]string{"fleet.yml": `all:
  vars:
    ansible_user: root
    ansible_port: 22
    ansible_ssh_private_key_file: keys/fleet
  hosts:
    ks1:
      host: 203.0.113.1
      user: admin
      ssh_key: [/etc/keys/a, keys/b]
`},
			host: "ks1",
			want: hostView{
				Address:  "203.0.113.1",
				Port:     22,
				User:     "admin",
				KeyFiles: []string{"/etc/keys/a", "DIR/keys/b"},
				Vars: map[string]any{
					"host": "203.0.113.1", "user": "admin", "ansible_port": 22,
					"ssh_key": []any{"/etc/keys/a", "keys/b"},
				},
			},
		},
		{
			name: "quoted port and name:port",
			files: map[string]string{"fleet.yml": `all:
  hosts:
    ks1:2222:
    ks2:2222:
      port: "2200"
`},
			host: "ks2",
			want: hostView{Address: "ks2", Port: 2200, Vars: map[string]any{"port": "2200"}},
		},
		{
			name: "key paths follow their own inventory's directory",
			files: map[string]string{
				"fleet.yml":      "all:\n  hosts:\n    ks1:\n",
				"site/more.yml":  "all:\n  vars:\n    ssh_key: keys/site\n",
				"site/README.md": "not an inventory\n",
			},
			load: []string{"fleet.yml", "site/more.yml"},
			host: "ks1",
			want: hostView{Address: "ks1", KeyFiles: []string{"DIR/site/keys/site"}, Vars: map[string]any{"ssh_key": "keys/site"}},
		},
		{
			name: "home directory expanded",
			files: map[string]string{
				"fleet.yml": "all:\n  hosts:\n    ks1: {ssh_key: ~/.ssh/id_ed25519}\n",
			},
			host: "ks1",
			want: hostView{Address: "ks1", KeyFiles: []string{"/home/fleet/.ssh/id_ed25519"}, Vars: map[string]any{"ssh_key": "~/.ssh/id_ed25519"}},
		},
		{
			name: "merge keys in vars",
			files: map[string]string{"fleet.yml": `all:
  vars:
    defaults: &defaults
      user: root
      channel: stable
  hosts:
    ks1:
      <<: *defaults
      channel: unstable
`},
			host: "ks1",
			want: hostView{Address: "ks1", User: "root", Vars: map[string]any{
				"defaults": map[string]any{"user": "root", "channel": "stable"},
				"user":     "root", "channel": "unstable",
			}},
		},
		{
			name: "explicit name overrides a merged alias",
			files: map[string]string{"fleet.yml": `all:
  vars:
    base: &base {ansible_user: root}
  hosts:
    ks1:
      <<: *base
      user: admin
`},
			host: "ks1",
			want: hostView{Address: "ks1", User: "admin", Vars: map[string]any{"base": map[string]any{"ansible_user": "root"}, "user": "admin"}},
		},
		{
			name: "later inventory file wins at the same level",
			files: map[string]string{
				"a.yml": "kimsufi:\n  vars: {channel: stable, a: 1}\n  hosts: {ks1: {disk: sda}}\n",
				"b.yml": "kimsufi:\n  vars: {channel: unstable}\n  hosts: {ks1: {disk: nvme0n1}}\n",
			},
			load: []string{"a.yml", "b.yml"},
			host: "ks1",
			want: hostView{Address: "ks1", Vars: map[string]any{"channel": "unstable", "a": 1, "disk": "nvme0n1"}},
		},
	}
	t.Setenv("HOME", "/home/fleet")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			load := tt.load
			if len(load) == 0 {
				load = []string{"fleet.yml"}
			}
			inv, dir, err := loadTree(t, tt.files, load...)
			if err != nil {
				t.Fatal(err)
			}
			h, ok := inv.Host(tt.host)
			if !ok {
				t.Fatalf("no host %s", tt.host)
			}
			got := hostView{Address: h.Address, Port: h.Port, User: h.User, KeyFiles: h.KeyFiles, Vars: h.Vars}
			for i, k := range tt.want.KeyFiles {
				tt.want.KeyFiles[i] = strings.Replace(k, "DIR", dir, 1)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("host %s:\n got %#v\nwant %#v", tt.host, got, tt.want)
			}
		})
	}
}

func TestLoadGroups(t *testing.T) {
	inv, _, err := loadTree(t, map[string]string{"fleet.yml": `all:
  hosts:
    lonely:
  children:
    kimsufi:
      hosts:
        ks1:
        kimsufi:
      children:
        zfs:
          hosts: {ks2: }
    rescue:
      children:
        zfs:
ungrouped:
  hosts:
    ks1:
    stray:
`}, "fleet.yml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name+"="+strings.Join(h.Groups, ","))
	}
	// kimsufi is both a host and a group; ks1 leaves ungrouped because it has
	// another group; ks2 reaches rescue through zfs.
	want := []string{
		"lonely=all,ungrouped",
		"ks1=all,kimsufi",
		"kimsufi=all,kimsufi",
		"ks2=all,kimsufi,rescue,zfs",
		"stray=all,ungrouped",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("hosts:\n got %q\nwant %q", names, want)
	}
	zfs := inv.Groups["zfs"]
	if !reflect.DeepEqual(zfs.Parents, []string{"kimsufi", "rescue"}) || zfs.Depth != 2 {
		t.Errorf("zfs parents %v depth %d, want [kimsufi rescue] 2", zfs.Parents, zfs.Depth)
	}
	if got := inv.Groups["ungrouped"].Hosts; !reflect.DeepEqual(got, []string{"lonely", "stray"}) {
		t.Errorf("ungrouped hosts %v, want [lonely stray]", got)
	}
	if got := inv.Groups["all"].Children; !reflect.DeepEqual(got, []string{"ungrouped", "kimsufi", "rescue"}) {
		t.Errorf("all children %v", got)
	}
}

func TestLoadVarsNotShared(t *testing.T) {
	inv, _, err := loadTree(t, map[string]string{"fleet.yml": `all:
  vars:
    disks: [sda]
  hosts:
    ks[1:2]:
      zfs: {pool: rpool}
`}, "fleet.yml")
	if err != nil {
		t.Fatal(err)
	}
	ks1, _ := inv.Host("ks1")
	ks2, _ := inv.Host("ks2")
	ks1.Vars["disks"].([]any)[0] = "changed"
	ks1.Vars["zfs"].(map[string]any)["pool"] = "changed"
	if ks2.Vars["disks"].([]any)[0] != "sda" || ks2.Vars["zfs"].(map[string]any)["pool"] != "rpool" {
		t.Errorf("changing ks1's vars changed ks2's: %v", ks2.Vars)
	}
	if inv.Groups["all"].Vars["disks"].([]any)[0] != "sda" {
		t.Errorf("changing ks1's vars changed group all's")
	}
}

func TestExpandHostRange(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"ks1", []string{"ks1"}},
		{"ks[01:03]", []string{"ks01", "ks02", "ks03"}},
		{"ks[8:11]", []string{"ks8", "ks9", "ks10", "ks11"}},
		{"ks[08:11]", []string{"ks08", "ks09", "ks10", "ks11"}},
		{"ks[001:003].example.net", []string{"ks001.example.net", "ks002.example.net", "ks003.example.net"}},
		{"node[1:10:4]", []string{"node1", "node5", "node9"}},
		{"node[:2]", []string{"node0", "node1", "node2"}},
		{"db-[a:c]", []string{"db-a", "db-b", "db-c"}},
		{"db-[A:E:2]", []string{"db-A", "db-C", "db-E"}},
		{"db-[x:z:5]", []string{"db-x"}},
		{"r[1:2]n[a:b]", []string{"r1na", "r1nb", "r2na", "r2nb"}},
		{"[1:2]x", []string{"1x", "2x"}},
		{"ks[5:5]", []string{"ks5"}},
	}
	for _, tt := range tests {
		got, err := expandHostRange(tt.in)
		if err != nil {
			t.Errorf("expandHostRange(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("expandHostRange(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	bad := map[string]string{
		"ks]1":             "] without [",
		"ks[1:2]]":         "] without [",
		"ks[a:C]":          "range [a:C]: a and C are letters of different case",
		"ks[aa:bb]":        `range [aa:bb]: want two numbers or two letters, got "aa" and "bb"`,
		"ks[c:a]":          "range [c:a]: start c is after end a",
		"ks[1:2:x]":        `range [1:2:x]: step "x" is not a positive integer`,
		"ks[1:3:-1]":       `range [1:3:-1]: step "-1" is not a positive integer`,
		"a[1:400]b[1:400]": "expands to more than 100000 hosts",
	}
	for in, want := range bad {
		if _, err := expandHostRange(in); err == nil || err.Error() != want {
			t.Errorf("expandHostRange(%q) error = %v, want %q", in, err, want)
		}
	}
}
