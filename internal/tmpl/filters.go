package tmpl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/shellquote"
)

// ansibleFilters are the filters playbooks use beyond the Jinja builtins,
// named and behaving as in Ansible.
func ansibleFilters() map[string]exec.FilterFunction {
	return map[string]exec.FilterFunction{
		"default":             filterDefault,
		"d":                   filterDefault,
		"mandatory":           filterMandatory,
		"to_json":             filterToJSON,
		"to_nice_json":        filterToNiceJSON,
		"to_yaml":             filterToYAML,
		"to_nice_yaml":        filterToYAML,
		"from_json":           filterFromJSON,
		"from_yaml":           filterFromYAML,
		"b64encode":           filterB64Encode,
		"b64decode":           filterB64Decode,
		"basename":            filterBasename,
		"dirname":             filterDirname,
		"regex_replace":       filterRegexReplace,
		"regex_search":        filterRegexSearch,
		"regex_findall":       filterRegexFindall,
		"quote":               filterQuote,
		"bool":                filterBool,
		"dict2items":          filterDict2Items,
		"items2dict":          filterItems2Dict,
		"combine":             filterCombine,
		"ternary":             filterTernary,
		"hash":                filterHash,
		"password_hash":       filterPasswordHash,
		"flatten":             filterFlatten,
		"split":               filterSplit,
		"random":              filterRandom,
		"format":              filterFormat,
		"ipaddr":              ipFilter("ipaddr", 0),
		"ipv4":                ipFilter("ipv4", 4),
		"ipv6":                ipFilter("ipv6", 6),
		"nthhost":             filterNthhost,
		"ipmath":              filterIPMath,
		"next_nth_usable":     nthUsable("next_nth_usable", 1),
		"previous_nth_usable": nthUsable("previous_nth_usable", -1),
		"network_in_usable":   filterNetworkIn("network_in_usable"),
		"network_in_network":  filterNetworkIn("network_in_network"),
		"ipwrap":              filterIPWrap,
		"ipsubnet":            filterIPSubnet,
	}
}

// param returns the i-th positional argument or the keyword argument name,
// or nil when neither is given.
func param(params *exec.VarArgs, i int, name string) *exec.Value {
	if i >= 0 && i < len(params.Args) {
		return params.Args[i]
	}
	if v, ok := params.KwArgs[name]; ok {
		return v
	}
	return nil
}

func stringParam(params *exec.VarArgs, i int, name, fallback string) string {
	if v := param(params, i, name); v != nil && !v.IsNil() {
		return v.String()
	}
	return fallback
}

func boolParam(params *exec.VarArgs, i int, name string) bool {
	v := param(params, i, name)
	return v != nil && v.IsTrue()
}

func fail(format string, args ...any) *exec.Value {
	return exec.AsValue(fmt.Errorf(format, args...))
}

// plain converts a gonja value to plain Go values for encoding.
func plain(in *exec.Value) (any, error) {
	out := in.ToGoSimpleType(false)
	if err, ok := out.(error); ok {
		return nil, err
	}
	return out, nil
}

// filterDefault follows Jinja: only an undefined value is replaced (a none
// stays none), or any false value with boolean=true.
func filterDefault(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	fallback := param(params, 0, "default_value")
	if fallback == nil {
		fallback = param(params, -1, "default")
	}
	if fallback == nil {
		fallback = exec.AsValue("")
	}
	if in.IsError() {
		if isUndefined(in) {
			return fallback
		}
		return in
	}
	if boolParam(params, 1, "boolean") && !in.IsTrue() {
		return fallback
	}
	return in
}

func filterMandatory(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if !in.IsError() {
		return in
	}
	u, ok := asUndefined(in.Error())
	if !ok {
		return in
	}
	u.Hint = stringParam(params, 0, "msg", "")
	return exec.AsValue(u)
}

func filterToJSON(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	return encodeJSON(in, "")
}

func filterToNiceJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	indent := 4
	if v := param(params, -1, "indent"); v != nil {
		indent = v.Integer()
	}
	return encodeJSON(in, strings.Repeat(" ", indent))
}

func encodeJSON(in *exec.Value, indent string) *exec.Value {
	if in.IsError() {
		return in
	}
	v, err := plain(in)
	if err != nil {
		return fail("to_json: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return fail("to_json: %w", err)
	}
	return exec.AsValue(strings.TrimSuffix(buf.String(), "\n"))
}

func filterToYAML(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	v, err := plain(in)
	if err != nil {
		return fail("to_yaml: %w", err)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return fail("to_yaml: %w", err)
	}
	return exec.AsValue(string(out))
}

func filterFromJSON(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	dec := json.NewDecoder(strings.NewReader(in.String()))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fail("from_json: %w", err)
	}
	return exec.AsValue(jsonNumbers(v))
}

// jsonNumbers turns json.Number into int where the number is whole, so
// `from_json` yields the same types as YAML.
func jsonNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i)
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, item := range v {
			v[k] = jsonNumbers(item)
		}
	case []any:
		for i, item := range v {
			v[i] = jsonNumbers(item)
		}
	}
	return v
}

func filterFromYAML(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	var v any
	if err := yaml.Unmarshal([]byte(in.String()), &v); err != nil {
		return fail("from_yaml: %w", err)
	}
	return exec.AsValue(v)
}

func filterB64Encode(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	return exec.AsValue(base64.StdEncoding.EncodeToString([]byte(in.String())))
}

func filterB64Decode(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	s := strings.TrimSpace(in.String())
	out, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Unpadded input is common in hand-written values.
		var err2 error
		if out, err2 = base64.RawStdEncoding.DecodeString(s); err2 != nil {
			return fail("b64decode: %w", err)
		}
	}
	return exec.AsValue(string(out))
}

// filterBasename and filterDirname follow Python's posixpath, as Ansible
// does: basename("/a/b/") is "".
func filterBasename(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	p := in.String()
	return exec.AsValue(p[strings.LastIndex(p, "/")+1:])
}

func filterDirname(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	p := in.String()
	head := p[:strings.LastIndex(p, "/")+1]
	if head != "" && strings.Trim(head, "/") != "" {
		head = strings.TrimRight(head, "/")
	}
	return exec.AsValue(head)
}

func compileRegex(pattern string, params *exec.VarArgs) (*regexp.Regexp, error) {
	flags := ""
	if boolParam(params, -1, "ignorecase") {
		flags += "i"
	}
	if boolParam(params, -1, "multiline") {
		flags += "m"
	}
	if flags != "" {
		pattern = "(?" + flags + ")" + pattern
	}
	return regexp.Compile(pattern)
}

// pythonGroupRef matches Python's group references in replacements:
// \1 and \g<1> or \g<name>.
var pythonGroupRef = regexp.MustCompile(`\\(\d+)|\\g<(\w+)>`)

// goReplacement turns a Python replacement string into Go's syntax.
func goReplacement(repl string) string {
	repl = strings.ReplaceAll(repl, "$", "$$")
	return pythonGroupRef.ReplaceAllStringFunc(repl, func(ref string) string {
		m := pythonGroupRef.FindStringSubmatch(ref)
		name := m[1]
		if name == "" {
			name = m[2]
		}
		return "${" + name + "}"
	})
}

func filterRegexReplace(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	pattern := stringParam(params, 0, "pattern", "")
	re, err := compileRegex(pattern, params)
	if err != nil {
		return fail("regex_replace: %w", err)
	}
	repl := goReplacement(stringParam(params, 1, "replacement", ""))
	return exec.AsValue(re.ReplaceAllString(in.String(), repl))
}

