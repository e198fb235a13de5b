package modkit

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a duration written as Go writes them ("90s", "10m", "1h30m")
// or as a number of seconds, as Ansible's timeouts are.
type Duration time.Duration

// TypeName names the type in `nixbook doc`.
func (Duration) TypeName() string { return "duration" }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String prints d without trailing zero units: 10m rather than 10m0s.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UnmarshalYAML accepts "10m", 600 and "600" (seconds).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 10m or 600 (seconds)", n.Line)
	}
	s := strings.TrimSpace(n.Value)
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs < 0 {
			return fmt.Errorf("line %d: negative duration %s", n.Line, s)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: want a duration such as 10m or 600 (seconds), got %q", n.Line, s)
	}
	if v < 0 {
		return fmt.Errorf("line %d: negative duration %s", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// Argv is a command: a list is taken as the argv itself; a string is split
// into words as a POSIX shell would (quotes and backslashes), without any
// other shell feature: no variables, globs, pipes or redirections.
type Argv []string

// TypeName names the type in `nixbook doc`.
func (Argv) TypeName() string { return "string or list of string" }

// UnmarshalYAML accepts a string or a list of scalars.
func (a *Argv) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*a = nil
			return nil
		}
		words, err := SplitWords(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		*a = words
		return nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: command arguments must be strings", c.Line)
			}
			out = append(out, c.Value)
		}
		*a = out
		return nil
	}
	return fmt.Errorf("line %d: want a command string or a list of arguments", n.Line)
}

// SplitWords splits s into words the way a POSIX shell does, honouring single
// quotes, double quotes and backslashes, and nothing else.
func SplitWords(s string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 == len(s) {
				word.WriteByte(c) // nothing left to escape
				break
			}
			i++
			if s[i] != '\n' { // backslash-newline continues the line
				word.WriteByte(s[i])
			}
		case c == '\'':
			inWord = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			word.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				// Inside double quotes a backslash only escapes these.
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				word.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
		default:
			inWord = true
			word.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// StringList is a list of strings that may be written as a single string.
type StringList []string

// TypeName names the type in `nixbook doc`.
func (StringList) TypeName() string { return "string or list of string" }

// UnmarshalYAML accepts a string or a list of scalars.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*l = nil
			return nil
		}
		*l = StringList{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(StringList, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: want a string", c.Line)
			}
			out = append(out, c.Value)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}
