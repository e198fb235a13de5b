package ovh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Server is the part of dedicated.server.Dedicated nixbook reads.
type Server struct {
	Name         string  `json:"name"`
	IP           string  `json:"ip"`
	BootID       *int64  `json:"bootId"`
	BootScript   *string `json:"bootScript"`
	RescueSSHKey *string `json:"rescueSshKey"`
	Datacenter   string  `json:"datacenter"`
	State        string  `json:"state"`
	PowerState   string  `json:"powerState"`
	Reverse      *string `json:"reverse"`
}

// Boot is a netboot (dedicated.server.Netboot).
type Boot struct {
	ID          int64  `json:"bootId"`
	BootType    string `json:"bootType"` // harddisk, rescue, power, ipxeCustomerScript, ...
	Kernel      string `json:"kernel"`
	Description string `json:"description"`
}

// String names a boot as messages show it: rescue12-customer (id 230242).
func (b Boot) String() string { return fmt.Sprintf("%s (id %d)", b.Kernel, b.ID) }

// Task is a dedicated.server.Task.
type Task struct {
	ID         int64   `json:"taskId"`
	Function   string  `json:"function"`
	Status     string  `json:"status"`
	Comment    *string `json:"comment"`
	StartDate  string  `json:"startDate"`
	DoneDate   *string `json:"doneDate"`
	LastUpdate *string `json:"lastUpdate"`
}

// Task statuses.
const (
	TaskInit          = "init"
	TaskTodo          = "todo"
	TaskDoing         = "doing"
	TaskDone          = "done"
	TaskCancelled     = "cancelled"
	TaskCustomerError = "customerError"
	TaskOVHError      = "ovhError"
)

// Final reports whether the task will not change any more.
func (t *Task) Final() bool {
	switch t.Status {
	case TaskDone, TaskCancelled, TaskCustomerError, TaskOVHError:
		return true
	}
	return false
}

func (t *Task) comment() string {
	if t.Comment == nil {
		return ""
	}
	return *t.Comment
}

// GetServer reads a server.
func (c *Client) GetServer(ctx context.Context, service string) (*Server, error) {
	var s Server
	if err := c.Do(ctx, Request{Method: http.MethodGet, Path: ServerPath(service)}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ListBoots lists a server's netboot ids, of one type if bootType is set.
func (c *Client) ListBoots(ctx context.Context, service, bootType string) ([]int64, error) {
	p := ServerPath(service, "boot")
	if bootType != "" {
		p += "?bootType=" + url.QueryEscape(bootType)
	}
	var ids []int64
	if err := c.Do(ctx, Request{Method: http.MethodGet, Path: p}, &ids); err != nil {
		return nil, err
	}
	return ids, nil
}

// GetBoot reads one netboot.
func (c *Client) GetBoot(ctx context.Context, service string, id int64) (*Boot, error) {
	var b Boot
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: ServerPath(service, "boot", strconv.FormatInt(id, 10))}, &b)
	if err != nil {
		return nil, err
	}
	if b.ID == 0 {
		b.ID = id
	}
	return &b, nil
}

// Boots lists a server's netboots of one type (all when bootType is empty)
// with their kernels, in the API's order.
func (c *Client) Boots(ctx context.Context, service, bootType string) ([]Boot, error) {
	ids, err := c.ListBoots(ctx, service, bootType)
	if err != nil {
		return nil, err
	}
	boots := make([]Boot, 0, len(ids))
	for _, id := range ids {
		b, err := c.GetBoot(ctx, service, id)
		if err != nil {
			return nil, err
		}
		boots = append(boots, *b)
	}
	return boots, nil
}

// SetBootRequest is the call SetBoot makes: a netboot and, when key is not
// empty, the rescue's SSH key (shown by its fingerprint).
func SetBootRequest(service string, bootID int64, rescueSSHKey string) Request {
	r := Request{Method: http.MethodPut, Path: ServerPath(service), Body: map[string]any{"bootId": bootID}}
	if rescueSSHKey != "" {
		r.Body["rescueSshKey"] = rescueSSHKey
		r.Show = map[string]string{"rescueSshKey": ShowKey(rescueSSHKey)}
	}
	return r
}

// SetBoot sets the server's netboot (and the rescue's SSH key) for its next
// boot.
func (c *Client) SetBoot(ctx context.Context, service string, bootID int64, rescueSSHKey string) error {
	return c.Do(ctx, SetBootRequest(service, bootID, rescueSSHKey), nil)
}

// RebootRequest is the call Reboot makes.
func RebootRequest(service string) Request {
	return Request{Method: http.MethodPost, Path: ServerPath(service, "reboot")}
}

