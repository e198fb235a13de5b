package waitssh

import (
	"context"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

func TestModule(t *testing.T) {
	m := moduletest.New(t, Spec, "timeout: 90\ndelay: 5s\nsleep: 2s\nnew_system: true")
	p, err := m.Check(context.Background(), moduletest.NewLocalHost(t).ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	want := "change: wait up to 1m30s for SSH, accepting a new host key\n  $ true\n"
	if got := moduletest.FormatPlan(p); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	clock := moduletest.NewClock()
	m.(*module).clock = clock.Time()
	h := &moduletest.FlakyHost{FailDials: 2}
	out, err := m.Apply(context.Background(), h, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := clock.Sleeps(); got != "5s 2s 2s" {
		t.Errorf("sleeps = %q, want the delay then two pauses", got)
	}
	if out["elapsed"] != 9 {
		t.Errorf("elapsed = %v, want 9", out["elapsed"])
	}
	if ran := h.Ran(); len(ran) != 1 || ran[0] != "true" {
		t.Errorf("runs = %q, want one `true` once connected", ran)
	}
	for _, o := range h.DialOptions() {
		if !o.NewSystem {
			t.Error("a dial did not ask to accept a new system's key")
		}
	}
}

func TestModuleOnLocalHost(t *testing.T) {
	h := moduletest.NewLocalHost(t)
	m := moduletest.New(t, Spec, "")
	p, err := m.Check(context.Background(), h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(context.Background(), h, p); err != nil {
		t.Fatal(err)
	}
	if h.Reconnects() != 1 {
		t.Errorf("reconnects = %d, want 1", h.Reconnects())
	}
}

func TestNew(t *testing.T) {
	for args, wantErr := range map[string]string{
		"timeout: 0":         "timeout must be positive",
		"timeout: soon":      "want a duration",
		"connect_timeout: 5": "unknown key \"connect_timeout\"",
	} {
		_, err := Spec.New(moduletest.Decoder(args))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: err = %v, want %q", args, err, wantErr)
		}
	}
}
