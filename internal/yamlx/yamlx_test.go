package yamlx

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type inner struct {
	Port int      `yaml:"port"`
	Tags []string `yaml:"tags"`
}

type Common struct {
	Chdir   string `yaml:"chdir"`
	Creates string `yaml:"creates"`
}

// argv mimics module argument types with their own UnmarshalYAML, whose
// errors carry "line N:" as yaml.v3 conventions go.
type argv []string

func (a *argv) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*a = argv{n.Value}
		return nil
	case yaml.SequenceNode:
		return n.Decode((*[]string)(a))
	}
	return fmt.Errorf("line %d: want a command string or a list of arguments", n.Line)
}

type target struct {
	Name   string            `yaml:"name" required:""`
	Mode   int               `yaml:"mode"`
	On     bool              `yaml:"on"`
	Ratio  float64           `yaml:"ratio"`
	Wait   time.Duration     `yaml:"wait"`
	Uint   uint              `yaml:"uint"`
	Env    map[string]string `yaml:"env"`
	Inner  inner             `yaml:"inner"`
	Ptr    *inner            `yaml:"ptr"`
	List   []inner           `yaml:"list"`
	Cmd    argv              `yaml:"cmd"`
	Any    any               `yaml:"any"`
	Node   yaml.Node         `yaml:"node"`
	Skip   string            `yaml:"-"`
	Common `yaml:",inline"`
}

