package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// runTask runs one task (all its loop items and retries) and reports it.
func (r *run) runTask(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, h *hostRun, t *playbooks.Task) Status {
	h.task, h.noLog, h.registers = t.DisplayName(), t.NoLog, t.Register != ""
	h.unplanned = nil
	defer func() { h.noLog, h.registers = false, false }()
	r.emit(Event{Type: EventTaskStart, Play: play.Name, Task: h.task, Host: h.inv.Name})
	if r.Check && t.CheckMode != nil && !*t.CheckMode {
		r.emit(Event{Type: EventNotice, Host: h.inv.Name, Msg: fmt.Sprintf("%s: check_mode: false is a dry run all the same: nothing changes a host under --check", t.Source)})
	}
	start := time.Now()
	vars, err := r.taskVars(ctx, pb, play, h, t)
	if err != nil {
		return r.failTask(play, h, t, err, start)
	}
	if t.Loop == nil {
		res := r.item(ctx, pb, h, t, vars, nil, false)
		return r.record(play, h, t, res, start)
	}
	items, err := r.loopItems(ctx, t, vars)
	if err != nil {
		return r.failTask(play, h, t, err, start)
	}
	agg := taskResult{status: StatusSkipped, items: []loopItem{}}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		iv := maps.Clone(vars)
		iv[t.LoopVar] = it
		res := r.item(ctx, pb, h, t, iv, it, true)
		agg.items = append(agg.items, loopItem{result: res, name: t.LoopVar, value: it})
		agg.status = worse(agg.status, res.status)
		if res.status == StatusFailed || res.status == StatusUnreachable {
			agg.msg = res.msg
			break // Ansible goes on with the other items; stopping keeps a reinstall from compounding a failure
		}
		e := Event{Type: EventResult, Play: play.Name, Task: h.task, Host: h.inv.Name, Status: res.status, Item: it, Msg: res.msg}
		r.planFields(h, &e, res.plan)
		r.emit(e)
	}
	return r.record(play, h, t, agg, start)
}

func (r *run) failTask(play *playbooks.Play, h *hostRun, t *playbooks.Task, err error, start time.Time) Status {
	return r.record(play, h, t, failed(err.Error()), start)
}

// record registers, notifies, counts and reports a task's final result.
func (r *run) record(play *playbooks.Play, h *hostRun, t *playbooks.Task, res taskResult, start time.Time) Status {
	if res.status == StatusFailed && t.IgnoreErrors {
		res.status = StatusIgnored
	}
	registered := res.Register()
	if t.Register != "" {
		h.vars[t.Register] = registered
	}
	if res.status == StatusFailed {
		h.failedTask, h.failedResult = t, registered
	}
	if res.status == StatusChanged || res.status == StatusWouldChange {
		for _, n := range t.Notify {
			if h.notified == nil {
				h.notified = map[string]bool{}
			}
			h.notified[n] = true
		}
	}
	msg := res.msg
	if t.NoLog && res.status != StatusSkipped {
		msg = "output hidden by no_log"
	}
	h.lastMsg, h.lastOut = h.redact.String(msg), registered
	if res.status == StatusUnreachable {
		r.unreachable(play, h, h.task, errors.New(res.msg))
		return StatusUnreachable
	}
	r.finish(play, h, h.task, res.status, h.redact.String(msg), nil, res.plan, time.Since(start))
	return res.status
}

