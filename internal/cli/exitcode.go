package cli

import "github.com/nixbook/nixbook/internal/runner"

// Exit codes, as Ansible's and documented in the README.
const (
	ExitOK          = 0
	ExitUsage       = 1 // usage, parse or validation error: no host touched
	ExitFailed      = 2 // a host failed, none was unreachable; or a play was aborted
	ExitUnreachable = 4 // a host was unreachable (whether or not others failed)
	ExitInterrupted = 130
)

// exitCodeOf is the exit code of a run's outcome.
func exitCodeOf(o runner.Outcome) int {
	switch o {
	case runner.OutcomeFailed:
		return ExitFailed
	case runner.OutcomeUnreachable:
		return ExitUnreachable
	case runner.OutcomeInterrupted:
		return ExitInterrupted
	}
	return ExitOK
}
