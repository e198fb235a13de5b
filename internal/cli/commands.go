package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/builtin"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport"
	sshtransport "github.com/nixbook/nixbook/internal/transport/ssh"

	"github.com/nixbook/nixbook/internal/yamlx"
)

func readFile(path string) ([]byte, error) { return yamlx.ReadFile(path) }

func (e *env) inventoryCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "inventory",
		Usage: "show the resolved hosts, their groups and variables",
		Flags: []ucli.Flag{inventoryFlag, limitFlag, &ucli.StringFlag{Name: "host", Usage: "show one host's variables"},
			&ucli.BoolFlag{Name: "list", Usage: "print the hosts as ansible-inventory --list does (JSON)"}},
		Action: func(c *ucli.Context) error {
			inv, hosts, err := e.selectHosts(c)
			if err != nil {
				return usage(err)
			}
			if c.Bool("list") {
				if c.String("host") != "" {
					return usage(fmt.Errorf("--list and --host: choose one"))
				}
				out, err := inv.List(hosts)
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(out)
				return err
			}
			if name := c.String("host"); name != "" {
				h, ok := inv.Host(name)
				if !ok {
					return usage(fmt.Errorf("no host %q in the inventory", name))
				}
				hosts = []*inventory.Host{h}
			}
			if c.String("host") == "" && c.String("limit") == "" {
				out, err := inv.Dump()
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(out)
				return err
			}
			for _, h := range hosts {
				out, err := h.Dump()
				if err != nil {
					return err
				}
				e.stdout.Write(out)
			}
			return nil
		},
	}
}

func (e *env) selectHosts(c *ucli.Context) (*inventory.Inventory, []*inventory.Host, error) {
	inv, err := loadInventory(c)
	if err != nil {
		return nil, nil, err
	}
	if err := applyConnectionFlags(c, inv); err != nil {
		return nil, nil, err
	}
	if err := runner.RenderConnections(c.Context, tmpl.New(), inv, nil); err != nil {
		return nil, nil, err
	}
	hosts := inv.Hosts
	if l := c.String("limit"); l != "" {
		if err := checkLimit(inv, l); err != nil {
			return nil, nil, err
		}
		if hosts, err = inv.Limit(hosts, l); err != nil {
			return nil, nil, fmt.Errorf("limit: %w", err)
		}
	}
	return inv, hosts, nil
}

func (e *env) factsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "facts",
		Usage: "gather facts from hosts and print them",
		Flags: append([]ucli.Flag{inventoryFlag, limitFlag, knownHostsFlag,
			&ucli.StringFlag{Name: "format", Value: "json", Usage: "json or yaml"}}, connectionFlags()...),
		Action: func(c *ucli.Context) error {
			_, hosts, err := e.selectHosts(c)
			if err != nil {
				return usage(err)
			}
			format := c.String("format")
			if format != "json" && format != "yaml" {
				return usage(fmt.Errorf("--format: want json or yaml, got %q", format))
			}
			store := hostkeys.New(c.String("known-hosts"))
			dialer := sshtransport.NewDialer(sshtransport.DialerOptions{Store: store, UseAgent: true, Passphrase: terminalPassphrase()})
			defer dialer.Close()
			var mu sync.Mutex
			out := map[string]any{}
			failed := 0
			var g errgroup.Group
			g.SetLimit(runner.MaxForks)
			for _, h := range hosts {
				g.Go(func() error {
					f, err := gatherOne(c.Context, dialer, h)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed++
						fmt.Fprintf(e.stderr, "%s: %v\n", h.Name, err)
						return nil
					}
					out[h.Name] = f.Map()
					return nil
				})
			}
			g.Wait()
			if format == "yaml" {
				err = yaml.NewEncoder(e.stdout).Encode(out)
			} else {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(out)
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return exitCode(ExitUnreachable)
			}
			return nil
		},
	}
}

func gatherOne(ctx context.Context, d transport.Dialer, h *inventory.Host) (*facts.Facts, error) {
	conn, err := d.Dial(ctx, transport.Target{Name: h.Name, Address: h.Address, Port: h.Port, User: h.User, KeyFiles: h.KeyFiles}, transport.DialOptions{})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return facts.Gather(ctx, func(ctx context.Context, argv []string) ([]byte, error) {
		res, err := conn.Run(ctx, transport.Cmd{Args: argv})
		return res.Stdout, err
	})
}

