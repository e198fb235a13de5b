package runner

import (
	"context"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/playbooks"
)

// A run_once task runs on the batch's first host still in the play, however
// late it arrives; a later host waits for it, or for it to leave.
func TestClaimFollowsInventoryOrder(t *testing.T) {
	ps := &playState{}
	ps.newBatch([]string{"h1", "h2", "h3"})
	task := &playbooks.Task{Name: "once"}
	ctx := context.Background()

	type claimed struct {
		o     *onceRun
		first bool
	}
	h3 := make(chan claimed)
	go func() {
		o, first := ps.claim(ctx, task, "h3")
		h3 <- claimed{o, first}
	}()
	select {
	case c := <-h3:
		t.Fatalf("h3 claimed before h1 and h2 arrived or left: %+v", c)
	case <-time.After(50 * time.Millisecond):
	}
	ps.leave("h2") // h2 stops before the task: h1 is still first
	select {
	case c := <-h3:
		t.Fatalf("h3 claimed while h1 is in the play: %+v", c)
	case <-time.After(50 * time.Millisecond):
	}
	o, first := ps.claim(ctx, task, "h1")
	if !first || o.host != "h1" {
		t.Fatalf("h1: first=%v host=%s, want h1 to run it", first, o.host)
	}
	if c := <-h3; c.first || c.o != o {
		t.Fatalf("h3: %+v, want h1's run", c)
	}

	// Another task: h1 has left the play, so h2... has left too: h3 runs it.
	ps.leave("h1")
	next := &playbooks.Task{Name: "next"}
	if o, first := ps.claim(ctx, next, "h3"); !first || o.host != "h3" {
		t.Fatalf("h3: first=%v, want it to run the task", first)
	}

	// An interrupt ends the wait.
	ps.newBatch([]string{"a", "b"})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if o, first := ps.claim(cctx, task, "b"); o != nil || first {
		t.Fatalf("cancelled claim: %v %v", o, first)
	}
}
