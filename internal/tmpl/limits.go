package tmpl

import (
	"context"
	"fmt"
	"time"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Limits on one evaluation: one Render, RenderValue, RenderNode, Eval or
// Truth call, whole argument trees included. Templates get their operands
// from registered results, which a remote host controls, so no input may
// take the controller down: a template that reaches a limit fails its task
// on its host with a *LimitError. A real playbook stays far
// below every one of them; README.md ("Limits") lists them for users.
const (
	// MaxSteps bounds the work of one evaluation: each loop iteration,
	// filter, method, macro call and arithmetic operator is a step.
	MaxSteps = 1_000_000
	// MaxDuration bounds the wall time of one evaluation.
	MaxDuration = 10 * time.Second
	// MaxStringBytes bounds every string an operator, filter or method
	// produces, and the rendered text.
	MaxStringBytes = 16 << 20
	// MaxOutputBytes bounds all the text one evaluation produces: what
	// it prints, macro and block bodies included, and every string an
	// operator, filter, method or call returns.
	MaxOutputBytes = 256 << 20
	// MaxListItems bounds every list produced, range() and the items one
	// loop walks.
	MaxListItems = 100_000
	// MaxCallDepth bounds macro recursion, well before Go's stack runs
	// out (a Go stack overflow cannot be recovered).
	MaxCallDepth = 64
	// MaxSourceBytes bounds the text of one template.
	MaxSourceBytes = 1 << 20
	// MaxNesting bounds how deeply brackets, blocks and operators nest in
	// one template, so parsing and evaluating it cannot exhaust the stack.
	MaxNesting = 200
)

// LimitError reports a template that reached one of the limits above. It
// wraps nothing, so it survives rootCause with its message.
type LimitError struct {
	Msg string
}

func (e *LimitError) Error() string { return limitPrefix + e.Msg }

const limitPrefix = "template limit reached: "

func limitError(format string, args ...any) error {
	return &LimitError{Msg: fmt.Sprintf(format, args...)}
}

// budgetKey names the budget in a render's context. It is not an
// identifier, so no template can read or replace it.
const budgetKey = "\x00budget"

// budget is the state one evaluation spends; a render runs on one
// goroutine, so it needs no lock.
type budget struct {
	ctx      context.Context
	deadline time.Time
	steps    int
	depth    int
	produced int
}

func newBudget(ctx context.Context) *budget {
	return &budget{ctx: ctx, deadline: time.Now().Add(MaxDuration)}
}

// step spends one step; it fails once the steps or the time run out or the
// evaluation's context is done, so a runaway template stops on SIGINT.
func (b *budget) step() error {
	b.steps++
	if b.steps > MaxSteps {
		return limitError("more than %d evaluation steps", MaxSteps)
	}
	if err := b.ctx.Err(); err != nil {
		return fmt.Errorf("template evaluation stopped: %w", err)
	}
	// The clock is read every 64 steps: steps are cheap, and a burst of 64
	// is bounded by the size limits.
	if b.steps%64 == 0 && time.Now().After(b.deadline) {
		return limitError("evaluation took longer than %s", MaxDuration)
	}
	return nil
}

// produce accounts n bytes of text produced.
func (b *budget) produce(n int) error {
	b.produced += n
	if b.produced > MaxOutputBytes {
		return limitError("more than %d bytes of text produced", MaxOutputBytes)
	}
	return nil
}

// account spends a step on a value produced and checks its size.
func (b *budget) account(v *exec.Value) error {
	if err := b.step(); err != nil {
		return err
	}
	if err := checkSize(v); err != nil {
		return err
	}
	if v != nil && v.IsString() {
		return b.produce(len(v.String()))
	}
	return nil
}

// enter and leave bracket a macro call.
func (b *budget) enter() error {
	if b.depth >= MaxCallDepth {
		return limitError("macro calls nest deeper than %d", MaxCallDepth)
	}
	b.depth++
	return b.step()
}

func (b *budget) leave() { b.depth-- }

// budgetOf finds the evaluation's budget in a gonja context. Every render
// sets one; a context without it (gonja evaluating on its own) gets a
// fresh one so the limits still hold.
func budgetOf(c *exec.Context) *budget {
	if v, ok := c.Get(budgetKey); ok {
		if b, ok := v.(*budget); ok {
			return b
		}
	}
	b := newBudget(context.Background())
	c.Set(budgetKey, b)
	return b
}

// checkSize fails when v is a string or list past the size limits.
func checkSize(v *exec.Value) error {
	switch {
	case v == nil || v.IsError():
		return nil
	case v.IsString():
		if n := len(v.String()); n > MaxStringBytes {
			return limitError("a string of %d bytes (limit %d)", n, MaxStringBytes)
		}
	case v.IsList():
		if n := v.Len(); n > MaxListItems {
			return limitError("a list of %d items (limit %d)", n, MaxListItems)
		}
	}
	return nil
}

// alive fails once the evaluation's time is up or its context is done; a
// filter doing long work of its own asks it now and then.
func (b *budget) alive() error {
	if err := b.ctx.Err(); err != nil {
		return fmt.Errorf("template evaluation stopped: %w", err)
	}
	if time.Now().After(b.deadline) {
		return limitError("evaluation took longer than %s", MaxDuration)
	}
	return nil
}
