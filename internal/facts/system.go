// System facts: os-release, the rescue system's hostname, resolv.conf.

package facts

import (
	"regexp"
	"slices"
	"strings"
)

// rescueHostname matches the first label of the host names OVH gives its
// rescue systems: rescue-customer-eu, rescue12-customer-ca, rescue64,
// rescue-pro, and rescue (rescue.ovh.net).
var rescueHostname = regexp.MustCompile(`^rescue[0-9]*(-.*)?$`)

// IsRescue reports whether a host is an OVH rescue system. The rule: the first
// label of the host name, lower-cased, is "rescue" optionally followed by
// digits and optionally by "-" and anything (rescue-customer-eu, rescue64,
// rescue12-customer-ca, rescue.ovh.net); or os-release's VARIANT_ID is
// "rescue", or its ID or PRETTY_NAME mentions "rescue". A host merely named
// "rescuer" or "myrescue" is not a rescue system.
func IsRescue(hostname string, os OSRelease) bool {
	label, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(hostname)), ".")
	if rescueHostname.MatchString(label) {
		return true
	}
	if strings.EqualFold(os.VariantID, "rescue") {
		return true
	}
	return strings.Contains(strings.ToLower(os.ID), "rescue") ||
		strings.Contains(strings.ToLower(os.PrettyName), "rescue")
}

// ParseOSRelease reads the fields of /etc/os-release nixbook uses, with the
// shell quoting the format allows undone.
func ParseOSRelease(text string) OSRelease {
	return parseOSRelease(strings.Split(text, "\n"))
}

func parseOSRelease(lines []string) OSRelease {
	var r OSRelease
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = unquoteShell(v)
		switch k {
		case "ID":
			r.ID = v
		case "VERSION_ID":
			r.VersionID = v
		case "VARIANT_ID":
			r.VariantID = v
		case "PRETTY_NAME":
			r.PrettyName = v
		}
	}
	return r
}

// unquoteShell undoes the quoting os-release allows: "..." with backslash
// escapes, or '...'.
func unquoteShell(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String()
	}
	return v
}

func parseResolv(lines []string) []string {
	var ns []string
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "nameserver" && !slices.Contains(ns, fields[1]) {
			ns = append(ns, fields[1])
		}
	}
	return ns
}
