// Package secrets recognises secret variables and masks their values, and
// what common filters derive from them, in any text shown or logged.
package secrets

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Mask stands for a secret in output.
const Mask = "********"

// name matches the names of variables whose values are secret.
var name = regexp.MustCompile(`(?i)(password|passwd|passphrase|secret|token|private_key|api_key|^ovh_.*key.*$)`)

// notSecret matches names that say where a secret is rather than hold it:
// ovh_consumer_key_env names an environment variable, say.
var notSecret = regexp.MustCompile(`(?i)_(env|file|path)$`)

// IsName reports whether a variable of this name holds a secret.
func IsName(s string) bool { return name.MatchString(s) && !notSecret.MatchString(s) }

// MinLen is the shortest value masked: shorter ones ("no", "1234"...) would
// mask ordinary words everywhere.
const MinLen = 4

// Fragment is the length of the pieces of a secret recognised on their own:
// a slice of a secret (secret[:12]) or an encoding of text that merely
// contains it is masked wherever such a piece appears.
const Fragment = 8

// Values collects the values of secret-named variables at any depth (a
// secret mapping hides all it holds), as strings.
func Values(vars map[string]any) []string {
	var out []string
	var walk func(k string, v any, secret bool)
	walk = func(k string, v any, secret bool) {
		secret = secret || IsName(k)
		switch v := v.(type) {
		case map[string]any:
			for k2, e := range v {
				walk(k2, e, secret)
			}
		case []any:
			for _, e := range v {
				walk(k, e, secret)
			}
		case nil:
		default:
			if s := fmt.Sprint(v); secret && len(s) >= MinLen {
				out = append(out, s)
			}
		}
	}
	for k, v := range vars {
		walk(k, v, false)
	}
	return out
}

// Redactor masks secrets in text: each value, the forms common template
// filters derive from it (lower, upper, to_json, b64encode, urlencode, hex,
// quote, join and slices, which contain it or a piece of it), and any
// piece of Fragment bytes or more of these. It is safe for concurrent use.
type Redactor struct {
	mu     sync.RWMutex
	known  map[string]bool
	pieces map[int]map[string]bool // by length: the pieces a text is searched for
}

// NewRedactor masks values.
func NewRedactor(values []string) *Redactor {
	r := &Redactor{known: map[string]bool{}, pieces: map[int]map[string]bool{}}
	r.Add(values...)
	return r
}

// Add masks more values (a secret play variable once rendered, say).
func (r *Redactor) Add(values ...string) {
	var fresh []string
	r.mu.RLock()
	for _, v := range values {
		if len(v) >= MinLen && !r.known[v] {
			fresh = append(fresh, v)
		}
	}
	r.mu.RUnlock()
	if len(fresh) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range fresh {
		if r.known[v] {
			continue
		}
		r.known[v] = true
		for _, form := range derived(v) {
			r.addPieces(form)
		}
	}
}

// addPieces indexes form: whole when short, else every Fragment-long piece.
func (r *Redactor) addPieces(form string) {
	n := min(len(form), Fragment)
	if n < MinLen {
		return
	}
	set := r.pieces[n]
	if set == nil {
		set = map[string]bool{}
		r.pieces[n] = set
	}
	for i := 0; i+n <= len(form); i++ {
		set[form[i:i+n]] = true
	}
}

// derived lists v and what common filters make of it. Base64 is taken at
// the three alignments v may have inside a longer text, keeping only the
// characters that depend on v alone.
func derived(v string) []string {
	forms := []string{v, strings.ToLower(v), strings.ToUpper(v), url.QueryEscape(v), url.PathEscape(v), hex.EncodeToString([]byte(v))}
	if j, err := json.Marshal(v); err == nil {
		forms = append(forms, string(j[1:len(j)-1]))
	}
	forms = append(forms, strings.ReplaceAll(v, `'`, `'"'"'`)) // the quote filter's single quotes
	for pad := range 3 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			b := enc.EncodeToString(append(make([]byte, pad), v...))
			skip := (pad*8 + 5) / 6 // characters that mix in the padding
			end := len(b) - strings.Count(b, "=") - 2
			if end > skip {
				forms = append(forms, b[skip:end])
			}
		}
	}
	return forms
}

// String returns s with every secret, derived form and piece of one masked;
// adjacent masked stretches become one Mask.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.pieces) == 0 {
		return s
	}
	var masked []bool
	for n, set := range r.pieces {
		for i := 0; i+n <= len(s); i++ {
			if set[s[i:i+n]] {
				if masked == nil {
					masked = make([]bool, len(s))
				}
				for j := i; j < i+n; j++ {
					masked[j] = true
				}
			}
		}
	}
	if masked == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !masked[i] {
			b.WriteByte(s[i])
			continue
		}
		b.WriteString(Mask)
		for i+1 < len(s) && masked[i+1] {
			i++
		}
	}
	return b.String()
}

// MaskVars returns a copy of vars for display: secret-named values masked
// at any depth, and secrets found in other strings masked by r.
func MaskVars(vars map[string]any, r *Redactor) map[string]any {
	out, _ := maskValue("", vars, false, r).(map[string]any)
	return out
}

func maskValue(k string, v any, secret bool, r *Redactor) any {
	secret = secret || IsName(k)
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k2, e := range v {
			out[k2] = maskValue(k2, e, secret, r)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = maskValue(k, e, secret, r)
		}
		return out
	case nil:
		return nil
	case string:
		if secret {
			return Mask
		}
		return r.String(v)
	default:
		if secret {
			return Mask
		}
		return v
	}
}
