package rescue

import (
	"context"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

// TestPreflightChecksTheKeyAndMonitoring: before any task, in dry runs
// too, a key that cannot do the rescue's calls is refused with what it
// lacks, and a server OVH monitors is warned about with the variable that
// turns monitoring off.
func TestPreflightChecksTheKeyAndMonitoring(t *testing.T) {
	tests := []struct {
		name     string
		cfg      ovhapi.Config
		vars     map[string]any
		want     string // in the error; "" when Preflight passes
		warned   bool
		noServer bool // the server is not read
		oauth2   bool // the host signs in with EU.id and secret
	}{
		{name: "monitored", warned: true},
		{name: "monitoring off asked", vars: map[string]any{ovh.VarMonitoring: "off"}},
		{name: "read-only key", cfg: ovhapi.Config{Rules: []ovhapi.Rule{{Method: "GET", Path: "/dedicated/server/*"}}},
			want: "ovh: the consumer key for " + "%ENDPOINT%" + " lacks the rights PUT /dedicated/server/" + testSN + ", POST /dedicated/server/" + testSN + "/reboot", noServer: true},
		{name: "pending validation", cfg: ovhapi.Config{CredentialStatus: ovhapi.CredentialPendingValidation},
			// OVH refuses such a key without saying why.
			want: "is not valid: it has expired, been revoked, or is still pending validation", noServer: true},
		{name: "expired", cfg: ovhapi.Config{CredentialStatus: ovhapi.CredentialExpired},
			want: "403 Client::Forbidden: This credential is not valid", noServer: true},
		{name: "OAuth2 client credentials", cfg: ovhapi.Config{ClientID: "EU.id", ClientSecret: "secret"}, oauth2: true, warned: true},
		{name: "OAuth2 client credentials refused", cfg: ovhapi.Config{ClientID: "EU.id", ClientSecret: "other"}, oauth2: true,
			want: "ovh: the OAuth2 client credentials for %ENDPOINT% are not valid: check the service account's client ID and secret", noServer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t, tt.cfg)
			s := a.add(testSN, 0)
			for k, v := range tt.vars {
				s.APIVars[k] = v
			}
			if tt.oauth2 {
				for _, k := range []string{ovh.VarAppKey, ovh.VarAppSecret, ovh.VarConsumerKey} {
					delete(s.APIVars, k)
				}
				s.APIVars[ovh.VarClientID], s.APIVars[ovh.VarClientSecret] = "EU.id", "secret"
			}
			err := testModule(t, "", s).Preflight(context.Background(), s)
			want := strings.ReplaceAll(tt.want, "%ENDPOINT%", a.endpoint)
			switch {
			case want == "" && err != nil:
				t.Fatalf("Preflight: %v", err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Fatalf("Preflight: %v\nwant %q", err, want)
			}
			logs := s.AllLogs()
			if got := strings.Contains(logs, "set ovh_monitoring: off"); got != tt.warned {
				t.Errorf("warned %t, want %t:\n%s", got, tt.warned, logs)
			}
			if n := len(a.emu.Calls(testSN)); tt.noServer != (n == 0) {
				t.Errorf("%d calls named the server", n)
			}
			if !strings.Contains(logs, "ovh: preflight of ks1: ") {
				t.Errorf("no cost in the log:\n%s", logs)
			}
		})
	}
}
