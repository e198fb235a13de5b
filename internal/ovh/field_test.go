package ovh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

// posts counts the POST calls the emulator received for a server.
func posts(emu *ovhapi.Emulator, sn string) int {
	n := 0
	for _, c := range emu.Calls(sn) {
		if c.Method == http.MethodPost {
			n++
		}
	}
	return n
}

func TestWaitTaskWaitsOutSpells(t *testing.T) {
	tests := []struct {
		name    string
		fault   ovhapi.Fault
		wantErr string
	}{
		{name: "404s after creation", fault: ovhapi.Fault{TaskNotFound: 10}},
		{name: "5xx longer than the retries of one call", fault: ovhapi.Fault{HTTP500: 20}},
		{name: "404s beyond the tolerance fail with the last error", fault: ovhapi.Fault{TaskNotFound: 1 << 20},
			wantErr: "ovh: task ID on " + testSN + " still unknown: its polls failed for"},
		{name: "the note shows in the failure", fault: ovhapi.Fault{TaskStatus: "ovhError", Comment: "Reboot asked", Note: "Intervention in progress"},
			wantErr: "ovh: task ID (hardReboot) on " + testSN + " ended ovhError: Reboot asked; note: Intervention in progress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, endpoint := startAPI(t, ovhapi.Config{}, testSN)
			c, _ := newClient(t, endpoint)
			ctx := context.Background()
			if tt.fault.TaskStatus != "" {
				emu.InjectFault(testSN, tt.fault)
			}
			task, err := c.Reboot(ctx, testSN, fastWait())
			if err != nil {
				t.Fatal(err)
			}
			if tt.fault.TaskStatus == "" {
				emu.InjectFault(testSN, tt.fault)
			}
			got, err := c.WaitTask(ctx, testSN, task.ID, fastWait())
			if tt.wantErr == "" {
				if err != nil || got.Status != TaskDone {
					t.Fatalf("task %+v, err %v", got, err)
				}
				return
			}
			want := strings.ReplaceAll(tt.wantErr, "task ID", fmt.Sprintf("task %d", task.ID))
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v\nwant  %s…", err, want)
			}
		})
	}
}

// taskServer answers /auth/time and every other call with task.
func taskServer(t *testing.T, task string, polls *atomic.Int32) string {
	return newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/auth/time") {
			fmt.Fprint(w, time.Now().Unix())
			return
		}
		polls.Add(1)
		fmt.Fprint(w, task)
	}) + "/1.0"
}

func TestWaitTaskFailsAtOnceOnAnUnknownStatus(t *testing.T) {
	var polls atomic.Int32
	endpoint := taskServer(t, `{"taskId":7,"function":"hardReboot","status":"paused","comment":"Reboot asked","note":"waiting for a technician"}`, &polls)
	c, _ := newClient(t, endpoint)
	_, err := c.WaitTask(context.Background(), testSN, 7, fastWait())
	want := "ovh: task 7 (hardReboot) on " + testSN + " has a status OVH does not document: paused: Reboot asked; note: waiting for a technician"
	var te *TaskError
	if err == nil || err.Error() != want || !errors.As(err, &te) {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	if n := polls.Load(); n != 1 {
		t.Errorf("%d polls, want 1", n)
	}
}

func TestWaitTaskPausesBeforeTheFirstPoll(t *testing.T) {
	var polls atomic.Int32
	endpoint := taskServer(t, `{"taskId":7,"function":"hardReboot","status":"done"}`, &polls)
	var slept []time.Duration
	c, _ := newClient(t, endpoint, func(cfg *Config) {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	})
	if _, err := c.WaitTask(context.Background(), testSN, 7, WaitOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(slept) != 1 || slept[0] != 10*time.Second || polls.Load() != 1 {
		t.Errorf("slept %v before %d polls, want 10s before 1", slept, polls.Load())
	}
}

func TestRebootIsNeverAskedTwiceBlindly(t *testing.T) {
	tests := []struct {
		name      string
		fault     ovhapi.Fault
		wantPosts int
		wantLog   string
	}{
		{name: "carried out but answered 504: its task is adopted", fault: ovhapi.Fault{LostAnswer: 1}, wantPosts: 1,
			wantLog: "adopted task"},
		{name: "answered 500 without a task: asked again", fault: ovhapi.Fault{HTTP500: 1}, wantPosts: 2,
			wantLog: "no hardReboot task appeared within 50ms; asking again"},
		{name: "429: asked again at once", fault: ovhapi.Fault{TooMany: 1}, wantPosts: 2, wantLog: "429 Too many requests; try 2 of 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, endpoint := startAPI(t, ovhapi.Config{}, testSN)
			c, logs := newClient(t, endpoint)
			ctx := context.Background()
			if _, err := c.GetServer(ctx, testSN); err != nil { // older tasks: none; clock synced
				t.Fatal(err)
			}
			emu.InjectFault(testSN, tt.fault)
			task, err := c.Reboot(ctx, testSN, fastWait())
			if err != nil {
				t.Fatalf("reboot: %v\n%s", err, logs)
			}
			st, _ := emu.Server(testSN)
			if len(st.Tasks) != 1 || st.Tasks[0].ID != task.ID || posts(emu, testSN) != tt.wantPosts {
				t.Fatalf("tasks %+v, %d POSTs (want 1 task, id %d, %d POSTs)\n%s", st.Tasks, posts(emu, testSN), task.ID, tt.wantPosts, logs)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs)
			}
		})
	}
}