func (e *env) modulesCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "modules",
		Usage: "list the built-in modules",
		Action: func(c *ucli.Context) error {
			reg := builtin.Registry(tmpl.New(), tmpl.New())
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, n := range reg.Names() {
				s, _ := reg.Lookup(n)
				fmt.Fprintf(tw, "%s\t%s\n", n, s.Summary)
			}
			return tw.Flush()
		},
	}
}

func (e *env) docCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "doc",
		Usage:     "show a module's arguments, types, defaults, the variables it reads and an example",
		ArgsUsage: "MODULE",
		Action: func(c *ucli.Context) error {
			reg := builtin.Registry(tmpl.New(), tmpl.New())
			s, ok := reg.Lookup(c.Args().First())
			if !ok {
				return usage(fmt.Errorf("no module %q (see nixbook modules)", c.Args().First()))
			}
			fmt.Fprintf(e.stdout, "%s: %s\n\n", s.Name, s.Summary)
			if s.FreeForm != "" {
				fmt.Fprintf(e.stdout, "A bare value sets %q.\n\n", s.FreeForm)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ARGUMENT\tTYPE\tDEFAULT\tDESCRIPTION")
			var inputs []modules.Arg
			for _, a := range s.Doc() {
				if a.Name == "" {
					inputs = append(inputs, a)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.Type, argDefault(a), a.Doc)
			}
			tw.Flush()
			if len(inputs) > 0 {
				fmt.Fprintf(e.stdout, "\nVARIABLES it reads beside its arguments\n\n")
				fmt.Fprintln(tw, "VARIABLE\tTYPE\tDESCRIPTION")
				for _, a := range inputs {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.Join(a.Vars, ", else "), a.Type, a.Doc)
				}
				tw.Flush()
			}
			if s.Scope {
				fmt.Fprintf(e.stdout, "\nIt evaluates every variable in the host's scope.\n")
			}
			if s.Example != "" {
				fmt.Fprintf(e.stdout, "\nEXAMPLE\n\n%s\n", indent(strings.TrimRight(s.Example, "\n"), "  "))
			}
			return nil
		},
	}
}

// argDefault is what an argument is when a task leaves it out: required,
// the host's variable its var tag names, its default.
func argDefault(a modules.Arg) string {
	if a.Required {
		return "(required)"
	}
	var parts []string
	for _, v := range a.Vars {
		parts = append(parts, "var "+v)
	}
	if a.Default != "" {
		parts = append(parts, a.Default)
	}
	return strings.Join(parts, ", else ")
}

func (e *env) playbooksCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "playbooks",
		Usage:     "list the stock playbooks, or print one (or tasks/NAME.yml, a tasks file they import)",
		ArgsUsage: "[NAME]",
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				for _, n := range playbooks.Stock() {
					fmt.Fprintln(e.stdout, n)
				}
				return nil
			}
			data, err := playbooks.StockFile(c.Args().First())
			if err != nil {
				return usage(err)
			}
			_, err = e.stdout.Write(data)
			return err
		},
	}
}

func (e *env) knownHostsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "known-hosts",
		Usage: "list or forget the host keys nixbook recorded",
		Subcommands: []*ucli.Command{
			{
				Name:  "list",
				Usage: "list recorded host keys",
				Flags: []ucli.Flag{knownHostsFlag},
				Action: func(c *ucli.Context) error {
					s := hostkeys.New(c.String("known-hosts"))
					entries, err := s.List()
					if err != nil {
						return err
					}
					sort.SliceStable(entries, func(i, j int) bool { return entries[i].Host < entries[j].Host })
					tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
					for _, en := range entries {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", en.Host, en.Type, en.Fingerprint)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "forget",
				Usage:     "forget the recorded keys of hosts (after a reinstall nixbook did not do)",
				ArgsUsage: "HOST...",
				Flags:     []ucli.Flag{knownHostsFlag},
				Action: func(c *ucli.Context) error {
					if c.NArg() == 0 {
						return usage(fmt.Errorf("known-hosts forget: name at least one host"))
					}
					s := hostkeys.New(c.String("known-hosts"))
					for _, h := range c.Args().Slice() {
						n, err := s.Forget(h)
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "%s: %d key(s) forgotten\n", h, n)
					}
					return nil
				},
			},
		},
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
