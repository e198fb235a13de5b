package ovhapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
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

// TestNewCredential: POST /auth/credential makes a key pending validation
// with the rules asked, refused until its validation URL is opened, and
// refuses what OVH refuses.
func TestNewCredential(t *testing.T) {
	tests := []struct {
		name    string
		ak      string
		body    string
		wantErr string
	}{
		{name: "a key", ak: testAK, body: `{"accessRules":[{"method":"GET","path":"/dedicated/server/*"}]}`},
		{name: "an unknown application", ak: "nope", body: `{"accessRules":[{"method":"GET","path":"/*"}]}`, wantErr: "Invalid application key"},
		{name: "no rules", ak: testAK, body: `{"accessRules":[]}`, wantErr: "[accessRules] Property is mandatory"},
		{name: "a bad method", ak: testAK, body: `{"accessRules":[{"method":"PATCH","path":"/*"}]}`, wantErr: `Invalid method \"PATCH\"`},
		{name: "an unknown field", ak: testAK, body: `{"accessRules":[{"method":"GET","path":"/*"}],"validity":1}`, wantErr: "Invalid body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, endpoint := start(t, Config{}, testServer(testSN))
			req, _ := http.NewRequest(http.MethodPost, endpoint+"/auth/credential", strings.NewReader(tt.body))
			req.Header.Set("X-Ovh-Application", tt.ak)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.wantErr != "" {
				if resp.StatusCode < 400 || !strings.Contains(string(body), tt.wantErr) {
					t.Fatalf("%s %s, want an error with %q", resp.Status, body, tt.wantErr)
				}
				return
			}
			var got struct{ ConsumerKey, State, ValidationURL string }
			if err := json.Unmarshal(body, &got); err != nil || got.State != CredentialPendingValidation {
				t.Fatalf("%s %s (%v)", resp.Status, body, err)
			}
			c := clientWith(t, endpoint, testAK, testAS, got.ConsumerKey)
			if err := c.Get("/auth/currentCredential", nil); err == nil || !strings.Contains(err.Error(), "This credential is not valid") {
				t.Fatalf("a key pending validation: %v", err)
			}
			page, err := http.Get(got.ValidationURL + "&validity=24h")
			if err != nil || page.StatusCode != http.StatusOK {
				t.Fatalf("validation URL: %v %v", page, err)
			}
			page.Body.Close()
			var cred struct {
				Status     string `json:"status"`
				Expiration string `json:"expiration"`
				Rules      []Rule `json:"rules"`
			}
			if err := c.Get("/auth/currentCredential", &cred); err != nil {
				t.Fatal(err)
			}
			if cred.Status != CredentialValidated || cred.Expiration == "" || len(cred.Rules) != 1 || cred.Rules[0].Path != "/dedicated/server/*" {
				t.Errorf("credential %+v", cred)
			}
			if err := c.Get(serverPath(testSN, "boot"), nil); err != nil {
				t.Errorf("a call its rules grant: %v", err)
			}
			if err := c.Put(serverPath(testSN), map[string]any{"monitoring": false}, nil); err == nil || !strings.Contains(err.Error(), "This call has not been granted") {
				t.Errorf("a call outside its rules: %v", err)
			}
			unknown, err := http.Get(strings.Split(got.ValidationURL, "?")[0] + "?credentialToken=forged")
			if err != nil || unknown.StatusCode != http.StatusNotFound {
				t.Errorf("a forged token: %v %v", unknown, err)
			}
			unknown.Body.Close()
		})
	}
}
