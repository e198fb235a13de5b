package ovhapi

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Signature computes X-Ovh-Signature the way go-ovh and python-ovh do:
// "$1$" + hex(sha1(AS+CK+METHOD+TARGET+BODY+TIMESTAMP joined by "+")), where
// target is the full URL the client requested (scheme, host, version prefix,
// path and query) and body the exact bytes sent.
func Signature(appSecret, consumerKey, method, target string, body []byte, timestamp int64) string {
	sum := sha1.Sum([]byte(appSecret + "+" + consumerKey + "+" + method + "+" + target + "+" +
		string(body) + "+" + strconv.FormatInt(timestamp, 10)))
	return "$1$" + hex.EncodeToString(sum[:])
}

// apiError is an error answer in OVH's shape. The real API answers auth
// failures with errorCode/httpCode (which python-ovh reads) and the rest with
// class/message (which go-ovh reads); every answer here carries all four.
type apiError struct {
	status    int
	class     string
	errorCode string
	message   string
	// retryAfter, when positive, is sent as Retry-After (whole seconds).
	retryAfter time.Duration
	// details is OVH's details object, such as the IAM action refused.
	details map[string]string
}

func errNotFound(msg string) *apiError {
	return &apiError{status: http.StatusNotFound, class: "Client::NotFound", message: msg}
}

func errBadRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, class: "Client::BadRequest", message: msg}
}

var (
	errInvalidURL       = errNotFound("Got an invalid (or empty) URL")
	errNoService        = errNotFound("This service does not exist")
	errNotAuthenticated = &apiError{status: http.StatusUnauthorized, class: "Client::Unauthorized", errorCode: "NOT_AUTHENTICATED", message: "You must login first"}
	errInvalidKey       = &apiError{status: http.StatusForbidden, class: "Client::Forbidden", errorCode: "INVALID_KEY", message: "Invalid application key"}
	errNoCredential     = &apiError{status: http.StatusForbidden, class: "Client::Forbidden", errorCode: "NOT_CREDENTIAL", message: "This credential does not exist"}
	errInvalidSignature = &apiError{status: http.StatusBadRequest, class: "Client::BadRequest", errorCode: "INVALID_SIGNATURE", message: "Invalid signature"}
	errNotGranted       = &apiError{status: http.StatusForbidden, class: "Client::Forbidden", errorCode: "NOT_GRANTED_CALL", message: "This call has not been granted"}
	errInvalidCred      = &apiError{status: http.StatusForbidden, class: "Client::Forbidden", errorCode: "INVALID_CREDENTIAL", message: "This credential is not valid"}
	errInvalidToken     = &apiError{status: http.StatusUnauthorized, class: "Client::Unauthorized", errorCode: "INVALID_CREDENTIAL", message: "This credential is not valid"}
	errInternal         = &apiError{status: http.StatusInternalServerError, class: "Server::InternalServerError", message: "Internal server error"}
	errUnexpectedBody   = errBadRequest("You provided an input body while none was expected")
	errGatewayTimeout   = &apiError{status: http.StatusGatewayTimeout, class: "Server::GatewayTimeout", message: "Gateway timeout"}
)

func errTooMany(retryAfter time.Duration) *apiError {
	return &apiError{status: http.StatusTooManyRequests, class: "Client::TooManyRequests", message: "Too many requests", retryAfter: retryAfter}
}

