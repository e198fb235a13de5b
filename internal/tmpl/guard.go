package tmpl

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// gonja evaluates its arithmetic operators inline, with no hook: `10 % 0`
// panics and `'x' * n` allocates whatever n asks for. After parsing, every
// such operator is replaced by a filter of the same meaning that checks
// its operands first (see guardTree). The names are not identifiers, so
// no template can call these filters itself.
var guardedOps = map[tokens.Type]string{
	tokens.Addition:      "op+",
	tokens.Multiply:      "op*",
	tokens.Division:      "op/",
	tokens.FloorDivision: "op//",
	tokens.Modulo:        "op%",
	tokens.Tilde:         "op~",
}

// opFilters are the filters standing for guardedOps.
func opFilters() map[string]exec.FilterFunction {
	out := map[string]exec.FilterFunction{}
	for _, name := range guardedOps {
		out[name] = opFilter(name)
	}
	return out
}

func opFilter(name string) exec.FilterFunction {
	return func(e *exec.Evaluator, left *exec.Value, params *exec.VarArgs) *exec.Value {
		if left.IsError() {
			return left
		}
		if len(params.Args) != 1 {
			return fail("operator %s: want one right operand", strings.TrimPrefix(name, "op"))
		}
		v, err := binaryOp(name, left, params.Args[0])
		if err != nil {
			return exec.AsValue(err)
		}
		if err := budgetOf(e.Environment.Context).account(v); err != nil {
			return exec.AsValue(err)
		}
		return v
	}
}

// binaryOp computes what gonja v2.9.1 computes for the operator (exec
// evaluator.go), failing where gonja would panic or exhaust memory.
func binaryOp(name string, left, right *exec.Value) (*exec.Value, error) {
	switch name {
	case "op+":
		if left.IsList() {
			if !right.IsList() {
				return nil, fmt.Errorf("cannot add %s to a list", describe(right))
			}
			n := left.Len() + right.Len()
			if n > MaxListItems {
				return nil, limitError("a list of %d items (limit %d)", n, MaxListItems)
			}
			out := make([]any, 0, n)
			for _, side := range []*exec.Value{left, right} {
				for i := 0; i < side.Len(); i++ {
					out = append(out, side.Index(i).Interface())
				}
			}
			return exec.AsValue(out), nil
		}
		if left.IsFloat() || right.IsFloat() {
			return exec.AsValue(left.Float() + right.Float()), nil
		}
		if left.IsString() || right.IsString() {
			return concat(left, right)
		}
		return exec.AsValue(left.Integer() + right.Integer()), nil
	case "op~":
		return concat(left, right)
	case "op*":
		if left.IsFloat() || right.IsFloat() {
			return exec.AsValue(left.Float() * right.Float()), nil
		}
		if left.IsString() {
			s, n := left.String(), right.Integer()
			if n <= 0 || s == "" {
				return exec.AsValue(""), nil
			}
			if n > MaxStringBytes/len(s) {
				return nil, limitError("repeating %d bytes %d times (limit %d bytes)", len(s), n, MaxStringBytes)
			}
			return exec.AsValue(strings.Repeat(s, n)), nil
		}
		return exec.AsValue(left.Integer() * right.Integer()), nil
	case "op/":
		d := right.Float()
		if d == 0 {
			return nil, arithmeticError("division by zero")
		}
		return exec.AsValue(left.Float() / d), nil
	case "op//":
		d := right.Float()
		if d == 0 {
			return nil, arithmeticError("integer division by zero")
		}
		q := left.Float() / d
		if math.IsNaN(q) || math.IsInf(q, 0) || math.Abs(q) > math.MaxInt64/2 {
			return nil, arithmeticError(fmt.Sprintf("integer division result %v is out of range", q))
		}
		return exec.AsValue(int(q)), nil
	case "op%":
		d := right.Integer()
		if d == 0 {
			return nil, arithmeticError("modulo by zero")
		}
		return exec.AsValue(left.Integer() % d), nil
	}
	return nil, fmt.Errorf("unknown operator %q", name)
}

