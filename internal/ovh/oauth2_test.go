package ovh

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

const (
	testClientID     = "EU.0123456789abcdef"
	testClientSecret = "fedcba9876543210fedcba9876543210"
)

// oauth2Env resolves a host's OAuth2 credentials and makes its client, as
// modules do.
func oauth2Env(t *testing.T, vars map[string]any, log ...func(string, ...any)) (*Client, *Resolved) {
	t.Helper()
	clearOVHEnv(t)
	vars[VarRateLimit] = "1000/s burst 1000"
	var logf func(string, ...any)
	if len(log) > 0 {
		logf = log[0]
	}
	c, r, err := Env{Limiters: NewLimiters(), RetryWait: time.Millisecond}.Client("", vars, logf)
	if err != nil {
		t.Fatal(err)
	}
	return c, r
}

// TestOAuth2ClientCredentials: a service account's client ID and secret
// are exchanged for a token at the API's token endpoint, every call
// carries it, and --check's credential check proves it valid.
func TestOAuth2ClientCredentials(t *testing.T) {
	emu, endpoint := startAPI(t, ovhapi.Config{ClientID: testClientID, ClientSecret: testClientSecret}, testSN)
	logs := &logLines{}
	c, r := oauth2Env(t, map[string]any{VarEndpoint: endpoint, VarClientID: testClientID, VarClientSecret: testClientSecret}, logs.add)
	ctx := context.Background()
	if _, err := c.CheckCredential(ctx, r, RescueRights(testSN)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetBoot(ctx, testSN, 230242, edKey); err != nil {
		t.Fatal(err)
	}
	task, err := c.Reboot(ctx, testSN, fastWait())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitTask(ctx, testSN, task.ID, fastWait()); err != nil {
		t.Fatal(err)
	}
	if st, _ := emu.Server(testSN); st.Mode != ovhapi.ModeRescue {
		t.Errorf("mode %s, want the rescue", st.Mode)
	}
	if strings.Contains(logs.String(), "/auth/time") {
		t.Errorf("the clock was read for a bearer token:\n%s", logs)
	}
}

func TestOAuth2Refusals(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ovhapi.Config
		vars    func(endpoint string) map[string]any
		call    func(c *Client) error // nil: the credential check
		wantErr string
	}{
		{name: "a wrong client secret", cfg: ovhapi.Config{ClientID: testClientID, ClientSecret: testClientSecret},
			vars: func(e string) map[string]any {
				return map[string]any{VarEndpoint: e, VarClientID: testClientID, VarClientSecret: "wrong"}
			},
			wantErr: "ovh: the OAuth2 client credentials for %s are not valid: check the service account's client ID and secret: ovh: GET /auth/details: no OAuth2 access token: %s/auth/oauth2/token answered 401 Unauthorized (invalid_client)"},
		{name: "an unknown access token", cfg: ovhapi.Config{},
			vars:    func(e string) map[string]any { return map[string]any{VarEndpoint: e, VarAccessToken: "forged"} },
			wantErr: "ovh: the OAuth2 access token for %s are not valid: the token has expired or been revoked; get another: ovh: GET /auth/details: 401 Client::Unauthorized: This credential is not valid"},
		{name: "an IAM refusal names the action", cfg: ovhapi.Config{ClientID: testClientID, ClientSecret: testClientSecret,
			Rules: []ovhapi.Rule{{Method: "GET", Path: "/dedicated/server/*"}}},
			vars: func(e string) map[string]any {
				return map[string]any{VarEndpoint: e, VarClientID: testClientID, VarClientSecret: testClientSecret}
			},
			call: func(c *Client) error {
				_, err := c.Reboot(context.Background(), testSN, fastWait())
				return err
			},
			wantErr: "ovh: POST /dedicated/server/" + testSN + "/reboot: 403 Client::Forbidden: User not granted for this request (missing IAM permissions: dedicatedServer:apiovh:reboot)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, endpoint := startAPI(t, tt.cfg, testSN)
			c, r := oauth2Env(t, tt.vars(endpoint))
			var err error
			if tt.call == nil {
				_, err = c.CheckCredential(context.Background(), r, RescueRights(testSN))
			} else {
				err = tt.call(c)
			}
			want := tt.wantErr
			if strings.Contains(want, "%s") {
				want = strings.ReplaceAll(want, "%s", endpoint)
				want = strings.Replace(want, endpoint+"/auth/oauth2/token", strings.TrimSuffix(endpoint, "/1.0")+"/auth/oauth2/token", 1)
			}
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v\nwant  %s…", err, want)
			}
			if tt.call == nil {
				var ce *CredentialError
				if !errors.As(err, &ce) {
					t.Errorf("%T, want a CredentialError", err)
				}
			}
			if strings.Contains(err.Error(), testClientSecret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestOAuth2AccessToken: a token got elsewhere is used as it is, until it
// expires.
func TestOAuth2AccessToken(t *testing.T) {
	var skew atomic.Int64 // how far the API's clock is ahead
	_, endpoint := startAPI(t, ovhapi.Config{ClientID: testClientID, ClientSecret: testClientSecret, TokenLifetime: time.Hour,
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}, testSN)
	cc := clientcredentials.Config{ClientID: testClientID, ClientSecret: testClientSecret,
		TokenURL: strings.TrimSuffix(endpoint, "/1.0") + "/auth/oauth2/token", Scopes: []string{"all"}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, r := oauth2Env(t, map[string]any{VarEndpoint: endpoint, VarAccessToken: tok.AccessToken})
	ctx := context.Background()
	if _, err := c.CheckCredential(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetServer(ctx, testSN); err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(2 * time.Hour))
	c2, r2 := oauth2Env(t, map[string]any{VarEndpoint: endpoint, VarAccessToken: tok.AccessToken})
	if _, err := c2.CheckCredential(ctx, r2, nil); err == nil || !strings.Contains(err.Error(), "the token has expired or been revoked") {
		t.Errorf("an expired token: %v", err)
	}
}
