package runner

import (
	"maps"

	"github.com/nixbook/nixbook/internal/modules"
)

// taskResult is what one task, or one item of its loop, came to. Register
// is the only place that knows the keys Ansible's register gives it.
type taskResult struct {
	status     Status
	msg        string
	plan       *modules.Plan
	output     modules.Output // the module's, or in a dry run its plan's
	skipReason string
	attempts   int        // with retries/until: how many it took
	items      []loopItem // a loop's items, in order; nil without a loop
}

// loopItem is one item of a loop and its result.
type loopItem struct {
	result taskResult
	name   string // the loop variable
	value  any
}

// failed is a result that failed with msg.
func failed(msg string) taskResult { return taskResult{status: StatusFailed, msg: msg} }

// Register is the result as `register` gives it to later tasks, with
// Ansible's keys: changed, failed (with msg), skipped (with skip_reason),
// attempts, and a loop's results.
func (res taskResult) Register() map[string]any {
	out := map[string]any{}
	maps.Copy(out, res.output)
	out["changed"] = res.status == StatusChanged || res.status == StatusWouldChange
	switch res.status {
	case StatusSkipped, StatusUnknown:
		out["skipped"] = true
		if res.skipReason != "" {
			out["skip_reason"] = res.skipReason
		}
	case StatusFailed, StatusIgnored, StatusUnreachable:
		out["failed"] = true
		if res.msg != "" {
			out["msg"] = res.msg
		}
	default:
		out["failed"] = false
	}
	if res.attempts > 0 {
		out["attempts"] = res.attempts
	}
	if res.items != nil {
		results := make([]any, len(res.items))
		for i, it := range res.items {
			r := it.result.Register()
			r[it.name] = it.value
			results[i] = r
		}
		out["results"] = results
		out["failed"] = res.status == StatusFailed || res.status == StatusIgnored
		out["skipped"] = res.status == StatusSkipped
	}
	return out
}

// worse orders statuses so a loop reports its worst item.
func worse(a, b Status) Status {
	rank := map[Status]int{StatusSkipped: 0, StatusOK: 1, StatusWouldChange: 2, StatusChanged: 2, StatusIgnored: 3, StatusFailed: 4, StatusUnreachable: 5}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// unknown is a dry run's result for a task it cannot plan.
func unknown(why string) taskResult {
	return taskResult{status: StatusUnknown, msg: why, skipReason: "unknown until applied: " + why}
}

func resultFromError(err error, plan *modules.Plan, output modules.Output) taskResult {
	st := StatusFailed
	if isUnreachable(err) {
		st = StatusUnreachable
	}
	return taskResult{status: st, msg: err.Error(), output: output, plan: plan}
}
