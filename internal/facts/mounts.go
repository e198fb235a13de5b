// Mount facts: /proc/mounts.

package facts

import (
	"slices"
	"strconv"
	"strings"
)

// ParseProcMounts reads /proc/mounts (or /proc/self/mounts): one Mount per
// line, in the order they were made, with the kernel's octal escapes (a
// space is \040) decoded.
func ParseProcMounts(text string) []Mount {
	var ms []Mount
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 {
			continue
		}
		ms = append(ms, Mount{
			Device:     UnescapeOctal(fields[0]),
			Mountpoint: UnescapeOctal(fields[1]),
			FSType:     fields[2],
		})
	}
	return ms
}

// parseMounts keeps the mounts that name a device path or a ZFS dataset.
func parseMounts(lines []string) []Mount {
	ms := ParseProcMounts(strings.Join(lines, "\n"))
	return slices.DeleteFunc(ms, func(m Mount) bool {
		return !strings.HasPrefix(m.Device, "/") && m.FSType != "zfs"
	})
}

// UnescapeOctal decodes the octal escapes of /proc files (a space is \040).
func UnescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			n, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
			b.WriteByte(byte(n))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for _, c := range s {
		if c < '0' || c > '7' {
			return false
		}
	}
	return len(s) == 3
}
