package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// Validate renders every task's condition and arguments for every host the
// playbook would touch, without connecting to any, and reports the variables
// that are undefined: a value missing from the inventory shows up here, per
// task and host, before any server is touched. What only a run can know
// (registered results, gathered facts) is left for the run.
func (r *Runner) Validate(pb *playbooks.Playbook, inv *inventory.Inventory, limit string) error {
	sel, err := Select(pb, inv, limit)
	if err != nil {
		return err
	}
	return r.ValidateSelected(pb, inv, sel)
}

// ValidateSelected is Validate on hosts already selected (see Select).
func (r *Runner) ValidateSelected(pb *playbooks.Playbook, inv *inventory.Inventory, sel *Selection) error {
	return (&run{Runner: r}).validate(pb, inv, sel)
}

func (r *run) validate(pb *playbooks.Playbook, inv *inventory.Inventory, sel *Selection) error {
	r.registered = map[string]bool{}
	for _, p := range pb.Plays {
		maps.Copy(r.registered, registeredNames(p))
	}
	r.groups, r.hostvars = inv.GroupMembers(), inv.HostVars()
	r.playHosts = map[*playbooks.Play][]string{}
	hostsOf := map[problem][]string{}
	var order []problem
	note := func(p problem, host string) {
		if _, seen := hostsOf[p]; !seen {
			order = append(order, p)
		}
		hostsOf[p] = append(hostsOf[p], host)
	}
	for _, play := range pb.Plays {
		hosts := sel.Hosts(play)
		for _, ih := range hosts {
			r.playHosts[play] = append(r.playHosts[play], ih.Name)
		}
		for _, ih := range hosts {
			h := &hostRun{inv: ih, r: r, vars: map[string]any{}}
			for _, t := range append(playbooks.Leaves(play.Tasks), play.Handlers...) {
				if err := r.validateTask(context.Background(), pb, play, h, t); err != nil {
					for _, e := range split(err) {
						note(describe(t, e), ih.Name)
					}
				}
			}
		}
	}
	var errs []error
	for _, p := range order {
		hosts := hostsOf[p]
		sort.Strings(hosts)
		errs = append(errs, fmt.Errorf("%s: %s (task %q, hosts: %s)", p.where, p.msg, p.task, strings.Join(hosts, ", ")))
	}
	return errors.Join(errs...)
}

// validateTask returns what is wrong with t's templates for h, or nil.
func (r *run) validateTask(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, h *hostRun, t *playbooks.Task) error {
	known := func(err error) bool {
		root := undefinedRoot(err)
		return root == "" || r.registered[root] || root == "facts"
	}
	vars, err := r.taskVars(ctx, pb, play, h, t)
	if err != nil {
		if known(err) {
			return nil
		}
		return err
	}
	if t.Loop != nil {
		items, err := r.loopItems(ctx, t, vars)
		if err != nil {
			if known(err) {
				return nil
			}
			return err
		}
		if len(items) == 0 {
			return nil
		}
		vars[t.LoopVar] = items[0]
	}
	if len(t.When) > 0 {
		ok, err := r.allTrue(ctx, t.When, vars, "when")
		if err != nil || !ok {
			if err != nil && !known(err) {
				return err
			}
			return nil
		}
	}
	args, err := r.Templates.RenderNodeContext(ctx, t.NormalizedArgs(), vars)
	if err != nil && !known(err) {
		return err
	}
	if err == nil {
		// The module's own checks of its arguments, and of the inventory
		// values it reads beside them.
		mod, err := construct(pb, t, args, vars)
		if err != nil {
			return err
		}
		if req, ok := mod.(modules.Requirer); ok {
			api := func(endpoint string) error { return ovh.Env{}.CheckVars(endpoint, vars) }
			if err := req.Requires(api); err != nil {
				return err
			}
		}
	}
	if t.Chroot != "" {
		if _, err := r.Templates.RenderContext(ctx, t.Chroot, vars); err != nil && !known(err) {
			return fmt.Errorf("chroot: %w", err)
		}
	}
	return nil
}

// split separates the problems errors.Join put together.
func split(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// problem is one finding of Validate, shared by the hosts it concerns.
type problem struct{ where, task, msg string }

// describe places an error at the line of the argument it is about when the
// template engine knows it, else at the task.
func describe(t *playbooks.Task, err error) problem {
	p := problem{where: t.Source, task: t.DisplayName(), msg: err.Error()}
	var ne *tmpl.NodeError
	if errors.As(err, &ne) {
		file := t.Source
		if i := strings.LastIndexByte(file, ':'); i > 0 {
			file = file[:i]
		}
		p.where = fmt.Sprintf("%s:%d", file, ne.Line)
		p.msg = ne.Err.Error()
		if ne.Path != "" {
			p.msg = ne.Path + ": " + p.msg
		}
	}
	return p
}
