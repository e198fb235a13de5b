package ovh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

// Credential is GET /auth/currentCredential: the consumer key's state,
// expiry and rights.
type Credential struct {
	CredentialID int64   `json:"credentialId"`
	Status       string  `json:"status"`
	Expiration   *string `json:"expiration"`
	Rules        []Rule  `json:"rules"`
}

// Rule is an access rule of a consumer key: a method and a path where '*'
// stands for any run of characters, '/' included.
type Rule struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

func (r Rule) String() string { return r.Method + " " + r.Path }

// Allows reports whether the rule grants method on path (an API path
// without its query, decoded).
func (r Rule) Allows(method, path string) bool {
	return r.Method == method && globMatch(r.Path, path)
}

// globMatch matches name against an OVH access rule's path, where '*'
// stands for any run of characters, '/' included. It backtracks only to the
// last '*', so a rule full of stars costs linear time, whatever the API sends.
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// CurrentCredential reads the consumer key's state and rights, once per
// account and run whatever the number of hosts.
func (c *Client) CurrentCredential(ctx context.Context) (*Credential, error) {
	r := Request{Method: http.MethodGet, Path: "/auth/currentCredential"}
	cred, err := cachedGet(ctx, c, "credential", credentialTTL, r, same[Credential])
	if err != nil {
		return nil, err
	}
	return &cred, nil
}

// RescueRights are the calls that boot a server into the rescue and back
// to its disk: read it, its IP blocks and netboots, set its netboot,
// reboot it and follow the reboot's task.
func RescueRights(service string) []Rule {
	return []Rule{
		{http.MethodGet, ServerPath(service)},
		{http.MethodGet, ServerPath(service, "ips")},
		{http.MethodGet, ServerPath(service, "boot")},
		{http.MethodGet, ServerPath(service, "boot") + "/{bootId}"},
		{http.MethodPut, ServerPath(service)},
		{http.MethodPost, ServerPath(service, "reboot")},
		{http.MethodGet, ServerPath(service, "task")},
		{http.MethodGet, ServerPath(service, "task") + "/{taskId}"},
	}
}

// CredentialError is a consumer key that cannot do what the play needs:
// not validated, expired, or without some rights; or OAuth2 credentials
// the API refuses.
type CredentialError struct {
	Endpoint string // as written: ovh-eu, or the URL
	// Method is how the credentials sign in (MethodAppKey when empty).
	Method  string
	Status  string // the key's state when OVH told it
	Expired string // the expiry date, when passed
	Missing []Rule // rights the play needs and the key lacks
	Err     error  // OVH's refusal, when it refused to say
	Create  string // where to create a key with the rights nixbook needs
}

func (e *CredentialError) Error() string {
	var b strings.Builder
	if e.Method != "" && e.Method != MethodAppKey {
		fmt.Fprintf(&b, "ovh: the %s for %s are not valid: ", e.Method, e.Endpoint)
		if e.Method == MethodAccessToken {
			b.WriteString("the token has expired or been revoked; get another")
		} else {
			b.WriteString("check the service account's client ID and secret")
		}
		if e.Err != nil {
			fmt.Fprintf(&b, ": %v", e.Err)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "ovh: the consumer key for %s ", e.Endpoint)
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, "is not valid: it has expired, been revoked, or is still pending validation (validate it at the URL OVH gave when it was created, or create another): %v", e.Err)
	case e.Status == CredentialPendingValidation:
		b.WriteString("is still pending validation: open the validation URL OVH gave when it was created")
	case e.Expired != "":
		fmt.Fprintf(&b, "expired at %s", e.Expired)
	case e.Status != "" && e.Status != CredentialValidated:
		fmt.Fprintf(&b, "is %s, not validated", e.Status)
	default:
		parts := make([]string, len(e.Missing))
		for i, r := range e.Missing {
			parts[i] = r.String()
		}
		fmt.Fprintf(&b, "lacks the rights %s", strings.Join(parts, ", "))
	}
	if e.Create != "" {
		fmt.Fprintf(&b, "; create one with the rights nixbook needs at %s", e.Create)
	}
	return b.String()
}

// Unwrap is OVH's refusal, if any.
func (e *CredentialError) Unwrap() error { return e.Err }

// CheckCredential proves that the consumer key is valid now and grants
// need, before anything is written. A key refused outright (403 This
// credential is not valid: expired, revoked or pending validation) comes
// back as a CredentialError; other failures as they are. It returns the
// key's expiry (zero: none) so that callers can warn of a key that will
// expire before a long run ends.
func (c *Client) CheckCredential(ctx context.Context, r *Resolved, need []Rule) (time.Time, error) {
	e := &CredentialError{Endpoint: c.endpoint}
	if r != nil {
		e.Endpoint, e.Create = r.Name, createTokenURL(r.URL)
	}
	if c.oauth2 {
		return time.Time{}, c.checkOAuth2(ctx, e)
	}
	cred, err := c.CurrentCredential(ctx)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusForbidden {
			e.Err = err
			return time.Time{}, e
		}
		return time.Time{}, err
	}
	var expires time.Time
	if cred.Expiration != nil && *cred.Expiration != "" {
		if t, perr := time.Parse(time.RFC3339, *cred.Expiration); perr == nil {
			expires = t
		}
	}
	switch {
	case cred.Status != "" && cred.Status != CredentialValidated:
		e.Status = cred.Status
		return expires, e
	case !expires.IsZero() && !c.apiNow().Before(expires):
		e.Expired = *cred.Expiration
		return expires, e
	}
	for _, n := range need {
		granted := false
		for _, rule := range cred.Rules {
			if rule.Allows(n.Method, n.Path) {
				granted = true
				break
			}
		}
		if !granted {
			e.Missing = append(e.Missing, n)
		}
	}
	if len(e.Missing) > 0 {
		return expires, e
	}
	return expires, nil
}

// AuthDetails is GET /auth/details: who the credentials are.
type AuthDetails struct {
	Account string `json:"account"`
	// Method: account, oauth2_client_credentials, provider or user.
	Method string `json:"method"`
}

// checkOAuth2 proves OAuth2 credentials valid with GET /auth/details, once
// per account and run. Their rights are IAM policies, which the API does
// not list to the caller: a call they do not allow fails when it is made,
// naming the IAM action it lacks.
func (c *Client) checkOAuth2(ctx context.Context, e *CredentialError) error {
	e.Method, e.Create = c.method, ""
	r := Request{Method: http.MethodGet, Path: "/auth/details"}
	_, err := cachedGet(ctx, c, "details", credentialTTL, r, same[AuthDetails])
	if err == nil {
		return nil
	}
	var apiErr *Error
	if errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden) {
		e.Err = err
		return e
	}
	if errors.Is(err, ErrToken) {
		e.Err = err
		return e
	}
	return err
}
