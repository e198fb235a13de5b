package runner_test

import (
	"testing"

	"github.com/nixbook/nixbook/internal/runner"
)

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name  string
		recap runner.Recap
		want  runner.Outcome
	}{
		{"ok", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", OK: 1}}}, runner.OutcomeOK},
		{"failed", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Failed: 1}}}, runner.OutcomeFailed},
		{"unreachable", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Unreachable: 1}}}, runner.OutcomeUnreachable},
		{"both", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Failed: 1}, {Host: "b", Unreachable: 1}}}, runner.OutcomeUnreachable},
		{"aborted", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Failed: 1}, {Host: "b", Unreachable: 1}}, Aborted: "any_errors_fatal"}, runner.OutcomeFailed},
		{"interrupted", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Unreachable: 1}}, Interrupted: true}, runner.OutcomeInterrupted},
	} {
		if got := tc.recap.Outcome(); got != tc.want {
			t.Errorf("%s: outcome %d, want %d", tc.name, got, tc.want)
		}
	}
}
