// Package cliargs is the command-line handling nixbook and nixbook-sim
// share: flags may come after arguments, as users type them.
package cliargs

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// Interspersed moves a command's positional arguments after its flags, so
// `nixbook run install.yml -i fleet.yml` parses the way Ansible users type
// it; the flag parser underneath stops at the first positional argument.
// Which flags take a value is read from the command's own definitions.
func Interspersed(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil || cmd.SkipFlagParsing {
		return args
	}
	head := 2 // the program and the command path stay in front
	for head < len(args) {
		sub := cmd.Command(args[head])
		if sub == nil {
			break
		}
		cmd = sub
		head++
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*ucli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	flags := []string{}
	var positional []string
	rest := args[head:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			positional = append(positional, rest[i:]...)
			i = len(rest)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if takesValue[name] && !hasValue && i+1 < len(rest) {
				i++
				flags = append(flags, rest[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	out := append(append([]string{}, args[:head]...), flags...)
	return append(out, positional...)
}
