package cli

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/nixbook/nixbook/internal/runner"
)

// planFlags are run's flags for saved plans and plan-bound applies.
func planFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "out", Usage: "with --check: write every host's plan to `FILE` (JSON) for --plan"},
		&ucli.StringFlag{Name: "plan", Usage: "apply the plan in `FILE` (from --check --out): a host whose fresh plan differs is refused before it changes"},
		&ucli.BoolFlag{Name: "strict", Usage: "refuse any command a task's Apply runs that its plan did not list"},
	}
}

// savedPlans sets up --out and --plan on r, whose Events are set. The
// returned function writes --out's file once the run is over.
func savedPlans(c *ucli.Context, s *setup, r *runner.Runner) (func() error, error) {
	out, in := c.String("out"), c.String("plan")
	switch {
	case out != "" && !c.Bool("check"):
		return nil, errors.New("--out writes the plan of a dry run: add --check")
	case in != "" && c.Bool("check"):
		return nil, errors.New("--plan applies a saved plan: it does not go with --check")
	case out != "" && in != "":
		return nil, errors.New("--out and --plan do not go together")
	}
	inputs, err := planInputs(c, s)
	if err != nil {
		return nil, err
	}
	if in != "" {
		saved, err := readPlan(in)
		if err != nil {
			return nil, err
		}
		var changed []string
		for _, k := range sortedInputKeys(inputs, saved.Inputs) {
			if inputs[k] != saved.Inputs[k] {
				changed = append(changed, k)
			}
		}
		if len(changed) > 0 {
			return nil, fmt.Errorf("%s was made from other inputs (%s changed since): make a new one with --check --out", in, strings.Join(changed, ", "))
		}
		r.Approved = saved
	}
	if out == "" {
		return func() error { return nil }, nil
	}
	rec := &runner.PlanRecorder{}
	events := r.Events
	r.Events = func(e runner.Event) {
		rec.Record(e)
		events(e)
	}
	return func() error {
		p := rec.Plan()
		p.Inputs = inputs
		for i := range p.Hosts {
			if h, ok := s.inventory.Host(p.Hosts[i].Host); ok {
				p.Hosts[i].Inventory = runner.InventoryDigest(h)
			}
		}
		b, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			return fmt.Errorf("write plan: %w", err)
		}
		if err := os.WriteFile(out, append(b, '\n'), 0o600); err != nil {
			return fmt.Errorf("write plan: %w", err)
		}
		return nil
	}, nil
}

// planInputs are the digests of what a plan is made from, beside the
// inventory, which each host's plan covers for itself: the playbook (with
// the files it imports), the extra vars and which tasks run.
func planInputs(c *ucli.Context, s *setup) (map[string]string, error) {
	vars, err := json.Marshal(s.extraVars)
	if err != nil {
		vars = fmt.Appendf(nil, "%#v", s.extraVars)
	}
	sel, _ := json.Marshal([][]string{splitList(c.StringSlice("tags")), splitList(c.StringSlice("skip-tags")), {c.String("start-at-task")}})
	digest := func(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
	return map[string]string{
		"playbook":   s.playbook.Digest,
		"extra vars": digest(vars),
		"tasks":      digest(sel),
	}, nil
}

func readPlan(path string) (*runner.SavedPlan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	var p runner.SavedPlan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	if p.Version != runner.PlanVersion {
		return nil, fmt.Errorf("read plan %s: version %d, this nixbook reads version %d", path, p.Version, runner.PlanVersion)
	}
	return &p, nil
}

func sortedInputKeys(a, b map[string]string) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
