package tmpl

import (
	"reflect"
	"strings"
	"testing"
)

// The expectations are what Ansible and Python give for the same input.
func TestCollectionFilters(t *testing.T) {
	e := New()
	tests := []struct {
		expr string
		want any
	}{
		{"[1, [2, [3, [4]]], None, 'None', 'null', 5] | flatten", []any{1, 2, 3, 4, 5}},
		{"[1, [2, [3, [4]]]] | flatten(1)", []any{1, 2, []any{3, []any{4}}}},
		{"[1, [2, [3, [4]]]] | flatten(levels=2)", []any{1, 2, 3, []any{4}}},
		{"[1, [2, [3]]] | flatten(0)", []any{1, []any{2, []any{3}}}},
		{"[None, [None]] | flatten(skip_nulls=false)", []any{nil, nil}},
		{"[] | flatten", []any{}},
		{"'  a b\t\nc  ' | split", []any{"a", "b", "c"}},
		{"'  a b  c  ' | split(None, 1)", []any{"a", "b  c  "}},
		{"'a,b,,c' | split(',')", []any{"a", "b", "", "c"}},
		{"'a,b,,c' | split(',', 2)", []any{"a", "b", ",c"}},
		{"'a::b' | split('::')", []any{"a", "b"}},
		{"'' | split", []any{}},
		{"'' | split(',')", []any{""}},
		{"'a b' | split(maxsplit=0)", []any{"a b"}},
		{"[{'a': 1}, {'b': 2}] | combine", map[string]any{"a": 1, "b": 2}},
		{"{'a': 1} | combine({'a': 2}, {'a': 3})", map[string]any{"a": 3}},
		{"{'a': {'x': 1}} | combine({'a': {'y': 2}})", map[string]any{"a": map[string]any{"y": 2}}},
		{"{'a': {'x': [1, 2]}} | combine({'a': {'x': [2, 3]}}, recursive=true)", map[string]any{"a": map[string]any{"x": []any{2, 3}}}},
		{"{'a': {'x': [1, 2]}} | combine({'a': {'x': [2, 3]}}, recursive=true, list_merge='append')", map[string]any{"a": map[string]any{"x": []any{1, 2, 2, 3}}}},
		{"{'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='prepend')", map[string]any{"l": []any{2, 3, 1, 2}}},
		{"{'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='append_rp')", map[string]any{"l": []any{1, 2, 3}}},
		{"{'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='prepend_rp')", map[string]any{"l": []any{2, 3, 1}}},
		{"{'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='keep')", map[string]any{"l": []any{1, 2}}},
		{"{'l': [1]} | combine({'l': 'x'}, list_merge='append')", map[string]any{"l": "x"}},
		{"{'a': 1, 'b': 2} | dict2items(key_name='k', value_name='v') | items2dict(key_name='k', value_name='v')", map[string]any{"a": 1, "b": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := e.Eval(tt.expr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval(%q) = %#v, want %#v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestCollectionFilterErrors(t *testing.T) {
	e := New()
	tests := []struct{ expr, want string }{
		{"'abc' | flatten", `flatten: want a list, got "abc"`},
		{"[1] | flatten('x')", "flatten: levels must be an integer"},
		{"'a' | split('')", "split: empty separator"},
		{"('a ' * 200000) | split", "template limit reached: a list of more than 100000 items"},
		{"('a,' * 200000) | split(',')", "template limit reached: a list of more than 100000 items"},
		{"{'a': 1} | combine({}, deep=true)", "'recursive' and 'list_merge' are the only valid keyword arguments"},
		{"{'a': 1} | combine({}, list_merge='merge')", "list_merge can only be"},
		{"{'a': 1} | combine([1])", "combine: argument 1: want mappings, got 1"},
		{"'{}' | combine", "combine: argument 0: want mappings"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := e.Eval(tt.expr, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Eval(%q) error = %v, want it to contain %q", tt.expr, err, tt.want)
			}
		})
	}
}
