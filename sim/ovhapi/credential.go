package ovhapi

import "time"

// Consumer key states (auth.CredentialStateEnum).
const (
	CredentialValidated         = "validated"
	CredentialPendingValidation = "pendingValidation"
	CredentialExpired           = "expired"
	CredentialRefused           = "refused"
)

// SetCredential changes the consumer key's state and expiry (zero: never),
// as when a user validates a key or it runs out during a run.
func (e *Emulator) SetCredential(status string, expires time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.credStatus, e.credExpiry = status, expires
}

// credentialRefused is the answer to any signed call made with a key that
// is not validated or has expired: OVH answers 403 INVALID_CREDENTIAL
// "This credential is not valid", for a key pending validation too
// (php-ovh #56, #62). Whether /auth/currentCredential still answers for
// such a key is unknown; refusing it as well is the cautious choice.
func (e *Emulator) credentialRefused() *apiError {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.credStatus != CredentialValidated {
		return errInvalidCred
	}
	if !e.credExpiry.IsZero() && !e.cfg.Now().Before(e.credExpiry) {
		return errInvalidCred
	}
	return nil
}
