package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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

// dhcpLease is how long the fleet's DHCP server lends an address: longer
// than any rehearsal, since nothing renews it.
const dhcpLease = 864000

// udhcpcScript applies a lease as dhclient would: the address with the
// lease's lifetime (so `ip addr` shows it dynamic), the default route with
// proto dhcp.
const udhcpcScript = `#!/bin/sh
# nixbook-sim: applies the lease busybox udhcpc obtained, as dhclient would.
case "$1" in
bound|renew)
    ip -4 addr add "$ip/$mask" dev "$interface" valid_lft "$lease" preferred_lft "$lease"
    for r in $router; do
        ip -4 route replace default via "$r" dev "$interface" proto dhcp
        break
    done
    ;;
esac
exit 0
`

// startDHCP runs busybox's udhcpd on the fleet's bridge when a host's
// rescue takes its address by DHCP. Each such host has a static lease on
// its MAC: its own address, the gateway at .254 as router, OVH's resolver.
func (f *Fleet) startDHCP(ctx context.Context, specs []HostSpec) error {
	var leases []string
	for _, s := range specs {
		if s.RescueNetwork == RescueDHCP {
			leases = append(leases, fmt.Sprintf("static_lease %s %s", s.MAC, f.plan.hostV4(s.Index).Addr()))
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
	mask := netipMask(p.subnet)
	conf := fmt.Sprintf(`start %s
end %s
interface %s
lease_file %s
pidfile %s
option subnet %s
option router %s
option dns 213.186.33.99
option lease %d
%s
`, p.hostV4(1).Addr(), p.hostV4(MaxHosts).Addr(), p.bridge, filepath.Join(dir, "udhcpd.leases"), filepath.Join(dir, "udhcpd.pid"),
		mask, p.gw4, dhcpLease, strings.Join(leases, "\n"))
	for name, data := range map[string]string{"udhcpd.conf": conf, "udhcpd.leases": ""} {
		if err := f.writeFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	if err := f.writeFile(filepath.Join(dir, "udhcpc.script"), []byte(udhcpcScript), 0o755); err != nil {
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
	if err := f.state.AddProc(cmd.Process.Pid, "udhcpd on "+p.bridge); err != nil {
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

func netipMask(p netip.Prefix) string {
	m := ^uint32(0) << (32 - p.Bits())
	return fmt.Sprintf("%d.%d.%d.%d", byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
}

// askDHCP runs a DHCP exchange for the host's NIC with busybox's udhcpc
// in the host's network namespace, and applies the lease.
func (h *Host) askDHCP(ctx context.Context, nic string) error {
	dir := filepath.Join(h.f.dir, "dhcp")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+h.netns, "--",
		"busybox", "udhcpc", "-i", nic, "-f", "-q", "-n", "-t", "10", "-T", "1", "-s", filepath.Join(dir, "udhcpc.script"))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("DHCP for %s: udhcpc: %w: %s", h.spec.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// leaseOf says whether the host's IPv4 address on nic is a DHCP lease now
// (dynamic, with a lifetime), as kexec/run records it in the initrd.
func (h *Host) leaseOf(ctx context.Context, nic string) bool {
	out, err := exec.CommandContext(ctx, "ip", "-n", h.netns, "-j", "-4", "addr", "show", "dev", nic).Output()
	if err != nil {
		return false
	}
	var links []struct {
		AddrInfo []struct {
			Local   string `json:"local"`
			Dynamic bool   `json:"dynamic"`
		} `json:"addr_info"`
	}
	if json.Unmarshal(out, &links) != nil {
		return false
	}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if a.Local == h.v4.Addr().String() {
				return a.Dynamic
			}
		}
	}
	return false
}
