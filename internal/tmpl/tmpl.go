// Package tmpl renders Jinja2 templates (through gonja) the way playbooks
// use them: strings, `when:` expressions and whole argument trees.
//
// Undefined variables are errors (*UndefinedError) unless a template guards
// them with `default`, `is defined` or `is undefined`. A string that is
// exactly one `{{ expression }}` keeps the expression's native type, as in
// Ansible: `loop: "{{ disks }}"` yields a list, not its printed form.
package tmpl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// maxCached bounds the parse cache; playbooks hold far fewer distinct
// templates, so the bound only matters for callers rendering generated text.
const maxCached = 4096

// Engine renders templates. It is safe for concurrent use.
//
// gonja logs through logrus only when its package-level logging switch is
// on; it is off by default and the Engine never turns it on.
type Engine struct {
	config *config.Config
	env    *exec.Environment

	cache  sync.Map // source -> *parsed
	cached atomic.Int64
}

// parsed is a parsed template. single is set when the template is exactly
// one `{{ … }}` with nothing around it, so its value can stay native.
type parsed struct {
	template *exec.Template
	single   *nodes.Output
	faults   []error // static faults, reported by Check
}

// New returns an Engine with the Jinja builtins and the Ansible-flavoured
// filters and tests playbooks use.
func New() *Engine {
	cfg := config.New()
	cfg.StrictUndefined = true
	// As Ansible's templar: keep a file's last newline, drop the one after
	// a block tag.
	cfg.KeepTrailingNewline = true
	cfg.TrimBlocks = true

	// Every set is a private copy: registering ours must not touch gonja's
	// package-level defaults, which other code may use. Every filter and
	// method is wrapped to respect the limits (limits.go).
	filters := exec.NewFilterSet(map[string]exec.FilterFunction{}).
		Update(builtins.Filters).
		Update(exec.NewFilterSet(ansibleFilters()))
	filters = guardedFilterSet(filters).Update(exec.NewFilterSet(guardFilters()))
	tests := exec.NewTestSet(map[string]exec.TestFunction{}).Update(builtins.Tests)
	tests = tests.Update(exec.NewTestSet(ansibleTests()))
	globals := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	// lipsum() makes text of any size asked; no playbook needs it.
	globals.Set("lipsum", nil)
	globals.Set("range", rangeFunction)

	return &Engine{
		config: cfg,
		env: &exec.Environment{
			Context:           globals,
			Filters:           filters,
			Tests:             tests,
			ControlStructures: guardedControlStructures(),
			Methods:           guardAllMethods(builtins.Methods),
		},
	}
}

// IsTemplate reports whether s contains template syntax.
func IsTemplate(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%")
}

// Render renders src as text. It is RenderContext without a context to
// stop it; the limits (limits.go) still bound it.
func (e *Engine) Render(src string, vars map[string]any) (string, error) {
	return e.RenderContext(context.Background(), src, vars)
}

// RenderContext renders src as text; evaluation stops when ctx is done.
func (e *Engine) RenderContext(ctx context.Context, src string, vars map[string]any) (string, error) {
	if !IsTemplate(src) && !strings.Contains(src, "{#") {
		return src, nil
	}
	p, err := e.parse(src)
	if err != nil {
		return "", err
	}
	return e.execute(p, vars, newBudget(ctx))
}

// Eval evaluates a bare Jinja expression, as written in `when:`, and returns
// its native value. An expression wrapped in `{{ }}` is accepted too.
func (e *Engine) Eval(expr string, vars map[string]any) (any, error) {
	return e.EvalContext(context.Background(), expr, vars)
}

// EvalContext is Eval stopping when ctx is done.
func (e *Engine) EvalContext(ctx context.Context, expr string, vars map[string]any) (any, error) {
	b := newBudget(ctx)
	if IsTemplate(expr) {
		return e.renderValue(expr, vars, b)
	}
	p, err := e.parseBare(expr)
	if err != nil {
		return nil, err
	}
	v, err := e.evalOutput(p, vars, b)
	if err != nil {
		return nil, err
	}
	return native(v)
}

// Truth evaluates expr and applies Jinja truthiness: false, none, 0, and
// empty strings, lists and mappings are false.
func (e *Engine) Truth(expr string, vars map[string]any) (bool, error) {
	return e.TruthContext(context.Background(), expr, vars)
}

// TruthContext is Truth stopping when ctx is done.
func (e *Engine) TruthContext(ctx context.Context, expr string, vars map[string]any) (bool, error) {
	v, err := e.EvalContext(ctx, expr, vars)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

// parseBare parses a bare expression, which must be a single one.
func (e *Engine) parseBare(expr string) (*parsed, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("empty expression")
	}
	p, err := e.parseExpr(expr)
	if err != nil {
		return nil, err
	}
	if p.single == nil {
		return nil, notSingle(expr)
	}
	return p, nil
}

