package tmpl

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The fuzz targets check that no template, however hostile, panics or
// outlives its limits. Their seed corpus (testdata/fuzz) runs under plain
// `go test`; `make fuzz` explores further.

// fuzzVars are values templates under fuzzing can reach.
var fuzzVars = map[string]any{
	"zero": 0, "n": 3, "s": "text", "big": 1 << 40,
	"l": []any{1, "two", 3.0}, "d": map[string]any{"rc": 0, "stdout": "0"},
}

// fuzzDeadline keeps one input short; the limits stop it anyway.
const fuzzDeadline = 2 * time.Second

func fuzzContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), fuzzDeadline)
	t.Cleanup(cancel)
	return ctx
}

func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"{{ 10 % 0 }}", "{{ 'x' * 100 }}", "{% for i in range(3) %}{{ i }}{% endfor %}",
		"{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "{{ d.stdout | int + n }}",
		"{{ l | join(',') }}", "{% set x = s ~ s %}{{ x | upper }}", "{{ (",
		"{{\xdb1.\u743e }}", // gonja's lexer looped on invalid UTF-8 before a number
	} {
		f.Add(s)
	}
	e := New()
	f.Fuzz(func(t *testing.T, src string) {
		start := time.Now()
		out, _ := e.RenderContext(fuzzContext(t), src, fuzzVars)
		if len(out) > MaxStringBytes {
			t.Errorf("rendered %d bytes", len(out))
		}
		_ = e.Lint(src)
		if d := time.Since(start); d > MaxDuration+time.Second {
			t.Errorf("took %s", d)
		}
	})
}

func FuzzTruth(f *testing.F) {
	for _, s := range []string{"0%()", "n > 2", "d.rc == 0 and s", "l | length", "not zero", "1 // zero", "s * big"} {
		f.Add(s)
	}
	e := New()
	f.Fuzz(func(t *testing.T, expr string) {
		_, _ = e.TruthContext(fuzzContext(t), expr, fuzzVars)
		_ = e.LintExpr(expr)
	})
}

// FuzzFilters applies every filter name the fuzzer picks to a value and
// argument it picks.
func FuzzFilters(f *testing.F) {
	f.Add("center", "x", "1000000000")
	f.Add("replace", "aaaa", "'', 'bbbbbbbb'")
	f.Add("indent", "a\nb", "width=3")
	f.Add("to_nice_json", "{'a': 1}", "indent=2")
	f.Add("regex_replace", "abc", "'(b)', '\\\\1\\\\1'")
	f.Add("batch", "[1, 2, 3]", "2, 0")
	f.Add("ipaddr", "'2001:db8::1/64'", "'revdns'")
	f.Add("ipaddr", "['10.0.0.1/30', '::1']", "'peer'")
	f.Add("nthhost", "'10.0.0.0/8'", "-1")
	f.Add("ipmath", "'255.255.255.255'", "1")
	f.Add("next_nth_usable", "'10.0.0.1/31'", "1")
	f.Add("network_in_usable", "'::/0'", "'1.2.3.4'")
	f.Add("ipsubnet", "'2001:db8::/32'", "128, -1")
	e := New()
	f.Fuzz(func(t *testing.T, filter, value, args string) {
		if strings.ContainsAny(filter+value+args, "{}%#") && strings.Contains(filter+value+args, "}}") {
			return // the template would end early; FuzzRender covers that
		}
		src := "{{ (" + value + ") | " + filter + "(" + args + ") }}"
		_, _ = e.RenderContext(fuzzContext(t), src, fuzzVars)
	})
}
