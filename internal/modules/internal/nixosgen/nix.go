package nixosgen

import (
	"regexp"
	"strings"
)

// nixString quotes s as a Nix double-quoted string. Besides `"` and `\`, an
// unescaped `${` would start an interpolation, so its `$` is escaped.
func nixString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '$':
			if i+1 < len(s) && s[i+1] == '{' {
				b.WriteString(`\$`)
			} else {
				b.WriteByte('$')
			}
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// nixStrings renders a list of strings on one line.
func nixStrings(items []string) string {
	if len(items) == 0 {
		return "[ ]"
	}
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = nixString(s)
	}
	return "[ " + strings.Join(q, " ") + " ]"
}

var (
	nixIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*$`)
	nixKeywords   = map[string]bool{
		"assert": true, "else": true, "if": true, "in": true, "inherit": true,
		"let": true, "or": true, "rec": true, "then": true, "with": true,
	}
	// nixPathLiteral is what Nix reads as a path without quoting.
	nixPathLiteral = regexp.MustCompile(`^(\.{1,2}|~)?(/[A-Za-z0-9._+-]+)+$`)
	nixSearchPath  = regexp.MustCompile(`^<[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*>$`)
)

// nixAttr renders an attribute name, quoted unless it is an identifier.
func nixAttr(name string) string {
	if nixIdentifier.MatchString(name) && !nixKeywords[name] {
		return name
	}
	return nixString(name)
}

// nixImport renders one entry of `imports`: a path literal when Nix can read
// it as one, else an expression that builds the same path.
func nixImport(p string) (string, bool) {
	switch {
	case nixPathLiteral.MatchString(p), nixSearchPath.MatchString(p):
		return p, true
	case strings.HasPrefix(p, "/"):
		// An absolute path in a string is imported as that path.
		return nixString(p), true
	case strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../"):
		return "(./. + " + nixString("/"+p) + ")", true
	}
	return "", false
}
