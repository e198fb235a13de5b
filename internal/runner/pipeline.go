package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/transport"
)

// runHost is one host's pipeline through a play. It reports false when the
// host failed (for max_fail_percentage); unreachable hosts are counted apart.
func (r *run) runHost(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, tasks []*playbooks.Task, h *hostRun, ps *playState) bool {
	defer ps.leave(h.inv.Name) // a host that stops early is waited for no more
	if why := r.refused[h.inv.Name]; why != "" && !h.down {
		// Refused before its first task: nothing was approved for it.
		h.down = true
		r.finish(play, h, "saved plan", StatusFailed, h.redact.String(why), nil, nil, 0)
		return false
	}
	if h.down {
		return true
	}
	connErr := h.connect(ctx, transport.DialOptions{})
	if connErr != nil {
		first := firstOnHost(tasks)
		if first == nil || !first.Spec.Offline {
			r.unreachable(play, h, "connect", connErr)
			return true
		}
		// The first task works through an API (rescue): it may bring back a
		// host that SSH cannot reach now. Facts stay empty until it does.
		msg := fmt.Sprintf("not reachable over SSH (%s); %q goes ahead through the API", h.redact.String(connErr.Error()), first.DisplayName())
		h.log.Printf("%s", msg)
		r.emit(Event{Type: EventNotice, Host: h.inv.Name, Msg: msg})
	}
	if play.GatherFacts && ctx.Err() == nil && h.conn != nil {
		h.task = "gather facts"
		start := time.Now()
		if err := h.gatherFacts(ctx); err != nil {
			if isUnreachable(err) {
				r.unreachable(play, h, "gather facts", err)
				return true
			}
			r.finish(play, h, "gather facts", StatusFailed, h.redact.String(err.Error()), nil, nil, time.Since(start))
			return false
		}
		r.finish(play, h, "gather facts", StatusOK, "", nil, nil, time.Since(start))
	}
	h.dropStaleFacts() // an earlier play's, when this one gathers none
	if !r.preflight(ctx, pb, play, tasks, h) {
		return false
	}
	// pre_tasks, then the roles and tasks, then post_tasks: the notified
	// handlers run after each, as Ansible flushes them.
	sections := splitSections(tasks)
	for i, section := range sections {
		f := r.runTasks(ctx, pb, play, h, section, ps)
		if i == len(sections)-1 || f != flowOK {
			ps.leave(h.inv.Name)
		}
		switch f {
		case flowFailed:
			return false
		case flowStop:
			return true
		}
		if ok, stop := r.runHandlers(ctx, pb, play, h); !ok || stop {
			ps.leave(h.inv.Name)
			return ok
		}
	}
	return true
}

// splitSections cuts a play's selected tasks where their section
// (pre_tasks, tasks, post_tasks) changes; there is always one.
func splitSections(tasks []*playbooks.Task) [][]*playbooks.Task {
	out := [][]*playbooks.Task{nil}
	for i, t := range tasks {
		if i > 0 && t.Section != tasks[i-1].Section {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], t)
	}
	return out
}

// runHandlers runs the notified handlers once, in the order they are
// defined, and forgets the notifications. ok is false when one failed;
// stop when the host became unreachable or the run was interrupted.
func (r *run) runHandlers(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, h *hostRun) (ok, stop bool) {
	for _, hd := range play.Handlers {
		if ctx.Err() != nil {
			return true, true
		}
		if !h.notified[hd.Name] && !slices.ContainsFunc(hd.Listen, func(t string) bool { return h.notified[t] }) {
			continue
		}
		st, ok := r.prepare(ctx, play, h, hd)
		if ok {
			st = r.runTask(ctx, pb, play, h, hd)
		}
		switch st {
		case StatusFailed:
			return false, true
		case StatusUnreachable:
			return true, true
		}
	}
	h.notified = nil
	return true, false
}

// firstOnHost is the first task that touches the host, or nil.
func firstOnHost(tasks []*playbooks.Task) *playbooks.Task {
	for _, t := range playbooks.Leaves(tasks) {
		if !t.Spec.Local && t.DelegateTo == "" {
			return t
		}
	}
	return nil
}

