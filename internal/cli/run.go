package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules/builtin"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/report"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	sshtransport "github.com/nixbook/nixbook/internal/transport/ssh"
)

var inventoryFlag = &ucli.StringSliceFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `FILE` (repeatable)", EnvVars: envVars("inventory")}
var limitFlag = &ucli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "limit to `PATTERN`: names, groups, globs, !exclusions, comma lists, @file"}
var knownHostsFlag = &ucli.StringFlag{Name: "known-hosts", Usage: "nixbook's known_hosts `FILE`", Value: hostkeys.DefaultPath(), EnvVars: envVars("known-hosts")}
var noColorFlag = &ucli.BoolFlag{Name: "no-color", Usage: "plain output (also NO_COLOR=1)"}
var extraVarsFlag = &ucli.StringSliceFlag{Name: "extra-vars", Aliases: []string{"e"}, Usage: "`k=v`, JSON or @vars.yml; wins over every other variable"}

func (e *env) runCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "run",
		Usage:     "run a playbook against an inventory",
		ArgsUsage: "PLAYBOOK",
		Flags: append([]ucli.Flag{
			inventoryFlag, limitFlag, extraVarsFlag, knownHostsFlag, noColorFlag,
			&ucli.IntFlag{Name: "forks", Aliases: []string{"f"}, Usage: "hosts in flight (default: all hosts, at most 256)", EnvVars: envVars("forks")},
			&ucli.BoolFlag{Name: "check", Aliases: []string{"C", "dry-run"}, Usage: "probe and plan, change nothing"},
			&ucli.BoolFlag{Name: "diff", Aliases: []string{"D"}, Usage: "show file changes"},
			&ucli.StringSliceFlag{Name: "tags", Aliases: []string{"t"}, Usage: "only tasks with these tags"},
			&ucli.StringSliceFlag{Name: "skip-tags", Usage: "skip tasks with these tags"},
			&ucli.StringFlag{Name: "start-at-task", Usage: "start at the task with this `NAME`"},
			&ucli.StringFlag{Name: "serial", Usage: "batch sizes for every play, e.g. 1 or 25% or 1,25%"},
			&ucli.BoolFlag{Name: "json", Usage: "one JSON event per line"},
			&ucli.BoolFlag{Name: "by-host", Usage: "print each host's results together, after the play"},
			&ucli.StringFlag{Name: "log-dir", Usage: "per-host logs `DIR` (default .nixbook/logs/<run>)", EnvVars: envVars("log-dir")},
			&ucli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "-v remote output as it arrives, -vv every duration too, -vvv the facts script's output too"},
		}, append(append(connectionFlags(), listingFlags()...), planFlags()...)...),
		Action: func(c *ucli.Context) error {
			s, err := e.load(c, true)
			if err != nil {
				return usage(err)
			}
			serial, err := parseSerial(c.String("serial"))
			if err != nil {
				return usage(err)
			}
			if c.IsSet("forks") && c.Int("forks") < 1 {
				return usage(fmt.Errorf("--forks: want at least 1 host in flight, got %d", c.Int("forks")))
			}
			if err := checkLimit(s.inventory, c.String("limit")); err != nil {
				return usage(err)
			}
			if listing(c) {
				return e.list(c, s)
			}
			store := hostkeys.New(c.String("known-hosts"))
			dialer := sshtransport.NewDialer(sshtransport.DialerOptions{Store: store, UseAgent: true, Passphrase: terminalPassphrase()})
			defer dialer.Close()
			logDir := c.String("log-dir")
			r := &runner.Runner{
				Dialer:    dialer,
				HostKeys:  store,
				Templates: s.templates,
				Options: runner.Options{
					Check: c.Bool("check"), Diff: c.Bool("diff"), Forks: c.Int("forks"),
					Tags: splitList(c.StringSlice("tags")), SkipTags: splitList(c.StringSlice("skip-tags")),
					StartAtTask: c.String("start-at-task"), Serial: serial,
					ExtraVars: s.extraVars, LogDir: logDir,
					// What modules remember of hosts lives beside their keys.
					StateDir: filepath.Dir(c.String("known-hosts")),
					Strict:   c.Bool("strict"),
				},
			}
			// Every play's hosts, resolved once; missing inventory values are
			// found for every host before any is touched.
			sel, err := runner.Select(s.playbook, s.inventory, c.String("limit"))
			if err != nil {
				return usage(err)
			}
			if err := r.ValidateSelected(s.playbook, s.inventory, sel); err != nil {
				return usage(err)
			}
			if logDir == "" {
				if logDir, err = claimLogDir(runner.DefaultLogDir(time.Now())); err != nil {
					return usage(err)
				}
				r.Options.LogDir = logDir
			}
			if c.Bool("json") {
				r.Events = report.JSON(e.stdout)
			} else {
				h := report.NewHuman(e.stdout, report.HumanOptions{
					Color: e.colorEnabled(c, e.stdout), Live: isTerminal(e.stdout) && !c.Bool("verbose"),
					Verbose: c.Count("verbose"), Check: c.Bool("check"), Width: terminalWidth(e.stdout),
					ByHost: c.Bool("by-host"),
				})
				r.Events = h.Event
				tickCtx, stopTick := context.WithCancel(c.Context)
				defer stopTick()
				go h.Tick(tickCtx)
			}
			writePlan, err := savedPlans(c, s, r)
			if err != nil {
				return usage(err)
			}
			recap, err := r.RunSelected(c.Context, s.playbook, s.inventory, sel)
			if err != nil {
				return usage(err)
			}
			if err := writePlan(); err != nil {
				return usage(err)
			}
			if !c.Bool("json") {
				fmt.Fprintf(e.stderr, "logs: %s\n", logDir)
			}
			if retry, err := writeRetryFile(logDir, recap); err != nil {
				fmt.Fprintf(e.stderr, "nixbook: %v\n", err)
			} else if retry != "" && !c.Bool("json") {
				fmt.Fprintf(e.stderr, "to run again on the hosts that failed: add --limit @%s\n", retry)
			}
			if recap.Interrupted {
				return exitCode(interruptExit(c.Context))
			}
			return exitCode(exitCodeOf(recap.Outcome()))
		},
	}
}

