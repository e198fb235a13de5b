package ovh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
)

// conflict reports a 409: the API refuses a call while another is in
// progress, as a reboot while a reboot task is pending.
func conflict(err error) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict
}

// waitPendingReboot waits for the server's pending hardReboot task to end,
// whatever its outcome. It fails when the list shows no pending task: the
// conflict then has another cause, which waiting would not clear.
func (c *Client) waitPendingReboot(ctx context.Context, service string, o WaitOptions) error {
	ids, err := c.ListTasks(ctx, service, FuncHardReboot)
	if err != nil {
		return err
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	for _, id := range ids {
		t, err := c.GetTask(ctx, service, id)
		if err != nil {
			return err
		}
		if !t.pending() {
			break // tasks run in order: older ones have ended too
		}
		c.log("ovh: reboot of %s: task %d (%s) is pending; waiting for it to end before asking again", service, t.ID, t.Status)
		o.Progress = nil
		if _, err := c.WaitTask(ctx, service, t.ID, o); err != nil {
			var taskErr *TaskError
			if !errors.As(err, &taskErr) {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no hardReboot task of %s is pending", service)
}
