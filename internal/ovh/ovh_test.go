package ovh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

// The revoked keys of go-ovh's own test vectors.
const (
	testAK = "TDPKJdwZwAQPwKX2"
	testAS = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk"
	testCK = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY"
	testSN = "ns1.ip-203-0-113.eu"

	edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy@fleet"
)

var testCreds = Credentials{AppKey: testAK, AppSecret: testAS, ConsumerKey: testCK}

func fastTimings() ovhapi.Timings {
	return ovhapi.Timings{Init: 5 * time.Millisecond, Todo: 5 * time.Millisecond, Doing: 10 * time.Millisecond}
}

// startAPI serves an emulated account over real HTTP on loopback.
func startAPI(t *testing.T, cfg ovhapi.Config, servers ...string) (*ovhapi.Emulator, string) {
	t.Helper()
	if cfg.AppKey == "" {
		cfg.AppKey, cfg.AppSecret, cfg.ConsumerKey = testAK, testAS, testCK
	}
	if cfg.Timings == (ovhapi.Timings{}) {
		cfg.Timings = fastTimings()
	}
	if cfg.Weather == nil {
		cfg.Weather = ovhapi.Calm()
	}
	emu := ovhapi.New(cfg)
	t.Cleanup(func() { emu.Close() })
	for i, name := range servers {
		emu.AddServer(ovhapi.Server{Name: name, IP: fmt.Sprintf("203.0.113.%d", 10+i), IPv6Block: "2001:db8:1:2a00::/64"})
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	endpoint, err := emu.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return emu, endpoint
}

// newClient returns a client with its own limiter set and short pauses.
func newClient(t *testing.T, endpoint string, change ...func(*Config)) (*Client, *logLines) {
	t.Helper()
	logs := &logLines{}
	cfg := Config{
		Endpoint:     endpoint,
		Credentials:  testCreds,
		Rate:         Rate{Requests: 1000, Per: time.Second, Burst: 1000},
		Limiters:     NewLimiters(),
		RetryWait:    time.Millisecond,
		MaxRetryWait: 5 * time.Millisecond,
		Log:          logs.add,
	}
	for _, f := range change {
		f(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func fastWait() WaitOptions {
	return WaitOptions{FirstPoll: time.Millisecond, Interval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
		Tolerate: 500 * time.Millisecond, Adopt: 50 * time.Millisecond}
}

func TestRescueRebootAgainstEmulator(t *testing.T) {
	var booted []string
	var mu sync.Mutex
	emu, endpoint := startAPI(t, ovhapi.Config{
		OnReboot: func(ctx context.Context, server string, boot ovhapi.Netboot, key string) error {
			mu.Lock()
			defer mu.Unlock()
			booted = append(booted, fmt.Sprintf("%s %s %s", server, boot.Kernel, key))
			return nil
		},
	}, testSN)
	c, logs := newClient(t, endpoint)
	ctx := context.Background()

	srv, err := c.GetServer(ctx, testSN)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Name != testSN || srv.BootID == nil || *srv.BootID != 1 {
		t.Fatalf("server = %+v, want %s on boot 1", srv, testSN)
	}
	boots, err := c.Boots(ctx, testSN, "rescue")
	if err != nil {
		t.Fatal(err)
	}
	if len(boots) < 2 || boots[0].Kernel != "ipxe-shell" {
		t.Fatalf("the emulator should list the iPXE trap first, got %v", boots)
	}
	rescue, err := PickRescue(boots)
	if err != nil {
		t.Fatal(err)
	}
	if rescue.ID != 230242 || rescue.Kernel != "rescue12-customer" {
		t.Fatalf("picked %v, want rescue12-customer (id 230242)", rescue)
	}
	if err := c.SetBoot(ctx, testSN, rescue.ID, edKey); err != nil {
		t.Fatal(err)
	}
	task, err := c.Reboot(ctx, testSN, fastWait())
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	wait := fastWait()
	wait.Progress = func(t Task) { seen = append(seen, t.Status) }
	done, err := c.WaitTask(ctx, testSN, task.ID, wait)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != TaskDone || seen[len(seen)-1] != TaskDone {
		t.Errorf("task = %+v, statuses %v", done, seen)
	}
	st, _ := emu.Server(testSN)
	if st.Mode != ovhapi.ModeRescue || st.RescueSSHKey != edKey {
		t.Errorf("server mode %q key %q, want rescue with the key", st.Mode, st.RescueSSHKey)
	}
	if want := testSN + " rescue12-customer " + edKey; len(booted) != 1 || booted[0] != want {
		t.Errorf("reboots = %q, want [%q]", booted, want)
	}
	if !strings.Contains(logs.String(), "ovh: PUT /dedicated/server/"+testSN+": 200") {
		t.Errorf("log lacks the PUT:\n%s", logs)
	}
}

func TestErrorsNameTheCallAndOVHMessage(t *testing.T) {
	_, endpoint := startAPI(t, ovhapi.Config{}, testSN)
	ctx := context.Background()
	tests := []struct {
		name   string
		creds  Credentials
		call   func(c *Client) error
		want   string
		auth   bool
		status int
	}{
		{
			name: "unknown server",
			call: func(c *Client) error { _, err := c.GetServer(ctx, "ns9.example.net"); return err },
			want: "ovh: GET /dedicated/server/ns9.example.net: 404 Client::NotFound: This service does not exist", status: 404,
		},
		{
			name: "boot that is not the server's",
			call: func(c *Client) error { return c.SetBoot(ctx, testSN, 5, "") },
			want: "ovh: PUT /dedicated/server/" + testSN + ": 400 Client::BadRequest: Invalid bootId 5: not a boot of this server", status: 400,
		},
		{
			name:  "wrong application key",
			creds: Credentials{AppKey: "WRONGKEYWRONGKEY", AppSecret: testAS, ConsumerKey: testCK},
			call:  func(c *Client) error { _, err := c.GetServer(ctx, testSN); return err },
			want:  "ovh: GET /dedicated/server/" + testSN + ": 403 Client::Forbidden: Invalid application key", auth: true, status: 403,
		},
		{
			name:  "wrong secret",
			creds: Credentials{AppKey: testAK, AppSecret: "not-the-secret", ConsumerKey: testCK},
			call:  func(c *Client) error { _, err := c.GetServer(ctx, testSN); return err },
			want:  "ovh: GET /dedicated/server/" + testSN + ": 400 Client::BadRequest: Invalid signature", auth: true, status: 400,
		},
		{
			name:  "unknown consumer key",
			creds: Credentials{AppKey: testAK, AppSecret: testAS, ConsumerKey: "nope"},
			call:  func(c *Client) error { _, err := c.ListBoots(ctx, testSN, "rescue"); return err },
			want:  "ovh: GET /dedicated/server/" + testSN + "/boot?bootType=rescue: 403 Client::Forbidden: This credential does not exist", auth: true, status: 403,
		},
		{
			name: "service name with a slash is escaped",
			call: func(c *Client) error { _, err := c.GetServer(ctx, "a/b"); return err },
			want: "ovh: GET /dedicated/server/a%2Fb: 404 Client::NotFound: This service does not exist", status: 404,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, endpoint, func(cfg *Config) {
				if tt.creds != (Credentials{}) {
					cfg.Credentials = tt.creds
				}
			})
			err := tt.call(c)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want+" (query id EMU.ext-1.") {
				t.Fatalf("err = %v\nwant  %s (query id EMU.ext-1.…)", err, tt.want)
			}
			var apiErr *Error
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status || apiErr.Auth() != tt.auth {
				t.Errorf("error %#v: want status %d, auth %v", apiErr, tt.status, tt.auth)
			}
			if apiErr.QueryID == "" {
				t.Error("no query id kept for OVH's support")
			}
		})
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		fail     int
		retries  int
		wantErr  string
		requests int
	}{
		{name: "transient 500s are waited out", fail: 2, retries: 4, requests: 3},
		{name: "persistent 500s fail after the last try", fail: 10, retries: 2, requests: 3,
			wantErr: "ovh: GET /dedicated/server/" + testSN + ": 500 Server::InternalServerError: Internal server error"},
		{name: "no retries", fail: 1, retries: -1, requests: 1,
			wantErr: "ovh: GET /dedicated/server/" + testSN + ": 500 Server::InternalServerError: Internal server error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, endpoint := startAPI(t, ovhapi.Config{}, testSN)
			c, logs := newClient(t, endpoint, func(cfg *Config) { cfg.Retries = tt.retries })
			emu.InjectFault(testSN, ovhapi.Fault{HTTP500: tt.fail})
			_, err := c.GetServer(context.Background(), testSN)
			if got := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && !strings.HasPrefix(got, tt.wantErr+" (query id ")) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if n := emu.Requests(testSN); n != tt.requests {
				t.Errorf("%d requests, want %d\n%s", n, tt.requests, logs)
			}
		})
	}
}

