package inventory

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseExtraVars(t *testing.T) {
	files := map[string]string{
		"vars.yml":      "disks: [sda, sdb]\nzfs: {pool: rpool}\nchannel: nixos-24.05\n",
		"vars.json":     "{\n\t\"port\": 2222,\n\t\"ratio\": 0.5,\n\t\"big\": 12345678901234567890,\n\t\"nested\": {\"a\": [1, \"x\"]}\n}\n",
		"empty.yml":     "# nothing\n",
		"list.yml":      "- a\n- b\n",
		"broken.yml":    "a: 1\nb: [2\n",
		"dup.yml":       "a: 1\na: 2\n",
		"broken.json":   "{\n  \"a\": 1,\n  \"b\": }\n",
		"list.json":     "[1, 2]",
		"yamlish.json":  "a: 1\n",
		"two-docs.yaml": "a: 1\n---\nb: 2\n",
	}
	readFile := func(name string) ([]byte, error) {
		data, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("open %s: %w", name, fs.ErrNotExist)
		}
		return []byte(data), nil
	}
	tests := []struct {
		name string
		args []string
		want map[string]any
		err  string
	}{
		{name: "none", args: nil, want: map[string]any{}},
		{name: "key=value", args: []string{"a=1"}, want: map[string]any{"a": "1"}},
		{
			name: "several pairs and quoting",
			args: []string{`a=1 msg="two words" path='/tmp/x y' eq=k=v empty= esc=a\ b dq="say \"hi\" \n"`},
			want: map[string]any{"a": "1", "msg": "two words", "path": "/tmp/x y", "eq": "k=v", "empty": "", "esc": "a b", "dq": `say "hi" \n`},
		},
		{name: "json object", args: []string{`{"a":[1,2],"b":{"c":true},"d":1.5,"e":null}`}, want: map[string]any{"a": []any{1, 2}, "b": map[string]any{"c": true}, "d": 1.5, "e": nil}},
		{name: "yaml flow mapping", args: []string{`{a: 1, b: [x]}`}, want: map[string]any{"a": 1, "b": []any{"x"}}},
		{name: "yaml file", args: []string{"@vars.yml"}, want: map[string]any{"disks": []any{"sda", "sdb"}, "zfs": map[string]any{"pool": "rpool"}, "channel": "nixos-24.05"}},
		{name: "json file", args: []string{"@vars.json"}, want: map[string]any{"port": 2222, "ratio": 0.5, "big": 1.2345678901234567e19, "nested": map[string]any{"a": []any{1, "x"}}}},
		{name: "empty file", args: []string{"@empty.yml"}, want: map[string]any{}},
		{name: "empty argument", args: []string{"", "  "}, want: map[string]any{}},
		{
			name: "later arguments win whole values",
			args: []string{"@vars.yml", `{"zfs": {"ashift": 12}}`, "channel=nixos-unstable a=1", "a=2"},
			want: map[string]any{"disks": []any{"sda", "sdb"}, "zfs": map[string]any{"ashift": 12}, "channel": "nixos-unstable", "a": "2"},
		},

		{name: "not key=value", args: []string{"a=1 oops"}, err: `extra vars "a=1 oops": "oops" is not key=value`},
		{name: "bad name", args: []string{"1a=2"}, err: `extra vars "1a=2": "1a" is not a valid variable name`},
		{name: "no name", args: []string{"=2"}, err: `extra vars "=2": "" is not a valid variable name`},
		{name: "unterminated quote", args: []string{`msg="hi`}, err: `extra vars "msg=\"hi": unterminated double quote`},
		{name: "unterminated single quote", args: []string{`msg='hi`}, err: `extra vars "msg='hi": unterminated single quote`},
		{name: "json list", args: []string{`[1, 2]`}, err: `extra vars "[1, 2]": want a mapping, got a list`},
		{name: "bad json", args: []string{`{"a": [}`}, err: `extra vars "{\"a\": [}": invalid JSON: invalid character '}' looking for beginning of value`},
		{name: "missing file", args: []string{"a=1", "@nope.yml"}, err: `extra vars "@nope.yml": open nope.yml: file does not exist`},
		{name: "no file name", args: []string{"@"}, err: `extra vars "@": @ without a file name`},
		{name: "yaml list file", args: []string{"@list.yml"}, err: `extra vars "@list.yml": list.yml:1: want a mapping, got a list`},
		{name: "yaml syntax", args: []string{"@broken.yml"}, err: `extra vars "@broken.yml": broken.yml:2: did not find expected ',' or ']'`},
		{name: "yaml duplicate", args: []string{"@dup.yml"}, err: `extra vars "@dup.yml": dup.yml:2: duplicate key "a" (first at line 1)`},
		{name: "two documents", args: []string{"@two-docs.yaml"}, err: `extra vars "@two-docs.yaml": two-docs.yaml:2: more than one YAML document`},
		{name: "json syntax", args: []string{"@broken.json"}, err: `extra vars "@broken.json": broken.json:3: invalid character '}' looking for beginning of value`},
		{name: "json list file", args: []string{"@list.json"}, err: `extra vars "@list.json": want a mapping, got a list`},
		{name: "yaml in a json file", args: []string{"@yamlish.json"}, err: `extra vars "@yamlish.json": yamlish.json:1: invalid character 'a' looking for beginning of value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExtraVars(tt.args, readFile)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v\n         want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseExtraVarsReadsRealFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "site.yml")
	if err := os.WriteFile(path, []byte("ovh_endpoint: ovh-ca\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ParseExtraVars([]string{"@" + path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]any{"ovh_endpoint": "ovh-ca"}) {
		t.Errorf("got %v", got)
	}
}
