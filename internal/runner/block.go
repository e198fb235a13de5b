package runner

import (
	"context"
	"time"

	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/transport"
)

// flow is what a list of tasks left a host to do next.
type flow int

const (
	flowOK     flow = iota // go on with the next task
	flowFailed             // a task failed: the host stops unless a rescue takes over
	flowStop               // unreachable, interrupted or any_errors_fatal: the host stops here
)

// runTasks runs tasks, blocks opened, on h in order.
func (r *run) runTasks(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, h *hostRun, tasks []*playbooks.Task, ps *playState) flow {
	for _, t := range tasks {
		if ctx.Err() != nil || ps.fatal.Load() {
			return flowStop
		}
		if t.Block != nil {
			if f := r.runBlock(ctx, pb, play, h, t.Block, ps); f != flowOK {
				return f
			}
			continue
		}
		run := r.runTask
		if t.RunOnce {
			run = func(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, h *hostRun, t *playbooks.Task) Status {
				return r.runOnce(ctx, pb, play, h, t, ps)
			}
		}
		st, ok := r.prepare(ctx, play, h, t)
		if ok {
			st = run(ctx, pb, play, h, t)
		}
		switch st {
		case StatusFailed:
			if play.AnyErrorsFatal && h.rescuing == 0 {
				ps.fatal.Store(true)
			}
			return flowFailed
		case StatusUnreachable:
			return flowStop
		}
	}
	return flowOK
}

// prepare readies h for t. A task that works over SSH dials a host that is
// not connected: down from the start, or an earlier task lost the
// connection (a reconnect that gave up, a rescue's fallback); the host may
// be back by now, as Ansible's per-task connections would find. Facts
// gathered before the connection was lost are dropped, and gathered again
// when the play gathers facts (see freshFacts). ok is false when t cannot
// run; st is then its result, already reported.
func (r *run) prepare(ctx context.Context, play *playbooks.Play, h *hostRun, t *playbooks.Task) (st Status, ok bool) {
	if h.conn == nil && !t.Spec.Offline && !t.Spec.Local && t.DelegateTo == "" {
		if err := h.connect(ctx, transport.DialOptions{}); err != nil {
			r.unreachable(play, h, t.DisplayName(), err)
			return StatusUnreachable, false
		}
	}
	start := time.Now()
	if err := r.freshFacts(ctx, play, h); err != nil {
		if isUnreachable(err) {
			r.unreachable(play, h, t.DisplayName(), err)
			return StatusUnreachable, false
		}
		return r.failTask(play, h, t, err, start), false
	}
	return "", true
}

// freshFacts keeps a task from seeing the facts of a boot the host may
// have left: facts gathered over a connection closed since (a module's
// reconnect, a reboot that gave up) are dropped and, when the play gathers
// facts and the host is connected, gathered again. Modules that reboot
// gather them again themselves (RefreshFacts), which costs nothing here.
func (r *run) freshFacts(ctx context.Context, play *playbooks.Play, h *hostRun) error {
	h.dropStaleFacts()
	if h.facts != nil || h.conn == nil || !play.GatherFacts || ctx.Err() != nil {
		return nil
	}
	h.task = "gather facts"
	return h.gatherFacts(ctx)
}

// runBlock runs a block as Ansible does (lib/ansible/executor/play_iterator.py,
// HostState and PlayIterator._get_next_task_from_state): when a task of the
// block fails, the rest of the block is skipped and its rescue runs; the
// always tasks run whatever happened, but not on a host that became
// unreachable or after an interrupt. A host whose rescue ends well is not
// failed: the failure is counted as rescued instead (is_any_block_rescuing,
// lib/ansible/plugins/strategy/__init__.py), and ansible_failed_task and
// ansible_failed_result say what failed.
func (r *run) runBlock(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, h *hostRun, b *playbooks.Block, ps *playState) flow {
	rescuable := len(b.Rescue) > 0
	if rescuable {
		h.rescuing++
	}
	f := r.runTasks(ctx, pb, play, h, b.Tasks, ps)
	if rescuable {
		h.rescuing--
	}
	if f == flowFailed && rescuable {
		h.vars["ansible_failed_task"] = map[string]any{"name": h.failedTask.DisplayName(), "source": h.failedTask.Source}
		h.vars["ansible_failed_result"] = h.failedResult
		f = r.runTasks(ctx, pb, play, h, b.Rescue, ps)
	}
	if f == flowStop {
		return f
	}
	if a := r.runTasks(ctx, pb, play, h, b.Always, ps); a != flowOK {
		return a
	}
	return f
}

// mainPath lists the tasks a host runs when nothing fails, blocks opened:
// the rescue tasks are left out.
func mainPath(tasks []*playbooks.Task) []*playbooks.Task {
	var out []*playbooks.Task
	for _, t := range tasks {
		if t.Block == nil {
			out = append(out, t)
			continue
		}
		out = append(out, mainPath(t.Block.Tasks)...)
		out = append(out, mainPath(t.Block.Always)...)
	}
	return out
}

// hasRescue reports whether a block among tasks has a rescue, which sets
// ansible_failed_task and ansible_failed_result.
func hasRescue(tasks []*playbooks.Task) bool {
	for _, t := range tasks {
		if t.Block != nil && (len(t.Block.Rescue) > 0 || hasRescue(t.Block.Tasks) || hasRescue(t.Block.Always)) {
			return true
		}
	}
	return false
}
