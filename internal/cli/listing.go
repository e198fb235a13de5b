package cli

import (
	"errors"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
)

// listingFlags are ansible-playbook's ways to look at a playbook without
// running it.
func listingFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "list-hosts", Usage: "list each play's hosts (after --limit), run nothing"},
		&ucli.BoolFlag{Name: "list-tasks", Usage: "list each play's tasks (after --tags and --skip-tags), run nothing"},
		&ucli.BoolFlag{Name: "syntax-check", Usage: "check the playbook's syntax, run nothing"},
	}
}

// listing reports whether c asks to list or check rather than run.
func listing(c *ucli.Context) bool {
	return c.Bool("list-hosts") || c.Bool("list-tasks") || c.Bool("syntax-check")
}

// list prints what --list-hosts and --list-tasks ask for, in
// ansible-playbook's layout (lib/ansible/cli/playbook.py), or only the
// playbook's name for --syntax-check.
func (e *env) list(c *ucli.Context, s *setup) error {
	if len(s.playbook.Faults) > 0 {
		return usage(errors.Join(s.playbook.Faults...))
	}
	w := e.stdout
	fmt.Fprintf(w, "\nplaybook: %s\n", c.Args().First())
	if !c.Bool("list-hosts") && !c.Bool("list-tasks") {
		return nil
	}
	only, skip := splitList(c.StringSlice("tags")), splitList(c.StringSlice("skip-tags"))
	var sel *runner.Selection
	if c.Bool("list-hosts") {
		var err error
		if sel, err = runner.Select(s.playbook, s.inventory, c.String("limit")); err != nil {
			return usage(err)
		}
	}
	for i, p := range s.playbook.Plays {
		fmt.Fprintf(w, "\n  play #%d (%s): %s\tTAGS: []\n", i+1, p.Hosts, p.Name)
		if sel != nil {
			hosts := sel.Hosts(p)
			fmt.Fprintf(w, "    pattern: ['%s']\n    hosts (%d):\n", p.Hosts, len(hosts))
			for _, h := range hosts {
				fmt.Fprintf(w, "      %s\n", h.Name)
			}
		}
		if c.Bool("list-tasks") {
			fmt.Fprintf(w, "    tasks:\n")
			for _, t := range playbooks.Leaves(p.Tasks) {
				if runner.TagsSelect(t.Tags, only, skip) {
					fmt.Fprintf(w, "      %s\tTAGS: [%s]\n", t.DisplayName(), strings.Join(t.Tags, ", "))
				}
			}
		}
	}
	return nil
}