// truthy is Python's truth on native values; gonja counts its own dict
// literals as true even when empty.
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return exec.ToValue(v).IsTrue()
}

// RenderValue renders every string in v, walking maps and lists. A string
// that is exactly one `{{ expression }}` becomes the expression's native
// value; other strings render to strings. The input is not modified.
func (e *Engine) RenderValue(v any, vars map[string]any) (any, error) {
	return e.RenderValueContext(context.Background(), v, vars)
}

// RenderValueContext is RenderValue stopping when ctx is done. The whole
// tree shares one evaluation's limits.
func (e *Engine) RenderValueContext(ctx context.Context, v any, vars map[string]any) (any, error) {
	return e.renderValue(v, vars, newBudget(ctx))
}

func (e *Engine) renderValue(v any, vars map[string]any, b *budget) (any, error) {
	switch v := v.(type) {
	case string:
		return e.renderString(v, vars, b)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			r, err := e.renderValue(item, vars, b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			r, err := e.renderValue(item, vars, b)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	case []string:
		out := make([]string, len(v))
		for i, item := range v {
			r, err := e.renderText(item, vars, b)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// renderText renders src as text within budget b.
func (e *Engine) renderText(src string, vars map[string]any, b *budget) (string, error) {
	if !IsTemplate(src) && !strings.Contains(src, "{#") {
		return src, nil
	}
	p, err := e.parse(src)
	if err != nil {
		return "", err
	}
	return e.execute(p, vars, b)
}

// Check parses src without rendering it, so syntax errors surface before
// any host is touched.
func (e *Engine) Check(src string) error {
	if !IsTemplate(src) {
		return nil
	}
	_, err := e.parse(src)
	return err
}

// CheckExpr parses a bare expression without evaluating it.
func (e *Engine) CheckExpr(expr string) error {
	if IsTemplate(expr) {
		return e.Check(expr)
	}
	_, err := e.parseBare(expr)
	return err
}

// Lint reports what is wrong with src whatever the variables, beyond
// Check: an unknown filter or test, a division by a literal zero. Such a
// template may still sit in a branch never taken, so these are for
// `validate` to report, not reasons to refuse a run.
func (e *Engine) Lint(src string) error {
	if !IsTemplate(src) {
		return nil
	}
	p, err := e.parse(src)
	if err != nil {
		return err
	}
	return p.staticError("template", src)
}

// LintExpr is Lint for a bare expression.
func (e *Engine) LintExpr(expr string) error {
	if IsTemplate(expr) {
		return e.Lint(expr)
	}
	p, err := e.parseBare(expr)
	if err != nil {
		return err
	}
	return p.staticError("expression", expr)
}

func (p *parsed) staticError(what, src string) error {
	if len(p.faults) == 0 {
		return nil
	}
	return fmt.Errorf("error in %s %q: %w", what, src, errors.Join(p.faults...))
}

func (e *Engine) renderString(s string, vars map[string]any, b *budget) (any, error) {
	if !IsTemplate(s) {
		return s, nil
	}
	p, err := e.parse(s)
	if err != nil {
		return nil, err
	}
	if p.single == nil {
		return e.execute(p, vars, b)
	}
	v, err := e.evalOutput(p, vars, b)
	if err != nil {
		return nil, err
	}
	return native(v)
}

// environment is the engine's environment with vars and the budget of
// one evaluation on top.
func (e *Engine) environment(vars map[string]any, b *budget) *exec.Environment {
	ctx := e.env.Context.Inherit().Update(exec.NewContext(vars))
	ctx.Set(budgetKey, b)
	return &exec.Environment{
		Context:           ctx,
		Filters:           e.env.Filters,
		Tests:             e.env.Tests,
		ControlStructures: e.env.ControlStructures,
		Methods:           e.env.Methods,
	}
}

// execute renders p as text, as gonja's Template.Execute does, within
// budget b. A panic in gonja becomes this template's error: one bad
// template must not end the process.
func (e *Engine) execute(p *parsed, vars map[string]any, b *budget) (out string, err error) {
	defer recoverTo(&err)
	var buf limitedBuffer
	r := exec.NewRenderer(e.environment(vars, b), &buf, e.config, noLoader{}, p.template)
	if err := r.Execute(); err != nil {
		return "", renderError(err)
	}
	return buf.String(), nil
}

// recoverTo turns a panic into *err.
func recoverTo(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("template error: %v", r)
	}
}

// limitedBuffer holds rendered text up to MaxStringBytes.
type limitedBuffer struct {
	bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > MaxStringBytes {
		return 0, limitError("rendered text longer than %d bytes", MaxStringBytes)
	}
	return l.Buffer.Write(p)
}

// evalOutput evaluates the single output node of p the way gonja's renderer
// would, but keeps the value instead of printing it.
func (e *Engine) evalOutput(p *parsed, vars map[string]any, b *budget) (v *exec.Value, err error) {
	defer recoverTo(&err)
	ev := &exec.Evaluator{
		Config:      e.config,
		Environment: e.environment(vars, b),
		Loader:      noLoader{},
	}
	out := p.single
	expr := out.Expression
	if out.Condition != nil {
		cond := ev.Eval(out.Condition)
		if cond.IsError() {
			return nil, evalError(cond)
		}
		if !cond.IsTrue() {
			if out.Alternative == nil {
				return exec.AsValue(""), nil // Jinja prints nothing
			}
			expr = out.Alternative
		}
	}
	v = ev.Eval(expr)
	if v.IsError() {
		return nil, evalError(v)
	}
	return v, nil
}

func notSingle(expr string) error {
	return fmt.Errorf("parse error in expression %q: not a single expression", expr)
}

func (e *Engine) parseExpr(expr string) (*parsed, error) {
	return e.parseSource("{{ "+expr+" }}", "expression", expr)
}

func (e *Engine) parse(src string) (*parsed, error) {
	return e.parseSource(src, "template", src)
}

// parseSource parses src; what and shown describe it in errors. The
// parsed tree is guarded (guard.go) before it is cached.
func (e *Engine) parseSource(src, what, shown string) (*parsed, error) {
	if p, ok := e.cache.Load(src); ok {
		return p.(*parsed), nil
	}
	p, err := e.parseGuarded(src)
	if err != nil {
		return nil, parseError(what, shown, err)
	}
	if e.cached.Load() < maxCached {
		if _, loaded := e.cache.LoadOrStore(src, p); !loaded {
			e.cached.Add(1)
		}
	}
	return p, nil
}

func (e *Engine) parseGuarded(src string) (p *parsed, err error) {
	defer recoverTo(&err)
	if len(src) > MaxSourceBytes {
		return nil, limitError("template of %d bytes (limit %d)", len(src), MaxSourceBytes)
	}
	if !utf8.ValidString(src) {
		// Jinja reads templates as UTF-8 too; and gonja's lexer can loop
		// for ever on some invalid bytes before a number.
		return nil, errors.New("the template is not valid UTF-8")
	}
	if err := checkNesting(tokens.LexAll(src, e.config)); err != nil {
		return nil, err
	}
	t, err := exec.NewTemplate(rootName, e.config, sourceLoader(src), e.env)
	if err != nil {
		return nil, err
	}
	g := &guardTree{env: e.env, seen: map[uintptr]bool{}}
	if err := g.walk(reflect.ValueOf(t.Root()), 0); err != nil {
		return nil, err
	}
	p = &parsed{template: t, faults: g.faults}
	if root := t.Root(); len(root.Nodes) == 1 && root.Parent == nil {
		if out, ok := root.Nodes[0].(*nodes.Output); ok {
			p.single = out
		}
	}
	return p, nil
}

// native turns a gonja value into plain Go values: map[string]any, []any,
// string, int, float64, bool or nil.
func native(v *exec.Value) (any, error) {
	out := v.ToGoSimpleType(false)
	if err, ok := out.(error); ok {
		return nil, fmt.Errorf("template value: %w", err)
	}
	return out, nil
}

// Plain converts v (structs such as facts.Facts included) into the plain
// maps, lists and scalars templates walk, through v's JSON form. Whole
// numbers stay ints, so `{{ facts.cpus }}` prints 8, not 8.0.
func Plain(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("plain value: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("plain value: %w", err)
	}
	return jsonNumbers(out), nil
}

const rootName = "template"

// sourceLoader serves the one template being parsed; playbook strings have
// no file to include others from.
type sourceLoader string

func (l sourceLoader) Read(path string) (io.Reader, error) {
	if path == rootName {
		return strings.NewReader(string(l)), nil
	}
	return nil, fmt.Errorf("templates cannot include %q", path)
}

func (l sourceLoader) Resolve(path string) (string, error) {
	if path == rootName {
		return path, nil
	}
	return "", fmt.Errorf("templates cannot include %q", path)
}

func (l sourceLoader) Inherit(string) (loaders.Loader, error) { return l, nil }

type noLoader struct{}

func (noLoader) Read(path string) (io.Reader, error) {
	return nil, fmt.Errorf("templates cannot include %q", path)
}

func (noLoader) Resolve(path string) (string, error) {
	return "", fmt.Errorf("templates cannot include %q", path)
}

func (l noLoader) Inherit(string) (loaders.Loader, error) { return l, nil }
