package tmpl

import (
	"reflect"
	"strings"
	"unicode"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// filterFlatten follows flatten in Ansible's
// lib/ansible/plugins/filter/core.py: nested lists are spliced in, down to
// levels deep when given, and none, 'None' and 'null' items are dropped
// unless skip_nulls=false.
func filterFlatten(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if !in.IsList() {
		return fail("flatten: want a list, got %s", describe(in))
	}
	levels := -1
	if v := param(params, 0, "levels"); v != nil && !v.IsNil() {
		if !v.IsInteger() {
			return fail("flatten: levels must be an integer, got %s", describe(v))
		}
		levels = max(v.Integer(), 0)
	}
	skipNulls := true
	if v := param(params, 1, "skip_nulls"); v != nil {
		skipNulls = v.IsTrue()
	}
	p, err := plain(in)
	if err != nil {
		return fail("flatten: %w", err)
	}
	out := []any{}
	if err := flatten(&out, p.([]any), levels, skipNulls); err != nil {
		return fail("flatten: %w", err)
	}
	return exec.AsValue(out)
}

func flatten(out *[]any, in []any, levels int, skipNulls bool) error {
	for _, item := range in {
		if skipNulls && (item == nil || item == "None" || item == "null") {
			continue
		}
		if l, ok := item.([]any); ok && levels != 0 {
			if err := flatten(out, l, levels-1, skipNulls); err != nil {
				return err
			}
			continue
		}
		if len(*out) >= MaxListItems {
			return limitError("a list of more than %d items", MaxListItems)
		}
		*out = append(*out, item)
	}
	return nil
}

// filterSplit is Python's str.split, which Ansible's split filter calls:
// with no separator it splits on runs of whitespace and drops empty parts.
func filterSplit(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	maxSplit := intParam(params, 1, "maxsplit", -1)
	sep := param(params, 0, "sep")
	var out []any
	var err error
	if sep == nil || sep.IsNil() {
		out, err = splitWhitespace(in.String(), maxSplit)
	} else if sep.String() == "" {
		return fail("split: empty separator")
	} else {
		out, err = splitOn(in.String(), sep.String(), maxSplit)
	}
	if err != nil {
		return fail("split: %w", err)
	}
	return exec.AsValue(out)
}

// pythonSpace is what str.isspace holds true.
func pythonSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func splitWhitespace(s string, maxSplit int) ([]any, error) {
	out := []any{}
	for {
		s = strings.TrimLeftFunc(s, pythonSpace)
		if s == "" {
			return out, nil
		}
		if len(out) >= MaxListItems {
			return nil, limitError("a list of more than %d items", MaxListItems)
		}
		if maxSplit >= 0 && len(out) == maxSplit {
			return append(out, s), nil
		}
		end := strings.IndexFunc(s, pythonSpace)
		if end < 0 {
			return append(out, s), nil
		}
		out = append(out, s[:end])
		s = s[end:]
	}
}

func splitOn(s, sep string, maxSplit int) ([]any, error) {
	out := []any{}
	for maxSplit < 0 || len(out) < maxSplit {
		i := strings.Index(s, sep)
		if i < 0 {
			break
		}
		if len(out) >= MaxListItems {
			return nil, limitError("a list of more than %d items", MaxListItems)
		}
		out = append(out, s[:i])
		s = s[i+len(sep):]
	}
	return append(out, s), nil
}

// listMerges are merge_hash's list_merge modes (Ansible's
// lib/ansible/utils/vars.py).
func listMerges() map[string]bool {
	return map[string]bool{"replace": true, "keep": true, "append": true, "prepend": true, "append_rp": true, "prepend_rp": true}
}

// filterCombine follows combine in Ansible's
// lib/ansible/plugins/filter/core.py: mappings, or lists of them, merged
// left to right by merge_hash; recursive=true merges nested mappings and
// list_merge says what becomes of two lists under one key.
func filterCombine(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	recursive, listMerge := false, "replace"
	for k, v := range params.KwArgs {
		switch k {
		case "recursive":
			recursive = v.IsTrue()
		case "list_merge":
			listMerge = v.String()
		default:
			return fail("combine: 'recursive' and 'list_merge' are the only valid keyword arguments, got %q", k)
		}
	}
	if !listMerges()[listMerge] {
		return fail("combine: list_merge can only be 'replace', 'keep', 'append', 'prepend', 'append_rp' or 'prepend_rp', got %q", listMerge)
	}
	var dicts []map[string]any
	for i, v := range append([]*exec.Value{in}, params.Args...) {
		if v.IsError() {
			return v
		}
		p, err := plain(v)
		if err != nil {
			return fail("combine: %w", err)
		}
		items := []any{p}
		if l, ok := p.([]any); ok {
			items = l
		}
		for _, item := range items {
			m, ok := item.(map[string]any)
			if !ok {
				return fail("combine: argument %d: want mappings, got %s", i, describe(exec.AsValue(item)))
			}
			dicts = append(dicts, m)
		}
	}
	acc := map[string]any{}
	for _, m := range dicts {
		acc = mergeHash(acc, m, recursive, listMerge)
	}
	return exec.AsValue(acc)
}

// mergeHash is merge_hash of Ansible's lib/ansible/utils/vars.py: y's keys
// over a copy of x's.
func mergeHash(x, y map[string]any, recursive bool, listMerge string) map[string]any {
	out := make(map[string]any, len(x)+len(y))
	for k, v := range x {
		out[k] = v
	}
	for k, yv := range y {
		xv, ok := out[k]
		if !ok {
			out[k] = yv
			continue
		}
		xm, xIsMap := xv.(map[string]any)
		ym, yIsMap := yv.(map[string]any)
		if xIsMap && yIsMap {
			if recursive {
				out[k] = mergeHash(xm, ym, recursive, listMerge)
			} else {
				out[k] = yv
			}
			continue
		}
		xl, xIsList := xv.([]any)
		yl, yIsList := yv.([]any)
		if xIsList && yIsList {
			out[k] = mergeLists(xl, yl, listMerge)
			continue
		}
		out[k] = yv
	}
	return out
}

func mergeLists(x, y []any, listMerge string) []any {
	without := func(l, drop []any) []any {
		out := []any{}
		for _, item := range l {
			if !containsValue(drop, item) {
				out = append(out, item)
			}
		}
		return out
	}
	switch listMerge {
	case "keep":
		return x
	case "append":
		return append(append([]any{}, x...), y...)
	case "prepend":
		return append(append([]any{}, y...), x...)
	case "append_rp":
		return append(without(x, y), y...)
	case "prepend_rp":
		return append(append([]any{}, y...), without(x, y)...)
	}
	return y
}

func containsValue(l []any, v any) bool {
	for _, item := range l {
		if reflect.DeepEqual(item, v) {
			return true
		}
	}
	return false
}
