package kexec

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Size is an amount of memory or disk written with binary units, as free
// and df print them: 1.5GiB, 1536MiB, 2G (also binary), or a byte count.
type Size int64

// TypeName names the type in `nixbook doc`.
func (Size) TypeName() string { return "size" }

// UnmarshalYAML reads a size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size such as 1.5GiB", n.Line)
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

// ParseSize reads a size such as 1.5GiB, 512MiB, 2G or 1073741824.
func ParseSize(text string) (Size, error) {
	t := strings.TrimSpace(text)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, such as 1.5GiB", text)
	}
	var shift uint
	switch strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(unit), "b"), "i") {
	case "":
	case "k":
		shift = 10
	case "m":
		shift = 20
	case "g":
		shift = 30
	case "t":
		shift = 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB or TiB)", text, unit)
	}
	return Size(v * float64(int64(1)<<shift)), nil
}