// item runs the task once for one loop item (or without a loop), with
// retries/until.
func (r *run) item(ctx context.Context, pb *playbooks.Playbook, h *hostRun, t *playbooks.Task, vars map[string]any, it any, inLoop bool) taskResult {
	if len(t.When) > 0 {
		ok, err := r.allTrue(ctx, t.When, vars, "when")
		if err != nil {
			return r.checkModeUnknown(err, t.Source)
		}
		if !ok {
			return taskResult{status: StatusSkipped, skipReason: "conditional result was false"}
		}
	}
	for attempt := 1; ; attempt++ {
		res := r.once(ctx, pb, h, t, vars)
		res.attempts = attempt
		if t.Retries == 0 && len(t.Until) == 0 {
			return res
		}
		if res.status == StatusUnreachable || res.status == StatusWouldChange || ctx.Err() != nil {
			return res
		}
		done := res.status != StatusFailed
		if len(t.Until) > 0 {
			v := withResult(vars, t.Register, res.Register())
			ok, err := r.allTrue(ctx, t.Until, v, "until")
			if err != nil {
				res.status, res.msg = StatusFailed, err.Error()
				return res
			}
			done = ok
		}
		if done {
			return res
		}
		if attempt > t.Retries {
			if res.status != StatusFailed {
				res.status = StatusFailed
				res.msg = fmt.Sprintf("retries exhausted after %d attempts: until %s still false", attempt, strings.Join(t.Until, " and "))
			}
			return res
		}
		h.log.Printf("retrying %s (attempt %d of %d) in %s", h.task, attempt, t.Retries+1, t.Delay)
		select {
		case <-ctx.Done():
			return res
		case <-time.After(t.Delay):
		}
	}
}

// checkModeUnknown turns an evaluation error into a result. In a dry run a
// template may need a result only a real run produces (a registered
// variable); that task is skipped as unknown rather than failed. Any other
// undefined variable, a missing inventory value say, fails in a dry run too.
func (r *run) checkModeUnknown(err error, what string) taskResult {
	if root := undefinedRoot(err); r.Check && root != "" && r.registered[root] {
		return unknown(fmt.Sprintf("%s depends on %v", what, err))
	}
	return failed(fmt.Sprintf("%s: %v", what, err))
}

// dryResult is a dry run's result for a plan: Apply is never called.
func (r *run) dryResult(h *hostRun, plan *modules.Plan) taskResult {
	res := taskResult{status: StatusOK, plan: plan, msg: plan.Message, output: plan.Output}
	if plan.Changed() {
		res.status = StatusWouldChange
		if h.wouldChange == "" {
			h.wouldChange = h.task
		}
	}
	return res
}

// once builds the module for this host, checks and (unless dry) applies it.
func (r *run) once(ctx context.Context, pb *playbooks.Playbook, h *hostRun, t *playbooks.Task, vars map[string]any) taskResult {
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	mod, err := r.build(ctx, pb, t, vars)
	var argsErr *argsError
	if errors.As(err, &argsErr) {
		return r.checkModeUnknown(argsErr.err, "arguments")
	}
	if err != nil {
		return failed(err.Error())
	}
	ro := h.readOnly(t, vars)
	if t.Chroot != "" {
		root, err := r.Templates.RenderContext(ctx, t.Chroot, vars)
		if err != nil {
			return r.checkModeUnknown(err, "chroot")
		}
		ro.chroot = root
		if why := h.chrootMissing(ctx, root); why != "" {
			if !r.dryRun(t) {
				return failed(why + "; prepare it with the chroot module first")
			}
			// An earlier task would prepare the root. The plan is made on the
			// host itself, whose /mnt the chroot would share; what cannot be
			// checked there is unknown until applied.
			ro.chroot = ""
			plan, err := mod.Check(ctx, ro.forModule(t))
			if err != nil {
				return unknown(fmt.Sprintf("%s; planned outside it: %v", why, err))
			}
			res := r.dryResult(h, plan)
			res.msg = strings.TrimPrefix(plan.Message+"; planned outside the chroot "+root+", which an earlier task would prepare", "; ")
			return res
		}
	}
	plan, err := mod.Check(ctx, ro.forModule(t))
	var notYet *modules.NotYetError
	if r.Check && h.wouldChange != "" && errors.As(err, &notYet) {
		return unknown(fmt.Sprintf("%v (after %q, which would change the host)", err, h.wouldChange))
	}
	if err != nil {
		return resultFromError(err, plan, nil)
	}
	if r.dryRun(t) {
		// The dry-run gate: the only place that decides Apply is not called.
		res := r.dryResult(h, plan)
		if res.status == StatusWouldChange {
			return res
		}
		return r.applyConditions(ctx, t, vars, res, nil)
	}
	res := taskResult{status: StatusOK, plan: plan, msg: plan.Message, output: plan.Output}
	if plan.Changed() {
		res.output, err = mod.Apply(ctx, ro.fullForModule(t, plan), plan)
		res.status = StatusChanged
	}
	if err != nil {
		res = resultFromError(err, plan, res.output)
	}
	if res.status == StatusUnreachable {
		return res
	}
	return r.applyConditions(ctx, t, vars, res, err)
}

