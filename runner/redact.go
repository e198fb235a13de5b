package runner

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// secretName matches variable names whose values never appear in output or
// logs.
var secretName = regexp.MustCompile(`(?i)(password|passwd|secret|token|^ovh_.*key.*$|private_key)`)

const mask = "********"

// redactor hides secret values wherever they appear in text.
type redactor struct{ r *strings.Replacer }

// newRedactor collects the values of every secret-looking variable, at any
// depth, so that a secret passed through a template is still hidden.
func newRedactor(vars map[string]any) *redactor {
	var secrets []string
	var walk func(name string, v any, secret bool)
	walk = func(name string, v any, secret bool) {
		secret = secret || secretName.MatchString(name)
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(k, e, secret)
			}
		case []any:
			for _, e := range v {
				walk(name, e, secret)
			}
		case nil:
		default:
			if s := fmt.Sprint(v); secret && len(s) >= 4 {
				secrets = append(secrets, s)
			}
		}
	}
	for k, v := range vars {
		walk(k, v, false)
	}
	if len(secrets) == 0 {
		return &redactor{}
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, mask)
	}
	return &redactor{r: strings.NewReplacer(pairs...)}
}

func (r *redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}
