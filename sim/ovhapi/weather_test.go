package ovhapi

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestBadDayIsTheDefault(t *testing.T) {
	e := New(Config{})
	defer e.Close()
	if e.weather != *BadDay(1) {
		t.Errorf("default weather %+v, want BadDay(1)", e.weather)
	}
}

// statuses makes n GETs of the server and returns the statuses.
func statuses(t *testing.T, w *Weather, n int) []int {
	t.Helper()
	_, endpoint := start(t, Config{Weather: w}, testServer(testSN))
	c := client(t, endpoint)
	var got []int
	for range n {
		err := c.Get(serverPath(testSN), nil)
		if err == nil {
			got = append(got, 200)
			continue
		}
		got = append(got, apiErr(t, err).Code)
	}
	return got
}

func TestErrorBurstsAreRepeatable(t *testing.T) {
	w := &Weather{Seed: 7, ErrorBursts: 0.2, BurstMax: 3}
	first, again := statuses(t, w, 60), statuses(t, w, 60)
	if !slices.Equal(first, again) {
		t.Fatalf("the same seed gave\n%v\n%v", first, again)
	}
	if !slices.Contains(first, 200) || slices.IndexFunc(first, func(s int) bool { return s >= 500 }) < 0 {
		t.Fatalf("want answers and 5xx, got %v", first)
	}
	other := *w
	other.Seed = 8
	if slices.Equal(first, statuses(t, &other, 60)) {
		t.Error("another seed gave the same answers")
	}
}

func TestWeather(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1700000000, 0)}
	fast := Timings{Init: time.Second, Todo: time.Second, Doing: time.Second}

	t.Run("a new task is unknown for a while, then purged", func(t *testing.T) {
		_, endpoint := start(t, Config{Now: clock.Now, Timings: fast, Weather: &Weather{TaskNotFoundFor: 5 * time.Second, TaskPurge: time.Minute}}, testServer(testSN))
		c := client(t, endpoint)
		task := postReboot(t, c, testSN)
		get := func() int {
			if err := c.Get(serverPath(testSN, "task", itoa(task.TaskID)), nil); err != nil {
				return apiErr(t, err).Code
			}
			return 200
		}
		listed := func() bool {
			var ids []int64
			if err := c.Get(serverPath(testSN, "task")+"?function=hardReboot", &ids); err != nil {
				t.Fatal(err)
			}
			return slices.Contains(ids, task.TaskID)
		}
		if got := get(); got != 404 || !listed() {
			t.Fatalf("new task: %d, listed %v; want 404 and listed", got, listed())
		}
		clock.Add(5 * time.Second)
		if got := get(); got != 200 {
			t.Fatalf("after 5s: %d", got)
		}
		// The task ends when its goroutine has rebooted the server, in real
		// time: only a task that has ended can be purged.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			var got struct {
				Status string `json:"status"`
			}
			if err := c.Get(serverPath(testSN, "task", itoa(task.TaskID)), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status == StatusDone {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the task is still %s", got.Status)
			}
		}
		clock.Add(2 * time.Minute)
		if got := get(); got != 404 || listed() {
			t.Fatalf("a task done long ago: %d, listed %v; want purged", got, listed())
		}
	})

	t.Run("429 above the key's rate, with Retry-After", func(t *testing.T) {
		e, endpoint := start(t, Config{Now: clock.Now, Weather: &Weather{Rate: Rate{Requests: 2, Per: 2 * time.Second, Burst: 2}}}, testServer(testSN))
		c := client(t, endpoint)
		for i := range 2 {
			if err := c.Get(serverPath(testSN), nil); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
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
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("third call: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		clock.Add(time.Second)
		if err := c.Get(serverPath(testSN), nil); err != nil {
			t.Fatalf("after the wait: %v", err)
		}
		if n := e.Requests(testSN); n != 4 {
			t.Errorf("%d requests recorded, want 4", n)
		}
	})

	t.Run("writes carried out and answered 504", func(t *testing.T) {
		e, endpoint := start(t, Config{Weather: &Weather{LostAnswers: 1}}, testServer(testSN))
		c := client(t, endpoint)
		if ae := apiErr(t, c.Put(serverPath(testSN), map[string]any{"bootId": 230242}, nil)); ae.Code != 504 {
			t.Fatalf("PUT: %+v", ae)
		}
		if st, _ := e.Server(testSN); st.BootID != 230242 {
			t.Fatalf("the PUT was not carried out: %+v", st)
		}
	})

	t.Run("answers take time", func(t *testing.T) {
		_, endpoint := start(t, Config{Weather: &Weather{DelayMin: 40 * time.Millisecond, DelayMax: 40 * time.Millisecond}}, testServer(testSN))
		c := client(t, endpoint)
		begin := time.Now()
		if err := c.Get(serverPath(testSN), nil); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(begin); d < 40*time.Millisecond {
			t.Errorf("answered in %s", d)
		}
	})
}
