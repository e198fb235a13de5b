package swaps

import (
	"fmt"
	"sort"
	"strings"
)

// Argument kinds of an option, as getopt_long has them.
const (
	noArg       = 0
	requiredArg = 1
	optionalArg = 2
)

// longOpt is one long option; key is what the parsed option is called
// (the short letter it stands for, or its own name).
type longOpt struct {
	name string
	arg  int
	key  string
}

// option is one parsed option.
type option struct {
	key    string
	val    string
	hasVal bool
}

// getopt parses args as glibc's getopt_long does for util-linux: short
// options bundled or not (shorts is getopt's optstring: "p:" takes an
// argument, "d::" an optional attached one), long options by a unique
// prefix, options and operands in any order until "--". On bad usage it
// returns glibc's message, without the trailing hint.
func getopt(prog string, args []string, shorts string, longs []longOpt) (opts []option, operands []string, bad string) {
	shortArg := func(c byte) (int, bool) {
		i := strings.IndexByte(shorts, c)
		if i < 0 || c == ':' {
			return 0, false
		}
		switch {
		case strings.HasPrefix(shorts[i+1:], "::"):
			return optionalArg, true
		case strings.HasPrefix(shorts[i+1:], ":"):
			return requiredArg, true
		}
		return noArg, true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return opts, append(operands, args[i+1:]...), ""
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			lo, msg := findLong(prog, name, a[2:], longs)
			if msg != "" {
				return nil, nil, msg
			}
			switch {
			case lo.arg == noArg && hasVal:
				return nil, nil, fmt.Sprintf("%s: option '--%s' doesn't allow an argument\n", prog, lo.name)
			case lo.arg == requiredArg && !hasVal:
				if i+1 >= len(args) {
					return nil, nil, fmt.Sprintf("%s: option '--%s' requires an argument\n", prog, lo.name)
				}
				i++
				val, hasVal = args[i], true
			}
			opts = append(opts, option{key: lo.key, val: val, hasVal: hasVal})
		case strings.HasPrefix(a, "-") && a != "-":
			for j := 1; j < len(a); j++ {
				c := a[j]
				kind, ok := shortArg(c)
				if !ok {
					return nil, nil, fmt.Sprintf("%s: invalid option -- '%c'\n", prog, c)
				}
				if kind == noArg {
					opts = append(opts, option{key: string(c)})
					continue
				}
				rest := a[j+1:]
				switch {
				case rest != "":
					opts = append(opts, option{key: string(c), val: rest, hasVal: true})
				case kind == requiredArg && i+1 < len(args):
					i++
					opts = append(opts, option{key: string(c), val: args[i], hasVal: true})
				case kind == requiredArg:
					return nil, nil, fmt.Sprintf("%s: option requires an argument -- '%c'\n", prog, c)
				default:
					opts = append(opts, option{key: string(c)})
				}
				break
			}
		default:
			operands = append(operands, a)
		}
	}
	return opts, operands, ""
}

// findLong finds a long option by its name or a unique prefix of it; given
// is the argument as written, for the message.
func findLong(prog, name, given string, longs []longOpt) (longOpt, string) {
	var matches []longOpt
	for _, lo := range longs {
		if lo.name == name {
			return lo, ""
		}
		if strings.HasPrefix(lo.name, name) {
			matches = append(matches, lo)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], ""
	case 0:
		return longOpt{}, fmt.Sprintf("%s: unrecognized option '--%s'\n", prog, given)
	}
	var names []string
	for _, m := range matches {
		names = append(names, "'--"+m.name+"'")
	}
	sort.Strings(names)
	return longOpt{}, fmt.Sprintf("%s: option '--%s' is ambiguous; possibilities: %s\n", prog, name, strings.Join(names, " "))
}
