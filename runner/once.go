package runner

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nixbook/nixbook/playbooks"
)

// playState is what the hosts of a play share.
type playState struct {
	fatal atomic.Bool // any_errors_fatal: every host stops at its next task

	mu   sync.Mutex
	once map[*playbooks.Task]*onceRun // run_once tasks of the current batch
}

// onceRun is a run_once task's single run in a batch.
type onceRun struct {
	done   chan struct{}
	host   string
	status Status
	msg    string
	out    map[string]any
}

// newBatch forgets the run_once results of the previous batch: as in
// Ansible, run_once runs once per serial batch.
func (ps *playState) newBatch() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.once = map[*playbooks.Task]*onceRun{}
}

// claim returns t's run in this batch, and whether the caller is the
// first host to reach it and must run it.
func (ps *playState) claim(t *playbooks.Task, host string) (*onceRun, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if o, ok := ps.once[t]; ok {
		return o, false
	}
	o := &onceRun{done: make(chan struct{}), host: host}
	ps.once[t] = o
	return o, true
}

// runOnce runs a run_once task on the first host of the batch to reach it;
// the other hosts wait for its result, register it and report it as theirs
// (lib/ansible/plugins/strategy/__init__.py, _process_pending_results,
// copies a run_once result to every host of the batch).
func (r *Runner) runOnce(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, h *hostRun, t *playbooks.Task, ps *playState) Status {
	o, first := ps.claim(t, h.inv.Name)
	if first {
		defer close(o.done)
		o.status = r.runTask(ctx, pb, play, h, t)
		o.msg, o.out = h.lastMsg, h.lastOut
		return o.status
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		return StatusSkipped
	}
	h.task = t.DisplayName()
	if t.Register != "" {
		h.vars[t.Register] = o.out
	}
	st := o.status
	if st == StatusUnreachable {
		st = StatusFailed // the host that ran it is unreachable, not this one
	}
	msg := fmt.Sprintf("run once on %s", o.host)
	if o.msg != "" {
		msg += ": " + o.msg
	}
	r.finish(play, h, h.task, st, msg, nil, nil, time.Duration(0))
	return st
}

// dryRun says whether t only plans: in a dry run, and for a task with
// check_mode: true. check_mode: false does not make a dry run's task real:
// Ansible would run it, but nixbook's modules change hosts and --check
// promises they are not changed.
func (r *Runner) dryRun(t *playbooks.Task) bool {
	return r.Check || (t.CheckMode != nil && *t.CheckMode)
}
