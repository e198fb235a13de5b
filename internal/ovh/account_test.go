package ovh

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

func countCalls(emu *ovhapi.Emulator, sn, method, path string) int {
	n := 0
	for _, c := range emu.Calls(sn) {
		if c.Method == method && c.Path == path {
			n++
		}
	}
	return n
}

// TestRunCacheSharesReads: clients of one account (a task's and host's
// each) share what does not change during a run: the clock, a server's
// fields until a write, its netboot list, and each netboot by id across
// servers. The costs are counted per client.
func TestRunCacheSharesReads(t *testing.T) {
	const other = "ns2.ip-203-0-113.eu"
	emu, endpoint := startAPI(t, ovhapi.Config{}, testSN, other)
	limiters := NewLimiters()
	shared := func(cfg *Config) { cfg.Limiters = limiters }
	c1, logs := newClient(t, endpoint, shared)
	c2, _ := newClient(t, endpoint, shared)
	ctx := context.Background()
	for _, c := range []*Client{c1, c2, c1} {
		if _, err := c.GetServer(ctx, testSN); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Boots(ctx, testSN, "rescue"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c2.Boots(ctx, other, "rescue"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sn, path string
		want     int
	}{
		{testSN, "/dedicated/server/" + testSN, 1},
		{testSN, "/dedicated/server/" + testSN + "/boot", 1},
		{testSN, "/dedicated/server/" + testSN + "/boot/230242", 1},
		{other, "/dedicated/server/" + other + "/boot", 1},
		{other, "/dedicated/server/" + other + "/boot/230242", 0}, // the endpoint's netboot, read for testSN
	}
	for _, tt := range tests {
		if n := countCalls(emu, tt.sn, "GET", tt.path); n != tt.want {
			t.Errorf("GET %s: %d calls, want %d", tt.path, n, tt.want)
		}
	}
	// 1 clock sync + server + list + 3 netboots, then all from the cache.
	if got := c1.Calls(); got.Sent != 6 || got.Cached != 5 {
		t.Errorf("c1 cost %+v, want 6 sent and 5 cached", got)
	}
	if !strings.Contains(logs.String(), "from this run's cache") {
		t.Errorf("the log does not show cached answers:\n%s", logs)
	}
	// A write through any client drops the server's fields.
	if err := c2.SetBoot(ctx, testSN, 230242, ""); err != nil {
		t.Fatal(err)
	}
	srv, err := c1.GetServer(ctx, testSN)
	if err != nil {
		t.Fatal(err)
	}
	if srv.BootID == nil || *srv.BootID != 230242 {
		t.Fatalf("after the PUT, the server reads %+v", srv)
	}
	if n := countCalls(emu, testSN, "GET", "/dedicated/server/"+testSN); n != 2 {
		t.Errorf("%d GET server, want 2", n)
	}
	if !srv.Monitoring {
		t.Errorf("monitoring not read")
	}
}

// TestCheckCredential: the key's state, expiry and rules are read once per
// account, and a key that cannot do the play's calls is reported with
// what it lacks.
func TestCheckCredential(t *testing.T) {
	all := []ovhapi.Rule{{Method: "GET", Path: "/dedicated/server/*"}, {Method: "PUT", Path: "/dedicated/server/*"}, {Method: "POST", Path: "/dedicated/server/*"}}
	tests := []struct {
		name    string
		rules   []ovhapi.Rule
		status  string
		expires time.Duration // from now; zero: never
		want    string        // "" when the key will do
	}{
		{name: "all rights", rules: all},
		{name: "rights on this server only", rules: []ovhapi.Rule{
			{Method: "GET", Path: "/dedicated/server/" + testSN}, {Method: "GET", Path: "/dedicated/server/" + testSN + "/*"},
			{Method: "PUT", Path: "/dedicated/server/" + testSN}, {Method: "POST", Path: "/dedicated/server/" + testSN + "/reboot"}}},
		{name: "read only", rules: []ovhapi.Rule{{Method: "GET", Path: "/dedicated/server/*"}},
			want: "lacks the rights PUT /dedicated/server/" + testSN + ", POST /dedicated/server/" + testSN + "/reboot; create one with the rights nixbook needs at"},
		{name: "no task rights", rules: []ovhapi.Rule{{Method: "GET", Path: "/dedicated/server/" + testSN}, {Method: "GET", Path: "/dedicated/server/" + testSN + "/boot*"},
			{Method: "GET", Path: "/dedicated/server/" + testSN + "/ips"}, {Method: "PUT", Path: "/dedicated/server/*"}, {Method: "POST", Path: "/dedicated/server/*"}},
			want: "lacks the rights GET /dedicated/server/" + testSN + "/task, GET /dedicated/server/" + testSN + "/task/{taskId}"},
		{name: "pending validation", rules: all, status: ovhapi.CredentialPendingValidation,
			want: "is not valid: it has expired, been revoked, or is still pending validation"},
		{name: "expired", rules: all, expires: -time.Minute, want: "is not valid"},
		{name: "expires later", rules: all, expires: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ovhapi.Config{Rules: tt.rules, CredentialStatus: tt.status}
			if tt.expires != 0 {
				cfg.CredentialExpires = time.Now().Add(tt.expires)
			}
			emu, endpoint := startAPI(t, cfg, testSN)
			_ = emu
			limiters := NewLimiters()
			res := &Resolved{Name: "ovh-eu", URL: "https://eu.api.ovh.com/1.0"}
			var err error
			var expires time.Time
			for range 2 { // two hosts of the same account
				c, _ := newClient(t, endpoint, func(cfg *Config) { cfg.Limiters = limiters })
				expires, err = c.CheckCredential(context.Background(), res, RescueRights(testSN))
			}
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if (tt.expires != 0) == expires.IsZero() {
					t.Errorf("expiry %v", expires)
				}
				return
			}
			var credErr *CredentialError
			if !errors.As(err, &credErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a CredentialError with %q", err, tt.want)
			}
		})
	}
}

