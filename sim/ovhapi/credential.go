package ovhapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Consumer key states (auth.CredentialStateEnum).
const (
	CredentialValidated         = "validated"
	CredentialPendingValidation = "pendingValidation"
	CredentialExpired           = "expired"
	CredentialRefused           = "refused"
)

// consumerKey is one consumer key of the account: Config's, or one made
// with POST /auth/credential.
type consumerKey struct {
	id      int64
	status  string
	expires time.Time // zero: never
	rules   []Rule
	created time.Time
	// token is the credentialToken of the key's validation URL.
	token         string
	validationURL string
}

// SetCredential changes the consumer key's state and expiry (zero: never),
// as when a user validates a key or it runs out during a run.
func (e *Emulator) SetCredential(status string, expires time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := e.keys[e.cfg.ConsumerKey]
	k.status, k.expires = status, expires
}

// keyOf returns the consumer key named ck; nil when there is none. Called
// with e.mu held.
func (e *Emulator) keyOf(ck string) *consumerKey {
	for name, k := range e.keys {
		if subtle.ConstantTimeCompare([]byte(name), []byte(ck)) == 1 {
			return k
		}
	}
	return nil
}

// credentialRefused is the answer to any signed call made with a key that
// is not validated or has expired: OVH answers 403 INVALID_CREDENTIAL
// "This credential is not valid", for a key pending validation too
// (php-ovh #56, #62). Whether /auth/currentCredential still answers for
// such a key is unknown; refusing it as well is the cautious choice.
func (e *Emulator) credentialRefused(ck string) *apiError {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := e.keyOf(ck)
	if k == nil {
		return errNoCredential
	}
	if k.status != CredentialValidated {
		return errInvalidCred
	}
	if !k.expires.IsZero() && !e.cfg.Now().Before(k.expires) {
		return errInvalidCred
	}
	return nil
}

// rulesOf is the rules of the consumer key ck.
func (e *Emulator) rulesOf(ck string) []Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	if k := e.keyOf(ck); k != nil {
		return k.rules
	}
	return nil
}

// credentialRequest is POST /auth/credential's body (auth.CredentialRequest).
type credentialRequest struct {
	AccessRules []Rule  `json:"accessRules"`
	Redirection *string `json:"redirection"`
	AllowedIPs  []any   `json:"allowedIPs"`
}

// newCredential answers POST /auth/credential: a consumer key pending
// validation with the rules asked, and the URL where its owner validates
// it. It needs the application key only, no signature.
func (e *Emulator) newCredential(r *http.Request, body []byte) (int, any, *apiError) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Ovh-Application")), []byte(e.cfg.AppKey)) != 1 {
		return 0, nil, errInvalidKey
	}
	var req credentialRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, nil, errBadRequest("Invalid body: " + err.Error())
	}
	if len(req.AccessRules) == 0 {
		return 0, nil, errBadRequest("[accessRules] Property is mandatory")
	}
	for _, rule := range req.AccessRules {
		switch rule.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
		default:
			return 0, nil, errBadRequest(fmt.Sprintf("[accessRules] Invalid method %q", rule.Method))
		}
		if !strings.HasPrefix(rule.Path, "/") {
			return 0, nil, errBadRequest(fmt.Sprintf("[accessRules] Invalid path %q", rule.Path))
		}
	}
	ck, token := randomKey(32), randomKey(24)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	validationURL := scheme + "://" + r.Host + "/auth/?credentialToken=" + token
	e.mu.Lock()
	e.keys[ck] = &consumerKey{id: int64(hash32(ck)), status: CredentialPendingValidation,
		rules: append([]Rule(nil), req.AccessRules...), created: e.cfg.Now(), token: token, validationURL: validationURL}
	e.mu.Unlock()
	return http.StatusOK, map[string]any{
		"consumerKey":   ck,
		"state":         CredentialPendingValidation,
		"validationUrl": validationURL,
	}, nil
}

// serveValidation is the validation page of a key pending validation:
// where OVH asks its owner to log in and choose a validity, the emulator
// validates the key (with no expiry, or the validity=DURATION asked) and
// says so.
func (e *Emulator) serveValidation(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("credentialToken")
	var validity time.Duration
	if v := r.URL.Query().Get("validity"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			http.Error(w, "validity: want a duration such as 24h", http.StatusBadRequest)
			return
		}
		validity = d
	}
	e.mu.Lock()
	var found *consumerKey
	for _, k := range e.keys {
		if token != "" && k.token == token {
			found = k
		}
	}
	if found != nil && found.status == CredentialPendingValidation {
		found.status = CredentialValidated
		if validity > 0 {
			found.expires = e.cfg.Now().Add(validity)
		}
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if found == nil {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<p>This credential token is unknown.</p>\n")
		return
	}
	rules := make([]string, len(found.rules))
	for i, rule := range found.rules {
		rules[i] = html.EscapeString(rule.Method + " " + rule.Path)
	}
	fmt.Fprintf(w, "<p>Credential %d validated with the rights: %s.</p>\n", found.id, strings.Join(rules, ", "))
}

// ValidatePending validates every consumer key pending validation, as
// their owner would at their validation URLs; it returns how many.
func (e *Emulator) ValidatePending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, k := range e.keys {
		if k.status == CredentialPendingValidation {
			k.status = CredentialValidated
			n++
		}
	}
	return n
}

const keyChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = keyChars[int(b[i])%len(keyChars)]
	}
	return string(b)
}

// PendingValidations are the validation URLs of the keys pending
// validation, as POST /auth/credential answered them.
func (e *Emulator) PendingValidations() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var urls []string
	for _, k := range e.keys {
		if k.status == CredentialPendingValidation && k.validationURL != "" {
			urls = append(urls, k.validationURL)
		}
	}
	sort.Strings(urls)
	return urls
}
