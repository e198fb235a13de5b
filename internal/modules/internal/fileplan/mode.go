package fileplan

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Mode is a permission mode read as octal, however it is written: "0644",
// '644', 0o644 or a YAML octal number such as 0644.
type Mode uint32

// TypeName names the type in `nixbook doc`.
func (Mode) TypeName() string { return "octal mode" }

func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// FileMode converts the Unix bits to Go's, where setuid, setgid and sticky
// live elsewhere.
func (m Mode) FileMode() fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

// UnmarshalYAML reads the mode. An unquoted number without a leading zero,
// such as 644, is refused: YAML reads it as decimal, which is never what was
// meant, and Ansible silently sets a wrong mode with it.
func (m *Mode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: mode: want an octal mode such as \"0644\"", n.Line)
	}
	text := strings.TrimSpace(n.Value)
	if n.Tag == "!!int" && len(text) > 1 && !strings.HasPrefix(text, "0") {
		return fmt.Errorf("line %d: mode %s would be read as a decimal number: write it as 0%s or \"%s\"", n.Line, text, text, text)
	}
	v, err := ParseMode(text)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*m = v
	return nil
}

// ParseMode parses an octal mode: "0644", "644", "0o644", "4755".
func ParseMode(s string) (Mode, error) {
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	v, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || digits == "" {
		return 0, fmt.Errorf("mode %q: want octal digits such as 0644 (symbolic modes are not supported)", s)
	}
	if v > 0o7777 {
		return 0, fmt.Errorf("mode %q: out of range (at most 07777)", s)
	}
	return Mode(v), nil
}
