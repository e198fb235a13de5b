package runner

import (
	"time"

	"github.com/nixbook/nixbook/internal/modules"
)

// Status is the outcome of one task on one host.
type Status string

const (
	StatusOK          Status = "ok"
	StatusChanged     Status = "changed"
	StatusWouldChange Status = "would change" // --check: Apply was not called
	StatusSkipped     Status = "skipped"
	// StatusUnknown is a task a dry run cannot plan: it depends on what an
	// earlier task would do (a system it would boot, a disk it would
	// partition, a result it would register). Neither skipped nor failed.
	StatusUnknown     Status = "unknown until applied"
	StatusFailed      Status = "failed"
	StatusIgnored     Status = "ignored" // failed, but ignore_errors
	StatusUnreachable Status = "unreachable"
)

// EventType says what an Event reports.
type EventType string

const (
	EventPlayStart  EventType = "play_start"
	EventTaskStart  EventType = "task_start"
	EventResult     EventType = "result"
	EventOutput     EventType = "output" // a line of remote output, as it arrives
	EventNotice     EventType = "notice" // a recorded or replaced host key, a fallback taken
	EventPlayAbort  EventType = "play_abort"
	EventRecap      EventType = "recap"
	EventInterrupt  EventType = "interrupted"
	EventBatchStart EventType = "batch_start"
)

// Event is one thing that happened during a run; the human and JSON outputs
// are both fed from events, so they cannot disagree.
type Event struct {
	Type    EventType        `json:"type"`
	Time    time.Time        `json:"time"`
	Play    string           `json:"play,omitempty"`
	Task    string           `json:"task,omitempty"`
	Host    string           `json:"host,omitempty"`
	Status  Status           `json:"status,omitempty"`
	Item    any              `json:"item,omitempty"`
	Msg     string           `json:"msg,omitempty"`
	Line    string           `json:"line,omitempty"`
	Changes []modules.Change `json:"changes,omitempty"`
	Reboots bool             `json:"reboots,omitempty"`
	// Unplanned are the commands Apply ran (or, under --strict, tried to
	// run) that the task's plan did not list.
	Unplanned []string `json:"unplanned,omitempty"`
	// Digest covers what a dry run's plan would write (see TaskPlan).
	Digest   string        `json:"digest,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Hosts    []string      `json:"hosts,omitempty"`
	Recap    []HostRecap   `json:"recap,omitempty"`
}

// HostRecap counts a host's results over the whole run.
type HostRecap struct {
	Host        string `json:"host"`
	OK          int    `json:"ok"`
	Changed     int    `json:"changed"`
	Unreachable int    `json:"unreachable"`
	Failed      int    `json:"failed"`
	Skipped     int    `json:"skipped"`
	Ignored     int    `json:"ignored"`
	Rescued     int    `json:"rescued"` // failures a block's rescue took over
	Unknown     int    `json:"unknown"` // dry runs: tasks unknown until applied
}

// Recap is the result of a run.
type Recap struct {
	Hosts       []HostRecap
	Interrupted bool
	Aborted     string // why a play stopped early (any_errors_fatal, max_fail_percentage)

	// Unfinished are the hosts an interrupt stopped before their last play ended.
	Unfinished []string
}

// Outcome is what a run came to, worst first: the command line turns it
// into an exit code.
type Outcome int

const (
	OutcomeOK          Outcome = iota
	OutcomeFailed              // a host failed, none was unreachable; or a play was aborted
	OutcomeUnreachable         // a host was unreachable, whether or not others failed
	OutcomeInterrupted         // the run was interrupted
)

// Outcome says what the run came to. As in Ansible, an unreachable host
// outranks a failed one, and a play stopped by any_errors_fatal or
// max_fail_percentage counts as failed
// (lib/ansible/plugins/strategy/__init__.py, StrategyBase.run, and
// lib/ansible/executor/playbook_executor.py, RUN_FAILED_BREAK_PLAY).
func (r *Recap) Outcome() Outcome {
	failed, unreachable := false, false
	for _, h := range r.Hosts {
		failed = failed || h.Failed > 0
		unreachable = unreachable || h.Unreachable > 0
	}
	switch {
	case r.Interrupted:
		return OutcomeInterrupted
	case r.Aborted != "":
		return OutcomeFailed
	case unreachable:
		return OutcomeUnreachable
	case failed:
		return OutcomeFailed
	}
	return OutcomeOK
}

func (h *HostRecap) count(s Status) {
	switch s {
	case StatusOK:
		h.OK++
	case StatusChanged, StatusWouldChange:
		// As in Ansible, a changed task also counts as ok.
		h.OK++
		h.Changed++
	case StatusSkipped:
		h.Skipped++
	case StatusUnknown:
		h.Unknown++
	case StatusFailed:
		h.Failed++
	case StatusIgnored:
		h.Ignored++
	case StatusUnreachable:
		h.Unreachable++
	}
}
