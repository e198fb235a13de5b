package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules/builtin"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// Completion: the shell scripts ask `nixbook __complete WORDS...` (the words
// typed after nixbook, the last one being completed) for candidates, one a
// line. A last line ":file" asks the shell to offer file names as well.

func (e *env) completionCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: source <(nixbook completion bash)",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *ucli.Context) error {
			switch c.Args().First() {
			case "bash", "":
				fmt.Fprint(e.stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(e.stdout, "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n"+bashCompletion)
			case "fish":
				fmt.Fprint(e.stdout, fishCompletion)
			default:
				return usage(fmt.Errorf("completion: want bash, zsh or fish, got %q", c.Args().First()))
			}
			return nil
		},
	}
}

// completeCommand is the hidden command the scripts call.
func (e *env) completeCommand(app *ucli.App) *ucli.Command {
	return &ucli.Command{
		Name:            "__complete",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *ucli.Context) error {
			for _, cand := range e.complete(app, c.Args().Slice()) {
				fmt.Fprintln(e.stdout, cand)
			}
			return nil
		},
	}
}

// manCommand prints the man page, made from the same definitions as --help.
func (e *env) manCommand(app *ucli.App) *ucli.Command {
	return &ucli.Command{
		Name:   "man",
		Usage:  "print the man page (nixbook man > nixbook.1)",
		Hidden: true,
		Action: func(c *ucli.Context) error {
			page, err := app.ToMan()
			if err != nil {
				return fmt.Errorf("man page: %w", err)
			}
			_, err = fmt.Fprint(e.stdout, page)
			return err
		},
	}
}

// complete lists the candidates for the last of words.
func (e *env) complete(app *ucli.App, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	if len(before) == 0 {
		var names []string
		for _, cmd := range app.Commands {
			if !cmd.Hidden {
				names = append(names, cmd.Names()...)
			}
		}
		return withPrefix(names, cur)
	}
	cmd := app.Command(before[0])
	if cmd == nil {
		return nil
	}
	args := before[1:]
	for len(args) > 0 && cmd.Command(args[0]) != nil {
		cmd, args = cmd.Command(args[0]), args[1:]
	}
	if len(args) > 0 {
		switch prev := args[len(args)-1]; {
		case prev == "-l" || prev == "--limit":
			return e.completeLimit(args, cur)
		case strings.HasPrefix(prev, "-") && takesValue(cmd, prev):
			return []string{":file"}
		}
	}
	if strings.HasPrefix(cur, "-") {
		var names []string
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				if len(n) == 1 {
					names = append(names, "-"+n)
				} else {
					names = append(names, "--"+n)
				}
			}
		}
		return withPrefix(names, cur)
	}
	var out []string
	switch cmd.Name {
	case "doc":
		out = withPrefix(builtin.Registry(tmpl.New(), tmpl.New()).Names(), cur)
	case "run", "validate", "playbooks":
		out = append(withPrefix(playbooks.Stock(), cur), ":file")
	case "completion":
		out = withPrefix([]string{"bash", "zsh", "fish"}, cur)
	default:
		if len(cmd.Subcommands) > 0 {
			for _, sub := range cmd.Subcommands {
				out = append(out, sub.Names()...)
			}
			out = withPrefix(out, cur)
		}
	}
	return out
}

func takesValue(cmd *ucli.Command, flag string) bool {
	name := strings.TrimLeft(flag, "-")
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*ucli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

// completeLimit offers the inventory's hosts and groups after -l; in a
// comma list, the names after the last comma.
func (e *env) completeLimit(args []string, cur string) []string {
	inv := e.completionInventory(args)
	if inv == nil {
		return nil
	}
	head, last := "", cur
	if i := strings.LastIndexByte(cur, ','); i >= 0 {
		head, last = cur[:i+1], cur[i+1:]
	}
	neg := ""
	if strings.HasPrefix(last, "!") || strings.HasPrefix(last, "&") {
		neg, last = last[:1], last[1:]
	}
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	for g := range inv.Groups {
		names = append(names, g)
	}
	sort.Strings(names)
	var out []string
	for _, n := range withPrefix(names, last) {
		out = append(out, head+neg+n)
	}
	return out
}

// completionInventory loads the inventory the words name with -i, else
// NIXBOOK_INVENTORY's, else the config file's; nil when there is none.
func (e *env) completionInventory(args []string) *inventory.Inventory {
	var paths []string
	for i, a := range args {
		switch {
		case (a == "-i" || a == "--inventory") && i+1 < len(args):
			paths = append(paths, args[i+1])
		case strings.HasPrefix(a, "--inventory="), strings.HasPrefix(a, "-i="):
			paths = append(paths, a[strings.IndexByte(a, '=')+1:])
		}
	}
	if len(paths) == 0 {
		paths = splitList([]string{e.getenv("NIXBOOK_INVENTORY")})
	}
	if len(paths) == 0 {
		for _, p := range []string{e.getenv("NIXBOOK_CONFIG"), ConfigName, filepath.Join(e.userConfigDir(), "nixbook", ConfigName)} {
			if p == "" {
				continue
			}
			if _, err := os.Stat(p); err != nil {
				continue
			}
			settings, _ := readConfig(p)
			for _, s := range settings {
				if s.key == "inventory" {
					paths = s.values
				}
			}
			break
		}
	}
	if len(paths) == 0 {
		return nil
	}
	inv, err := inventory.Load(splitList(paths)...)
	if err != nil {
		return nil
	}
	return inv
}

func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

const bashCompletion = `_nixbook() {
  local cur="${COMP_WORDS[$COMP_CWORD]}" line files=
  local -a cands=()
  while IFS= read -r line; do
    if [[ $line == ":file" ]]; then files=1; else cands+=("$line"); fi
  done < <(nixbook __complete "${COMP_WORDS[@]:1:$COMP_CWORD}" 2>/dev/null)
  COMPREPLY=("${cands[@]}")
  if [[ -n $files ]]; then
    while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -f -- "$cur")
  fi
}
complete -o filenames -o bashdefault -F _nixbook nixbook
`

const fishCompletion = `function __nixbook_complete
    set -l words (commandline -opc) (commandline -ct)
    for line in (nixbook __complete $words[2..-1] 2>/dev/null)
        if test "$line" = ":file"
            __fish_complete_path (commandline -ct)
        else
            echo $line
        end
    end
end
complete -c nixbook -f -a '(__nixbook_complete)'
`
