package tmpl

import (
	"fmt"
	"reflect"
	"unsafe"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Filters the guard inserts into parsed templates; like guardedOps, their
// names are not identifiers.
const (
	accountFilter = "op-account" // spends a step on a call's or output's value
	loopFilter    = "op-loop"    // bounds what a loop walks
)

func guardFilters() map[string]exec.FilterFunction {
	out := opFilters()
	out[accountFilter] = func(e *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		if err := budgetOf(e.Environment.Context).account(in); err != nil {
			return exec.AsValue(err)
		}
		return in
	}
	out[loopFilter] = func(e *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		if (in.IsList() || in.IsDict() || in.IsString()) && in.Len() > MaxListItems {
			return exec.AsValue(limitError("a loop over %d items (limit %d)", in.Len(), MaxListItems))
		}
		return in
	}
	return out
}

// guardedControlStructures wraps gonja's `for` and `macro`: every loop
// iteration and macro call spends from the budget, and macro calls nest
// at most MaxCallDepth deep.
func guardedControlStructures() *exec.ControlStructureSet {
	set := map[string]parser.ControlStructureParser{}
	for _, name := range mapKeys(controlStructures.All, "statements") {
		set[name], _ = controlStructures.All.Get(name)
	}
	origFor, origMacro := set["for"], set["macro"]
	set["for"] = func(p, args *parser.Parser) (nodes.ControlStructure, error) {
		cs, err := origFor(p, args)
		if err != nil {
			return nil, err
		}
		if f, ok := cs.(*controlStructures.ForControlStructure); ok && f.BodyWrapper != nil {
			f.ObjectEvaluator = &nodes.FilteredExpression{
				Expression: f.ObjectEvaluator,
				Filters:    []*nodes.FilterCall{{Token: f.Position(), Name: loopFilter, Kwargs: map[string]nodes.Expression{}}},
			}
			f.BodyWrapper.Nodes = append([]nodes.Node{&nodes.ControlStructureBlock{
				Location:         f.Position(),
				Name:             "step",
				ControlStructure: &stepNode{at: f.Position(), data: dataBytes(f.BodyWrapper)},
			}}, f.BodyWrapper.Nodes...)
		}
		return cs, nil
	}
	set["macro"] = func(p, args *parser.Parser) (nodes.ControlStructure, error) {
		cs, err := origMacro(p, args)
		if err != nil {
			return nil, err
		}
		if m, ok := cs.(*controlStructures.MacroControlStructure); ok {
			return &guardedMacro{MacroControlStructure: m, data: dataBytes(m.Wrapper)}, nil
		}
		return cs, nil
	}
	return exec.NewControlStructureSet(set)
}

// dataBytes is the size of the literal text in w, printed each time w runs.
func dataBytes(w *nodes.Wrapper) int {
	n := 0
	if w == nil {
		return 0
	}
	for _, node := range w.Nodes {
		if d, ok := node.(*nodes.Data); ok && d.Data != nil {
			n += len(d.Data.Val)
		}
	}
	return n
}

// stepNode opens every loop body: one step, and the body's literal text
// accounted, per iteration.
type stepNode struct {
	at   *tokens.Token
	data int
}

func (s *stepNode) Position() *tokens.Token { return s.at }
func (s *stepNode) String() string          { return "step" }

func (s *stepNode) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	b := budgetOf(r.Environment.Context)
	if err := b.step(); err != nil {
		return err
	}
	return b.produce(s.data)
}

type guardedMacro struct {
	*controlStructures.MacroControlStructure
	data int
}

func (m *guardedMacro) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	fn, err := exec.MacroNodeToFunc(m.Macro, r)
	if err != nil {
		return fmt.Errorf("macro %s: %w", m.Name, err)
	}
	b := budgetOf(r.Environment.Context)
	r.Environment.Context.Set(m.Name, exec.Macro(func(params *exec.VarArgs) *exec.Value {
		if err := b.enter(); err != nil {
			return exec.AsValue(fmt.Errorf("macro %s: %w", m.Name, err))
		}
		defer b.leave()
		if err := b.produce(m.data); err != nil {
			return exec.AsValue(err)
		}
		return fn(params)
	}))
	return nil
}

// settable returns a field the walk can assign. Some gonja control
// structures (set, with, filter) keep their expressions in unexported
// fields, which reflection reads but does not write; the guard must
// replace the operators there too.
func settable(f reflect.Value) reflect.Value {
	if f.CanSet() || !f.CanAddr() {
		return f
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}