func (e *env) validateCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "validate",
		Usage:     "run every static check of a playbook and inventory, without network",
		ArgsUsage: "PLAYBOOK",
		Flags:     []ucli.Flag{inventoryFlag, limitFlag, extraVarsFlag},
		Action: func(c *ucli.Context) error {
			s, err := e.load(c, true)
			if err != nil {
				return usage(err)
			}
			if len(s.playbook.Faults) > 0 {
				return usage(errors.Join(s.playbook.Faults...))
			}
			if err := checkLimit(s.inventory, c.String("limit")); err != nil {
				return usage(err)
			}
			r := &runner.Runner{Templates: s.templates, Options: runner.Options{ExtraVars: s.extraVars}}
			sel, err := runner.Select(s.playbook, s.inventory, c.String("limit"))
			if err != nil {
				return usage(err)
			}
			if err := r.ValidateSelected(s.playbook, s.inventory, sel); err != nil {
				return usage(err)
			}
			tasks := 0
			for _, p := range s.playbook.Plays {
				tasks += len(playbooks.Leaves(p.Tasks)) + len(p.Handlers)
			}
			fmt.Fprintf(e.stdout, "ok: %s: %d plays, %d tasks, %d hosts\n", c.Args().First(), len(s.playbook.Plays), tasks, len(sel.Names()))
			return nil
		},
	}
}

// setup is what every command that runs a playbook loads first.
type setup struct {
	inventory *inventory.Inventory
	playbook  *playbooks.Playbook
	extraVars map[string]any
	templates *tmpl.Engine
}

