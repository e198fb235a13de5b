// Package hostfstest holds what tests of modules share to stand in for a
// host's mount table.
package hostfstest

import (
	"fmt"
	"strings"

	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
)

// FindmntOutput writes mounts as hostfs.MountsArgv prints them, for hosts
// that stand in for one.
func FindmntOutput(mounts []hostfs.MountState) []byte {
	var b strings.Builder
	for _, m := range mounts {
		fmt.Fprintf(&b, "TARGET=%s SOURCE=%s FSTYPE=%s FSROOT=%s OPTIONS=%s PROPAGATION=%s MAJ:MIN=%s\n",
			quotePair(m.Target), quotePair(m.Source), quotePair(m.FSType), quotePair(m.FSRoot),
			quotePair(strings.Join(m.Options, ",")), quotePair(m.Propagation), quotePair(m.MajMin))
	}
	return []byte(b.String())
}

// quotePair quotes a value as findmnt -P does: unsafe bytes as \xNN.
func quotePair(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '`' || c == '$' || c >= 0x7f {
			fmt.Fprintf(&b, "\\x%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}
