package ovhapi

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ovh/go-ovh/ovh"
)

var statusOrder = []string{StatusInit, StatusTodo, StatusDoing, StatusDone}

// bootByKernel finds a boot of bootType by kernel the way a careful client
// does: list, then look at each entry.
func bootByKernel(t *testing.T, c *ovh.Client, name, bootType, kernel string) (ids []int64, chosen netboot) {
	t.Helper()
	if err := c.Get(serverPath(name, "boot?bootType="+bootType), &ids); err != nil {
		t.Fatalf("GET boot?bootType=%s: %v", bootType, err)
	}
	for _, id := range ids {
		var b netboot
		if err := c.Get(serverPath(name, "boot", itoa(id)), &b); err != nil {
			t.Fatalf("GET boot/%d: %v", id, err)
		}
		if b.BootID != id || b.BootType != bootType {
			t.Fatalf("boot/%d = %+v, want bootId %d and bootType %s", id, b, id, bootType)
		}
		if b.Kernel == kernel {
			chosen = b
		}
	}
	if chosen.BootID == 0 {
		t.Fatalf("no %s boot with kernel %s among %v", bootType, kernel, ids)
	}
	return ids, chosen
}

// rebootAndWait reboots the server and waits for the task, checking the task
// went through the statuses in order.
func rebootAndWait(t *testing.T, c *ovh.Client, name string) apiTask {
	t.Helper()
	var task apiTask
	if err := c.Post(serverPath(name, "reboot"), nil, &task); err != nil {
		t.Fatalf("POST reboot: %v", err)
	}
	if task.Status != StatusInit || task.Function != "hardReboot" || task.Comment == nil || *task.Comment != "Reboot asked" || task.DoneDate != nil {
		t.Fatalf("new task = %+v, want init hardReboot \"Reboot asked\" without doneDate", task)
	}
	seen, final := pollTask(t, c, name, task.TaskID)
	if final.Status != StatusDone || final.DoneDate == nil {
		t.Fatalf("task ended %+v (statuses %v), want done with a doneDate", final, seen)
	}
	last := -1
	for _, s := range seen {
		i := slices.Index(statusOrder, s)
		if i <= last {
			t.Fatalf("statuses %v are not in the order %v", seen, statusOrder)
		}
		last = i
	}
	return final
}

// rescueAndBack is the sequence the rescue module runs: boot the Linux
// rescue with a key, reboot, then back to the disk.
func rescueAndBack(t *testing.T, e *Emulator, log *rebootLog, c *ovh.Client, name string) {
	t.Helper()
	ids, rescue := bootByKernel(t, c, name, "rescue", "rescue12-customer")
	if len(ids) < 2 || ids[0] == rescue.BootID {
		t.Fatalf("rescue boots %v: the iPXE shell must come first so that taking [0] is wrong", ids)
	}
	if err := c.Put(serverPath(name), map[string]any{"bootId": rescue.BootID, "rescueSshKey": edKey}, nil); err != nil {
		t.Fatalf("PUT bootId: %v", err)
	}
	var got struct {
		BootID       int64  `json:"bootId"`
		RescueSSHKey string `json:"rescueSshKey"`
	}
	if err := c.Get(serverPath(name), &got); err != nil {
		t.Fatalf("GET server: %v", err)
	}
	if got.BootID != rescue.BootID || got.RescueSSHKey != edKey {
		t.Fatalf("after PUT: %+v", got)
	}

	rebootAndWait(t, c, name)
	calls := log.forServer(name)
	want := rebootCall{Server: name, Boot: Netboot{ID: 230242, BootType: "rescue", Kernel: "rescue12-customer", Description: "Customer rescue system (Debian-12-based)"}, Key: edKey}
	if len(calls) != 1 || calls[0] != want {
		t.Fatalf("OnReboot calls = %+v, want once %+v", calls, want)
	}
	if st, _ := e.Server(name); st.Mode != ModeRescue || st.PowerState != "poweron" {
		t.Fatalf("after the rescue reboot: mode %q power %q, want rescue poweron", st.Mode, st.PowerState)
	}

	_, hd := bootByKernel(t, c, name, "harddisk", "hd")
	if err := c.Put(serverPath(name), map[string]any{"bootId": hd.BootID}, nil); err != nil {
		t.Fatalf("PUT bootId hd: %v", err)
	}
	rebootAndWait(t, c, name)
	calls = log.forServer(name)
	if len(calls) != 2 || calls[1].Boot.Kernel != "hd" || calls[1].Boot.ID != 1 {
		t.Fatalf("OnReboot calls = %+v, want a second one booting hd", calls)
	}
	st, _ := e.Server(name)
	if st.Mode != ModeDisk || st.BootID != 1 || len(st.Tasks) != 2 {
		t.Fatalf("after the disk reboot: %+v", st)
	}
	for _, task := range st.Tasks {
		if task.Status != StatusDone || task.Done.Before(task.Started) {
			t.Errorf("task %+v: want done after its start", task)
		}
	}
}

func TestRescueAndBackToDisk(t *testing.T) {
	log := newRebootLog()
	e, endpoint := start(t, Config{
		Timings:  Timings{Init: 50 * time.Millisecond, Todo: 50 * time.Millisecond, Doing: 50 * time.Millisecond},
		OnReboot: log.onReboot,
	}, testServer(testSN))
	if st, _ := e.Server(testSN); st.Mode != ModeDisk {
		t.Fatalf("a new server booting the disk runs %q, want disk", st.Mode)
	}
	rescueAndBack(t, e, log, client(t, endpoint), testSN)
}

func TestConcurrentRescues(t *testing.T) {
	log := newRebootLog()
	var servers []Server
	for i := range 10 {
		servers = append(servers, testServer(fmt.Sprintf("ns%d.ip-203-0-113.eu", i)))
	}
	e, endpoint := start(t, Config{
		Timings:  Timings{Init: 20 * time.Millisecond, Todo: 20 * time.Millisecond, Doing: 20 * time.Millisecond},
		OnReboot: log.onReboot,
	}, servers...)
	var wg sync.WaitGroup
	for _, s := range servers {
		// One client each: go-ovh v1.9.0 writes c.Client.Timeout on every
		// call, a data race when goroutines share a *ovh.Client.
		c := client(t, endpoint)
		wg.Go(func() {
			t.Run(s.Name, func(t *testing.T) { rescueAndBack(t, e, log, c, s.Name) })
		})
	}
	wg.Wait()
	if n := len(log.calls); n != 20 {
		t.Fatalf("OnReboot called %d times, want 20", n)
	}
}
