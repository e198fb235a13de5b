package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

func TestAPIOverride(t *testing.T) {
	badDay := func(change func(w *ovhapi.Weather)) *ovhapi.Weather {
		w := ovhapi.BadDay(1)
		change(w)
		return w
	}
	tests := []struct {
		name      string
		yaml      string
		calmFlag  bool
		want      *ovhapi.Weather
		wantFault map[string]ovhapi.Fault
		wantErr   string
	}{
		{name: "a bad day by default", yaml: "{}", want: ovhapi.BadDay(1)},
		{name: "the flag calms it", yaml: "{}", calmFlag: true, want: &ovhapi.Weather{Seed: 1}},
		{name: "calm with one misbehaviour", yaml: "api: {calm: true, error_bursts: 0.5, burst_max: 3, seed: 9}",
			want: &ovhapi.Weather{Seed: 9, ErrorBursts: 0.5, BurstMax: 3}},
		{name: "every field", yaml: "api: {delay: 1ms-2ms, task_not_found_for: 1m, lost_answers: 0.1, rate: 10/s burst 2, task_purge: 5m}",
			want: badDay(func(w *ovhapi.Weather) {
				w.DelayMin, w.DelayMax, w.TaskNotFoundFor, w.LostAnswers, w.TaskPurge = time.Millisecond, 2*time.Millisecond, time.Minute, 0.1, 5*time.Minute
				w.Rate = ovhapi.Rate{Requests: 10, Per: time.Second, Burst: 2}
			})},
		{name: "no rate limit", yaml: "api: {rate: none, delay: 5ms}",
			want: badDay(func(w *ovhapi.Weather) {
				w.Rate, w.DelayMin, w.DelayMax = ovhapi.Rate{}, 5*time.Millisecond, 5*time.Millisecond
			})},
		{name: "faults per host", yaml: "api:\n  faults:\n    ks2: {http500: 3, lost_answer: 1, too_many: 2, retry_after: 2s, task_status: ovhError, comment: down, note: ticket 1, slow_task: 30s}\n",
			want: ovhapi.BadDay(1),
			wantFault: map[string]ovhapi.Fault{"ks2": {HTTP500: 3, LostAnswer: 1, TooMany: 2, RetryAfter: 2 * time.Second,
				TaskStatus: "ovhError", Comment: "down", Note: "ticket 1", SlowTask: 30 * time.Second}}},
		{name: "bad chance", yaml: "api: {error_bursts: 2}", wantErr: "api error_bursts: a chance between 0 and 1, got 2"},
		{name: "bad rate", yaml: "api: {rate: lots}", wantErr: "api rate: rate \"lots\""},
		{name: "bad delay", yaml: "api: {delay: 2s-1s}", wantErr: "the longest comes second"},
		{name: "bad task status", yaml: "api: {faults: {ks1: {task_status: done}}}", wantErr: "api faults for ks1: task_status \"done\""},
		{name: "unknown field", yaml: "api: {storms: 1}", wantErr: "field storms not found"},
		{name: "bad key status", yaml: "api: {credential: {status: lost}}", wantErr: `api credential status "lost"`},
		{name: "bad key expiry", yaml: "api: {credential: {expires: soon}}", wantErr: `api credential expires "soon"`},
		{name: "bad key rule", yaml: "api: {credential: {rules: [\"GRAB /x\"]}}", wantErr: `api credential rule "GRAB /x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "overrides.yml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			o, err := LoadOverrides(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w, err := o.API.Weather(tt.calmFlag)
			if err != nil || *w != *tt.want {
				t.Fatalf("weather %+v, %v\nwant    %+v", w, err, tt.want)
			}
			for host, want := range tt.wantFault {
				got, err := o.API.Faults[host].fault()
				if err != nil || got != want {
					t.Errorf("%s: fault %+v, %v; want %+v", host, got, err, want)
				}
			}
		})
	}
	if err := (APIOverride{Faults: map[string]APIFault{"ks9": {}}}).check(map[string]bool{"ks1": true}); err == nil || err.Error() != "api faults: no host ks9 in the fleet" {
		t.Errorf("unknown host: %v", err)
	}
}

// TestAPICredentialOverride: the overrides file's credential section is
// what the emulator answers over HTTP: the key's state, expiry and rules.
func TestAPICredentialOverride(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantErr    string // of GET /auth/currentCredential; "": it answers
		wantRules  string
	}{
		{name: "pending", yaml: "api: {credential: {status: pendingValidation}}", wantErr: "This credential is not valid"},
		{name: "expired by date", yaml: "api: {credential: {expires: \"2020-01-01T00:00:00Z\"}}", wantErr: "This credential is not valid"},
		{name: "rules", yaml: "api: {credential: {expires: 2h, rules: [\"GET /dedicated/server/*\"]}}", wantRules: "[GET /dedicated/server/*]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "overrides.yml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			o, err := LoadOverrides(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg := ovhapi.Config{AppKey: "ak", AppSecret: "as", ConsumerKey: "ck", Weather: ovhapi.Calm()}
			if err := o.API.Credential.apply(&cfg, time.Now()); err != nil {
				t.Fatal(err)
			}
			emu := ovhapi.New(cfg)
			t.Cleanup(func() { emu.Close() })
			url, err := emu.Serve(t.Context(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			c, err := ovh.New(ovh.Config{Endpoint: url, Credentials: ovh.Credentials{AppKey: "ak", AppSecret: "as", ConsumerKey: "ck"}, Limiters: ovh.NewLimiters(), Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			cred, err := c.CurrentCredential(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(cred.Rules); got != tt.wantRules {
				t.Errorf("rules %s, want %s", got, tt.wantRules)
			}
			if cred.Expiration == nil {
				t.Errorf("no expiry, want one in 2h")
			}
		})
	}
}

// FuzzAPIOverride: no api section, however broken, panics the loader; one
// it accepts gives a weather and a credential the emulator takes.
func FuzzAPIOverride(f *testing.F) {
	f.Add("api: {calm: true, delay: 1ms-2ms, rate: 10/s burst 2}")
	f.Add("api: {credential: {status: expired, expires: 2h, rules: [\"GET /dedicated/server/*\"]}}")
	f.Add("api: {faults: {ks1: {task_status: ovhError, retry_after: 2s}}}")
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(t.TempDir(), "overrides.yml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := LoadOverrides(path)
		if err != nil {
			return
		}
		if _, err := o.API.Weather(false); err != nil {
			t.Errorf("accepted, then refused: %v", err)
		}
		if err := o.API.Credential.apply(&ovhapi.Config{}, time.Now()); err != nil {
			t.Errorf("accepted, then refused: %v", err)
		}
	})
}
