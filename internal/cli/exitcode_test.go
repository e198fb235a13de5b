package cli

import (
	"testing"

	"github.com/nixbook/nixbook/internal/runner"
)

func TestExitCodeOf(t *testing.T) {
	for o, want := range map[runner.Outcome]int{
		runner.OutcomeOK:          0,
		runner.OutcomeFailed:      2,
		runner.OutcomeUnreachable: 4,
		runner.OutcomeInterrupted: 130,
	} {
		if got := exitCodeOf(o); got != want {
			t.Errorf("outcome %d: exit %d, want %d", o, got, want)
		}
	}
}
