package tmpl

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nikolalohinski/gonja/v2"
	"gopkg.in/yaml.v3"
)

func testVars() map[string]any {
	return map[string]any{
		"name":  "ks1",
		"port":  22,
		"ratio": 0.5,
		"on":    true,
		"none":  nil,
		"disks": []any{"/dev/sda", "/dev/sdb"},
		"facts": map[string]any{
			"os":        map[string]any{"id": "debian", "version_id": "12"},
			"memory_mb": 32768,
		},
		"ok":      map[string]any{"changed": false, "failed": false, "skipped": false, "rc": 0},
		"changed": map[string]any{"changed": true, "failed": false, "rc": 0},
		"broken":  map[string]any{"changed": false, "failed": true, "rc": 2},
		"skipped": map[string]any{"changed": false, "skipped": true},
		"path":    "/etc/nixos/configuration.nix",
		"doc":     `{"a": [1, 2.5, "x"], "b": {"c": null}}`,
		"yamldoc": "a: [1, two]\nb: {c: true}\n",
		"env":     map[string]any{"HOME": "/root", "LANG": "C"},
		"items":   []any{map[string]any{"key": "a", "value": 1}, map[string]any{"key": "b", "value": 2}},
	}
}

func TestRender(t *testing.T) {
	e := New()
	tests := []struct {
		src, want string
	}{
		{"plain text", "plain text"},
		{"host {{ name }}:{{ port }}", "host ks1:22"},
		{"{{ facts.os.id }}-{{ facts['os']['version_id'] }}", "debian-12"},
		{"{% for d in disks %}{{ d }} {% endfor %}", "/dev/sda /dev/sdb "},
		{"{% if on %}\nyes\n{% endif %}\n", "yes\n"}, // trim_blocks, as Ansible
		{"last line\n", "last line\n"},
		{"{{ disks | join(',') }}", "/dev/sda,/dev/sdb"},
		{"{{ facts.missing | default('none') }}", "none"},
		{"{{ facts.missing.deeper | d('deep') }}", "deep"},
		{"{{ '' | default('x', true) }}", "x"},
		{"{# comment #}kept", "kept"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := e.Render(tt.src, testVars())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Render(%q) = %q, want %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestRenderValueKeepsNativeTypes(t *testing.T) {
	e := New()
	tests := []struct {
		in   any
		want any
	}{
		{"{{ port }}", 22},
		{"{{ ratio }}", 0.5},
		{"{{ on }}", true},
		{"{{ none }}", nil},
		{"{{ disks }}", []any{"/dev/sda", "/dev/sdb"}},
		{"{{ facts.os }}", map[string]any{"id": "debian", "version_id": "12"}},
		{"{{ port + 1 }}", 23},
		{"{{ [port, name] }}", []any{22, "ks1"}},
		{"{{ {'k': {'n': port}} }}", map[string]any{"k": map[string]any{"n": 22}}},
		{"{{ 'a' if on else 'b' }}", "a"},
		{"{{ 'a' if not on }}", ""},
		{"port {{ port }}", "port 22"}, // text around: a string
		{"{{ port }}{{ port }}", "2222"},
		{" {{ port }}", " 22"},
		{"no template", "no template"},
		{42, 42},
		{
			map[string]any{"dest": "/tmp/{{ name }}", "n": "{{ port }}", "list": []any{"{{ on }}", "x"}},
			map[string]any{"dest": "/tmp/ks1", "n": 22, "list": []any{true, "x"}},
		},
		{[]string{"{{ name }}", "{{ port }}"}, []string{"ks1", "22"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			got, err := e.RenderValue(tt.in, testVars())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("RenderValue(%#v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRenderValueDoesNotModifyInput(t *testing.T) {
	in := map[string]any{"a": "{{ port }}", "l": []any{"{{ name }}"}}
	if _, err := New().RenderValue(in, testVars()); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": "{{ port }}", "l": []any{"{{ name }}"}}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("input changed to %#v", in)
	}
}

func TestFilters(t *testing.T) {
	e := New()
	tests := []struct {
		expr string
		want any
	}{
		{"facts.os | to_json", `{"id":"debian","version_id":"12"}`},
		{"'<a&b>' | to_json", `"<a&b>"`},
		{"{'b': 1, 'a': [1, 2]} | to_nice_json", "{\n    \"a\": [\n        1,\n        2\n    ],\n    \"b\": 1\n}"},
		{"{'a': 1} | to_nice_json(indent=2)", "{\n  \"a\": 1\n}"},
		{"facts.os | to_yaml", "id: debian\nversion_id: \"12\"\n"},
		{"doc | from_json", map[string]any{"a": []any{1, 2.5, "x"}, "b": map[string]any{"c": nil}}},
		{"(doc | from_json).a[0] + 1", 2},
		{"yamldoc | from_yaml", map[string]any{"a": []any{1, "two"}, "b": map[string]any{"c": true}}},
		{"'hello world' | b64encode", "aGVsbG8gd29ybGQ="},
		{"'aGVsbG8gd29ybGQ=' | b64decode", "hello world"},
		{"'aGVsbG8' | b64decode", "hello"},
		{"path | basename", "configuration.nix"},
		{"path | dirname", "/etc/nixos"},
		{"'/etc/' | basename", ""},
		{"'/etc' | dirname", "/"},
		{"'file' | dirname", ""},
		{"'eth0 eth1' | regex_replace('eth(\\\\d)', 'en\\\\1')", "en0 en1"},
		{"'ab' | regex_replace('(?P<x>a)', '\\\\g<x>\\\\g<x>')", "aab"},
		{"'cost 5' | regex_replace('\\\\d', '$')", "cost $"},
		{"'ABC' | regex_replace('b', 'x', ignorecase=true)", "AxC"},
		{"'ABC' | regex_replace('b', 'x')", "ABC"},
		{"'disk sda 100G' | regex_search('sd[a-z]')", "sda"},
		{"'disk sda 100G' | regex_search('nvme')", nil},
		{"'disk sda 100G' | regex_search('(sd[a-z]) (\\\\d+)G', '\\\\2', '\\\\1')", []any{"100", "sda"}},
		{"'a1 b2' | regex_findall('[a-z](\\\\d)')", []any{"1", "2"}},
		{"\"it's here\" | quote", `'it'\''s here'`},
		{"'plain-word' | quote", "plain-word"},
		{"'' | quote", "''"},
		{"'yes' | bool", true},
		{"'On' | bool", true},
		{"'1' | bool", true},
		{"'no' | bool", false},
		{"'false' | bool", false},
		{"on | bool", true},
		{"none | bool", false},
		{"1 | bool", true},
		{"name | mandatory", "ks1"},
		{"env | dict2items", []any{map[string]any{"key": "HOME", "value": "/root"}, map[string]any{"key": "LANG", "value": "C"}}},
		{"{'a': 1} | dict2items(key_name='k', value_name='v')", []any{map[string]any{"k": "a", "v": 1}}},
		{"items | items2dict", map[string]any{"a": 1, "b": 2}},
		{"env | combine({'LANG': 'en'})", map[string]any{"HOME": "/root", "LANG": "en"}},
		{"{'a': {'x': 1}} | combine({'a': {'y': 2}}, recursive=true)", map[string]any{"a": map[string]any{"x": 1, "y": 2}}},
		{"on | ternary('up', 'down')", "up"},
		{"missing | default('d')", "d"},
		{"facts.a.b.c | default(7)", 7},
		{"none | default('d')", nil},
		{"none | default('d', true)", "d"},
		{"missing | d([])", []any{}},
		{"disks | length", 2},
		{"name | upper", "KS1"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := e.Eval(tt.expr, testVars())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval(%q) = %#v, want %#v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	e := New()
	tests := []struct {
		expr, want string
	}{
		{"'{' | from_json", "from_json: unexpected EOF"},
		{"'a: [' | from_yaml", "from_yaml: yaml: line 1: did not find expected node content"},
		{"'!!!' | b64decode", "b64decode: illegal base64 data at input byte 0"},
		{"'x' | regex_replace('(')", "regex_replace: error parsing regexp: missing closing ): `(`"},
		{"'x' | dict2items", `dict2items: want a mapping, got "x"`},
		{"[1] | items2dict", "items2dict: item 0 needs keys \"key\" and \"value\""},
		{"name | nosuchfilter", "filter 'nosuchfilter' not found"},
		{"name is changed", `the "changed" test needs a registered task result, got "ks1"`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := e.Eval(tt.expr, testVars())
			if err == nil {
				t.Fatalf("Eval(%q) succeeded", tt.expr)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Eval(%q) error = %q, want it to contain %q", tt.expr, err, tt.want)
			}
			var u *UndefinedError
			if errors.As(err, &u) {
				t.Errorf("error %q is reported as undefined", err)
			}
		})
	}
}

func TestTests(t *testing.T) {
	e := New()
	tests := []struct {
		expr string
		want bool
	}{
		{"name is defined", true},
		{"missing is defined", false},
		{"facts.os.id is defined", true},
		{"facts.nope.deeper is defined", false},
		{"none is defined", true},
		{"missing is undefined", true},
		{"name is undefined", false},
		{"none is none", true},
		{"name is none", false},
		{"changed is changed", true},
		{"ok is changed", false},
		{"broken is failed", true},
		{"ok is failed", false},
		{"broken is failure", true},
		{"skipped is skipped", true},
		{"ok is skipped", false},
		{"ok is success", true},
		{"ok is succeeded", true},
		{"broken is succeeded", false},
		{"skipped is successful", true},
		{"broken is not success", true},
		{"{} is changed", false},
		{"ok.rc == 0 and name is defined", true},
		{"missing is defined and missing.x == 1", false},
		{"missing is undefined or missing == 1", true},
		{"'sda' in disks[0]", true},
		{"facts.memory_mb >= 16384", true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := e.Truth(tt.expr, testVars())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Truth(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestTruth(t *testing.T) {
	e := New()
	tests := []struct {
		expr string
		want bool
	}{
		{"true", true}, {"True", true}, {"false", false}, {"False", false},
		{"0", false}, {"1", true}, {"''", false}, {"'x'", true},
		{"[]", false}, {"disks", true}, {"{}", false}, {"env", true},
		{"none", false}, {"port == 22", true}, {"not on", false},
		{"{{ port == 22 }}", true}, // a when written with braces
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := e.Truth(tt.expr, testVars())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Truth(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestUndefinedNamesTheVariable(t *testing.T) {
	e := New()
	tests := []struct {
		src, name, msg string
	}{
		{"{{ foo }}", "foo", `undefined variable "foo"`},
		{"x {{ foo }} y", "foo", `undefined variable "foo"`},
		{"{{ facts.x.y }}", "facts.x", `undefined variable "facts.x"`},
		{"{{ facts.os.nope }}", "facts.os.nope", `undefined variable "facts.os.nope"`},
		{"{{ facts['nope'] }}", "facts['nope']", `undefined variable "facts['nope']"`},
		{"{{ disks[5] }}", "disks[5]", `undefined variable "disks[5]"`},
		{"{{ none.attr }}", "none.attr", `undefined variable "none.attr"`},
		{"{{ foo | upper }}", "foo", `undefined variable "foo"`},
		{"{% for d in nodisks %}{{ d }}{% endfor %}", "nodisks", `undefined variable "nodisks"`},
		{"{{ foo | mandatory }}", "foo", `undefined variable "foo"`},
		{"{{ foo | mandatory('set foo in the inventory') }}", "foo", `undefined variable "foo": set foo in the inventory`},
		{"{{ foo is changed }}", "foo", `undefined variable "foo"`},
		{"{{ name ~ foo }}", "foo", `undefined variable "foo"`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			for _, render := range []func() error{
				func() error { _, err := e.Render(tt.src, testVars()); return err },
				func() error { _, err := e.RenderValue(tt.src, testVars()); return err },
			} {
				err := render()
				var u *UndefinedError
				if !errors.As(err, &u) {
					t.Fatalf("error = %v, want an *UndefinedError", err)
				}
				if u.Name != tt.name || err.Error() != tt.msg {
					t.Errorf("error = %q (name %q), want %q (name %q)", err, u.Name, tt.msg, tt.name)
				}
			}
		})
	}
	_, err := e.Eval("result.rc == 0", testVars())
	if err == nil || err.Error() != `undefined variable "result"` {
		t.Errorf("Eval error = %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	e := New()
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"render", func() error { _, err := e.Render("{{ x + }}", nil); return err },
			`parse error in template "{{ x + }}": expected either a number, string, keyword or identifier (near "}}")`},
		{"unclosed", func() error { _, err := e.Render("{{ x ", nil); return err }, `parse error in template "{{ x "`},
		{"block", func() error { _, err := e.Render("{% if x %}", nil); return err }, `parse error in template "{% if x %}"`},
		{"eval", func() error { _, err := e.Eval("x ==", nil); return err },
			`parse error in expression "x ==": expected either a number, string, keyword or identifier (near "}}")`},
		{"truth", func() error { _, err := e.Truth("a b", nil); return err }, `parse error in expression "a b"`},
		{"empty", func() error { _, err := e.Truth(" ", nil); return err }, "empty expression"},
		{"check", func() error { return e.Check("a {{ b | }}") }, `parse error in template "a {{ b | }}"`},
		{"check expr", func() error { return e.CheckExpr("a and") }, `parse error in expression "a and"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
	for _, ok := range []string{"plain", "{{ a }}", "{% for x in y %}{{ x }}{% endfor %}"} {
		if err := e.Check(ok); err != nil {
			t.Errorf("Check(%q) = %v", ok, err)
		}
	}
	if err := e.CheckExpr("undefined_is_fine_here is defined and x.y == 1"); err != nil {
		t.Errorf("CheckExpr = %v", err)
	}
}

func TestIsTemplate(t *testing.T) {
	for s, want := range map[string]bool{
		"{{ x }}": true, "a {% if %}": true, "plain": false, "{ x }": false, "{#c#}": false, "}}": false,
	} {
		if got := IsTemplate(s); got != want {
			t.Errorf("IsTemplate(%q) = %v", s, got)
		}
	}
}

const argsYAML = `# line 1
dest: "/srv/{{ name }}"
mode: "{{ port }}"
disks: "{{ disks }}"
env: "{{ env }}"
label: "{{ port }}0"
word: "{{ name }}"
on: "{{ on }}"
literal: "{{ '{{' }} not rendered again"
plain: 0644
shared: &anchor "{{ name }}-a"
copy: *anchor
nested:
  - "{{ facts.os.id }}"
  - {k: "{{ port }}"}
`

func TestRenderNode(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(argsYAML), &doc); err != nil {
		t.Fatal(err)
	}
	before, _ := yaml.Marshal(&doc)
	out, err := New().RenderNode(&doc, testVars())
	if err != nil {
		t.Fatal(err)
	}
	after, _ := yaml.Marshal(&doc)
	if string(before) != string(after) {
		t.Errorf("RenderNode modified its input:\n%s", after)
	}

	var got struct {
		Dest    string            `yaml:"dest"`
		Mode    int               `yaml:"mode"`
		Disks   []string          `yaml:"disks"`
		Env     map[string]string `yaml:"env"`
		Label   int               `yaml:"label"`
		Word    string            `yaml:"word"`
		On      bool              `yaml:"on"`
		Literal string            `yaml:"literal"`
		Plain   string            `yaml:"plain"`
		Shared  string            `yaml:"shared"`
		Copy    string            `yaml:"copy"`
		Nested  []any             `yaml:"nested"`
	}
	if err := out.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := got
	want.Dest, want.Mode, want.Disks = "/srv/ks1", 22, []string{"/dev/sda", "/dev/sdb"}
	want.Env = map[string]string{"HOME": "/root", "LANG": "C"}
	want.Label, want.Word, want.On, want.Literal, want.Plain = 220, "ks1", true, "{{ not rendered again", "0644"
	want.Shared, want.Copy = "ks1-a", "ks1-a"
	want.Nested = []any{"debian", map[string]any{"k": 22}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v\nwant    %+v", got, want)
	}

	// Every node, native ones included, keeps the line it was written on.
	lines := map[string]int{}
	m := out.Content[0]
	for i := 0; i < len(m.Content); i += 2 {
		lines[m.Content[i].Value] = m.Content[i+1].Line
	}
	for key, line := range map[string]int{"dest": 2, "disks": 4, "env": 5, "copy": 12, "nested": 14} {
		if lines[key] != line {
			t.Errorf("%s: line %d, want %d", key, lines[key], line)
		}
	}
	disks := m.Content[5]
	if disks.Kind != yaml.SequenceNode || disks.Content[1].Line != 4 {
		t.Errorf("disks node = kind %v, item line %d", disks.Kind, disks.Content[1].Line)
	}
	if k := m.Content[len(m.Content)-1].Content[1].Content[1]; k.Line != 15 || k.Tag != "!!int" {
		t.Errorf("nested k: line %d tag %s", k.Line, k.Tag)
	}

	// A decode error on a rendered node still names the playbook line.
	var wrong struct {
		Word int `yaml:"word"`
	}
	err = out.Decode(&wrong)
	if err == nil || !strings.Contains(err.Error(), "line 7:") {
		t.Errorf("decode error = %v, want line 7", err)
	}
}

func TestRenderNodeErrors(t *testing.T) {
	var doc yaml.Node
	src := "a: 1\nlist:\n  - ok\n  - \"{{ nope.x }}\"\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	_, err := New().RenderNode(&doc, testVars())
	var ne *NodeError
	var u *UndefinedError
	if !errors.As(err, &ne) || !errors.As(err, &u) {
		t.Fatalf("error = %#v", err)
	}
	if err.Error() != `line 4: list[1]: undefined variable "nope"` || ne.Column != 5 {
		t.Errorf("error = %q (column %d)", err, ne.Column)
	}
}

// TestConcurrentUse runs every entry point from many goroutines over the
// same Engine; run with -race.
func TestConcurrentUse(t *testing.T) {
	e := New()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(argsYAML), &doc); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			vars := testVars()
			vars["name"] = fmt.Sprintf("ks%d", g)
			for i := range 50 {
				got, err := e.Render("{% macro tag(d) %}<{{ d }}>{% endmacro %}{% set sep = ';' %}"+
					"{% for d in disks %}{{ name }}:{{ tag(d) }}{{ sep }}{% endfor %}{{ i }}", mergeHash(map[string]any{"i": i}, vars, false, "replace"))
				want := fmt.Sprintf("ks%d:</dev/sda>;ks%d:</dev/sdb>;%d", g, g, i)
				if err != nil || got != want {
					errs <- fmt.Errorf("Render = %q, %v; want %q", got, err, want)
					return
				}
				if ok, err := e.Truth("ok is success and name is defined", vars); err != nil || !ok {
					errs <- fmt.Errorf("Truth = %v, %v", ok, err)
					return
				}
				if _, err := e.RenderNode(&doc, vars); err != nil {
					errs <- err
					return
				}
				if _, err := e.Eval(fmt.Sprintf("port + %d", i), vars); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEnginesDoNotTouchGonjaDefaults(t *testing.T) {
	New()
	if gonja.DefaultEnvironment.Filters.Exists("to_json") || gonja.DefaultEnvironment.Tests.Exists("changed") {
		t.Error("New registered filters or tests in gonja's package defaults")
	}
	if gonja.DefaultConfig.StrictUndefined {
		t.Error("New changed gonja.DefaultConfig")
	}
}

func TestPlain(t *testing.T) {
	type disk struct {
		Path string `json:"path"`
		Size int64  `json:"size_bytes"`
	}
	in := struct {
		CPUs  int     `json:"cpus"`
		Load  float64 `json:"load"`
		Disks []disk  `json:"disks"`
		None  []disk  `json:"none"`
	}{8, 0.5, []disk{{"/dev/sda", 1 << 40}}, nil}
	got, err := Plain(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"cpus": 8, "load": 0.5, "disks": []any{map[string]any{"path": "/dev/sda", "size_bytes": 1 << 40}}, "none": nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Plain = %#v", got)
	}
	out, err := New().Render("{{ f.cpus }} CPUs, {{ f.disks[0].size_bytes }}", map[string]any{"f": got})
	if err != nil || out != "8 CPUs, 1099511627776" {
		t.Errorf("Render = %q, %v", out, err)
	}
	if _, err := Plain(func() {}); err == nil {
		t.Error("Plain accepted a func")
	}
}

func BenchmarkRender(b *testing.B) {
	e, vars := New(), testVars()
	for b.Loop() {
		if _, err := e.Render("host {{ name }} has {{ disks | length }} disks: {{ disks | join(' ') }}", vars); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTruth(b *testing.B) {
	e, vars := New(), testVars()
	for b.Loop() {
		if _, err := e.Truth("ok.rc == 0 and name is defined and facts.memory_mb > 1024", vars); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderNode(b *testing.B) {
	e, vars := New(), testVars()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(argsYAML), &doc); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := e.RenderNode(&doc, vars); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseUncached(b *testing.B) {
	vars := testVars()
	for i := 0; b.Loop(); i++ {
		e := New()
		if _, err := e.Render(fmt.Sprintf("host {{ name }} %d", i), vars); err != nil {
			b.Fatal(err)
		}
	}
}

// A template that is not UTF-8 is refused, as Jinja refuses it, before
// gonja's lexer sees it (it looped for ever on some such bytes).
func TestInvalidUTF8(t *testing.T) {
	for _, src := range []string{"{{\xdb1.\u743e }}", "caf\xe9 {{ x }}"} {
		done := make(chan error, 1)
		go func() {
			_, err := New().Render(src, map[string]any{"x": 1})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Errorf("Render(%q) error = %v, want one saying it is not UTF-8", src, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Render(%q) still running after 10 s", src)
		}
	}
}
