package runner

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nixbook/nixbook/internal/playbooks"
)

// playState is what the hosts of a play share.
type playState struct {
	fatal atomic.Bool // any_errors_fatal: every host stops at its next task

	mu   sync.Mutex
	once map[*playbooks.Task]*onceRun // run_once tasks of the current batch
	// order is the batch's hosts in inventory order; done are those that
	// went through the play's tasks, or stopped on the way.
	order []string
	done  map[string]bool
	wake  chan struct{} // closed and replaced when once or done changes
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
func (ps *playState) newBatch(hosts []string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.once, ps.order, ps.done = map[*playbooks.Task]*onceRun{}, hosts, map[string]bool{}
	ps.wake = make(chan struct{})
}

// leave says host is through the play's tasks (or stopped): a run_once task
// no longer waits for it.
func (ps *playState) leave(host string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.done == nil || ps.done[host] {
		return
	}
	ps.done[host] = true
	ps.broadcast()
}

func (ps *playState) broadcast() {
	close(ps.wake)
	ps.wake = make(chan struct{})
}

// claim returns t's run in this batch, and whether the caller must run it:
// as in Ansible's linear strategy (lib/ansible/plugins/strategy/linear.py,
// which queues a run_once task for the first host left and breaks), the
// batch's first host in inventory order that is still in the play runs it;
// a later host waits until that host has run it or left the play. A host
// no earlier host can run it for (in handlers, all have left) runs it.
func (ps *playState) claim(ctx context.Context, t *playbooks.Task, host string) (*onceRun, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for {
		if o, ok := ps.once[t]; ok {
			return o, false
		}
		first := host
		for _, name := range ps.order {
			if name == host || !ps.done[name] {
				first = name
				break
			}
		}
		if first == host {
			o := &onceRun{done: make(chan struct{}), host: host}
			ps.once[t] = o
			ps.broadcast()
			return o, true
		}
		wake := ps.wake
		ps.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			ps.mu.Lock()
			return nil, false
		}
		ps.mu.Lock()
	}
}

// runOnce runs a run_once task on the batch's first host still in the play
// (see claim); the other hosts wait for its result, register it and report
// it as theirs
// (lib/ansible/plugins/strategy/__init__.py, _process_pending_results,
// copies a run_once result to every host of the batch).
func (r *run) runOnce(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, h *hostRun, t *playbooks.Task, ps *playState) Status {
	o, first := ps.claim(ctx, t, h.inv.Name)
	if o == nil {
		return StatusSkipped // interrupted while waiting
	}
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
func (r *run) dryRun(t *playbooks.Task) bool {
	return r.Check || (t.CheckMode != nil && *t.CheckMode)
}