// Reboot hard-reboots the server and returns the task that tracks it.
func (c *Client) Reboot(ctx context.Context, service string) (*Task, error) {
	var t Task
	if err := c.Do(ctx, RebootRequest(service), &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// GetTask reads a task.
func (c *Client) GetTask(ctx context.Context, service string, id int64) (*Task, error) {
	var t Task
	if err := c.Do(ctx, Request{Method: http.MethodGet, Path: ServerPath(service, "task", strconv.FormatInt(id, 10))}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// TaskError is a task that ended without being done.
type TaskError struct {
	Service string
	Task    Task
}

func (e *TaskError) Error() string {
	s := fmt.Sprintf("ovh: task %d (%s) on %s ended %s", e.Task.ID, e.Task.Function, e.Service, e.Task.Status)
	if c := e.Task.comment(); c != "" {
		s += ": " + c
	}
	return s
}

// WaitOptions tune WaitTask.
type WaitOptions struct {
	// Interval is the first pause between polls, growing by half each time
	// up to MaxInterval; zero: 5s and 30s (ovh-api.md §8: poll tasks every
	// 10-30s, not every second).
	Interval, MaxInterval time.Duration
	// NotFound is how many 404s in a row are waited out, as the API
	// answers 404 for a task it has not replicated yet; zero: 5.
	NotFound int
	// Progress is called with each new status.
	Progress func(Task)
}

// WaitTask polls a task until it is done, and fails with the task's comment
// when it ends in customerError or ovhError, or when it is cancelled. The
// caller bounds the wait with ctx.
func (c *Client) WaitTask(ctx context.Context, service string, id int64, o WaitOptions) (*Task, error) {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.MaxInterval <= 0 {
		o.MaxInterval = 30 * time.Second
	}
	if o.NotFound <= 0 {
		o.NotFound = 5
	}
	pause, notFound, last := o.Interval, 0, ""
	for {
		t, err := c.GetTask(ctx, service, id)
		var apiErr *Error
		switch {
		case errors.As(err, &apiErr) && apiErr.NotFound() && notFound < o.NotFound:
			notFound++
		case err != nil:
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("ovh: task %d on %s still %s: %w", id, service, orUnknown(last), ctx.Err())
			}
			return nil, err
		default:
			notFound = 0
			if t.Status != last {
				last = t.Status
				if o.Progress != nil {
					o.Progress(*t)
				}
			}
			switch t.Status {
			case TaskDone:
				return t, nil
			case TaskCancelled, TaskCustomerError, TaskOVHError:
				return t, &TaskError{Service: service, Task: *t}
			}
		}
		if err := c.sleep(ctx, pause); err != nil {
			return nil, fmt.Errorf("ovh: task %d on %s still %s: %w", id, service, orUnknown(last), err)
		}
		pause = min(pause+pause/2, o.MaxInterval)
	}
}

func orUnknown(status string) string {
	if status == "" {
		return "unknown"
	}
	return status
}

// rescueVersion reads the release in a rescue kernel name: rescue12-customer -> 12.
var rescueVersion = regexp.MustCompile(`^rescue(\d*)`)

// PickRescue chooses the Linux rescue among boots by its kernel, never by
// its place in the list: the list of bootType=rescue also holds the iPXE
// shell, which never answers SSH. A customer rescue (rescue12-customer) is
// preferred, the newest first.
func PickRescue(boots []Boot) (Boot, error) {
	var cands []Boot
	for _, b := range boots {
		k := strings.ToLower(b.Kernel)
		if strings.Contains(k, "rescue") && !strings.Contains(k, "ipxe") && b.BootType != "harddisk" && b.BootType != "power" {
			cands = append(cands, b)
		}
	}
	if len(cands) == 0 {
		return Boot{}, fmt.Errorf("no Linux rescue among the server's boots (%s)", listBoots(boots))
	}
	rank := func(b Boot) (customer bool, version int) {
		k := strings.ToLower(b.Kernel)
		customer = strings.HasPrefix(k, "rescue") && strings.Contains(k, "customer")
		if m := rescueVersion.FindStringSubmatch(k); m != nil && m[1] != "" {
			version, _ = strconv.Atoi(m[1])
		}
		return customer, version
	}
	sort.SliceStable(cands, func(i, j int) bool {
		ci, vi := rank(cands[i])
		cj, vj := rank(cands[j])
		if ci != cj {
			return ci
		}
		if vi != vj {
			return vi > vj
		}
		return cands[i].ID < cands[j].ID
	})
	return cands[0], nil
}

// PickHarddisk chooses the boot from the disk.
func PickHarddisk(boots []Boot) (Boot, error) {
	var best *Boot
	for i, b := range boots {
		if b.BootType == "harddisk" && (best == nil || b.ID < best.ID) {
			best = &boots[i]
		}
	}
	if best == nil {
		return Boot{}, fmt.Errorf("no boot from the hard disk among the server's boots (%s)", listBoots(boots))
	}
	return *best, nil
}

func listBoots(boots []Boot) string {
	if len(boots) == 0 {
		return "none"
	}
	parts := make([]string, len(boots))
	for i, b := range boots {
		parts[i] = b.String()
	}
	return strings.Join(parts, ", ")
}

// ShowKey shortens an SSH public key for plans and logs: its type, the
// start of its base64 and its SHA256 fingerprint.
func ShowKey(key string) string {
	f := strings.Fields(key)
	if len(f) < 2 {
		return key
	}
	fp, err := Fingerprint(key)
	if err != nil {
		return f[0] + " " + abbreviate(f[1])
	}
	return f[0] + " " + abbreviate(f[1]) + " (" + fp + ")"
}

func abbreviate(s string) string {
	if len(s) <= 16 {
		return s
	}
	return s[:12] + "…"
}
