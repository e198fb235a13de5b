package cliargs

import (
	"slices"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

func TestInterspersed(t *testing.T) {
	app := &ucli.App{Name: "tool", Commands: []*ucli.Command{
		{Name: "run", Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "inventory", Aliases: []string{"i"}},
			&ucli.BoolFlag{Name: "check"},
		}},
		{Name: "ovh", Subcommands: []*ucli.Command{
			{Name: "login", Flags: []ucli.Flag{&ucli.StringFlag{Name: "endpoint"}}},
		}},
		{Name: "raw", SkipFlagParsing: true},
	}}
	for _, tc := range []struct{ in, want string }{
		{"tool run a.yml -i f.yml --check", "tool run -i f.yml --check a.yml"},
		{"tool run a.yml --inventory=f.yml b", "tool run --inventory=f.yml a.yml b"},
		{"tool run a.yml -- -i x", "tool run a.yml -- -i x"},
		{"tool ovh login x --endpoint ovh-eu", "tool ovh login --endpoint ovh-eu x"},
		{"tool raw a -i b", "tool raw a -i b"},
		{"tool nosuch a -i b", "tool nosuch a -i b"},
		{"tool", "tool"},
	} {
		if got := Interspersed(app, strings.Fields(tc.in)); !slices.Equal(got, strings.Fields(tc.want)) {
			t.Errorf("Interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
