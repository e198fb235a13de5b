package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/nixbook/nixbook/internal/ovh"
)

func (e *env) ovhCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "ovh",
		Usage: "OVH API credentials",
		Subcommands: []*ucli.Command{{
			Name: "login",
			Usage: "make a consumer key with the rights the stock playbooks need, wait for its validation and write it to ovh.conf " +
				"(the application key and secret come from OVH_* variables or ovh.conf)",
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "endpoint", Usage: "the API: ovh-eu, kimsufi-eu, … or a URL; default: OVH_ENDPOINT or ovh.conf's, else ovh-eu"},
				&ucli.StringSliceFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "limit the rights to the servers (ovh_service) of the hosts of inventory `FILE`"},
				limitFlag,
				&ucli.StringSliceFlag{Name: "service", Usage: "limit the rights to this `SERVICE` (repeatable)"},
				&ucli.StringFlag{Name: "conf", Usage: "the ovh.conf `FILE` to write; default: ~/.ovh.conf"},
				&ucli.DurationFlag{Name: "timeout", Value: 15 * time.Minute, Usage: "how long to wait for the validation"},
				&ucli.DurationFlag{Name: "poll", Value: 5 * time.Second, Usage: "the pause between two checks of the validation"},
			},
			Action: e.ovhLogin,
		}},
	}
}

func (e *env) ovhLogin(c *ucli.Context) error {
	if c.NArg() > 0 {
		return usage(fmt.Errorf("ovh login takes no arguments, got %q", c.Args().Slice()))
	}
	if c.String("limit") != "" && len(c.StringSlice("inventory")) == 0 {
		return usage(fmt.Errorf("--limit needs an inventory (-i)"))
	}
	r, err := ovh.ResolveApp(c.String("endpoint"), nil)
	if err != nil {
		return err
	}
	services, err := e.loginServices(c, r)
	if err != nil {
		return err
	}
	conf := c.String("conf")
	if conf == "" {
		if conf, err = ovh.DefaultConfPath(); err != nil {
			return err
		}
	}
	rules := ovh.LoginRules(services)
	key, err := ovh.RequestKey(r, rules, nil)
	if err != nil {
		return r.Explain(err)
	}
	names := make([]string, len(rules))
	for i, rule := range rules {
		names[i] = rule.String()
	}
	fmt.Fprintf(e.stdout, "Asked %s for a consumer key with the rights:\n  %s\n", r.Name, strings.Join(names, "\n  "))
	fmt.Fprintf(e.stdout, "Log in and validate it at:\n  %s\n", key.ValidationURL)
	fmt.Fprintf(e.stdout, "Waiting up to %s for the validation…\n", c.Duration("timeout"))
	creds := r.Credentials
	creds.ConsumerKey = key.ConsumerKey
	client, err := ovh.New(ovh.Config{Endpoint: r.URL, Credentials: creds, Limiters: ovh.NewLimiters()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	cred, err := client.WaitValidated(ctx, c.Duration("poll"))
	if err != nil {
		return r.Explain(err)
	}
	if err := ovh.WriteConf(conf, r.Name, creds); err != nil {
		return err
	}
	expiry := "never expires"
	if cred.Expiration != nil && *cred.Expiration != "" {
		expiry = "expires at " + *cred.Expiration
	}
	fmt.Fprintf(e.stdout, "Validated (%s); wrote the [%s] section of %s (mode 0600).\n", expiry, r.Name, conf)
	return nil
}

// loginServices are the services the key is for: --service, and the
// ovh_service of the inventory's hosts on r's endpoint; none: every server.
func (e *env) loginServices(c *ucli.Context, r *ovh.Resolved) ([]string, error) {
	services := splitList(c.StringSlice("service"))
	if len(c.StringSlice("inventory")) == 0 {
		return services, nil
	}
	_, hosts, err := e.selectHosts(c)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if ep, _ := h.Vars[ovh.VarEndpoint].(string); ep != "" && ep != r.Name && strings.TrimRight(ep, "/") != r.URL {
			continue
		}
		s, _ := h.Vars[ovh.VarService].(string)
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(services, s) {
			services = append(services, s)
		}
	}
	if len(services) == 0 {
		return nil, fmt.Errorf("no host of the inventory on %s has %s: the key would grant nothing; leave out -i for every server", r.Name, ovh.VarService)
	}
	return services, nil
}