func TestRebootAdoptsOnlyATaskStartedAfterTheRequest(t *testing.T) {
	var ahead atomic.Int64 // how far the API's clock runs ahead of ours
	emu, endpoint := startAPI(t, ovhapi.Config{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }}, testSN)
	c, _ := newClient(t, endpoint)
	ctx := context.Background()
	if _, err := c.GetServer(ctx, testSN); err != nil { // go-ovh reads the clock offset once, here
		t.Fatal(err)
	}
	// The earlier reboot happens 10s in the API's past.
	ahead.Store(int64(-10 * time.Second))
	old, err := c.Reboot(ctx, testSN, fastWait())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitTask(ctx, testSN, old.ID, fastWait()); err != nil {
		t.Fatal(err)
	}
	ahead.Store(0)
	emu.InjectFault(testSN, ovhapi.Fault{HTTP500: 1})
	task, err := c.Reboot(ctx, testSN, fastWait())
	if err != nil {
		t.Fatal(err)
	}
	if task.ID == old.ID || posts(emu, testSN) != 3 {
		t.Fatalf("adopted the earlier task %d (%d POSTs)", old.ID, posts(emu, testSN))
	}
}

func TestRebootNotAskedAgainWhenTheTaskListFails(t *testing.T) {
	var postCount atomic.Int32
	endpoint := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/auth/time"):
			fmt.Fprint(w, time.Now().Unix())
		case r.Method == http.MethodPost:
			postCount.Add(1)
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, `{"class":"Server::BadGateway","message":"Bad gateway"}`)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"class":"Server::ServiceUnavailable","message":"Service unavailable"}`)
		}
	}) + "/1.0"
	c, _ := newClient(t, endpoint)
	_, err := c.Reboot(context.Background(), testSN, fastWait())
	if err == nil || !errors.Is(err, ErrMaybeDone) || !strings.Contains(err.Error(), "so it is not asked again") {
		t.Fatalf("err = %v", err)
	}
	if n := postCount.Load(); n != 1 {
		t.Errorf("%d POSTs, want 1", n)
	}
}

// TestLostConnections: a connection lost after the request left is tried
// again for a PUT, never for a POST.
func TestLostConnections(t *testing.T) {
	tests := []struct {
		method    string
		wantCalls int32
		wantErr   error
	}{
		{method: http.MethodPut, wantCalls: 2},
		{method: http.MethodPost, wantCalls: 1, wantErr: ErrMaybeDone},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			var calls atomic.Int32
			endpoint := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/auth/time") {
					fmt.Fprint(w, time.Now().Unix())
					return
				}
				if calls.Add(1) == 1 {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
					return
				}
				fmt.Fprint(w, "null")
			}) + "/1.0"
			c, _ := newClient(t, endpoint)
			err := c.Do(context.Background(), Request{Method: tt.method, Path: ServerPath(testSN)}, nil)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("%d calls, want %d", n, tt.wantCalls)
			}
		})
	}
}

// TestRetryAfterHoldsTheWholeKey: a 429 with Retry-After on one server's
// call holds the calls of every client of the same consumer key.
func TestRetryAfterHoldsTheWholeKey(t *testing.T) {
	const other = "ns2.ip-203-0-113.eu"
	emu, endpoint := startAPI(t, ovhapi.Config{}, testSN, other)
	limiters := NewLimiters()
	var slept atomic.Int64
	c1, _ := newClient(t, endpoint, func(cfg *Config) {
		cfg.Limiters = limiters
		cfg.Sleep = func(ctx context.Context, d time.Duration) error { slept.Store(int64(d)); return nil }
	})
	c2, _ := newClient(t, endpoint, func(cfg *Config) { cfg.Limiters = limiters })
	ctx := context.Background()
	if _, err := c2.GetServer(ctx, other); err != nil { // synced before the 429
		t.Fatal(err)
	}
	emu.InjectFault(testSN, ovhapi.Fault{TooMany: 1, RetryAfter: time.Second})
	start := time.Now()
	if _, err := c1.GetServer(ctx, testSN); err != nil {
		t.Fatal(err)
	}
	// Do, not GetServer: the run's cache would answer.
	if err := c2.Do(ctx, Request{Method: "GET", Path: ServerPath(other)}, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(slept.Load()); d != time.Second {
		t.Errorf("the retry waited %s, want Retry-After's 1s", d)
	}
	calls := emu.Calls(other)
	if last := calls[len(calls)-1].At; last.Sub(start) < 900*time.Millisecond {
		t.Errorf("the other server's call went %s after the 429, within its Retry-After", last.Sub(start))
	}
}

func TestErrorShowsMissingRightsAndQueryID(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{Method: "POST", Path: "/dedicated/server/ns1/reboot", Status: 403, Class: "Client::Forbidden", Message: "User not granted for this request",
			Details: map[string]string{"unauthorizedActionsByAuthentication": "", "unauthorizedActionsByIAM": "dedicatedServer:apiovh:reboot"}, QueryID: "EU.ext-3.1"},
			"ovh: POST /dedicated/server/ns1/reboot: 403 Client::Forbidden: User not granted for this request (missing IAM permissions: dedicatedServer:apiovh:reboot) (query id EU.ext-3.1)"},
		{Error{Method: "GET", Path: "/x", Status: 500}, "ovh: GET /x: 500"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

// TestRebootOnABadDay reboots through the emulator's default weather, made
// quicker: every reboot ends done, each with one task, whatever the API
// answered on the way.
func TestRebootOnABadDay(t *testing.T) {
	var all strings.Builder
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			w := ovhapi.BadDay(seed)
			w.DelayMin, w.DelayMax = time.Millisecond, 5*time.Millisecond
			w.TaskNotFoundFor = 50 * time.Millisecond
			w.ErrorBursts, w.LostAnswers = 0.2, 0.3
			w.Rate = ovhapi.Rate{Requests: 100, Per: time.Second, Burst: 20}
			emu, endpoint := startAPI(t, ovhapi.Config{Weather: w}, testSN)
			c, logs := newClient(t, endpoint, func(cfg *Config) { cfg.Retries = 8 })
			ctx := context.Background()
			for i := range 3 {
				if err := c.SetBoot(ctx, testSN, 230242, edKey); err != nil {
					t.Fatalf("set boot: %v\n%s", err, logs)
				}
				task, err := c.Reboot(ctx, testSN, fastWait())
				if err != nil {
					t.Fatalf("reboot %d: %v\n%s", i, err, logs)
				}
				if _, err := c.WaitTask(ctx, testSN, task.ID, fastWait()); err != nil {
					t.Fatalf("task %d: %v\n%s", i, err, logs)
				}
				if st, _ := emu.Server(testSN); len(st.Tasks) != i+1 {
					t.Fatalf("after reboot %d the server has %d tasks\n%s", i, len(st.Tasks), logs)
				}
			}
			all.WriteString(logs.String())
		})
	}
	// The seeds are chosen so that every path was taken.
	for _, want := range []string{"adopted task", ": 404", ": 50", "polling on"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no %q in the logs:\n%s", want, all.String())
		}
	}
}

func TestEnvWaitOptions(t *testing.T) {
	base := Env{Wait: WaitOptions{MaxInterval: time.Minute}}
	tests := []struct {
		poll    any
		want    WaitOptions
		wantErr string
	}{
		{poll: nil, want: WaitOptions{MaxInterval: time.Minute}},
		{poll: "2s", want: WaitOptions{FirstPoll: 2 * time.Second, Interval: 2 * time.Second, Adopt: 12 * time.Second, MaxInterval: time.Minute}},
		{poll: "soon", wantErr: `ovh_task_poll: want a positive duration such as 10s, got "soon"`},
		{poll: "-1s", wantErr: `ovh_task_poll: want a positive duration such as 10s, got "-1s"`},
	}
	for _, tt := range tests {
		vars := map[string]any{}
		if tt.poll != nil {
			vars[VarTaskPoll] = tt.poll
		}
		got, err := base.WaitOptions(vars)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%v: err = %v, want %s", tt.poll, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.FirstPoll != tt.want.FirstPoll || got.Interval != tt.want.Interval || got.Adopt != tt.want.Adopt || got.MaxInterval != tt.want.MaxInterval {
			t.Errorf("%v: %+v, %v; want %+v", tt.poll, got, err, tt.want)
		}
	}
}
