package ovhapi

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
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
	ak := r.Header.Get("X-Ovh-Application")
	if ak == "" {
		return errNotAuthenticated
	}
	if subtle.ConstantTimeCompare([]byte(ak), []byte(e.cfg.AppKey)) != 1 {
		return errInvalidKey
	}
	ck := r.Header.Get("X-Ovh-Consumer")
	if subtle.ConstantTimeCompare([]byte(ck), []byte(e.cfg.ConsumerKey)) != 1 {
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
	if aerr := e.credentialRefused(); aerr != nil {
		return aerr
	}
	// Every valid credential may look at itself.
	if strings.HasPrefix(apiPath, "/auth/") {
		return nil
	}
	for _, rule := range e.cfg.Rules {
		if rule.Method == r.Method && globMatch(rule.Path, apiPath) {
			return nil
		}
	}
	return errNotGranted
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
