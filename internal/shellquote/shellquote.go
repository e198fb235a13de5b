// Package shellquote quotes words for a POSIX shell. It is a leaf: the
// transport, the template filters and the host key store all quote the same
// way, and none of them should import another to do it.
package shellquote

import "strings"

// Quote quotes s for a POSIX shell. Words made only of safe characters are
// left as they are so that logs stay readable.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every element of argv and joins them with spaces.
func Join(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
