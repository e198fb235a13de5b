package runner

import (
	"strings"
	"unicode/utf8"
)

// screenSafe drops terminal control sequences and control characters from
// text a host may have written, so that remote output can neither retitle,
// clear nor redraw the user's terminal. Tabs stay; the host log keeps the
// raw bytes, escaped.
func screenSafe(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0x1b {
			i = skipEscape(s, i)
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteRune(utf8.RuneError)
		case r == 0x9b: // C1 CSI
			i = skipCSI(s, i+n)
			continue
		case r == 0x9d: // C1 OSC
			i = skipString(s, i+n)
			continue
		case unsafeRune(r):
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == utf8.RuneError
}

// skipEscape returns the index after the escape sequence at s[i] (ESC).
func skipEscape(s string, i int) int {
	i++
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[':
		return skipCSI(s, i+1)
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC: strings
		return skipString(s, i+1)
	}
	// Two-character sequences, possibly with intermediates (ESC ( B).
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) {
		i++
	}
	return i
}

// skipCSI skips parameters and intermediates up to the final byte.
func skipCSI(s string, i int) int {
	for i < len(s) {
		c := s[i]
		i++
		if c >= 0x40 && c <= 0x7e {
			break
		}
		if c < 0x20 || c > 0x3f && c < 0x40 {
			break
		}
	}
	return i
}

// skipString skips to the end of a control string: BEL, ST (ESC \) or C1 ST.
func skipString(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == 0x07:
			return i + 1
		case s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\':
			return i + 2
		case strings.HasPrefix(s[i:], "\u009c"):
			return i + len("\u009c")
		}
		i++
	}
	return i
}

// screenSafeEvent cleans every text of e that may come from a host.
func screenSafeEvent(e *Event) {
	e.Msg = screenSafe(e.Msg)
	e.Line = screenSafe(e.Line)
	e.Task = screenSafe(e.Task)
	if e.Changes != nil {
		for i := range e.Changes {
			c := &e.Changes[i]
			c.Summary = screenSafe(c.Summary)
			c.Before = screenSafeKeepLines(c.Before)
			c.After = screenSafeKeepLines(c.After)
			for j := range c.Commands {
				c.Commands[j] = screenSafe(c.Commands[j])
			}
		}
	}
}

// screenSafeKeepLines is screenSafe for multi-line text (a diff's sides).
func screenSafeKeepLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = screenSafe(l)
	}
	return strings.Join(lines, "\n")
}
