package ovh

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	// Monitoring makes OVH's technicians intervene when the server stops
	// answering ping, which a reinstall's reboots do.
	Monitoring bool `json:"monitoring"`
	// EFIBootloaderPath is the loader a UEFI server runs when it boots
	// its disk; ignored by BIOS servers.
	EFIBootloaderPath *string `json:"efiBootloaderPath"`
	// CommercialRange and Datacenter together name the netboot catalog the
	// server shares with its siblings (see RangeBoots).
	CommercialRange string `json:"commercialRange"`
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
	Note       *string `json:"note"`
	StartDate  string  `json:"startDate"`
	DoneDate   *string `json:"doneDate"`
	LastUpdate *string `json:"lastUpdate"`
}

// Task statuses (dedicated.TaskStatusEnum).
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

// pending reports a status the task moves on from.
func (t *Task) pending() bool {
	switch t.Status {
	case TaskInit, TaskTodo, TaskDoing:
		return true
	}
	return false
}

// remarks are the task's comment and note, as failures show them.
func (t *Task) remarks() string {
	var parts []string
	if t.Comment != nil && strings.TrimSpace(*t.Comment) != "" {
		parts = append(parts, strings.TrimSpace(*t.Comment))
	}
	if t.Note != nil && strings.TrimSpace(*t.Note) != "" {
		parts = append(parts, "note: "+strings.TrimSpace(*t.Note))
	}
	return strings.Join(parts, "; ")
}

