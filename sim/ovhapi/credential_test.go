package ovhapi

import (
	"testing"
	"time"
)

// TestCredentialStates: a key that is not validated, or has expired, is
// refused on every signed call with OVH's INVALID_CREDENTIAL; a valid key
// sees its state and expiry in /auth/currentCredential.
func TestCredentialStates(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		status  string
		expires time.Time
		refused bool
	}{
		{"validated", CredentialValidated, time.Time{}, false},
		{"validated, expires later", CredentialValidated, now.Add(time.Hour), false},
		{"validated, expired", CredentialValidated, now.Add(-time.Second), true},
		{"pending validation", CredentialPendingValidation, time.Time{}, true},
		{"expired", CredentialExpired, time.Time{}, true},
		{"refused", CredentialRefused, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: now}
			e, endpoint := start(t, Config{Now: clock.Now, CredentialStatus: tt.status, CredentialExpires: tt.expires}, testServer(testSN))
			c := client(t, endpoint)
			var cred struct {
				Status     string  `json:"status"`
				Expiration *string `json:"expiration"`
			}
			for _, path := range []string{"/auth/currentCredential", serverPath(testSN)} {
				err := c.Get(path, &cred)
				if !tt.refused {
					if err != nil {
						t.Fatalf("GET %s: %v", path, err)
					}
					continue
				}
				ae := apiErr(t, err)
				if ae.Code != 403 || ae.Message != "This credential is not valid" {
					t.Fatalf("GET %s: %+v", path, ae)
				}
			}
			if tt.refused {
				return
			}
			if err := c.Get("/auth/currentCredential", &cred); err != nil {
				t.Fatal(err)
			}
			if cred.Status != CredentialValidated || (tt.expires.IsZero()) != (cred.Expiration == nil) {
				t.Fatalf("credential %+v", cred)
			}
			// The key runs out during the run.
			e.SetCredential(CredentialValidated, now.Add(time.Minute))
			clock.Add(2 * time.Minute)
			if ae := apiErr(t, c.Get(serverPath(testSN), nil)); ae.Code != 403 {
				t.Fatalf("after expiry: %+v", ae)
			}
		})
	}
}

// TestRebootWhilePending: a second reboot while the first task is pending
// is refused with 409 naming the task, and creates no task; once the first
// is done, a reboot is taken again.
func TestRebootWhilePending(t *testing.T) {
	e, endpoint := start(t, Config{Timings: Timings{Init: 50 * time.Millisecond, Todo: 50 * time.Millisecond, Doing: 50 * time.Millisecond}}, testServer(testSN))
	c := client(t, endpoint)
	first := postReboot(t, c, testSN)
	var task apiTask
	ae := apiErr(t, c.Post(serverPath(testSN, "reboot"), nil, &task))
	if ae.Code != 409 || ae.Class != "Client::Conflict" || ae.Message != "A hardReboot task ("+itoa(first.TaskID)+") is already pending on this server" {
		t.Fatalf("second reboot: %+v", ae)
	}
	if st, _ := e.Server(testSN); len(st.Tasks) != 1 {
		t.Fatalf("tasks %+v", st.Tasks)
	}
	if _, final := pollTask(t, c, testSN, first.TaskID); final.Status != StatusDone {
		t.Fatalf("first task %+v", final)
	}
	postReboot(t, c, testSN)
}
