package sim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/nixbook/nixbook/sim/internal/hostnet"
	"github.com/nixbook/nixbook/sim/simstate"
)

// How the rescue gets its IPv4 address.
const (
	// RescueStatic: the address and the default route are set statically
	// (the default).
	RescueStatic = "static"
	// RescueDHCP: the rescue asks the fleet's DHCP server (busybox's
	// udhcpd on the bridge), which hands each host its own address as a
	// lease, as OVH's does; the address shows `dynamic` with a lifetime and
	// the default route `proto dhcp`, as dhclient leaves them.
	RescueDHCP = "dhcp"
)

// startDHCP runs busybox's udhcpd on the fleet's bridge when a host's
// rescue takes its address by DHCP. Each such host has a static lease on
// its MAC: its own address, the gateway at .254 as router, OVH's resolver.
func (f *Fleet) startDHCP(ctx context.Context, specs []HostSpec) error {
	var leases []hostnet.StaticLease
	for _, s := range specs {
		if s.RescueNetwork == RescueDHCP {
			leases = append(leases, hostnet.StaticLease{MAC: s.MAC, Host: s.Index})
		}
	}
	if len(leases) == 0 {
		return nil
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("rescue_network: dhcp needs busybox (its udhcpd and udhcpc): %w", err)
	}
	dir := filepath.Join(f.dir, "dhcp")
	if err := f.mkdirs(dir); err != nil {
		return err
	}
	p := f.plan
	conf := p.UDHCPDConf(dir, leases)
	for name, data := range map[string]string{"udhcpd.conf": conf, "udhcpd.leases": ""} {
		if err := f.writeFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	if err := f.writeFile(filepath.Join(dir, "udhcpc.script"), []byte(hostnet.UDHCPCScript), 0o755); err != nil {
		return err
	}
	if err := f.state.Add(simstate.Files, filepath.Join(dir, "udhcpd.pid")); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "udhcpd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if err := f.state.Add(simstate.Files, logFile.Name()); err != nil {
		return err
	}
	cmd := exec.Command(busybox, "udhcpd", "-f", filepath.Join(dir, "udhcpd.conf"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start udhcpd: %w", err)
	}
	if err := f.state.AddProc(cmd.Process.Pid, "udhcpd on "+p.Bridge); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	f.onDown(func(context.Context) error {
		_ = cmd.Process.Kill()
		<-done
		return f.state.RemoveProc(cmd.Process.Pid)
	})
	return nil
}