// checkAuth verifies the AK/CK/signature headers of a signed call; apiPath is
// the decoded path without the version prefix, which access rules match.
func (e *Emulator) checkAuth(r *http.Request, body []byte, apiPath string) *apiError {
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return e.checkBearer(r.Method, strings.TrimSpace(bearer), apiPath)
	}
	ak := r.Header.Get("X-Ovh-Application")
	if ak == "" {
		return errNotAuthenticated
	}
	if subtle.ConstantTimeCompare([]byte(ak), []byte(e.cfg.AppKey)) != 1 {
		return errInvalidKey
	}
	ck := r.Header.Get("X-Ovh-Consumer")
	e.mu.Lock()
	known := e.keyOf(ck) != nil
	e.mu.Unlock()
	if !known {
		return errNoCredential
	}
	tsText := r.Header.Get("X-Ovh-Timestamp")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return errInvalidSignature
	}
	// Compare in seconds: a wild timestamp must not overflow a Duration.
	maxSkew := int64(e.cfg.MaxSkew / time.Second)
	if skew := e.cfg.Now().Unix() - ts; skew > maxSkew || skew < -maxSkew {
		return errInvalidSignature
	}
	// What the client signed is the URL it built, which reaches us as the
	// Host header and the raw request target; re-encoding r.URL could differ.
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	want := Signature(e.cfg.AppSecret, ck, r.Method, scheme+"://"+r.Host+r.RequestURI, body, ts)
	if subtle.ConstantTimeCompare([]byte(want), []byte(r.Header.Get("X-Ovh-Signature"))) != 1 {
		return errInvalidSignature
	}
	if aerr := e.credentialRefused(ck); aerr != nil {
		return aerr
	}
	// Every valid credential may look at itself.
	if strings.HasPrefix(apiPath, "/auth/") || granted(e.rulesOf(ck), r.Method, apiPath) {
		return nil
	}
	return errNotGranted
}

func granted(rules []Rule, method, apiPath string) bool {
	for _, rule := range rules {
		if rule.Method == method && globMatch(rule.Path, apiPath) {
			return true
		}
	}
	return false
}

// checkBearer verifies an OAuth2 access token. Its rights are the
// service account's IAM policy, here Config.Rules; a call outside them is
// refused as IAM does, naming the action.
func (e *Emulator) checkBearer(method, token, apiPath string) *apiError {
	e.mu.Lock()
	var expires time.Time
	found := false
	for t, exp := range e.tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			expires, found = exp, true
		}
	}
	e.mu.Unlock()
	if !found || !e.cfg.Now().Before(expires) {
		return errInvalidToken
	}
	if strings.HasPrefix(apiPath, "/auth/") || granted(e.cfg.Rules, method, apiPath) {
		return nil
	}
	return &apiError{status: http.StatusForbidden, class: "Client::Forbidden",
		message: "User not granted for this request", details: map[string]string{"unauthorizedActionsByIAM": iamAction(method, apiPath)}}
}

// iamAction names the IAM action of a call the way OVH does for dedicated
// servers: dedicatedServer:apiovh:get, …:boot/get, …:reboot.
func iamAction(method, apiPath string) string {
	segs := strings.Split(strings.TrimPrefix(apiPath, "/"), "/")
	if len(segs) < 3 || segs[0] != "dedicated" || segs[1] != "server" {
		return "account:apiovh:" + strings.ToLower(method)
	}
	var kept []string
	for _, s := range segs[3:] {
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			kept = append(kept, s)
		}
	}
	if method == http.MethodPost && len(kept) > 0 {
		return "dedicatedServer:apiovh:" + strings.Join(kept, "/")
	}
	return "dedicatedServer:apiovh:" + strings.Join(append(kept, strings.ToLower(method)), "/")
}

// serveToken is the OAuth2 token endpoint (client credentials grant, the
// client authenticated by HTTP Basic or in the form), as OVH's
// /auth/oauth2/token.
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if e.cfg.ClientID == "" || subtle.ConstantTimeCompare([]byte(id), []byte(e.cfg.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(e.cfg.ClientSecret)) != 1 {
		fail(http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	token := randomKey(40)
	e.mu.Lock()
	e.tokens[token] = e.cfg.Now().Add(e.cfg.TokenLifetime)
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": token, "token_type": "Bearer", "expires_in": int(e.cfg.TokenLifetime / time.Second), "scope": "all",
	})
}

// globMatch matches name against pattern where '*' stands for any run of
// characters, '/' included, as in OVH access rules.
func globMatch(pattern, name string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == name
	}
	if !strings.HasPrefix(name, pattern[:star]) {
		return false
	}
	rest := pattern[star+1:]
	for i := star; i <= len(name); i++ {
		if globMatch(rest, name[i:]) {
			return true
		}
	}
	return false
}