func parse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	n, err := Parse("play.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDecodeValid(t *testing.T) {
	src := `name: web
mode: 0644
on: yes
ratio: 1.5
wait: 1m30s
uint: 3
env: {HOME: /root}
inner: {port: 22, tags: [a, b]}
ptr: {port: 2}
list:
  - port: 1
  - &second {port: 2}
  - *second
cmd: echo hi
any: [1, {x: y}]
node: {whatever: [1]}
chdir: /tmp
base: &base {creates: /done}
`
	// "base" is not a field: check that an error names it, then decode the
	// rest with a merge key instead.
	err := Decode("play.yml", parse(t, src), &target{})
	if err == nil || err.Error() != `play.yml:18: unknown key "base"` {
		t.Fatalf("error = %v", err)
	}

	src = `defaults: &d {chdir: /tmp, creates: /done}
real:
  <<: *d
  name: web
  mode: 0644
  on: yes
  ratio: 1.5
  wait: 1m30s
  uint: 3
  env: {HOME: /root}
  inner: {port: 22, tags: [a, b]}
  ptr: {port: 2}
  list:
    - port: 1
    - &second {port: 2}
    - *second
  cmd: echo hi
  any: [1, {x: y}]
  node: {whatever: [1]}
`
	var doc struct {
		Defaults map[string]string `yaml:"defaults"`
		Real     target            `yaml:"real"`
	}
	if err := Decode("play.yml", parse(t, src), &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Real
	if got.Name != "web" || got.Mode != 0644 || !got.On || got.Ratio != 1.5 || got.Wait != 90*time.Second ||
		got.Uint != 3 || got.Env["HOME"] != "/root" || !reflect.DeepEqual(got.Inner, inner{22, []string{"a", "b"}}) ||
		got.Ptr.Port != 2 || len(got.List) != 3 || got.List[2].Port != 2 || !reflect.DeepEqual(got.Cmd, argv{"echo hi"}) ||
		got.Chdir != "/tmp" || got.Creates != "/done" || got.Node.Kind != yaml.MappingNode {
		t.Errorf("decoded %+v", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      string
	}{
		{"wrong scalar type", "name: x\nmode: abc\n", `play.yml:2: mode: want an integer, got "abc"`},
		{"float for int", "name: x\nmode: 1.5\n", `play.yml:2: mode: want an integer, got 1.5`},
		{"list for int", "name: x\nmode: [1]\n", `play.yml:2: mode: want an integer, got a list`},
		{"bool", "name: x\non: maybe\n", `play.yml:2: on: want a boolean (true or false), got "maybe"`},
		{"uint", "name: x\nuint: -1\n", `play.yml:2: uint: want a non-negative integer, got -1`},
		{"duration without unit", "name: x\nwait: 30\n", `play.yml:2: wait: want a duration such as 30s, got 30 (a number needs a unit)`},
		{"bad duration", "name: x\nwait: soon\n", `play.yml:2: wait: want a duration such as 30s, got "soon"`},
		{"unknown key with suggestion", "name: x\nmdoe: 1\n", `play.yml:2: unknown key "mdoe" (did you mean mode?)`},
		{"unknown key", "name: x\nfrobnicate: 1\n", `play.yml:2: unknown key "frobnicate"`},
		{"unknown inline key", "name: x\ncreate: /x\n", `play.yml:2: unknown key "create" (did you mean creates?)`},
		{"skipped field is unknown", "name: x\nSkip: y\n", `play.yml:2: unknown key "Skip"`},
		{"missing required", "mode: 1\n", `play.yml:1: missing required key "name"`},
		{"required on null", "", ``},
		{"nested", "name: x\ninner:\n  port: x\n", `play.yml:3: inner.port: want an integer, got "x"`},
		{"nested unknown", "name: x\ninner:\n  prot: 1\n", `play.yml:3: inner: unknown key "prot" (did you mean port?)`},
		{"list item", "name: x\nlist:\n  - port: 1\n  - port: no\n", `play.yml:4: list[1].port: want an integer, got "no"`},
		{"list item tags", "name: x\ninner: {tags: a}\n", `play.yml:2: inner.tags: want a list, got "a"`},
		{"map not mapping", "name: x\nenv: [a]\n", `play.yml:2: env: want a mapping, got a list`},
		{"map value", "name: x\nenv: {A: [1]}\n", `play.yml:2: env.A: want a string, got a list`},
		{"struct not mapping", "name: x\nptr: 5\n", `play.yml:2: ptr: want a mapping, got 5`},
		{"unmarshaler error", "name: x\ncmd: {a: b}\n", `play.yml:2: cmd: want a command string or a list of arguments`},
		{"unmarshaler type error", "name: x\ncmd: [[a]]\n", "play.yml:2: cmd: want a string, got a list"},
		{"not a mapping", "- a\n", `play.yml:1: want a mapping, got a list`},
		{"several", "mode: x\nbad: 1\n", "play.yml:1: mode: want an integer, got \"x\"\nplay.yml:2: unknown key \"bad\"\nplay.yml:1: missing required key \"name\""},
		{"alias to wrong type", "x: &a [1]\nname: x\nmode: *a\n", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := parse(t, tt.src)
			if tt.name == "required on null" {
				n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: 1, Column: 1}
				tt.want = `play.yml:1: missing required key "name"`
			}
			if tt.name == "alias to wrong type" {
				n.Content = n.Content[2:] // drop x, keep the anchor reachable through the alias
				tt.want = `play.yml:1: mode: want an integer, got a list`
			}
			err := Decode("play.yml", n, &target{})
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			var ye *Error
			if !errors.As(err, &ye) {
				t.Errorf("error is not a *yamlx.Error")
			}
		})
	}
}

func TestDecodeMergeIntoMaps(t *testing.T) {
	src := "base: &b {a: 1}\nmore: &m {z: 26}\nvars:\n  <<: [*b, *m]\n  c: 2\n"
	var v struct {
		Base map[string]int `yaml:"base"`
		More map[string]int `yaml:"more"`
		Vars map[string]int `yaml:"vars"`
	}
	if err := Decode("v.yml", parse(t, src), &v); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.Vars, map[string]int{"a": 1, "c": 2, "z": 26}) {
		t.Errorf("vars = %v", v.Vars)
	}
	bad := "base: &b {a: x}\nvars:\n  <<: *b\n"
	if err := Decode("v.yml", parse(t, bad), &v); err == nil || err.Error() != `v.yml:1: base.a: want an integer, got "x"`+"\n"+`v.yml:1: vars.a: want an integer, got "x"` {
		t.Errorf("error = %v", err)
	}
}

