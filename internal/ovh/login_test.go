package ovh

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

// TestLoginKeyGrantsTheStockPlaybooks: a consumer key asked with
// LoginRules, once validated at its URL, passes the credential check of
// the rescue on the servers it was asked for, and no other.
func TestLoginKeyGrantsTheStockPlaybooks(t *testing.T) {
	const other = "ns9.ip-203-0-113.eu"
	tests := []struct {
		name     string
		services []string
		refused  string // the service the key must not cover
	}{
		{name: "every server"},
		{name: "one server", services: []string{testSN}, refused: other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, endpoint := startAPI(t, ovhapi.Config{Weather: ovhapi.BadDay(3)}, testSN, other)
			r := &Resolved{Name: endpoint, URL: endpoint, Credentials: Credentials{AppKey: testAK, AppSecret: testAS}}
			key, err := RequestKey(r, LoginRules(tt.services), nil)
			if err != nil {
				t.Fatal(err)
			}
			creds := r.Credentials
			creds.ConsumerKey = key.ConsumerKey
			c, _ := newClient(t, endpoint, func(cfg *Config) { cfg.Credentials = creds })
			ctx := context.Background()
			if _, err := c.CheckCredential(ctx, r, RescueRights(testSN)); err == nil || !strings.Contains(err.Error(), "not valid") {
				t.Fatalf("a key pending validation: %v", err)
			}
			resp, err := http.Get(key.ValidationURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("validation URL: %s", resp.Status)
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if _, err := c.WaitValidated(wctx, 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			fresh, _ := newClient(t, endpoint, func(cfg *Config) { cfg.Credentials = creds })
			if _, err := fresh.CheckCredential(ctx, r, RescueRights(testSN)); err != nil {
				t.Errorf("the key lacks what the rescue needs: %v", err)
			}
			// The calls themselves, ids in place of the rights' placeholders.
			if _, err := fresh.Boots(ctx, testSN, "rescue"); err != nil {
				t.Errorf("the key cannot read the netboots: %v", err)
			}
			if _, err := fresh.ListTasks(ctx, testSN, "hardReboot"); err != nil {
				t.Errorf("the key cannot list the tasks: %v", err)
			}
			if tt.refused != "" {
				if _, err := fresh.CheckCredential(ctx, r, RescueRights(tt.refused)); err == nil || !strings.Contains(err.Error(), "lacks the rights GET /dedicated/server/"+tt.refused) {
					t.Errorf("a key for %v checked on %s: %v", tt.services, tt.refused, err)
				}
				if _, err := fresh.GetServer(ctx, tt.refused); err == nil || !strings.Contains(err.Error(), "403") {
					t.Errorf("GET %s with a key for %v: %v", tt.refused, tt.services, err)
				}
			}
		})
	}
}

// TestWriteConf: the section is written whole, the rest of the file kept,
// and the file left readable by its owner only.
func TestWriteConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ovh.conf")
	writeFile(t, path, "[default]\nendpoint=ovh-eu\n\n[ovh-eu]\nclient_id=old\nclient_secret=old\n")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteConf(path, "ovh-eu", Credentials{AppKey: "ak", AppSecret: "as", ConsumerKey: "ck"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(strings.Fields(string(data)), " ") // ini aligns the '='
	for _, want := range []string{"[default]", "endpoint = ovh-eu", "application_key = ak", "application_secret = as", "consumer_key = ck"} {
		if !strings.Contains(got, want) {
			t.Errorf("ovh.conf lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "client_id") {
		t.Errorf("ovh.conf keeps another way of signing in, which go-ovh refuses:\n%s", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %s, want 0600", st.Mode().Perm())
	}
	if err := os.WriteFile(path, []byte("[broken\nsecret=xyz"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteConf(path, "ovh-eu", Credentials{}); err == nil || strings.Contains(err.Error(), "xyz") {
		t.Errorf("a broken file: %v", err)
	}
}