// arithmeticPrefix marks the errors of operators, so renderError finds
// them again in gonja's text.
const arithmeticPrefix = "arithmetic error: "

func arithmeticError(msg string) error { return errors.New(arithmeticPrefix + msg) }

func concat(left, right *exec.Value) (*exec.Value, error) {
	l, r := left.String(), right.String()
	if n := len(l) + len(r); n > MaxStringBytes {
		return nil, limitError("a string of %d bytes (limit %d)", n, MaxStringBytes)
	}
	return exec.AsValue(l + r), nil
}

// rangeFunction replaces gonja's range(), which feeds a loop from a
// goroutine that leaks when the loop stops early and has no size bound.
func rangeFunction(e *exec.Evaluator, params *exec.VarArgs) ([]any, error) {
	start, stop, step := 0, 0, 1
	for _, a := range params.Args {
		if !a.IsInteger() {
			return nil, exec.ErrInvalidCall(errors.New("expected signature is [start, ]stop[, step] where all arguments are integers"))
		}
	}
	switch len(params.Args) {
	case 1:
		stop = params.Args[0].Integer()
	case 2:
		start, stop = params.Args[0].Integer(), params.Args[1].Integer()
	case 3:
		start, stop, step = params.Args[0].Integer(), params.Args[1].Integer(), params.Args[2].Integer()
	default:
		return nil, exec.ErrInvalidCall(errors.New("expected signature is [start, ]stop[, step] where all arguments are integers"))
	}
	if step == 0 {
		return nil, exec.ErrInvalidCall(errors.New("step cannot be 0"))
	}
	if err := budgetOf(e.Environment.Context).step(); err != nil {
		return nil, err
	}
	// Counted in floats first: stop-start may overflow an int.
	if n := math.Ceil((float64(stop) - float64(start)) / float64(step)); n > MaxListItems {
		return nil, limitError("range of %.0f items (limit %d)", n, MaxListItems)
	}
	out := []any{}
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		out = append(out, i)
	}
	return out, nil
}

// guardFilter wraps a filter: it spends a step, refuses arguments that
// would make the result blow up, and bounds the result's size.
func guardFilter(name string, f exec.FilterFunction) exec.FilterFunction {
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if !in.IsError() {
			if err := filterGrowth(name, in, params); err != nil {
				return fail("filter %s: %w", name, err)
			}
		}
		out := f(e, in, params)
		if err := budgetOf(e.Environment.Context).account(out); err != nil {
			return fail("filter %s: %w", name, err)
		}
		return out
	}
}

// intParam is the i-th or named integer argument, or fallback.
func intParam(params *exec.VarArgs, i int, name string, fallback int) int {
	if v := param(params, i, name); v != nil && v.IsInteger() {
		return v.Integer()
	}
	return fallback
}

// filterGrowth refuses the arguments with which a filter's result would
// grow faster than its input: those are the ones a size check after the
// call comes too late for.
func filterGrowth(name string, in *exec.Value, params *exec.VarArgs) error {
	switch name {
	case "center":
		return widthGrowth(intParam(params, 0, "width", 80))
	case "indent":
		w := param(params, 0, "width")
		width := 4
		if w != nil && w.IsString() {
			width = len(w.String())
		} else if w != nil {
			width = w.Integer()
		}
		lines := strings.Count(in.String(), "\n") + 1
		return sizeGrowth(len(in.String()) + lines*max(width, 0))
	case "batch":
		return listGrowth(intParam(params, 0, "linecount", 0))
	case "slice":
		return listGrowth(intParam(params, 0, "slices", 0))
	case "join":
		sep := stringParam(params, 0, "d", "")
		if in.IsList() || in.IsDict() {
			return sizeGrowth(in.Len() * len(sep))
		}
		return sizeGrowth(utf8.RuneCountInString(in.String()) * len(sep))
	case "replace":
		return replaceGrowth(in.String(), stringParam(params, 0, "old", ""), stringParam(params, 1, "new", ""))
	case "wordwrap":
		width := max(intParam(params, 0, "width", 79), 1)
		wrap := stringParam(params, 2, "wrapstring", "\n")
		return sizeGrowth(len(in.String()) + (len(in.String())/width+1)*len(wrap))
	case "format":
		return formatGrowth(in.String())
	case "tojson", "to_nice_json":
		if n := intParam(params, -1, "indent", 0); n > 64 {
			return limitError("indent of %d (limit 64)", n)
		}
	}
	return nil
}

