package tmpl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestHostileTemplatesFail checks that templates which used to panic,
// exhaust memory or the stack, or spin, fail with an error instead.
func TestHostileTemplatesFail(t *testing.T) {
	e := New()
	vars := map[string]any{"zero": 0, "n": 1 << 40, "s": "x"}
	cases := []struct {
		name, src string
		limit     bool   // a *LimitError is expected
		want      string // in the message
	}{
		{"modulo by zero", "{{ 10 % 0 }}", false, "modulo by zero"},
		{"modulo by an empty tuple", "{{ 0%() }}", false, "modulo by zero"},
		{"modulo by a variable", "{{ 10 % zero }}", false, "modulo by zero"},
		{"division by zero", "{{ 1 / zero }}", false, "division by zero"},
		{"floor division by zero", "{{ 1 // zero }}", false, "division by zero"},
		{"string repetition", "{{ 'x' * 1000000000000 }}", true, "repeating"},
		{"string repetition from a variable", "{{ s * n }}", true, "repeating"},
		{"negative repetition", "{{ 'x' * -3 }}", false, ""},
		{"doubling by concatenation", "{% set ns = namespace(v='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.v = ns.v ~ ns.v %}{% endfor %}{{ ns.v }}", true, ""},
		{"list doubling", "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}", true, "list"},
		{"huge range", "{{ range(1000000000000) | length }}", true, "range"},
		{"nested loops", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", true, "steps"},
		{"recursive macro", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", true, "macro"},
		{"center", "{{ 'x' | center(1000000000) }}", true, ""},
		{"indent", "{{ 'x\nx\nx' | indent(100000000) }}", true, ""},
		{"replace", "{{ ('x' * 1000000) | replace('', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy') }}", true, ""},
		{"join", "{{ range(100000) | join('x' * 1000000) }}", true, ""},
		{"ljust method", "{{ 'x'.ljust(1000000000) }}", true, ""},
		{"format width", "{{ '%1000000000d' | format(1) }}", true, ""},
		{"str.format width", "{{ '{:>1000000000}'.format(1) }}", true, ""},
		{"deep nesting", "{{ " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000) + " }}", true, "nests"},
		{"deep not", "{{ " + strings.Repeat("not ", 5000) + "1 }}", true, "nests"},
		{"lipsum", "{{ lipsum(1000000000) }}", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			out, err := e.Render(c.src, vars)
			if c.want == "" && c.name == "negative repetition" {
				if err != nil || out != "" {
					t.Fatalf("got %q, %v; want an empty string", out, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("rendered %d bytes; want an error", len(out))
			}
			var le *LimitError
			if c.limit != errors.As(err, &le) {
				t.Errorf("error %v: limit error %v, want %v", err, !c.limit, c.limit)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if d := time.Since(start); d > MaxDuration {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestWhenDoesNotPanic(t *testing.T) {
	e := New()
	for _, expr := range []string{"0%()", "10 % 0", "1 // 0", "x % 0"} {
		if _, err := e.Truth(expr, map[string]any{"x": 3}); err == nil {
			t.Errorf("Truth(%q) succeeded; want an error", expr)
		}
	}
}

func TestCancelStopsEvaluation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New().RenderContext(ctx, "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}", nil)
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v; want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopped after %s", d)
	}
}