// preflight runs the Preflight of every task h is to run in the play, before
// the first task; it reports false when one of them refuses the host. A
// task whose arguments or condition need results of earlier tasks is left
// to its own Check.
func (r *run) preflight(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, tasks []*playbooks.Task, h *hostRun) bool {
	for _, t := range mainPath(tasks) {
		if ctx.Err() != nil {
			return true
		}
		if t.Loop != nil || t.Chroot != "" || (h.conn == nil && !t.Spec.Offline && t.DelegateTo == "") {
			continue
		}
		vars, err := r.taskVars(ctx, pb, play, h, t)
		if err != nil {
			continue
		}
		if len(t.When) > 0 {
			if ok, err := r.allTrue(ctx, t.When, vars, "when"); err == nil && !ok {
				continue
			}
		}
		mod, err := r.build(ctx, pb, t, vars)
		if err != nil {
			continue // the task reports it when it runs
		}
		pf, ok := mod.(modules.Preflighter)
		if !ok {
			continue
		}
		start := time.Now()
		h.task = "preflight: " + t.DisplayName()
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if t.Timeout > 0 {
			tctx, cancel = context.WithTimeout(ctx, t.Timeout)
		}
		err = pf.Preflight(tctx, h.readOnly(t, vars).forModule(t))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return true
			}
			if t.IgnoreErrors {
				// The task's own run says what it makes of it.
				h.log.Printf("%s: %s (ignore_errors: the task runs anyway)", h.task, h.redact.String(err.Error()))
				continue
			}
			r.finish(play, h, h.task, StatusFailed, h.redact.String(err.Error()), nil, nil, time.Since(start))
			return false
		}
	}
	return true
}

func (r *run) unreachable(play *playbooks.Play, h *hostRun, task string, err error) {
	h.down = true
	h.close()
	msg := h.redact.String(err.Error())
	var changed *hostkeys.ChangedError
	if errors.As(err, &changed) {
		msg = h.redact.String(changed.Error())
	}
	r.finish(play, h, task, StatusUnreachable, msg, nil, nil, 0)
}

func isUnreachable(err error) bool {
	var changed *hostkeys.ChangedError
	return errors.Is(err, transport.ErrUnreachable) || errors.As(err, &changed)
}

// finish counts and reports one task result.
func (r *run) finish(play *playbooks.Play, h *hostRun, task string, st Status, msg string, item any, plan *modules.Plan, d time.Duration) {
	if st == StatusFailed && h.rescuing > 0 {
		h.recap.Rescued++ // a rescue takes over (see runBlock)
	} else {
		h.recap.count(st)
	}
	e := Event{Type: EventResult, Play: play.Name, Task: task, Host: h.inv.Name, Status: st, Msg: msg, Item: item, Duration: d, Unplanned: h.unplanned}
	h.unplanned = nil
	r.planFields(h, &e, plan)
	r.emit(e)
}

// planFields adds what is shown of plan to a result event: its changes
// under --check and --diff, and a dry run's digest for saved plans.
func (r *run) planFields(h *hostRun, e *Event, plan *modules.Plan) {
	if plan == nil || !(r.Check || r.Diff) {
		return
	}
	e.Changes = h.redactChanges(plan.Changes, r.Diff)
	e.Reboots = plan.Reboots
	if r.Check {
		e.Digest = h.planDigest(plan)
	}
}

// redactChanges masks secrets in what is shown of a plan; before/after text
// is kept only for --diff.
func (h *hostRun) redactChanges(in []modules.Change, diff bool) []modules.Change {
	out := make([]modules.Change, len(in))
	for i, c := range in {
		c.Summary = h.redact.String(c.Summary)
		c.Commands = slices.Clone(c.Commands)
		for j := range c.Commands {
			c.Commands[j] = h.redact.String(c.Commands[j])
		}
		if c.Sensitive || h.noLog || !diff {
			c.Before, c.After = "", ""
		} else {
			c.Before, c.After = h.redact.String(c.Before), h.redact.String(c.After)
		}
		out[i] = c
	}
	return out
}
