package sim

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim/internal/hostnet"
)

func TestDaemonServesStatusRebootAndDown(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "fleet")
	served := make(chan error, 1)
	go func() {
		served <- Serve(context.Background(), Config{Dir: dir, Hosts: 2, BootDelay: 100 * time.Millisecond, Logf: t.Logf}, ServeOptions{OwnDir: true})
	}()
	client := Client{Dir: dir}
	var st *FleetStatus
	eventually(t, time.Minute, "fleet ready", func() error {
		var err error
		select {
		case err := <-served:
			t.Fatalf("Serve returned: %v", err)
		default:
		}
		if st, err = client.Status(context.Background()); err != nil {
			return err
		}
		if !st.Ready {
			return errors.New("not ready")
		}
		return nil
	})
	if len(st.Hosts) != 2 || !st.Hosts[0].SSH || st.Hosts[0].Mode != ModeRescue {
		t.Fatalf("status: %+v", st)
	}
	boot1 := st.Hosts[1].BootID
	if err := client.Reboot(context.Background(), "ks2", ModeOff); err != nil {
		t.Fatal(err)
	}
	if err := client.Reboot(context.Background(), "ks9", ModeRescue); err == nil {
		t.Errorf("rebooting an unknown host succeeded")
	}
	st, err := client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h := st.Hosts[1]; h.Mode != ModeOff || h.SSH || h.BootID != boot1 {
		t.Errorf("ks2 after power off: %+v", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := client.Down(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after down")
	}
	if err := client.Down(ctx); err != nil {
		t.Errorf("second down: %v", err)
	}
	if _, err := client.Status(ctx); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("status after down: %v", err)
	}
	assertNothingLeft(t, hostnet.FleetID(dir), dir, nil, nil)
}

// TestDownReturnsOnceTheDaemonIsDone holds the daemon after it removed the
// fleet's record: a client's down must wait for it all the same, since the
// daemon removes the directories that held the record after it.
func TestDownReturnsOnceTheDaemonIsDone(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "fleet")
	var finished atomic.Bool
	hooks := &testHooks{downCleaned: func() {
		time.Sleep(500 * time.Millisecond)
		finished.Store(true)
	}}
	served := make(chan error, 1)
	go func() {
		served <- Serve(context.Background(), Config{Dir: dir, Hosts: 1, BootDelay: 100 * time.Millisecond, Logf: t.Logf, hooks: hooks}, ServeOptions{OwnDir: true})
	}()
	client := Client{Dir: dir}
	eventually(t, time.Minute, "fleet ready", func() error {
		select {
		case err := <-served:
			t.Fatalf("Serve returned: %v", err)
		default:
		}
		st, err := client.Status(context.Background())
		if err != nil {
			return err
		}
		if !st.Ready {
			return errors.New("not ready")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := client.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("down returned while the daemon was still taking the fleet down")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	assertNothingLeft(t, hostnet.FleetID(dir), dir, nil, nil)
}
