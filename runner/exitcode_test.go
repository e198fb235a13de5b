package runner_test

import (
	"testing"

	"github.com/nixbook/nixbook/runner"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		recap runner.Recap
		want  int
	}{
		{"ok", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", OK: 1}}}, runner.ExitOK},
		{"failed", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Failed: 1}}}, runner.ExitFailed},
		{"unreachable", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Unreachable: 1}}}, runner.ExitUnreachable},
		{"both", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Failed: 1}, {Host: "b", Unreachable: 1}}}, runner.ExitUnreachable},
		{"aborted", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Failed: 1}, {Host: "b", Unreachable: 1}}, Aborted: "any_errors_fatal"}, runner.ExitFailed},
		{"interrupted", runner.Recap{Hosts: []runner.HostRecap{{Host: "a", Unreachable: 1}}, Interrupted: true}, runner.ExitInterrupted},
	} {
		if got := tc.recap.ExitCode(); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}
