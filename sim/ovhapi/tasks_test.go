package ovhapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

func postReboot(t *testing.T, c interface {
	Post(string, any, any) error
}, name string) apiTask {
	t.Helper()
	var task apiTask
	if err := c.Post(serverPath(name, "reboot"), nil, &task); err != nil {
		t.Fatalf("POST reboot: %v", err)
	}
	return task
}

func waitReboot(t *testing.T, log *rebootLog) rebootCall {
	t.Helper()
	select {
	case c := <-log.seen:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("OnReboot was not called within 5s")
		return rebootCall{}
	}
}

// TestTaskFollowsTheClock drives a task with a fake clock: each status comes
// exactly when the clock says so, OnReboot runs once on entering doing, and
// done waits for both the clock and OnReboot.
func TestTaskFollowsTheClock(t *testing.T) {
	start0 := time.Date(2024, 1, 26, 16, 57, 10, 0, time.UTC)
	clock := &fakeClock{now: start0}
	log := newRebootLog()
	e, endpoint := start(t, Config{
		Now:      clock.Now,
		Timings:  Timings{Init: 10 * time.Second, Todo: 20 * time.Second, Doing: 30 * time.Second},
		OnReboot: log.onReboot,
	}, testServer(testSN))
	c := client(t, endpoint)
	if err := c.Put(serverPath(testSN), map[string]any{"bootId": 95083}, nil); err != nil {
		t.Fatal(err)
	}
	task := postReboot(t, c, testSN)
	get := func() apiTask {
		t.Helper()
		var got apiTask
		if err := c.Get(serverPath(testSN, "task", itoa(task.TaskID)), &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	steps := []struct {
		advance    time.Duration
		wantStatus string
		wantUpdate time.Duration // lastUpdate - start
	}{
		{0, StatusInit, 0},
		{9 * time.Second, StatusInit, 0},
		{1 * time.Second, StatusTodo, 10 * time.Second},
		{19 * time.Second, StatusTodo, 10 * time.Second},
		{1 * time.Second, StatusDoing, 30 * time.Second},
	}
	for _, s := range steps {
		clock.Add(s.advance)
		got := get()
		if got.Status != s.wantStatus || *got.LastUpdate != apiDate(start0.Add(s.wantUpdate)) || got.StartDate != "2024-01-26T16:57:10Z" {
			t.Fatalf("at +%v: %+v, want %s updated at +%v", clock.Now().Sub(start0), got, s.wantStatus, s.wantUpdate)
		}
	}
	call := waitReboot(t, log)
	if call.Boot.Kernel != "poweroff" {
		t.Fatalf("OnReboot booted %+v, want the poweroff boot", call.Boot)
	}
	for !e.rebooted(task.TaskID) {
		time.Sleep(time.Millisecond)
	}
	clock.Add(29 * time.Second)
	if got := get(); got.Status != StatusDoing {
		t.Fatalf("1s before the end: %s", got.Status)
	}
	clock.Add(time.Second)
	got := get()
	if got.Status != StatusDone || *got.DoneDate != "2024-01-26T16:58:10Z" || *got.LastUpdate != *got.DoneDate {
		t.Fatalf("at the end: %+v", got)
	}
	st, _ := e.Server(testSN)
	if st.Mode != ModeOff || st.PowerState != "poweroff" || len(log.calls) != 1 {
		t.Fatalf("after a poweroff reboot: mode %s power %s, %d OnReboot calls", st.Mode, st.PowerState, len(log.calls))
	}
	var raw map[string]any
	if err := c.Get(serverPath(testSN), &raw); err != nil || raw["powerState"] != "poweroff" {
		t.Fatalf("GET server powerState = %v, %v", raw["powerState"], err)
	}
}

// TestTaskRunsWithoutPolling: nobody looks at the task, yet the server is
// rebooted when the task enters doing and the mode set when it is done.
func TestTaskRunsWithoutPolling(t *testing.T) {
	log := newRebootLog()
	e, endpoint := start(t, Config{
		Timings:  Timings{Init: 20 * time.Millisecond, Todo: 20 * time.Millisecond, Doing: 20 * time.Millisecond},
		OnReboot: log.onReboot,
	}, testServer(testSN))
	c := client(t, endpoint)
	if err := c.Put(serverPath(testSN), map[string]any{"bootId": 203323}, nil); err != nil {
		t.Fatal(err)
	}
	posted := time.Now()
	postReboot(t, c, testSN)
	call := waitReboot(t, log)
	if elapsed := time.Since(posted); elapsed < 40*time.Millisecond {
		t.Fatalf("OnReboot ran %v after the POST, before the task could be doing", elapsed)
	}
	if call.Boot.Kernel != "ipxe-shell" {
		t.Fatalf("booted %+v", call.Boot)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := e.Server(testSN)
		if st.Mode == ModeIPXE && st.Tasks[0].Status == StatusDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never done: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCancel(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1700000000, 0)}
	log := newRebootLog()
	e, endpoint := start(t, Config{
		Now:      clock.Now,
		Timings:  Timings{Init: time.Second, Todo: time.Second, Doing: time.Second},
		OnReboot: log.onReboot,
	}, testServer(testSN))
	c := client(t, endpoint)

	first := postReboot(t, c, testSN)
	if err := c.Post(serverPath(testSN, "task", itoa(first.TaskID), "cancel"), nil, nil); err != nil {
		t.Fatalf("cancel a pending task: %v", err)
	}
	clock.Add(5 * time.Second)
	var got apiTask
	if err := c.Get(serverPath(testSN, "task", itoa(first.TaskID)), &got); err != nil || got.Status != StatusCancelled || got.DoneDate == nil {
		t.Fatalf("cancelled task = %+v, %v", got, err)
	}

	second := postReboot(t, c, testSN)
	clock.Add(2 * time.Second) // doing: the power cycle has started
	ae := apiErr(t, c.Post(serverPath(testSN, "task", itoa(second.TaskID), "cancel"), nil, nil))
	if ae.Code != 400 || ae.Class != "Client::BadRequest" {
		t.Fatalf("cancel while doing: %+v", ae)
	}
	waitReboot(t, log)

	var ids []int64
	if err := c.Get(serverPath(testSN, "task?function=hardReboot&status=cancelled"), &ids); err != nil || !slices.Equal(ids, []int64{first.TaskID}) {
		t.Fatalf("cancelled tasks = %v, %v", ids, err)
	}
	if err := c.Get(serverPath(testSN, "task?status=doing"), &ids); err != nil || !slices.Equal(ids, []int64{second.TaskID}) {
		t.Fatalf("doing tasks = %v, %v", ids, err)
	}
	if err := c.Get(serverPath(testSN, "task?function=reinstallServer"), &ids); err != nil || len(ids) != 0 {
		t.Fatalf("reinstall tasks = %v, %v", ids, err)
	}
	e.Close() // waits for the task goroutines
	if calls := log.forServer(testSN); len(calls) != 1 {
		t.Fatalf("OnReboot called %d times, want once (for the task not cancelled)", len(calls))
	}
}

func TestFaults(t *testing.T) {
	fast := Timings{Init: 10 * time.Millisecond, Todo: 10 * time.Millisecond, Doing: 10 * time.Millisecond}

	t.Run("task ends in ovhError", func(t *testing.T) {
		log := newRebootLog()
		e, endpoint := start(t, Config{Timings: fast, OnReboot: log.onReboot}, testServer(testSN))
		c := client(t, endpoint)
		e.InjectFault(testSN, Fault{TaskStatus: StatusOVHError, Comment: "Server is not responding to the power cycle"})
		if err := c.Put(serverPath(testSN), map[string]any{"bootId": 230242}, nil); err != nil {
			t.Fatal(err)
		}
		task := postReboot(t, c, testSN)
		seen, final := pollTask(t, c, testSN, task.TaskID)
		if final.Status != StatusOVHError || final.Comment == nil || *final.Comment != "Server is not responding to the power cycle" || final.DoneDate == nil {
			t.Fatalf("task = %+v (statuses %v)", final, seen)
		}
		if st, _ := e.Server(testSN); st.Mode != ModeDisk || len(log.calls) != 0 {
			t.Fatalf("a failed reboot changed the server: mode %s, OnReboot calls %v", st.Mode, log.calls)
		}
		// The fault was for one task only.
		_, next := pollTask(t, c, testSN, postReboot(t, c, testSN).TaskID)
		if next.Status != StatusDone {
			t.Fatalf("next task = %+v", next)
		}
		if st, _ := e.Server(testSN); st.Mode != ModeRescue {
			t.Fatalf("mode after the next reboot %s", st.Mode)
		}
	})

	t.Run("customerError", func(t *testing.T) {
		e, endpoint := start(t, Config{Timings: fast}, testServer(testSN))
		c := client(t, endpoint)
		e.InjectFault(testSN, Fault{TaskStatus: StatusCustomerError, Comment: "Server is in rescue mode"})
		_, final := pollTask(t, c, testSN, postReboot(t, c, testSN).TaskID)
		if final.Status != StatusCustomerError || *final.Comment != "Server is in rescue mode" {
			t.Fatalf("task = %+v", final)
		}
	})

	t.Run("OnReboot fails", func(t *testing.T) {
		log := newRebootLog()
		log.err = errors.New("host ns1 did not power on")
		e, endpoint := start(t, Config{Timings: fast, OnReboot: log.onReboot}, testServer(testSN))
		c := client(t, endpoint)
		_, final := pollTask(t, c, testSN, postReboot(t, c, testSN).TaskID)
		if final.Status != StatusOVHError || *final.Comment != "host ns1 did not power on" {
			t.Fatalf("task = %+v", final)
		}
		if st, _ := e.Server(testSN); st.Tasks[0].Status != StatusOVHError || len(log.calls) != 1 {
			t.Fatalf("state %+v, %d calls", st, len(log.calls))
		}
	})

	t.Run("HTTP 500 twice then fine", func(t *testing.T) {
		e, endpoint := start(t, Config{}, testServer(testSN), testServer("ns2.ip-1-2-3.eu"))
		c := client(t, endpoint)
		e.InjectFault(testSN, Fault{HTTP500: 2})
		var names []string
		if err := c.Get("/dedicated/server", &names); err != nil {
			t.Fatalf("a call naming no server is not affected: %v", err)
		}
		if err := c.Get(serverPath("ns2.ip-1-2-3.eu"), nil); err != nil {
			t.Fatalf("another server is not affected: %v", err)
		}
		for i := range 2 {
			ae := apiErr(t, c.Get(serverPath(testSN), nil))
			if ae.Code != 500 || ae.Class != "Server::InternalServerError" {
				t.Fatalf("call %d: %+v", i, ae)
			}
		}
		if err := c.Get(serverPath(testSN), nil); err != nil {
			t.Fatalf("third call: %v", err)
		}
		calls := e.Calls(testSN)
		statuses := []int{}
		for _, call := range calls {
			statuses = append(statuses, call.Status)
		}
		if e.Requests(testSN) != 3 || !slices.Equal(statuses, []int{500, 500, 200}) || calls[0].Path != "/dedicated/server/"+testSN {
			t.Fatalf("Requests = %d, calls %+v", e.Requests(testSN), calls)
		}
	})

	t.Run("task not found once", func(t *testing.T) {
		e, endpoint := start(t, Config{Timings: fast}, testServer(testSN))
		c := client(t, endpoint)
		task := postReboot(t, c, testSN)
		e.InjectFault(testSN, Fault{TaskNotFound: 1})
		ae := apiErr(t, c.Get(serverPath(testSN, "task", itoa(task.TaskID)), nil))
		if ae.Code != 404 {
			t.Fatalf("first GET task: %+v", ae)
		}
		if _, final := pollTask(t, c, testSN, task.TaskID); final.Status != StatusDone {
			t.Fatalf("task = %+v", final)
		}
	})

	t.Run("carried out but answered 504", func(t *testing.T) {
		e, endpoint := start(t, Config{Timings: fast}, testServer(testSN))
		c := client(t, endpoint)
		e.InjectFault(testSN, Fault{LostAnswer: 2})
		if err := c.Get(serverPath(testSN), nil); err != nil {
			t.Fatalf("a GET is not affected: %v", err)
		}
		if ae := apiErr(t, c.Put(serverPath(testSN), map[string]any{"bootId": 230242}, nil)); ae.Code != 504 {
			t.Fatalf("PUT: %+v", ae)
		}
		var task apiTask
		if ae := apiErr(t, c.Post(serverPath(testSN, "reboot"), nil, &task)); ae.Code != 504 {
			t.Fatalf("POST reboot: %+v", ae)
		}
		st, _ := e.Server(testSN)
		if st.BootID != 230242 || len(st.Tasks) != 1 || st.Tasks[0].Function != "hardReboot" {
			t.Fatalf("the calls were not carried out: %+v", st)
		}
		var ids []int64
		if err := c.Get(serverPath(testSN, "task")+"?function=hardReboot", &ids); err != nil || len(ids) != 1 || ids[0] != st.Tasks[0].ID {
			t.Fatalf("task list %v, %v", ids, err)
		}
	})

	t.Run("429 with Retry-After", func(t *testing.T) {
		e, endpoint := start(t, Config{}, testServer(testSN))
		e.InjectFault(testSN, Fault{TooMany: 1, RetryAfter: 1500 * time.Millisecond})
		oc := client(t, endpoint)
		req, err := oc.NewRequest(http.MethodGet, serverPath(testSN), nil, true)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := oc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
			t.Fatalf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if err := oc.Get(serverPath(testSN), nil); err != nil {
			t.Fatalf("the next call: %v", err)
		}
	})

	t.Run("task note", func(t *testing.T) {
		e, endpoint := start(t, Config{Timings: fast}, testServer(testSN))
		c := client(t, endpoint)
		e.InjectFault(testSN, Fault{TaskStatus: StatusOVHError, Comment: "Reboot asked", Note: "Intervention in progress (ticket 42)"})
		_, final := pollTask(t, c, testSN, postReboot(t, c, testSN).TaskID)
		if final.Note == nil || *final.Note != "Intervention in progress (ticket 42)" {
			t.Fatalf("task = %+v", final)
		}
	})

	t.Run("slow task", func(t *testing.T) {
		clock := &fakeClock{now: time.Unix(1700000000, 0)}
		e, endpoint := start(t, Config{Now: clock.Now, Timings: Timings{Init: time.Second, Todo: time.Second, Doing: time.Second}}, testServer(testSN))
		c := client(t, endpoint)
		e.InjectFault(testSN, Fault{SlowTask: time.Minute})
		task := postReboot(t, c, testSN)
		status := func() string {
			var got apiTask
			if err := c.Get(serverPath(testSN, "task", itoa(task.TaskID)), &got); err != nil {
				t.Fatal(err)
			}
			return got.Status
		}
		clock.Add(3 * time.Second) // a normal task would be done
		deadline := time.Now().Add(5 * time.Second)
		for status() != StatusDoing || !e.rebooted(task.TaskID) {
			if time.Now().After(deadline) {
				t.Fatal("the reboot never started")
			}
			time.Sleep(5 * time.Millisecond)
		}
		clock.Add(59 * time.Second)
		if s := status(); s != StatusDoing {
			t.Fatalf("1s before the slow task ends: %s", s)
		}
		clock.Add(time.Second)
		if s := status(); s != StatusDone {
			t.Fatalf("after the slow task: %s", s)
		}
	})
}

// rebooted reports whether the task's OnReboot has returned.
func (e *Emulator) rebooted(id int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tasks[id].rebootDone
}

// TestCloseStopsTasks: Close cancels OnReboot's context, returns once every
// task goroutine has, and the emulator refuses new reboots afterwards.
func TestCloseStopsTasks(t *testing.T) {
	entered := make(chan struct{})
	e, endpoint := start(t, Config{
		Timings: Timings{Doing: time.Hour},
		OnReboot: func(ctx context.Context, _ string, _ Netboot, _ string) error {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		},
	}, testServer(testSN), testServer("ns2.ip-1-2-3.eu"))
	c := client(t, endpoint)
	postReboot(t, c, testSN)
	<-entered
	e.setTimings(Timings{Init: time.Hour})
	postReboot(t, c, "ns2.ip-1-2-3.eu") // its goroutine waits an hour for doing

	closed := make(chan struct{})
	go func() {
		e.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: a task goroutine is stuck")
	}
	ae := apiErr(t, c.Post(serverPath(testSN, "reboot"), nil, nil))
	if ae.Code != 503 {
		t.Fatalf("reboot after Close: %+v", ae)
	}
}

// setTimings changes the timings of the tasks created from now on.
func (e *Emulator) setTimings(t Timings) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.Timings = t
}

// TestDoneWaitsForTheReboot: however late the clock, a task is not done
// while OnReboot is still rebooting the host.
func TestDoneWaitsForTheReboot(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1700000000, 0)}
	entered, release := make(chan struct{}), make(chan struct{})
	e, endpoint := start(t, Config{
		Now:     clock.Now,
		Timings: Timings{Init: time.Second, Todo: time.Second, Doing: time.Second},
		OnReboot: func(ctx context.Context, _ string, _ Netboot, _ string) error {
			close(entered)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}, testServer(testSN))
	c := client(t, endpoint)
	if err := c.Put(serverPath(testSN), map[string]any{"bootId": 230242}, nil); err != nil {
		t.Fatal(err)
	}
	task := postReboot(t, c, testSN)
	status := func() string {
		var got apiTask
		if err := c.Get(serverPath(testSN, "task", itoa(task.TaskID)), &got); err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	clock.Add(2 * time.Minute) // long past done, within the signature's tolerance
	if s := status(); s != StatusDoing {
		t.Fatalf("two minutes later, OnReboot not started: %s", s)
	}
	<-entered
	if s := status(); s != StatusDoing {
		t.Fatalf("while OnReboot runs: %s", s)
	}
	if st, _ := e.Server(testSN); st.Mode != ModeDisk {
		t.Fatalf("mode %s while the reboot is under way", st.Mode)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for status() != StatusDone {
		if time.Now().After(deadline) {
			t.Fatal("not done after OnReboot returned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, _ := e.Server(testSN); st.Mode != ModeRescue {
		t.Fatalf("mode %s after the rescue reboot", st.Mode)
	}
}