// load reads the inventory, the extra vars and (withPlaybook) the playbook.
// Every error it returns is found before any host is touched.
func (e *env) load(c *ucli.Context, withPlaybook bool) (*setup, error) {
	s := &setup{templates: tmpl.New()}
	var err error
	if s.inventory, err = loadInventory(c); err != nil {
		return nil, err
	}
	if err := applyConnectionFlags(c, s.inventory); err != nil {
		return nil, err
	}
	if s.extraVars, err = inventory.ParseExtraVars(c.StringSlice("extra-vars"), readFile); err != nil {
		return nil, err
	}
	if err := runner.RenderConnections(c.Context, s.templates, s.inventory, s.extraVars); err != nil {
		return nil, err
	}
	if !withPlaybook {
		return s, nil
	}
	if c.NArg() != 1 {
		return nil, fmt.Errorf("want one playbook, got %d arguments (usage: nixbook %s PLAYBOOK -i INVENTORY)", c.NArg(), c.Command.Name)
	}
	path, data, err := playbooks.Resolve(c.Args().First())
	if err != nil {
		return nil, err
	}
	s.playbook, err = playbooks.LoadBytes(path, data, filepath.Dir(path), builtin.Registry(s.templates, s.templates))
	return s, err
}

// loadInventory loads the inventories that -i, NIXBOOK_INVENTORY or the
// config file name.
func loadInventory(c *ucli.Context) (*inventory.Inventory, error) {
	paths := splitList(c.StringSlice("inventory"))
	if len(paths) == 0 {
		return nil, fmt.Errorf("no inventory: give -i FILE, set NIXBOOK_INVENTORY or inventory: in %s", ConfigName)
	}
	return inventory.Load(paths...)
}

// checkLimit refuses a --limit that selects no host of the inventory: a
// typo must not look like a run that had nothing to do.
func checkLimit(inv *inventory.Inventory, limit string) error {
	if limit == "" {
		return nil
	}
	hosts, err := inv.Limit(inv.Hosts, limit)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return fmt.Errorf("--limit %q matches no host of the inventory", limit)
	}
	return nil
}

// parseSerial reads --serial: "2", "25%" or a comma list of those.
func parseSerial(s string) ([]playbooks.Batch, error) {
	if s == "" {
		return nil, nil
	}
	var out []playbooks.Batch
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if p, ok := strings.CutSuffix(part, "%"); ok {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 100 {
				return nil, fmt.Errorf("--serial: bad percentage %q", part)
			}
			out = append(out, playbooks.Batch{Percent: n})
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--serial: want a positive number or a percentage, got %q", part)
		}
		out = append(out, playbooks.Batch{Count: n})
	}
	return out, nil
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// writeRetryFile lists the hosts that failed, could not be reached or were
// stopped by an interrupt before they finished, one per line, for `--limit @FILE`. It returns "" when every host was fine.
func writeRetryFile(logDir string, recap *runner.Recap) (string, error) {
	var names []string
	for _, h := range recap.Hosts {
		if h.Failed > 0 || h.Unreachable > 0 || slices.Contains(recap.Unfinished, h.Host) {
			names = append(names, h.Host)
		}
	}
	path := filepath.Join(logDir, "retry")
	// Created exclusively and never through a symbolic link, as the logs
	// are; an earlier run's retry file goes first, whatever this run's
	// outcome (unlinking a link removes only the link).
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("retry file: %w", err)
	}
	if len(names) == 0 {
		return "", nil
	}
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return "", fmt.Errorf("retry file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", fmt.Errorf("retry file: %w", err)
	}
	_, err = f.WriteString(strings.Join(names, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("retry file: %w", err)
	}
	return path, nil
}

// claimLogDir creates a fresh log directory: base, or base-2, base-3...
// when runs started in the same second. Each is made with mkdir, which
// only one of two racing runs wins, so a run never writes into another's
// logs and its retry file never names another run's hosts.
func claimLogDir(base string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(base), 0o700); err != nil {
		return "", fmt.Errorf("log directory: %w", err)
	}
	dir := base
	for i := 2; ; i++ {
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) || i > 10000 {
			return "", fmt.Errorf("log directory: %w", err)
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
}