func widthGrowth(width int) error { return sizeGrowth(width) }

func sizeGrowth(n int) error {
	if n > MaxStringBytes || n < 0 {
		return limitError("a string of about %d bytes (limit %d)", n, MaxStringBytes)
	}
	return nil
}

func listGrowth(n int) error {
	if n > MaxListItems {
		return limitError("%d items (limit %d)", n, MaxListItems)
	}
	return nil
}

func replaceGrowth(s, old, repl string) error {
	if len(repl) <= len(old) {
		return nil
	}
	var n int
	if old == "" {
		n = utf8.RuneCountInString(s) + 1
	} else {
		n = strings.Count(s, old)
	}
	if n > 0 && len(repl)-len(old) > (MaxStringBytes-len(s))/n {
		return limitError("replacing %d matches by %d bytes (limit %d bytes)", n, len(repl), MaxStringBytes)
	}
	return nil
}

// formatGrowth adds up the numbers in a format string, which covers every
// width and precision it asks for.
func formatGrowth(f string) error {
	total := 0
	for i := 0; i < len(f); {
		if f[i] < '0' || f[i] > '9' {
			i++
			continue
		}
		n := 0
		for ; i < len(f) && f[i] >= '0' && f[i] <= '9'; i++ {
			n = min(n*10+int(f[i]-'0'), MaxStringBytes+1)
		}
		total = min(total+n, MaxStringBytes+1)
	}
	return sizeGrowth(total)
}

// guardMethods wraps every method of s the way guardFilter wraps filters.
// Methods get no evaluator, so they spend no steps; the loop or expression
// calling them does.
func guardMethods[I any](s *exec.MethodSet[I], growth func(name string, self I, params *exec.VarArgs) error) *exec.MethodSet[I] {
	out := map[string]exec.Method[I]{}
	for _, name := range mapKeys(s, "methods") {
		m, _ := s.Get(name)
		out[name] = func(self I, selfValue *exec.Value, params *exec.VarArgs) (any, error) {
			if growth != nil {
				if err := growth(name, self, params); err != nil {
					return nil, fmt.Errorf("method %s: %w", name, err)
				}
			}
			v, err := m(self, selfValue, params)
			if err != nil {
				return v, err
			}
			if err := checkSize(exec.AsValue(v)); err != nil {
				return nil, fmt.Errorf("method %s: %w", name, err)
			}
			return v, nil
		}
	}
	return exec.NewMethodSet(out)
}

func strGrowth(name, self string, params *exec.VarArgs) error {
	switch name {
	case "center", "ljust", "rjust", "zfill":
		return widthGrowth(intParam(params, 0, "width", 0) * max(len(stringParam(params, 1, "fillchar", " ")), 1))
	case "expandtabs":
		return sizeGrowth(len(self) + strings.Count(self, "\t")*intParam(params, 0, "tabsize", 8))
	case "join":
		if v := param(params, 0, "iterable"); v != nil {
			return sizeGrowth(v.Len() * len(self))
		}
	case "replace":
		return replaceGrowth(self, stringParam(params, 0, "old", ""), stringParam(params, 1, "new", ""))
	case "format", "format_map":
		return formatGrowth(self)
	}
	return nil
}