// TestRebootWaitsForAPendingReboot: a reboot refused because another is
// pending waits for that task to end, then asks again, never queueing two.
func TestRebootWaitsForAPendingReboot(t *testing.T) {
	emu, endpoint := startAPI(t, ovhapi.Config{Timings: ovhapi.Timings{Init: 20 * time.Millisecond, Todo: 20 * time.Millisecond, Doing: 40 * time.Millisecond}}, testSN)
	c, logs := newClient(t, endpoint)
	ctx := context.Background()
	if err := c.Do(ctx, RebootRequest(testSN), nil); err != nil {
		t.Fatal(err)
	}
	task, err := c.Reboot(ctx, testSN, fastWait())
	if err != nil {
		t.Fatalf("Reboot: %v\n%s", err, logs)
	}
	st, _ := emu.Server(testSN)
	if len(st.Tasks) != 2 || st.Tasks[1].ID != task.ID || st.Tasks[1].Started.Before(st.Tasks[0].Done) {
		t.Fatalf("tasks %+v, Reboot returned %d", st.Tasks, task.ID)
	}
	if !strings.Contains(logs.String(), "is pending; waiting for it to end") {
		t.Errorf("log:\n%s", logs)
	}
}

// TestNotFoundHintsAtTheEndpoint: an unknown service names the variables to
// check and the other brands' APIs.
func TestNotFoundHintsAtTheEndpoint(t *testing.T) {
	tests := []struct {
		endpoint, path, message string
		want                    string // "" when no hint is due
	}{
		{"ovh-eu", "/dedicated/server/ns1.ip-1-2-3.eu", "This service does not exist",
			`OVH service "ns1.ip-1-2-3.eu" is unknown to the ovh-eu API: check ovh_service, the server's name in the OVH manager, and ovh_endpoint; Kimsufi and So you Start servers are only known to their own API: perhaps ovh_endpoint: kimsufi-eu or kimsufi-ca or soyoustart-eu`},
		{"kimsufi-eu", "/dedicated/server/ns1.ip-1-2-3.eu/boot", "This service does not exist", "perhaps ovh_endpoint: ovh-eu or ovh-ca or soyoustart-eu"},
		{"ovh-eu", "/dedicated/server/ns1.ip-1-2-3.eu/task/42", "The requested object (taskId = 42) does not exist", ""},
	}
	for _, tt := range tests {
		res := &Resolved{Name: tt.endpoint}
		err := res.Explain(&Error{Method: "GET", Path: tt.path, Status: 404, Class: "Client::NotFound", Message: tt.message})
		hinted := strings.Contains(err.Error(), "unknown to the")
		if tt.want == "" {
			if hinted {
				t.Errorf("%s: %v", tt.path, err)
			}
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s on %s: %v\nwant %q", tt.path, tt.endpoint, err, tt.want)
		}
	}
}
