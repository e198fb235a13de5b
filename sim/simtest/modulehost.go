package simtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
	sshtransport "github.com/nixbook/nixbook/internal/transport/ssh"
)

// ModuleHost is a host for a module's own tests on the fleet's server name:
// a moduletest.LocalHost over nixbook's SSH transport as root, with the
// facts the runner gathers, which dials again and gathers again as the
// runner's hosts do, so a module that reboots or kexecs the server finds it
// on its next boot. Its variables are the host's in fleet.yml (the OVH
// credentials and service among them); its known_hosts belongs to the test.
func (f *Fleet) ModuleHost(t testing.TB, name string) *moduletest.LocalHost {
	t.Helper()
	sh := f.Host(name)
	d := sshtransport.NewDialer(sshtransport.DialerOptions{
		Store:         hostkeys.New(filepath.Join(t.TempDir(), "known_hosts")),
		SSHConfigPath: "none",
	})
	t.Cleanup(func() { d.Close() })
	target := transport.Target{Name: name, Address: sh.Addr, Port: sh.Port, User: "root", KeyFiles: []string{sh.KeyFile}}
	gather := func(ctx context.Context, conn transport.Conn) (*facts.Facts, error) {
		return facts.Gather(ctx, func(ctx context.Context, argv []string) ([]byte, error) {
			res, err := conn.Run(ctx, transport.Cmd{Args: argv})
			return res.Stdout, err
		})
	}
	inv, err := inventory.Load(f.FleetYAML)
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	ih, ok := inv.Host(name)
	if !ok {
		t.Fatalf("simtest: %s is not in %s", name, f.FleetYAML)
	}
	ctx := context.Background()
	conn, err := d.Dial(ctx, target, transport.DialOptions{})
	if err != nil {
		t.Fatalf("simtest: dial %s: %v", name, err)
	}
	h := moduletest.NewLocalHost(t)
	t.Cleanup(func() {
		if c := h.Conn; c != nil {
			c.Close()
		}
	})
	h.HostName, h.Conn, h.VarsMap = name, conn, ih.Vars
	h.ReachVal = modules.Reach{Dial: sh.Addr, Source: ih.Source}
	h.Redial = func(ctx context.Context, opts transport.DialOptions) (transport.Conn, error) {
		return d.Dial(ctx, target, opts)
	}
	h.Gather = gather
	if h.FactsVal, err = gather(ctx, conn); err != nil {
		t.Fatalf("simtest: facts of %s: %v", name, err)
	}
	return h
}