func guardAllMethods(m exec.Methods) exec.Methods {
	return exec.Methods{
		Bool:  guardMethods(m.Bool, nil),
		Int:   guardMethods(m.Int, nil),
		Float: guardMethods(m.Float, nil),
		Str:   guardMethods(m.Str, strGrowth),
		Dict:  guardMethods(m.Dict, nil),
		List:  guardMethods(m.List, nil),
	}
}

// mapKeys lists the keys of the map in the named field of *set: gonja's
// filter and method sets have no way to list what they hold.
func mapKeys(set any, field string) []string {
	m := reflect.ValueOf(set).Elem().FieldByName(field)
	var out []string
	for _, k := range m.MapKeys() {
		out = append(out, k.String())
	}
	return out
}

// guardedFilterSet wraps every filter of fs with guardFilter.
func guardedFilterSet(fs *exec.FilterSet) *exec.FilterSet {
	out := map[string]exec.FilterFunction{}
	for _, name := range mapKeys(fs, "filters") {
		f, _ := fs.Get(name)
		out[name] = guardFilter(name, f)
	}
	return exec.NewFilterSet(out)
}

// checkNesting bounds how deeply src nests before gonja's recursive
// parser sees it: brackets, block tags and chains of unary operators.
func checkNesting(toks *tokens.Stream) error {
	depth, unary := 0, 0
	var prev *tokens.Token
	for ; !toks.End(); toks.Next() {
		tok := toks.Current()
		switch tok.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			depth++
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			depth--
		case tokens.Name:
			if prev != nil && prev.Type == tokens.BlockBegin {
				switch {
				case strings.HasPrefix(tok.Val, "end"):
					depth--
				case blockTags[tok.Val]:
					depth++
				}
			}
		}
		switch {
		case tok.Type == tokens.Not || tok.Type == tokens.Subtraction || tok.Type == tokens.Addition || tok.Val == "not":
			unary++
		default:
			unary = 0
		}
		if depth > MaxNesting || unary > MaxNesting {
			return limitError("template nests deeper than %d levels", MaxNesting)
		}
		prev = tok
	}
	return nil
}

// blockTags are the tags closed by an end tag.
var blockTags = map[string]bool{
	"for": true, "if": true, "macro": true, "call": true, "filter": true,
	"with": true, "block": true, "autoescape": true, "trans": true,
}

// guardTree replaces the guarded operators of a parsed template by their
// filters and reports the static faults it sees on the way (a division by
// a literal zero, an unknown filter or test). It walks gonja's nodes and
// control structures by reflection, since some keep their expressions in
// unexported fields, and bounds the depth of the tree.
type guardTree struct {
	env    *exec.Environment
	seen   map[uintptr]bool
	faults []error
}