// GetServer reads a server. A read made earlier in the run serves as long
// as no write went to the server since (see Client.Do).
func (c *Client) GetServer(ctx context.Context, service string) (*Server, error) {
	r := Request{Method: http.MethodGet, Path: ServerPath(service)}
	s, err := cachedGet(ctx, c, serverKey(service), serverTTL, r, same[Server])
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// IPs lists the server's IP blocks; they do not change during a run.
func (c *Client) IPs(ctx context.Context, service string) ([]string, error) {
	r := Request{Method: http.MethodGet, Path: ServerPath(service, "ips")}
	return cachedGet(ctx, c, "ips\x00"+service, catalogTTL, r, cloneSlice[string])
}

// ListBoots lists a server's netboot ids, of one type if bootType is set.
// The list does not change during a run: it is read once per server.
func (c *Client) ListBoots(ctx context.Context, service, bootType string) ([]int64, error) {
	r := Request{Method: http.MethodGet, Path: bootListPath(service, bootType)}
	return cachedGet(ctx, c, "boots\x00"+service+"\x00"+bootType, catalogTTL, r, cloneSlice[int64])
}

func bootListPath(service, bootType string) string {
	p := ServerPath(service, "boot")
	if bootType != "" {
		p += "?bootType=" + url.QueryEscape(bootType)
	}
	return p
}

// GetBoot reads one netboot. Netboot ids are the endpoint's, not the
// server's (1 is the disk, 230242 rescue12-customer everywhere), so each is
// read once per endpoint and run whichever server asks.
func (c *Client) GetBoot(ctx context.Context, service string, id int64) (*Boot, error) {
	r := Request{Method: http.MethodGet, Path: ServerPath(service, "boot", strconv.FormatInt(id, 10))}
	b, err := cachedGet(ctx, c, "boot\x00"+strconv.FormatInt(id, 10), catalogTTL, r, same[Boot])
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
	return c.bootsOf(ctx, service, ids)
}

// bootsOf reads the netboots of ids, in their order.
func (c *Client) bootsOf(ctx context.Context, service string, ids []int64) ([]Boot, error) {
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

// RangeBoots is Boots for a server already read, with the list of ids
// read once for every server of the same commercial range and datacenter:
// OVH's netboot catalog is the range's, so a 100-server --check reads it
// once, not a hundred times. Shared answers only serve plans; Apply
// confirms its boot against the server's own list (see OwnBoot).
func (c *Client) RangeBoots(ctx context.Context, srv *Server, bootType string) ([]Boot, error) {
	if srv.CommercialRange == "" || srv.Datacenter == "" {
		return c.Boots(ctx, srv.Name, bootType)
	}
	key := "range-boots\x00" + srv.CommercialRange + "\x00" + srv.Datacenter + "\x00" + bootType
	r := Request{Method: http.MethodGet, Path: bootListPath(srv.Name, bootType)}
	ids, err := cachedGet(ctx, c, key, catalogTTL, r, cloneSlice[int64])
	if err != nil {
		return nil, err
	}
	return c.bootsOf(ctx, srv.Name, ids)
}

// OwnBoot confirms that want is among the server's own netboots of its
// type, else picks again among them with pick; it returns the boot to set.
func (c *Client) OwnBoot(ctx context.Context, service string, want Boot, pick func([]Boot) (Boot, error)) (Boot, error) {
	boots, err := c.Boots(ctx, service, want.BootType)
	if err != nil {
		return Boot{}, err
	}
	for _, b := range boots {
		if b.ID == want.ID {
			return b, nil
		}
	}
	got, err := pick(boots)
	if err != nil {
		return Boot{}, fmt.Errorf("%s: %w", service, err)
	}
	return got, nil
}

// VarEFIBootloaderPath overrides, for a UEFI server, the loader its disk
// boots (default RemovableEFILoader), such as systemd-boot's.
const VarEFIBootloaderPath = "ovh_efi_bootloader_path"

// RemovableEFILoader is where GRUB installed as removable puts itself, as
// the NixOS configuration nixbook generates for UEFI servers has it.
const RemovableEFILoader = `\EFI\BOOT\BOOTX64.EFI`

// EFIPath is the loader a server booting with firmware ("uefi" or
// "bios", from facts) must run from its disk: "" for BIOS, else the
// host's ovh_efi_bootloader_path or RemovableEFILoader.
func EFIPath(firmware string, vars map[string]any) string {
	if firmware != "uefi" {
		return ""
	}
	if p := stringVar(vars, VarEFIBootloaderPath); p != "" {
		return p
	}
	return RemovableEFILoader
}

// SameEFIPath compares loader paths as UEFI finds files on FAT: case
// aside, either slash.
func SameEFIPath(a, b string) bool {
	norm := func(p string) string { return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(p), "/", `\`)) }
	return norm(a) == norm(b)
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

// FuncHardReboot is the function of the task a reboot creates.
const FuncHardReboot = "hardReboot"

// Reboot hard-reboots the server and returns the task that tracks it. A
// hard reboot is not safe to ask twice: when the POST fails in a way that
// may have rebooted the server anyway (a 5xx, a timeout), Reboot looks for a
// hardReboot task that started after it asked, for o.Adopt, and adopts it;
// it asks again only when the task list showed none all along, and not at
// all when the list could not be read.
func (c *Client) Reboot(ctx context.Context, service string, o WaitOptions) (*Task, error) {
	o = o.withDefaults()
	for attempt := 0; ; attempt++ {
		asked := c.apiNow()
		var t Task
		err := c.Do(ctx, RebootRequest(service), &t)
		if err == nil {
			c.remember(t.ID)
			return &t, nil
		}
		if conflict(err) && attempt < c.retries {
			// Another reboot is pending: it boots whatever the netboot is
			// when it runs, perhaps not this one. Let it end, then ask.
			if werr := c.waitPendingReboot(ctx, service, o); werr != nil {
				return nil, fmt.Errorf("ovh: reboot of %s: %w; and the pending reboot: %w", service, err, werr)
			}
			continue
		}
		if !errors.Is(err, ErrMaybeDone) {
			return nil, err
		}
		c.log("ovh: reboot of %s: %v; looking for its task before asking again", service, shortErr(err))
		found, lookErr := c.findTaskSince(ctx, service, FuncHardReboot, asked, o)
		switch {
		case found != nil:
			c.remember(found.ID)
			c.log("ovh: reboot of %s: adopted task %d (%s), started %s", service, found.ID, found.Status, found.StartDate)
			return found, nil
		case lookErr != nil:
			return nil, fmt.Errorf("ovh: reboot of %s: %w; whether it was carried out is unknown (%w), so it is not asked again: look at the server's tasks in the OVH manager before running again", service, err, lookErr)
		case attempt >= c.retries:
			return nil, fmt.Errorf("ovh: reboot of %s: %w; no hardReboot task appeared within %s", service, err, o.Adopt)
		}
		c.log("ovh: reboot of %s: no hardReboot task appeared within %s; asking again", service, o.Adopt)
	}
}

// apiNow is the API's clock as go-ovh knows it (its offset is taken at the
// first call).
func (c *Client) apiNow() time.Time {
	delta, err := c.api.TimeDelta()
	if err != nil {
		delta = 0
	}
	return time.Now().Add(-delta)
}

// ListTasks lists a server's task ids of one function (all when function
// is empty).
func (c *Client) ListTasks(ctx context.Context, service, function string) ([]int64, error) {
	p := ServerPath(service, "task")
	if function != "" {
		p += "?function=" + url.QueryEscape(function)
	}
	var ids []int64
	if err := c.Do(ctx, Request{Method: http.MethodGet, Path: p}, &ids); err != nil {
		return nil, err
	}
	return ids, nil
}

// taskSlack absorbs startDate's whole seconds when a task's start is
// compared with the time a call left: go-ovh's offset comes from whole
// seconds too, so its clock runs at most 1s behind the API's, never ahead.
const taskSlack = time.Second

// remember records a task this client started, which a later lost reboot
// must not adopt even if it started within taskSlack.
func (c *Client) remember(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started == nil {
		c.started = map[int64]bool{}
	}
	c.started[id] = true
}

func (c *Client) startedByUs(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started[id]
}

// findTaskSince looks, for o.Adopt, for a task of function that started at
// or after since. It returns (nil, nil) only when every look over the whole
// window read the list and found none; an error when some look could not
// tell, as a task may show in the list, or answer, only some time after it
// was created.
func (c *Client) findTaskSince(ctx context.Context, service, function string, since time.Time, o WaitOptions) (*Task, error) {
	threshold := since.Add(-taskSlack)
	deadline := c.now().Add(o.Adopt)
	pause := o.Interval
	for {
		t, err := c.lookTaskSince(ctx, service, function, threshold)
		if t != nil {
			return t, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !c.now().Before(deadline) {
			return nil, err
		}
		if serr := c.sleep(ctx, pause); serr != nil {
			return nil, serr
		}
		pause = min(pause+pause/2, o.MaxInterval)
	}
}

// lookTaskSince reads the task list once, newest first (task ids grow), and
// stops at the first task that started before threshold.
func (c *Client) lookTaskSince(ctx context.Context, service, function string, threshold time.Time) (*Task, error) {
	ids, err := c.ListTasks(ctx, service, function)
	if err != nil {
		return nil, err
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	var unsure error
	for _, id := range ids {
		if c.startedByUs(id) {
			break // older than our last reboot
		}
		t, err := c.GetTask(ctx, service, id)
		if err != nil {
			unsure = err
			continue
		}
		start, perr := time.Parse(time.RFC3339, t.StartDate)
		if perr != nil {
			unsure = fmt.Errorf("task %d: start date %q: %w", id, t.StartDate, perr)
			continue
		}
		if start.Before(threshold) {
			break
		}
		if t.Function == function || t.Function == "" {
			return t, nil
		}
	}
	return nil, unsure
}

// GetTask reads a task.
func (c *Client) GetTask(ctx context.Context, service string, id int64) (*Task, error) {
	var t Task
	if err := c.Do(ctx, Request{Method: http.MethodGet, Path: ServerPath(service, "task", strconv.FormatInt(id, 10))}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// TaskError is a task that ended without being done, or whose status is
// not one OVH documents.
type TaskError struct {
	Service string
	Task    Task
}

func (e *TaskError) Error() string {
	verb := "ended"
	if !e.Task.Final() {
		verb = "has a status OVH does not document:"
	}
	s := fmt.Sprintf("ovh: task %d (%s) on %s %s %s", e.Task.ID, e.Task.Function, e.Service, verb, e.Task.Status)
	if r := e.Task.remarks(); r != "" {
		s += ": " + r
	}
	return s
}

// WaitOptions tune WaitTask and Reboot.
type WaitOptions struct {
	// FirstPoll is the pause before the first poll, as a new task often
	// answers 404 at first; zero: 10s, as OVH's Terraform provider waits.
	FirstPoll time.Duration
	// Interval is the first pause between polls, growing by half each time
	// up to MaxInterval; zero: 5s and 30s (ovh-api.md §8: poll tasks every
	// 10-30s, not every second).
	Interval, MaxInterval time.Duration
	// Tolerate is how long a spell of failed polls (404, 5xx, 429, network
	// errors) is waited out; zero: 5m, as OVH's provider retries each poll
	// for 5 minutes: the API "often returns 500/404 errors" on tasks.
	Tolerate time.Duration
	// Adopt is how long Reboot looks for the task of a reboot whose answer
	// was lost before it asks again; zero: 1m.
	Adopt time.Duration
	// Progress is called with each new status.
	Progress func(Task)
}

func (o WaitOptions) withDefaults() WaitOptions {
	if o.FirstPoll <= 0 {
		o.FirstPoll = 10 * time.Second
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.MaxInterval <= 0 {
		o.MaxInterval = 30 * time.Second
	}
	if o.Tolerate <= 0 {
		o.Tolerate = 5 * time.Minute
	}
	if o.Adopt <= 0 {
		o.Adopt = time.Minute
	}
	return o
}

// transient reports an answer a task poll waits out: the task API answers
// 404 for a task another region has not seen yet, and 5xx on a bad day.
func transient(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.NotFound() || apiErr.Status == http.StatusTooManyRequests ||
			apiErr.Status == http.StatusRequestTimeout || apiErr.Status >= 500
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// WaitTask polls a task until it is done. It fails at once when the task
// ends in customerError or ovhError, is cancelled, or shows a status OVH
// does not document, and when its polls have failed for longer than
// o.Tolerate; every failure shows the task's comment and note. The caller
// bounds the whole wait with ctx.
func (c *Client) WaitTask(ctx context.Context, service string, id int64, o WaitOptions) (*Task, error) {
	o = o.withDefaults()
	var last Task
	last.ID = id
	still := func(err error) error {
		s := fmt.Sprintf("ovh: task %d on %s still %s", id, service, orUnknown(last.Status))
		if r := last.remarks(); r != "" {
			s += " (" + r + ")"
		}
		return fmt.Errorf("%s: %w", s, err)
	}
	if err := c.sleep(ctx, o.FirstPoll); err != nil {
		return nil, still(err)
	}
	pause := o.Interval
	var failingSince time.Time
	for {
		t, err := c.GetTask(ctx, service, id)
		switch {
		case err == nil:
			failingSince = time.Time{}
			if t.Status != last.Status && o.Progress != nil {
				o.Progress(*t)
			}
			last = *t
			switch {
			case t.Status == TaskDone:
				return t, nil
			case t.Final(), !t.pending():
				return t, &TaskError{Service: service, Task: *t}
			}
		case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
			cause := ctx.Err()
			if cause == nil { // the rate limit had no slot before the deadline
				cause = context.DeadlineExceeded
			}
			return nil, still(cause)
		case transient(err):
			now := c.now()
			if failingSince.IsZero() {
				failingSince = now
			}
			if spell := now.Sub(failingSince); spell >= o.Tolerate {
				return nil, still(fmt.Errorf("its polls failed for %s: %w", spell.Round(time.Second), err))
			}
			c.log("ovh: task %d on %s: %v; polling on", id, service, shortErr(err))
		default:
			return nil, still(err)
		}
		if err := c.sleep(ctx, pause); err != nil {
			return nil, still(err)
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
// shell, which never answers SSH, and on some servers Windows rescues
// (rescue-customer-windows, WinRescue), which take a mailed password and
// ignore rescueSshKey. A customer rescue (rescue12-customer) is preferred,
// the newest first.
func PickRescue(boots []Boot) (Boot, error) {
	var cands []Boot
	for _, b := range boots {
		k := strings.ToLower(b.Kernel)
		windows := strings.Contains(k, "windows") || strings.Contains(k, "winrescue")
		if strings.Contains(k, "rescue") && !windows && !strings.Contains(k, "ipxe") && b.BootType != "harddisk" && b.BootType != "power" {
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