// filterRegexSearch returns the first match, or none; with group arguments
// ('\\1', '\\g<name>') it returns the list of those groups.
func filterRegexSearch(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) == 0 {
		return fail("regex_search: missing pattern")
	}
	re, err := compileRegex(params.Args[0].String(), params)
	if err != nil {
		return fail("regex_search: %w", err)
	}
	s := in.String()
	m := re.FindStringSubmatchIndex(s)
	if m == nil {
		return exec.AsValue(nil)
	}
	if len(params.Args) == 1 {
		return exec.AsValue(s[m[0]:m[1]])
	}
	var groups []any
	for _, ref := range params.Args[1:] {
		g := pythonGroupRef.FindStringSubmatch(ref.String())
		if g == nil || g[0] != ref.String() {
			return fail(`regex_search: group %q must look like '\\1' or '\\g<name>'`, ref.String())
		}
		var out []byte
		out = re.ExpandString(out, goReplacement(ref.String()), s, m)
		groups = append(groups, string(out))
	}
	return exec.AsValue(groups)
}

func filterRegexFindall(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	re, err := compileRegex(stringParam(params, 0, "pattern", ""), params)
	if err != nil {
		return fail("regex_findall: %w", err)
	}
	out := []any{}
	for _, m := range re.FindAllStringSubmatch(in.String(), -1) {
		switch len(m) {
		case 1:
			out = append(out, m[0])
		case 2:
			out = append(out, m[1])
		default:
			groups := make([]any, len(m)-1)
			for i, g := range m[1:] {
				groups[i] = g
			}
			out = append(out, groups)
		}
	}
	return exec.AsValue(out)
}

func filterQuote(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	return exec.AsValue(shellquote.Quote(in.String()))
}

// filterBool follows Ansible: yes, on, 1, true (any case) are true.
func filterBool(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	switch {
	case in.IsError():
		return in
	case in.IsNil():
		return exec.AsValue(false)
	case in.IsBool():
		return exec.AsValue(in.Bool())
	case in.IsNumber():
		return exec.AsValue(in.Float() == 1)
	}
	switch strings.ToLower(strings.TrimSpace(in.String())) {
	case "yes", "on", "1", "true", "y":
		return exec.AsValue(true)
	}
	return exec.AsValue(false)
}

func filterDict2Items(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if !in.IsDict() {
		return fail("dict2items: want a mapping, got %s", describe(in))
	}
	keyName := stringParam(params, 0, "key_name", "key")
	valueName := stringParam(params, 1, "value_name", "value")
	out := []any{}
	for _, k := range in.Keys() {
		item, _ := in.GetItem(k.Interface())
		v, err := plain(item)
		if err != nil {
			return fail("dict2items: %w", err)
		}
		out = append(out, map[string]any{keyName: k.Interface(), valueName: v})
	}
	return exec.AsValue(out)
}

func filterItems2Dict(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if !in.IsList() {
		return fail("items2dict: want a list, got %s", describe(in))
	}
	keyName := stringParam(params, 0, "key_name", "key")
	valueName := stringParam(params, 1, "value_name", "value")
	out := map[string]any{}
	for i := 0; i < in.Len(); i++ {
		item := in.Index(i)
		k, okKey := item.GetItem(keyName)
		v, okValue := item.GetItem(valueName)
		if !item.IsDict() || !okKey || !okValue {
			return fail("items2dict: item %d needs keys %q and %q", i, keyName, valueName)
		}
		pv, err := plain(v)
		if err != nil {
			return fail("items2dict: %w", err)
		}
		out[k.String()] = pv
	}
	return exec.AsValue(out)
}

func filterTernary(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	whenTrue, whenFalse := param(params, 0, "true_val"), param(params, 1, "false_val")
	if whenTrue == nil || whenFalse == nil {
		return fail("ternary: want a true and a false value")
	}
	if in.IsTrue() {
		return whenTrue
	}
	return whenFalse
}

// describe names a value's kind for error messages.
func describe(v *exec.Value) string {
	switch {
	case v.IsNil():
		return "none"
	case v.IsString():
		return fmt.Sprintf("%q", v.String())
	case v.IsList():
		return "a list"
	case v.IsDict():
		return "a mapping"
	}
	return v.String()
}
