package cli

import "strings"

// verbosity spells Ansible's -vv and -vvv as repeated -v, which the flag
// parser counts; arguments after "--" are left alone.
func verbosity(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && strings.Trim(a, "v") == "-" {
			for range len(a) - 1 {
				out = append(out, "-v")
			}
			continue
		}
		out = append(out, a)
	}
	return out
}