func TestRetryOn429(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	srv := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1.0/auth/time" {
			fmt.Fprint(w, time.Now().Unix())
			return
		}
		mu.Lock()
		hits++
		n := hits
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"class":"Client::TooManyRequests","message":"Too many requests"}`)
			return
		}
		fmt.Fprint(w, `{"name":"`+testSN+`","bootId":1}`)
	})
	c, logs := newClient(t, srv+"/1.0")
	s, err := c.GetServer(context.Background(), testSN)
	if err != nil || s.Name != testSN {
		t.Fatalf("server %+v, err %v", s, err)
	}
	if hits != 2 || !strings.Contains(logs.String(), "429 Too many requests; try 2 of 5") {
		t.Errorf("%d hits, log:\n%s", hits, logs)
	}
}

func TestWaitTask(t *testing.T) {
	tests := []struct {
		name    string
		fault   ovhapi.Fault
		cancel  bool
		wantErr string
	}{
		{name: "done"},
		{name: "ovhError carries the comment", fault: ovhapi.Fault{TaskStatus: "ovhError", Comment: "Server is under intervention (ticket 1234)"},
			wantErr: "ovh: task %d (hardReboot) on " + testSN + " ended ovhError: Server is under intervention (ticket 1234)"},
		{name: "customerError carries the comment", fault: ovhapi.Fault{TaskStatus: "customerError", Comment: "Unable to reboot: server is powered off"},
			wantErr: "ovh: task %d (hardReboot) on " + testSN + " ended customerError: Unable to reboot: server is powered off"},
		{name: "404s while the task replicates are waited out", fault: ovhapi.Fault{TaskNotFound: 3}},
		{name: "cancelled", fault: ovhapi.Fault{SlowTask: time.Hour}, cancel: true,
			wantErr: "ovh: task %d (hardReboot) on " + testSN + " ended cancelled: Reboot asked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timings := fastTimings()
			if tt.cancel {
				timings.Init = time.Hour
			}
			emu, endpoint := startAPI(t, ovhapi.Config{Timings: timings}, testSN)
			emu.InjectFault(testSN, tt.fault)
			c, _ := newClient(t, endpoint)
			ctx := context.Background()
			task, err := c.Reboot(ctx, testSN, fastWait())
			if err != nil {
				t.Fatal(err)
			}
			if tt.cancel {
				if err := c.Do(ctx, Request{Method: "POST", Path: ServerPath(testSN, "task", fmt.Sprint(task.ID), "cancel")}, nil); err != nil {
					t.Fatal(err)
				}
			}
			got, err := c.WaitTask(ctx, testSN, task.ID, fastWait())
			if tt.wantErr == "" {
				if err != nil || got.Status != TaskDone {
					t.Fatalf("task %+v, err %v", got, err)
				}
				return
			}
			want := fmt.Sprintf(tt.wantErr, task.ID)
			var taskErr *TaskError
			if err == nil || err.Error() != want || !errors.As(err, &taskErr) {
				t.Fatalf("err = %v\nwant  %s", err, want)
			}
		})
	}
}

func TestWaitTaskTimesOutWithTheStatus(t *testing.T) {
	_, endpoint := startAPI(t, ovhapi.Config{Timings: ovhapi.Timings{Init: time.Millisecond, Todo: time.Millisecond, Doing: time.Hour}}, testSN)
	c, _ := newClient(t, endpoint)
	task, err := c.Reboot(context.Background(), testSN, fastWait())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.WaitTask(ctx, testSN, task.ID, fastWait())
	if want := fmt.Sprintf("ovh: task %d on %s still doing (Reboot asked): context deadline exceeded", task.ID, testSN); err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

// TestRateLimitAcrossClients runs clients of one account for several
// servers at once and checks, on the emulator's arrival times, that no
// window ever held more requests than the bucket allows.
func TestRateLimitAcrossClients(t *testing.T) {
	servers := []string{"ns1.ip-203-0-113.eu", "ns2.ip-203-0-113.eu", "ns3.ip-203-0-113.eu"}
	emu, endpoint := startAPI(t, ovhapi.Config{}, servers...)
	rate := Rate{Requests: 20, Per: time.Second, Burst: 3}
	limiters := NewLimiters()
	const perServer = 8
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(servers)*2)
	for _, sn := range servers {
		// Two clients per server, as Check and Apply of different tasks would make.
		for range 2 {
			c, _ := newClient(t, endpoint, func(cfg *Config) { cfg.Rate, cfg.Limiters = rate, limiters })
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perServer / 2 {
					// Do, not GetServer: the run's cache would answer.
					if err := c.Do(context.Background(), Request{Method: "GET", Path: ServerPath(sn)}, nil); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	var at []time.Time
	for _, sn := range servers {
		for _, c := range emu.Calls(sn) {
			at = append(at, c.At)
		}
	}
	total := len(servers) * perServer
	if len(at) != total {
		t.Fatalf("%d calls recorded, want %d", len(at), total)
	}
	// 24 calls and at least one clock sync (the clients of one account
	// share it): at least (25-3)/20 s.
	if min := time.Duration(float64(total+1-rate.Burst) / 20 * float64(time.Second)); elapsed < min-50*time.Millisecond {
		t.Errorf("%d calls took %s, faster than the rate allows (%s)", total, elapsed, min)
	}
	sortTimes(at)
	for _, window := range []time.Duration{100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond} {
		allowed := rate.Burst + int(window/rate.interval()) + 1 // +1: a window's two closed ends
		for i := range at {
			n := 0
			for j := i; j < len(at) && at[j].Sub(at[i]) < window; j++ {
				n++
			}
			if n > allowed {
				t.Fatalf("%d requests within %s from %s, the rate allows %d", n, window, at[i].Format("15:04:05.000"), allowed)
			}
		}
	}
}

func sortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// fakeClock is a clock whose sleeps advance it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func TestLimiterSchedule(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(Rate{Requests: 60, Per: time.Minute, Burst: 3})
	l.now, l.sleep = clock.Now, clock.Sleep
	for range 6 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Three at once, then one a second.
	want := []time.Duration{time.Second, time.Second, time.Second}
	if fmt.Sprint(clock.slept) != fmt.Sprint(want) {
		t.Errorf("slept %v, want %v", clock.slept, want)
	}
	// After a quiet minute the burst is back.
	clock.now = clock.now.Add(time.Minute)
	clock.slept = nil
	for range 3 {
		_ = l.Wait(context.Background())
	}
	if len(clock.slept) != 0 {
		t.Errorf("slept %v after a quiet minute, want no wait", clock.slept)
	}
	// A deadline before the slot fails at once and gives the slot back.
	ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(100*time.Millisecond))
	defer cancel()
	if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	_ = l.Wait(context.Background())
	if fmt.Sprint(clock.slept) != fmt.Sprint([]time.Duration{time.Second}) {
		t.Errorf("after a given-back slot slept %v, want [1s]", clock.slept)
	}
}

func TestLimitersKeyedByAccount(t *testing.T) {
	ls := NewLimiters()
	a := ls.For("https://eu.api.ovh.com/1.0", "AK1", Rate{Requests: 1, Per: time.Second, Burst: 1})
	if b := ls.For("https://eu.api.ovh.com/1.0", "AK1", Rate{Requests: 99, Per: time.Second, Burst: 9}); b != a {
		t.Error("same account got another limiter")
	}
	if c := ls.For("https://eu.api.ovh.com/1.0", "AK2", Rate{}); c == a {
		t.Error("another application key shares the limiter")
	}
	if d := ls.For("https://ca.api.ovh.com/1.0", "AK1", Rate{}); d == a {
		t.Error("another endpoint shares the limiter")
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    Rate
		wantErr string
	}{
		{in: "50/m", want: Rate{50, time.Minute, 10}},
		{in: "2/s", want: Rate{2, time.Second, 1}},
		{in: "100/h burst 5", want: Rate{100, time.Hour, 5}},
		{in: "30/90s", want: Rate{30, 90 * time.Second, 6}},
		{in: "fast", wantErr: `rate "fast": want requests per period, such as 50/m or 2/s`},
		{in: "0/m", wantErr: `rate "0/m": the request count must be a positive whole number`},
		{in: "5/fortnight", wantErr: `rate "5/fortnight": the period must be s, m, h or a duration such as 90s`},
		{in: "5/m burst x", wantErr: `rate "5/m burst x": burst must be a positive whole number`},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseRate(%q) err = %v, want %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestPickRescue(t *testing.T) {
	trap := Boot{ID: 203323, BootType: "rescue", Kernel: "ipxe-shell"}
	hd := Boot{ID: 1, BootType: "harddisk", Kernel: "hd"}
	tests := []struct {
		name    string
		boots   []Boot
		want    int64
		wantErr string
	}{
		{name: "the iPXE shell listed first is never taken", boots: []Boot{trap, {ID: 230242, BootType: "rescue", Kernel: "rescue12-customer"}}, want: 230242},
		{name: "customer rescue before the pro one", boots: []Boot{{ID: 7, BootType: "rescue", Kernel: "rescue64-pro"}, {ID: 8, BootType: "rescue", Kernel: "rescue-customer"}}, want: 8},
		{name: "newest customer rescue", boots: []Boot{{ID: 9, BootType: "rescue", Kernel: "rescue11-customer"}, {ID: 10, BootType: "rescue", Kernel: "rescue12-customer"}}, want: 10},
		{name: "an iPXE rescue is no Linux rescue", boots: []Boot{{ID: 11, BootType: "rescue", Kernel: "ipxe-rescue"}, {ID: 12, BootType: "rescue", Kernel: "rescue64-pro"}}, want: 12},
		{name: "a Windows customer rescue is never taken", boots: []Boot{trap, {ID: 5, BootType: "rescue", Kernel: "rescue-customer-windows"}, {ID: 6, BootType: "rescue", Kernel: "rescue64-pro"}}, want: 6},
		{name: "nor WinRescue", boots: []Boot{{ID: 4, BootType: "rescue", Kernel: "WinRescue"}, {ID: 6, BootType: "rescue", Kernel: "rescue12-customer"}}, want: 6},
		{name: "only Windows rescues", boots: []Boot{{ID: 4, BootType: "rescue", Kernel: "WinRescue"}, {ID: 5, BootType: "rescue", Kernel: "rescue-customer-windows"}},
			wantErr: "no Linux rescue among the server's boots (WinRescue (id 4), rescue-customer-windows (id 5))"},
		{name: "none", boots: []Boot{trap, hd}, wantErr: "no Linux rescue among the server's boots (ipxe-shell (id 203323), hd (id 1))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PickRescue(tt.boots)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.ID != tt.want {
				t.Fatalf("picked %v (%v), want id %d", got, err, tt.want)
			}
		})
	}
	if got, err := PickHarddisk([]Boot{trap, {ID: 3, BootType: "harddisk", Kernel: "hd"}, hd}); err != nil || got.ID != 1 {
		t.Errorf("PickHarddisk = %v, %v", got, err)
	}
	if _, err := PickHarddisk([]Boot{trap}); err == nil {
		t.Error("PickHarddisk found a disk boot among none")
	}
}

func TestRescueKey(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "  " + edKey + "\n", want: edKey},
		{in: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", want: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
		{in: "", wantErr: "no SSH public key"},
		{in: edKey + "\n" + edKey, wantErr: "want one SSH public key on one line, got several lines"},
		{in: `from="10.0.0.1" ` + edKey, wantErr: "want a bare public key without authorized_keys options"},
		{in: "ssh-ed25519 notbase64", wantErr: `not an SSH public key: "ssh-ed25519 notbase64"`},
	}
	for _, tt := range tests {
		got, err := RescueKey(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("RescueKey(%q) err = %v, want %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RescueKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if got, want := ShowKey(edKey), "ssh-ed25519 AAAAC3NzaC1l… (SHA256:"; !strings.HasPrefix(got, want) {
		t.Errorf("ShowKey = %q, want it to start %q", got, want)
	}
}

func TestRequestString(t *testing.T) {
	r := SetBootRequest(testSN, 230242, edKey)
	fp, _ := Fingerprint(edKey)
	want := "PUT /dedicated/server/" + testSN + " {bootId: 230242, rescueSshKey: ssh-ed25519 AAAAC3NzaC1l… (" + fp + ")}"
	if r.String() != want {
		t.Errorf("got  %s\nwant %s", r, want)
	}
	if got := RebootRequest("a b/c").String(); got != "POST /dedicated/server/a%20b%2Fc/reboot" {
		t.Errorf("reboot request = %s", got)
	}
}

// clearOVHEnv unsets the OVH_* variables go-ovh reads, for the test.
func clearOVHEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"ENDPOINT", "APPLICATION_KEY", "APPLICATION_SECRET", "CONSUMER_KEY", "CLIENT_ID", "CLIENT_SECRET", "ACCESS_TOKEN"} {
		t.Setenv("OVH_"+k, "")
	}
}

// TestResolve: credentials come through go-ovh's own loading, the
// inventory's values first, then OVH_* variables, then the endpoint's
// section of ./ovh.conf (the one go-ovh reads that a test can place).
func TestResolve(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ovh.conf"), `[default]
endpoint=kimsufi-eu