func TestDecodeTopLevelShapes(t *testing.T) {
	var m map[string]int
	if err := Decode("f.yml", parse(t, "a: 1\nb: x\n"), &m); err == nil || err.Error() != `f.yml:2: b: want an integer, got "x"` {
		t.Errorf("map: %v", err)
	}
	var l []int
	if err := Decode("f.yml", parse(t, "[1, 2]"), &l); err != nil || !reflect.DeepEqual(l, []int{1, 2}) {
		t.Errorf("list: %v %v", l, err)
	}
	var s string
	if err := Decode("f.yml", parse(t, "{a: 1}"), &s); err == nil || err.Error() != "f.yml:1: want a string, got a mapping" {
		t.Errorf("string: %v", err)
	}
	if err := Decode("f.yml", parse(t, "a"), s); err == nil {
		t.Error("decoding into a non-pointer succeeded")
	}
	var doc yaml.Node
	_ = yaml.Unmarshal([]byte("name: doc\n"), &doc)
	var tg target
	if err := Decode("f.yml", &doc, &tg); err != nil || tg.Name != "doc" {
		t.Errorf("document node: %v %+v", err, tg)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"a: [1, 2\nb: 3\n", "play.yml:1: did not find expected ',' or ']'"},
		{"a: b: c\n", "play.yml:1: mapping values are not allowed in this context"},
		{"a: 1\na: 2\n", `play.yml:2: mapping key "a" already defined at line 1`},
		{"l:\n  - {x: 1, y: 2, x: 3}\n", `play.yml:2: mapping key "x" already defined at line 2`},
		{"a:\n  - b\n c: d\n", "play.yml:2: did not find expected key"},
		{"a: 'x\n", "play.yml:2: found unexpected end of stream"},
	}
	for _, tt := range tests {
		_, err := Parse("play.yml", []byte(tt.src))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) = %v, want %q", tt.src, err, tt.want)
		}
	}
	n, err := Parse("empty.yml", []byte("# nothing\n"))
	if n != nil || err != nil {
		t.Errorf("empty document: %v, %v", n, err)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"name", "register", "when", "notify", "loop", "loop_control", "ignore_errors", "changed_when"}
	tests := []struct{ in, want string }{
		{"regster", "register"},
		{"registr", "register"},
		{"nmae", "name"},
		{"Name", "name"},
		{"wehn", "when"},
		{"lop", "loop"},
		{"loop_contrl", "loop_control"},
		{"ignore_error", "ignore_errors"},
		{"chagned_when", "changed_when"},
		{"xyz", ""},
		{"hosts", ""},
		{"name", ""}, // an exact match is not a typo
	}
	for _, tt := range tests {
		if got := Suggest(tt.in, keys); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := UnknownKey("regster", keys); got != `unknown key "regster" (did you mean register?)` {
		t.Errorf("UnknownKey = %q", got)
	}
	if got := UnknownKey("zzz", keys); got != `unknown key "zzz"` {
		t.Errorf("UnknownKey = %q", got)
	}
}

func TestDescribe(t *testing.T) {
	for src, want := range map[string]string{
		"abc": `"abc"`, "'12'": `"12"`, "12": "12", "true": "true", "~": "null", "[1]": "a list", "{a: 1}": "a mapping",
	} {
		if got := Describe(parse(t, src)); got != want {
			t.Errorf("Describe(%s) = %s, want %s", src, got, want)
		}
	}
}

func TestKnownKeys(t *testing.T) {
	got := KnownKeys(reflect.TypeFor[*target]())
	want := []string{"name", "mode", "on", "ratio", "wait", "uint", "env", "inner", "ptr", "list", "cmd", "any", "node", "chdir", "creates"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("KnownKeys = %q", got)
	}
}
