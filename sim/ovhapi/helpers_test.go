package ovhapi

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovh/go-ovh/ovh"
)

// The revoked keys of go-ovh's and python-ovh's own test vectors.
const (
	testAK = "TDPKJdwZwAQPwKX2"
	testAS = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk"
	testCK = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY"
	testSN = "ns1.ip-1-2-3.eu"

	edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy@fleet"
)

func TestMain(m *testing.M) {
	// go-ovh fills missing settings from OVH_* variables; a stray one
	// (OVH_CLIENT_ID, OVH_ACCESS_TOKEN) would make NewClient refuse the keys.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "OVH_") {
			os.Unsetenv(name)
		}
	}
	os.Exit(m.Run())
}

func testServer(name string) Server {
	return Server{
		Name:        name,
		IP:          "203.0.113.10",
		IPv6Block:   "2001:db8:1:2a00::/64",
		IPv6Gateway: "2001:db8:1:2aff:ff:ff:ff:ff",
		Datacenter:  "gra2",
	}
}

// rebootLog records OnReboot calls.
type rebootLog struct {
	mu    sync.Mutex
	calls []rebootCall
	seen  chan rebootCall
	err   error
}

type rebootCall struct {
	Server string
	Boot   Netboot
	Key    string
}

func newRebootLog() *rebootLog { return &rebootLog{seen: make(chan rebootCall, 100)} }

func (l *rebootLog) onReboot(_ context.Context, server string, boot Netboot, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := rebootCall{server, boot, key}
	l.calls = append(l.calls, c)
	l.seen <- c
	return l.err
}

func (l *rebootLog) forServer(server string) []rebootCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []rebootCall
	for _, c := range l.calls {
		if c.Server == server {
			out = append(out, c)
		}
	}
	return out
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// start serves a new emulator over real HTTP on loopback; both are closed
// when the test ends.
func start(t *testing.T, cfg Config, servers ...Server) (*Emulator, string) {
	t.Helper()
	if cfg.AppKey == "" {
		cfg.AppKey, cfg.AppSecret, cfg.ConsumerKey = testAK, testAS, testCK
	}
	if cfg.Weather == nil {
		cfg.Weather = Calm()
	}
	e := New(cfg)
	for _, s := range servers {
		e.AddServer(s)
	}
	ts := httptest.NewServer(e.Handler())
	t.Cleanup(func() {
		ts.Close()
		e.Close()
	})
	return e, ts.URL + "/1.0"
}

func client(t *testing.T, endpoint string) *ovh.Client {
	t.Helper()
	return clientWith(t, endpoint, testAK, testAS, testCK)
}

func clientWith(t *testing.T, endpoint, ak, as, ck string) *ovh.Client {
	t.Helper()
	c, err := ovh.NewClient(endpoint, ak, as, ck)
	if err != nil {
		t.Fatalf("ovh.NewClient: %v", err)
	}
	c.Timeout = 10 * time.Second
	return c
}

func serverPath(name string, rest ...string) string {
	p := "/dedicated/server/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// apiErr asserts err is go-ovh's *APIError and returns it.
func apiErr(t *testing.T, err error) *ovh.APIError {
	t.Helper()
	var ae *ovh.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *ovh.APIError", err, err)
	}
	if !strings.HasPrefix(ae.QueryID, "EMU.ext-1.") {
		t.Errorf("QueryID = %q, want EMU.ext-1.…", ae.QueryID)
	}
	return ae
}

type netboot struct {
	BootID      int64  `json:"bootId"`
	BootType    string `json:"bootType"`
	Kernel      string `json:"kernel"`
	Description string `json:"description"`
}

type apiTask struct {
	TaskID     int64   `json:"taskId"`
	Function   string  `json:"function"`
	Status     string  `json:"status"`
	Comment    *string `json:"comment"`
	StartDate  string  `json:"startDate"`
	LastUpdate *string `json:"lastUpdate"`
	DoneDate   *string `json:"doneDate"`
	Note       *string `json:"note"`
}

// pollTask polls the task until it is no longer pending and returns the
// statuses seen, in order, without repeats.
func pollTask(t *testing.T, c *ovh.Client, name string, id int64) ([]string, apiTask) {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var task apiTask
		if err := c.Get(serverPath(name, "task", itoa(id)), &task); err != nil {
			t.Fatalf("GET task %d: %v", id, err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != task.Status {
			seen = append(seen, task.Status)
		}
		switch task.Status {
		case StatusInit, StatusTodo, StatusDoing:
			time.Sleep(5 * time.Millisecond)
			continue
		}
		return seen, task
	}
	t.Fatalf("task %d still pending after 10s; statuses %v", id, seen)
	return nil, apiTask{}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