[kimsufi-eu]
application_key=conf-ak
application_secret=conf-as
consumer_key=conf-ck

[http://127.0.0.1:8080/1.0]
application_key=url-ak
application_secret=url-as
consumer_key=url-ck

[ovh-ca]
client_id=conf-id
client_secret=conf-secret

[ovh-us]
access_token=conf-token
`)
	t.Chdir(dir)
	tests := []struct {
		name     string
		endpoint string
		vars     map[string]any
		env      map[string]string
		wantURL  string
		want     Credentials
		wantFrom string // of the first credential, by key order
		wantErr  string
	}{
		{name: "ovh.conf's default endpoint and its section", wantURL: "https://eu.api.kimsufi.com/1.0",
			want: Credentials{AppKey: "conf-ak", AppSecret: "conf-as", ConsumerKey: "conf-ck"}, wantFrom: "ovh.conf [kimsufi-eu] application_key"},
		{name: "inventory before environment before ovh.conf", endpoint: "kimsufi-eu",
			vars:    map[string]any{VarAppKey: "inv-ak"},
			env:     map[string]string{"OVH_APPLICATION_SECRET": "env-as"},
			wantURL: "https://eu.api.kimsufi.com/1.0", want: Credentials{AppKey: "inv-ak", AppSecret: "env-as", ConsumerKey: "conf-ck"},
			wantFrom: "inventory variable ovh_application_key"},
		{name: "endpoint from the inventory", vars: map[string]any{VarEndpoint: "http://127.0.0.1:8080/1.0/"},
			wantURL: "http://127.0.0.1:8080/1.0", want: Credentials{AppKey: "url-ak", AppSecret: "url-as", ConsumerKey: "url-ck"}},
		{name: "endpoint from the environment", env: map[string]string{"OVH_ENDPOINT": "ovh-eu", "OVH_APPLICATION_KEY": "a", "OVH_APPLICATION_SECRET": "b", "OVH_CONSUMER_KEY": "c"},
			wantURL: "https://eu.api.ovh.com/1.0", want: Credentials{AppKey: "a", AppSecret: "b", ConsumerKey: "c"}, wantFrom: "environment variable OVH_APPLICATION_KEY"},
		{name: "client credentials from ovh.conf", endpoint: "ovh-ca",
			wantURL: "https://ca.api.ovh.com/1.0", want: Credentials{ClientID: "conf-id", ClientSecret: "conf-secret"}},
		{name: "an access token from ovh.conf", endpoint: "ovh-us",
			wantURL: "https://api.us.ovhcloud.com/1.0", want: Credentials{AccessToken: "conf-token"}},
		{name: "client credentials from the inventory", endpoint: "ovh-eu", vars: map[string]any{VarClientID: "id", VarClientSecret: "secret"},
			wantURL: "https://eu.api.ovh.com/1.0", want: Credentials{ClientID: "id", ClientSecret: "secret"}, wantFrom: "inventory variable ovh_client_id"},
		{name: "client credentials for an API given by URL", vars: map[string]any{VarEndpoint: "http://127.0.0.1:9/1.0", VarClientID: "id", VarClientSecret: "secret", VarTokenURL: "http://127.0.0.1:9/token"},
			wantURL: "http://127.0.0.1:9/1.0", want: Credentials{ClientID: "id", ClientSecret: "secret", TokenURL: "http://127.0.0.1:9/token"}},
		{name: "an access token from the environment", endpoint: "ovh-eu", env: map[string]string{"OVH_ACCESS_TOKEN": "tok"},
			wantURL: "https://eu.api.ovh.com/1.0", want: Credentials{AccessToken: "tok"}},
		{name: "two kinds in the inventory", endpoint: "ovh-eu", vars: map[string]any{VarAppKey: "a", VarAccessToken: "t"},
			wantErr: "ovh: the inventory sets credentials of 2 kinds (OAuth2 access token, application key)"},
		{name: "two kinds through go-ovh", endpoint: "ovh-ca", vars: map[string]any{VarAppKey: "a", VarAppSecret: "b", VarConsumerKey: "c"},
			wantErr: "ovh: credentials: can't use multiple authentication methods: application_key/application_secret, client_id/client_secret"},
		{name: "no consumer key", endpoint: "ovh-eu", vars: map[string]any{VarAppKey: "a", VarAppSecret: "s3cr3t"},
			wantErr: "ovh: no consumer key for ovh-eu: set ovh_consumer_key (or OVH_CONSUMER_KEY, or consumer_key in the [ovh-eu] section of ovh.conf); `nixbook ovh login --endpoint ovh-eu` makes one"},
		{name: "nothing at all", endpoint: "soyoustart-eu",
			wantErr: "ovh: credentials: missing authentication information"},
		{name: "unknown endpoint", endpoint: "ovh-fr",
			wantErr: `ovh: unknown endpoint "ovh-fr": use one of ovh-eu, ovh-ca, ovh-us, kimsufi-eu, kimsufi-ca, soyoustart-eu, soyoustart-ca, or the API's URL such as https://eu.api.ovh.com/1.0`},
		{name: "not a URL", endpoint: "eu.api.ovh.com/1.0", wantErr: `ovh: endpoint "eu.api.ovh.com/1.0" is not a name or an http(s) URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOVHEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r, err := Resolve(tt.endpoint, tt.vars)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v\nwant  %s…", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("the error shows a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.URL != tt.wantURL || !sameCredentials(r.Credentials, tt.want) {
				t.Errorf("got %s %q, want %s %q", r.URL, credentialValues(r.Credentials), tt.wantURL, credentialValues(tt.want))
			}
			if tt.wantFrom != "" && r.From["application_key"] != tt.wantFrom && r.From["client_id"] != tt.wantFrom {
				t.Errorf("from %v, want %s", r.From, tt.wantFrom)
			}
		})
	}
}

func sameCredentials(a, b Credentials) bool {
	return slices.Equal(credentialValues(a), credentialValues(b))
}

func credentialValues(c Credentials) []string {
	return []string{c.AppKey, c.AppSecret, c.ConsumerKey, c.ClientID, c.ClientSecret, c.AccessToken, c.TokenURL}
}

func TestSecretsNeverPrinted(t *testing.T) {
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{testCreds, &testCreds, Config{Credentials: testCreds}, Resolved{Credentials: testCreds}} {
			out := fmt.Sprintf(format, v)
			for _, secret := range []string{testAK, testAS, testCK} {
				if strings.Contains(out, secret) {
					t.Errorf("%s of %T shows a secret: %s", format, v, out)
				}
			}
		}
	}
	// Nor do the logs and errors of a whole session, failures included.
	emu, endpoint := startAPI(t, ovhapi.Config{}, testSN)
	c, logs := newClient(t, endpoint)
	ctx := context.Background()
	emu.InjectFault(testSN, ovhapi.Fault{HTTP500: 1, TaskStatus: "ovhError", Comment: "broken"})
	var errs []string
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	_, err := c.GetServer(ctx, testSN)
	collect(err)
	collect(c.SetBoot(ctx, testSN, 230242, edKey))
	task, err := c.Reboot(ctx, testSN, fastWait())
	collect(err)
	if task != nil {
		_, err = c.WaitTask(ctx, testSN, task.ID, fastWait())
		collect(err)
	}
	bad, _ := newClient(t, endpoint, func(cfg *Config) { cfg.Credentials.AppSecret = testAS + "x" })
	_, err = bad.GetServer(ctx, testSN)
	collect(err)
	all := logs.String() + "\n" + strings.Join(errs, "\n")
	for _, secret := range []string{testAK, testAS, testCK} {
		if strings.Contains(all, secret) {
			t.Errorf("a secret shows in the logs or errors:\n%s", all)
		}
	}
	if len(errs) != 2 {
		t.Errorf("want the task error and the signature error, got %q", errs)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newHTTPServer serves h on loopback and returns its base URL.
func newHTTPServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