// argsError is a task's arguments that could not be rendered.
type argsError struct{ err error }

func (e *argsError) Error() string { return e.err.Error() }
func (e *argsError) Unwrap() error { return e.err }

// build renders t's arguments for vars and builds its module. A template
// that fails is named by its file and line.
func (r *run) build(ctx context.Context, pb *playbooks.Playbook, t *playbooks.Task, vars map[string]any) (modules.Module, error) {
	args, err := r.Templates.RenderNodeContext(ctx, t.NormalizedArgs(), vars)
	if err != nil {
		var ne *tmpl.NodeError
		if errors.As(err, &ne) {
			err = fmt.Errorf("%s:%d: %s: %w", sourceFile(t.Source, pb.Path), ne.Line, ne.Path, ne.Err)
		}
		return nil, &argsError{err}
	}
	return construct(pb, t, args, vars)
}

// construct builds t's module from its rendered arguments for a host whose
// variables are vars: arguments the task leaves out default from those
// their var tag names.
func construct(pb *playbooks.Playbook, t *playbooks.Task, args *yaml.Node, vars map[string]any) (modules.Module, error) {
	return t.Spec.New(modules.WithVars(playbooks.ArgsDecoder(sourceFile(t.Source, pb.Path), t.Spec, pruneOmitted(args)), vars))
}

// applyConditions applies changed_when and failed_when to a result.
func (r *run) applyConditions(ctx context.Context, t *playbooks.Task, vars map[string]any, res taskResult, applyErr error) taskResult {
	if t.ChangedWhen == nil && t.FailedWhen == nil {
		return res
	}
	v := withResult(vars, t.Register, res.Register())
	changedWhen := false // what changed_when said, when it did
	if t.ChangedWhen != nil && res.status != StatusFailed {
		changed, err := r.allTrue(ctx, t.ChangedWhen, v, "changed_when")
		if err != nil {
			res.status, res.msg = StatusFailed, err.Error()
			return res
		}
		res.status = map[bool]Status{true: StatusChanged, false: StatusOK}[changed]
		changedWhen = changed
	}
	if t.FailedWhen != nil {
		isFailed, err := r.anyTrue(ctx, t.FailedWhen, v)
		if err != nil {
			res.status, res.msg = StatusFailed, err.Error()
			return res
		}
		switch {
		case isFailed:
			res.status = StatusFailed
			if res.msg == "" {
				res.msg = "failed_when: " + strings.Join(t.FailedWhen, " or ")
			}
		case applyErr != nil:
			// The module failed but failed_when says it did not.
			res.status = StatusChanged
			if t.ChangedWhen != nil && !changedWhen {
				res.status = StatusOK
			}
			res.msg = ""
		}
	}
	return res
}

// withResult makes a task's own result visible to its conditions under its
// register name, as Ansible does.
func withResult(vars map[string]any, register string, out map[string]any) map[string]any {
	if register == "" {
		return vars
	}
	v := maps.Clone(vars)
	v[register] = out
	return v
}

func sourceFile(source, fallback string) string {
	if i := strings.LastIndexByte(source, ':'); i > 0 {
		return source[:i]
	}
	return fallback
}
