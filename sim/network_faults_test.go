package sim

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim/internal/hostnet"
	"github.com/nixbook/nixbook/sim/nixeval"
)

// After a kexec, each host's installer comes up as its kexec_network says:
// reached where the field would reach it, and not where it would not. A
// rescue that took its address by DHCP (a real exchange with the fleet's
// udhcpd) asks again from the installer, and a new lease then replaces its
// address; a static address stays.
func TestKexecNetworkFaults(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 6, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks1": {KexecNetwork: KexecNewDHCPAddress},
		"ks2": {KexecNetwork: KexecNoDefaultRoute},
		"ks3": {KexecNetwork: KexecNoIPv6},
		"ks5": {KexecNetwork: KexecNewDHCPAddress, RescueNetwork: RescueDHCP},
		"ks6": {RescueNetwork: RescueDHCP},
	}}})
	banner := func(a netip.Addr) bool {
		return sshBanner(context.Background(), netip.AddrPortFrom(a, 22), 2*time.Second) == nil
	}
	for _, name := range []string{"ks1", "ks2", "ks3", "ks4", "ks5", "ks6"} {
		h, _ := f.Host(name)
		c, _ := dial(t, f, name)
		lease := strings.Contains(run(t, c, "ip -o -4 addr show dev eth0; ip -4 route show default"), "dynamic")
		if want := h.spec.RescueNetwork == RescueDHCP; lease != want {
			t.Errorf("%s: the rescue's address is a lease: %v, want %v", name, lease, want)
		}
		boot := h.BootID()
		_, _ = runErr(c, "kexec --nixbook-sim-installer")
		c.Close()
		eventually(t, 20*time.Second, name+" in the installer", func() error {
			h.mu.Lock()
			up := h.up
			h.mu.Unlock()
			if h.Mode() != ModeInstaller || h.BootID() == boot || !up {
				return fmt.Errorf("mode %s, up %v", h.Mode(), up)
			}
			return nil
		})
		dhcp := f.plan.HostV4(hostnet.NewLeaseIndex(h.spec.Index)).Addr()
		want := map[string][3]bool{ // at its IPv4, its IPv6, the new lease
			"ks1": {true, true, true}, // the static address is kept beside the lease
			"ks2": {false, true, false},
			"ks3": {true, false, false},
			"ks4": {true, true, false},
			"ks5": {false, true, true},
			"ks6": {true, true, false},
		}[name]
		addrs := [3]netip.Addr{h.Addr(), h.IPv6().Addr(), dhcp}
		// sshd starts a moment after the network: wait for one address
		// that must answer, then look at all.
		for i := range addrs {
			if want[i] {
				eventually(t, 10*time.Second, name+" answering at "+addrs[i].String(), func() error {
					return sshBanner(context.Background(), netip.AddrPortFrom(addrs[i], 22), time.Second)
				})
				break
			}
		}
		got := [3]bool{banner(addrs[0]), banner(addrs[1]), banner(addrs[2])}
		if got != want {
			t.Errorf("%s answers at %s, %s, %s: %v, want %v (%s)", name, h.Addr(), h.IPv6().Addr(), dhcp, got, want, h.Status(context.Background()).Why)
		}
	}
	// What a console shows on the host without a default route.
	h, _ := f.Host("ks2")
	c, _, err := dialHost(h.IPv6().Addr().String(), f.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out := run(t, c, "ip -4 route show"); strings.Contains(out, "default") {
		t.Errorf("ks2's installer has a default route:\n%s", out)
	}
}

// An installed system whose IPv6 gateway is wrong comes up over IPv4, with
// its address but no way back over IPv6.
func TestInstalledSystemWithWrongIPv6Gateway(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	heavytest.Require(t, "nix-bin, installed with apt")
	if err := nixeval.EnsureNix(context.Background()); err != nil {
		t.Skipf("disk mode evaluates with Nix: %v", err)
	}
	f := startFleet(t, Config{Hosts: 1})
	h, _ := f.Host("ks1")
	c, _ := dial(t, f, "ks1")
	installNixOSWith(t, f, c, "ks1", "eth0", "2001:db8:ffff::1")
	c.Close()
	if err := f.Reboot(context.Background(), "ks1", ModeDisk); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the installed system", func() error { return sshWithin(f, "ks1", 5*time.Second) })
	if h.Mode() != ModeDisk {
		t.Fatalf("mode %s: %s", h.Mode(), h.Status(context.Background()).Why)
	}
	if st := h.Status(context.Background()); !strings.Contains(st.Installed, "IPv6 does not work: IPv6 default gateway 2001:db8:ffff::1") {
		t.Errorf("status says %q", st.Installed)
	}
	if sshBanner(context.Background(), netip.AddrPortFrom(h.IPv6().Addr(), 22), 2*time.Second) == nil {
		t.Errorf("the installed system answers over IPv6 through a wrong gateway")
	}
}

// A host's NIC has the device link of a real NIC: facts read its driver
// and ask udev's net_id for its predictable names, as on a server. ks2's
// rescue predicts another name than its installed system will use
// (rescue_predicted_nic): the rehearsal of trusting a rescue's prediction.
func TestNICHasADeviceLink(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 2, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks2": {NIC: "enp3s0", Predicted: "eno1", NICDriver: "igb", RescuePredicted: "enp3s0"},
	}}})
	for _, tt := range []struct {
		host, nic, driver, predicted string
	}{
		{"ks1", "eth0", DefaultNICDriver, ""},
		{"ks2", "enp3s0", "igb", "enp3s0"},
	} {
		c, _ := dial(t, f, tt.host)
		out, err := runErr(c, facts.Script())
		c.Close()
		if err != nil {
			t.Fatalf("%s: facts: %v", tt.host, err)
		}
		fa, err := facts.Parse([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		h, _ := f.Host(tt.host)
		var got *facts.Interface
		for i := range fa.Interfaces {
			if fa.Interfaces[i].Name == tt.nic {
				got = &fa.Interfaces[i]
			}
		}
		if got == nil || got.Driver != tt.driver || got.PredictedName != tt.predicted || got.MAC != h.MAC() || !got.Up || len(got.IPv4) != 1 {
			t.Errorf("%s: facts see %+v, want %s with driver %s, predicted %q", tt.host, got, tt.nic, tt.driver, tt.predicted)
		}
		if got != nil && got.NetNames.MAC != "enx"+strings.ReplaceAll(h.MAC(), ":", "") {
			t.Errorf("%s: net_id's MAC name %q", tt.host, got.NetNames.MAC)
		}
	}
}
