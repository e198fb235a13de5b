package sim

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/nixbook/nixbook/sim/internal/diskboot"
	"github.com/nixbook/nixbook/sim/nixeval"
)

// diskBoot is the host's disks as a disk boot finds them now: a vm host's
// those still in the machine, read from their images.
func (h *Host) diskBoot() diskboot.Boot {
	b := diskboot.Boot{Host: h.spec.Name, Dir: h.dir, Logf: h.f.logf}
	if h.vm == nil {
		b.Disks = h.devs.BootDisks()
		return b
	}
	b.Images = true
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, d := range h.disks {
		if !h.vm.pulled[i] {
			b.Disks = append(b.Disks, d)
		}
	}
	return b
}

// prepareDisk boots what is installed on the host's disks (see
// diskboot.Boot.System). If it would not come up on this server's network,
// the host still boots but stays off the network, and its status says why.
func (h *Host) prepareDisk(ctx context.Context, b *boot) error {
	server := diskboot.Server{Host: h.evalHost(), Tools: nixosTools}
	if h.nvram != nil {
		server.Firmware = h.nvram.Reasons()
	}
	sys, err := h.diskBoot().System(ctx, server)
	if err != nil {
		return err
	}
	switch {
	case sys.HostKey != nil:
		b.hostKey = KeyPair{Private: sys.HostKey.Private, Public: sys.HostKey.Public}
	default:
		if b.hostKey, err = h.firstBootHostKey(); err != nil {
			if sys.Volume != nil {
				sys.Volume.Close()
			}
			return err
		}
	}
	b.cfg.Hostname, b.osRelease, b.installed = sys.Hostname, sys.OSRelease, sys.Installed
	b.authKeys = sys.AuthorizedKeys
	if sys.Offline {
		b.network, b.cfg.SSHD = false, false
		b.why = sys.Why
	}
	if sys.Kind == diskboot.NixOS {
		b.nic = h.uplinkName(sys.Config)
		// IPv6 is what the configuration makes of it: none, or the server's
		// address with the routes it sets, through a wrong gateway, say.
		switch v6 := sys.IPv6; {
		case !v6.Configured:
			b.net.V6, b.net.GW6 = netip.Prefix{}, netip.Addr{}
		case len(v6.Problems) > 0:
			b.net.GW6 = v6.Gateway
			if !v6.Own {
				b.net.V6 = netip.Prefix{}
			}
			b.installed += "; IPv6 does not work: " + strings.Join(v6.Problems, "; ")
		}
	}
	if sys.Volume != nil {
		// The booted system's root: the volume stays mapped while it runs.
		h.holdVolume(sys.Volume)
	}
	b.cfg.Mounts = append(b.cfg.Mounts, sys.Mounts...)
	b.cfg.Files = append(b.cfg.Files, sys.Files...)
	for _, dir := range sys.Unhide {
		b.cfg.Hide = without(b.cfg.Hide, dir)
	}
	return nil
}

// firstBootHostKey is the host key an installed system without one makes
// at its first boot, and keeps.
func (h *Host) firstBootHostKey() (KeyPair, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.firstBootKey.Private == "" {
		key, err := newKeyPair("root@nixos")
		if err != nil {
			return KeyPair{}, err
		}
		h.firstBootKey = key
	}
	return h.firstBootKey, nil
}

// evalHost is what the host really is, for nixeval.Bootable.
func (h *Host) evalHost() nixeval.Host {
	nic := h.spec.predictedName()
	if nic == "" {
		nic = h.spec.NIC
	}
	eh := nixeval.Host{
		Name:        h.spec.Name,
		NIC:         nic,
		MAC:         h.spec.MAC,
		IPv4CIDR:    h.v4.String(),
		IPv4Gateway: h.f.plan.GW4.String(),
		IPv6CIDR:    h.v6.String(),
		IPv6Gateway: h.f.plan.GW6.String(),
		DiskAliases: map[string]string{},
		UEFI:        h.spec.UEFI(),
	}
	for _, d := range h.devs.BootDisks() {
		eh.Disks = append(eh.Disks, d.Path())
		eh.DiskAliases[d.ByIDPath()] = d.Path()
		if !slices.Contains(eh.Controllers, d.ControllerModule()) {
			eh.Controllers = append(eh.Controllers, d.ControllerModule())
		}
	}
	return eh
}

// uplinkName is the name the installed system's kernel gives the NIC: the
// predictable name, eth0 without predictable names, or a name pinned to its
// MAC.
func (h *Host) uplinkName(in *nixeval.Installed) string {
	name := h.spec.predictedName()
	if name == "" {
		name = h.spec.NIC
	}
	if in == nil {
		return name
	}
	if !in.UsePredictableNames {
		name = "eth0"
	}
	for _, r := range in.Renames {
		if strings.EqualFold(r.MAC, h.spec.MAC) && ifaceName.MatchString(r.Name) {
			name = r.Name
		}
	}
	return name
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func without(list []string, item string) []string {
	var out []string
	for _, s := range list {
		if s != item {
			out = append(out, s)
		}
	}
	return out
}