func (g *guardTree) walk(v reflect.Value, depth int) error {
	if depth > 4*MaxNesting {
		return limitError("template nests deeper than %d levels", MaxNesting)
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		inner := v.Elem()
		if inner.Kind() == reflect.Struct && v.CanSet() {
			// A struct held by value: walk an addressable copy.
			c := reflect.New(inner.Type()).Elem()
			c.Set(inner)
			inner = c
		}
		if err := g.walk(inner, depth+1); err != nil {
			return err
		}
		if r, ok := g.replace(inner); ok && v.CanSet() && r.Type().AssignableTo(v.Type()) {
			v.Set(r)
		} else if inner.Kind() == reflect.Struct && v.CanSet() {
			v.Set(inner)
		}
	case reflect.Pointer:
		if v.IsNil() || !walkable(v.Type().Elem()) || g.seen[v.Pointer()] {
			return nil
		}
		g.seen[v.Pointer()] = true
		if v.CanInterface() {
			g.inspect(v)
		}
		return g.walk(v.Elem(), depth+1)
	case reflect.Struct:
		if !walkable(v.Type()) {
			return nil
		}
		for i := 0; i < v.NumField(); i++ {
			if err := g.walk(settable(v.Field(i)), depth+1); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := g.walk(v.Index(i), depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		type entry struct{ k, v reflect.Value }
		var entries []entry
		for iter.Next() {
			c := reflect.New(v.Type().Elem()).Elem()
			c.Set(iter.Value())
			entries = append(entries, entry{iter.Key(), c})
		}
		for _, e := range entries {
			if err := g.walk(e.v, depth+1); err != nil {
				return err
			}
			v.SetMapIndex(e.k, e.v)
		}
	}
	return nil
}

// walkable limits the walk to the AST: gonja's nodes and control
// structures, and this package's own.
func walkable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	p := t.PkgPath()
	return p == "github.com/nikolalohinski/gonja/v2/nodes" ||
		p == "github.com/nikolalohinski/gonja/v2/builtins/control_structures" ||
		p == reflect.TypeFor[guardTree]().PkgPath()
}

// inspect records static faults of one node, and has what an output
// prints accounted.
func (g *guardTree) inspect(v reflect.Value) {
	switch n := v.Interface().(type) {
	case *nodes.Output:
		n.Expression = accounted(n.Expression, n.Start)
		if n.Alternative != nil {
			n.Alternative = accounted(n.Alternative, n.Start)
		}
	case *nodes.FilterCall:
		if !g.env.Filters.Exists(n.Name) {
			g.faults = append(g.faults, fmt.Errorf("line %d: unknown filter %q", n.Token.Line, n.Name))
		}
	case *nodes.TestCall:
		if !g.env.Tests.Exists(n.Name) {
			g.faults = append(g.faults, fmt.Errorf("line %d: unknown test %q", n.Token.Line, n.Name))
		}
	}
}

// accounted has e's value accounted for when it is evaluated.
func accounted(e nodes.Expression, at *tokens.Token) nodes.Expression {
	if e == nil {
		return nil
	}
	return &nodes.FilteredExpression{
		Expression: e,
		Filters:    []*nodes.FilterCall{{Token: at, Name: accountFilter, Kwargs: map[string]nodes.Expression{}}},
	}
}

// replace gives the node standing for a guarded operator, or for a call,
// whose result is accounted: a call may run a macro or a method, and
// methods get no evaluator to account for themselves.
func (g *guardTree) replace(v reflect.Value) (reflect.Value, bool) {
	if !v.CanInterface() {
		return reflect.Value{}, false
	}
	if c, ok := v.Interface().(*nodes.Call); ok {
		return reflect.ValueOf(accounted(c, c.Location)), true
	}
	b, ok := v.Interface().(*nodes.BinaryExpression)
	if !ok || b.Operator == nil || b.Operator.Token == nil {
		return reflect.Value{}, false
	}
	name, ok := guardedOps[b.Operator.Token.Type]
	if !ok {
		return reflect.Value{}, false
	}
	if zeroLiteral(b.Right) && (name == "op/" || name == "op//" || name == "op%") {
		g.faults = append(g.faults, fmt.Errorf("line %d: %s by a literal zero", b.Operator.Token.Line, map[string]string{"op/": "division", "op//": "integer division", "op%": "modulo"}[name]))
	}
	f := &nodes.FilteredExpression{
		Expression: b.Left,
		Filters: []*nodes.FilterCall{{
			Token:  b.Operator.Token,
			Name:   name,
			Args:   []nodes.Expression{b.Right},
			Kwargs: map[string]nodes.Expression{},
		}},
	}
	return reflect.ValueOf(f), true
}

func zeroLiteral(e nodes.Expression) bool {
	switch n := e.(type) {
	case *nodes.Integer:
		return n.Val == 0
	case *nodes.Float:
		return n.Val == 0
	case *nodes.UnaryExpression:
		return zeroLiteral(n.Term)
	}
	return false
}
