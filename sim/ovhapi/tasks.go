package ovhapi

import (
	"fmt"
	"net/http"
	"time"
)

// task is a reboot task. Its status is derived from Config.Now each time it
// is looked at, so a test can drive it with a fake clock; a goroutine per
// task makes sure OnReboot runs when the clock says "doing" even if nobody
// looks. Guarded by Emulator.mu except kick.
type task struct {
	id       int64
	server   string
	function string
	comment  string
	note     string
	created  time.Time
	timings  Timings
	fault    Fault         // TaskStatus, Comment and SlowTask as they were when the task was created
	kick     chan struct{} // wakes the goroutine to look at the clock again

	rebootStarted bool
	rebootDone    bool
	rebootErr     error
	rebootErrAt   time.Time
	boot          Netboot

	status     string // last status computed
	lastUpdate time.Time
	doneAt     time.Time // set with a final status
}

func (t *task) doingAt() time.Time { return t.created.Add(t.timings.Init + t.timings.Todo) }

func (t *task) doneAtClock() time.Time {
	return t.doingAt().Add(t.timings.Doing + t.fault.SlowTask)
}

func (t *task) final() bool {
	switch t.status {
	case StatusDone, StatusCancelled, StatusOVHError, StatusCustomerError:
		return true
	}
	return false
}

func (t *task) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *task) export() Task {
	out := Task{ID: t.id, Function: t.function, Status: t.status, Comment: t.comment, Started: t.created, Boot: t.boot}
	if t.final() {
		out.Done = t.doneAt
	}
	return out
}

// advance brings t's status up to date with the clock at now. The task never
// reports done before OnReboot has returned. Called with e.mu held.
func (e *Emulator) advance(s *server, t *task, now time.Time) {
	if t.final() {
		return
	}
	switch {
	case now.Before(t.created.Add(t.timings.Init)):
		t.status, t.lastUpdate = StatusInit, t.created
		return
	case now.Before(t.doingAt()):
		t.status, t.lastUpdate = StatusTodo, t.created.Add(t.timings.Init)
		return
	}
	t.status, t.lastUpdate = StatusDoing, t.doingAt()
	if !t.rebootStarted {
		t.wake()
		return
	}
	if t.rebootErr != nil {
		e.finish(t, StatusOVHError, t.rebootErr.Error(), t.rebootErrAt)
		return
	}
	if now.Before(t.doneAtClock()) {
		return
	}
	switch {
	case t.fault.TaskStatus != "":
		e.finish(t, t.fault.TaskStatus, t.fault.Comment, t.doneAtClock())
	case t.rebootDone:
		e.finish(t, StatusDone, t.comment, t.doneAtClock())
		s.mode = ModeOf(t.boot)
		s.powerState = "poweron"
		if s.mode == ModeOff {
			s.powerState = "poweroff"
		}
	default:
		t.wake() // OnReboot still running
	}
}

func (e *Emulator) finish(t *task, status, comment string, at time.Time) {
	t.status, t.comment, t.doneAt, t.lastUpdate = status, comment, at, at
	t.wake() // let the goroutine see it is over
}

// runTask waits for the task to enter doing, reboots the server through
// OnReboot, then waits for the task to be done. It returns early when the
// task is cancelled or the emulator closed.
func (e *Emulator) runTask(s *server, t *task) {
	defer e.wg.Done()
	if !e.waitFor(s, t, t.doingAt) {
		return
	}
	e.mu.Lock()
	if t.final() {
		e.mu.Unlock()
		return
	}
	t.rebootStarted = true
	boot, firmware := s.currentBoot()
	t.boot = boot
	key := deref(s.rescueSSHKey)
	faulted := t.fault.TaskStatus != ""
	e.mu.Unlock()
	if firmware != nil {
		boot = firmware()
		e.mu.Lock()
		t.boot = boot
		e.mu.Unlock()
	}

	var err error
	if !faulted && e.cfg.OnReboot != nil {
		err = e.cfg.OnReboot(e.ctx, s.Name, boot, key)
	}

	e.mu.Lock()
	t.rebootDone, t.rebootErr = true, err
	if err != nil {
		t.rebootErrAt = e.cfg.Now()
	}
	e.advance(s, t, e.cfg.Now())
	e.mu.Unlock()
	e.waitFor(s, t, t.doneAtClock)
}

// waitFor sleeps until the clock reaches deadline(), rechecking whenever the
// task is kicked: with a fake clock the deadline only comes when the test
// moves the clock and looks at the task. It reports false when the task ended
// or the emulator closed first.
func (e *Emulator) waitFor(s *server, t *task, deadline func() time.Time) bool {
	for {
		e.mu.Lock()
		now := e.cfg.Now()
		e.advance(s, t, now)
		over := t.final()
		left := deadline().Sub(now)
		e.mu.Unlock()
		if over {
			return false
		}
		if left <= 0 {
			return true
		}
		timer := time.NewTimer(left)
		select {
		case <-timer.C:
		case <-t.kick:
			timer.Stop()
		case <-e.ctx.Done():
			timer.Stop()
			return false
		}
	}
}

// newRebootTask creates a hardReboot task for s and starts its goroutine.
// Called with e.mu held.
func (e *Emulator) newRebootTask(s *server) *task {
	e.nextTaskID++
	now := e.cfg.Now()
	t := &task{
		id:         e.nextTaskID,
		server:     s.Name,
		function:   "hardReboot",
		comment:    "Reboot asked",
		note:       s.fault.Note,
		created:    now,
		timings:    e.cfg.Timings,
		fault:      Fault{TaskStatus: s.fault.TaskStatus, Comment: s.fault.Comment, SlowTask: s.fault.SlowTask},
		kick:       make(chan struct{}, 1),
		status:     StatusInit,
		lastUpdate: now,
	}
	s.fault.TaskStatus, s.fault.Comment, s.fault.SlowTask, s.fault.Note = "", "", 0, ""
	s.tasks = append(s.tasks, t)
	e.tasks[t.id] = t
	e.wg.Add(1)
	go e.runTask(s, t)
	return t
}

// pendingReboot is a hardReboot task of s that has not ended. Called with
// e.mu held.
func (e *Emulator) pendingReboot(s *server) *task {
	now := e.cfg.Now()
	for _, t := range s.tasks {
		e.advance(s, t, now)
		if t.function == "hardReboot" && !t.final() {
			return t
		}
	}
	return nil
}

// errRebootPending answers a reboot asked while another is pending. OVH's
// answer is unknown (ovh-api.md 4.7 and 10.3 suggest a 409): the emulator
// takes the cautious reading, never queues a second power cycle, and
// answers 409 naming the pending task. The message is the emulator's.
func errRebootPending(id int64) *apiError {
	return &apiError{status: http.StatusConflict, class: "Client::Conflict",
		message: fmt.Sprintf("A hardReboot task (%d) is already pending on this server", id)}
}
