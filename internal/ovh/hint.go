package ovh

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// explainNotFound adds to a 404 on a server where else it may be: each of
// OVH's brands (OVHcloud, Kimsufi, So you Start) and regions has its own
// API, and a server is only known to its own.
func (r *Resolved) explainNotFound(err error, apiErr *Error) error {
	rest, ok := strings.CutPrefix(apiErr.Path, "/dedicated/server/")
	if !ok {
		return err
	}
	seg, tail, _ := strings.Cut(rest, "/")
	seg, _, _ = strings.Cut(seg, "?")
	if tail != "" && !strings.Contains(apiErr.Message, "service") {
		return err // a boot or a task of a server the API knows
	}
	service := seg
	if s, uerr := url.PathUnescape(seg); uerr == nil {
		service = s
	}
	others := otherEndpoints(r.Name)
	return fmt.Errorf("%w (OVH service %q is unknown to the %s API: check %s, the server's name in the OVH manager, and %s%s)",
		err, service, r.Name, VarService, VarEndpoint, others)
}

// otherEndpoints suggests the endpoints a service's name points to.
func otherEndpoints(current string) string {
	var guess []string
	switch {
	case strings.HasPrefix(current, "kimsufi-"):
		guess = []string{"ovh-eu", "ovh-ca", "soyoustart-eu"}
	case strings.HasPrefix(current, "soyoustart-"):
		guess = []string{"ovh-eu", "ovh-ca", "kimsufi-eu"}
	default:
		guess = []string{"kimsufi-eu", "kimsufi-ca", "soyoustart-eu"}
	}
	var out []string
	for _, g := range guess {
		if g != current && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; Kimsufi and So you Start servers are only known to their own API: perhaps " + VarEndpoint + ": " + strings.Join(out, " or ")
}
