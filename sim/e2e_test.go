package sim

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim/nixeval"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

// TestKexecInstallAndDiskBoot goes the 2024 way with the fleet's payload:
// rescue, kexec into the installer (same host key), partition, install with
// the payload's nixos-install, set the netboot to the disk through the API,
// reboot, and the installed NixOS answers with the key it was installed with.
func TestKexecInstallAndDiskBoot(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	heavytest.Require(t, "nix-bin, installed with apt")
	if err := nixeval.EnsureNix(context.Background()); err != nil {
		t.Skipf("disk mode evaluates with Nix: %v", err)
	}
	f := startFleet(t, Config{Hosts: 1, CalmAPI: true, Payload: true, Timings: ovhapi.Timings{Init: 100 * time.Millisecond, Todo: 100 * time.Millisecond, Doing: 200 * time.Millisecond}})
	h, _ := f.Host("ks1")
	p := f.Payload()
	c, rescueKey := dial(t, f, "ks1")
	vars := map[string]string{}
	for _, kv := range f.payloadVars {
		vars[kv[0]] = kv[1]
	}
	run(t, c, fmt.Sprintf("cd /root && curl -sSfO %s && echo '%s  %s' | sha256sum -c --quiet && tar xzf %s",
		vars["kexec_url"], vars["kexec_sha256"], p.Kexec.Name, p.Kexec.Name))
	if out := run(t, c, "NIXBOOK_SIM_KEXEC_DELAY=1 /root/kexec/run"); !strings.Contains(out, "machine will boot into nixos in 1s") {
		t.Errorf("kexec/run: %q", out)
	}
	c.Close()
	eventually(t, 30*time.Second, "installer", func() error {
		if h.Mode() != ModeInstaller {
			return fmt.Errorf("mode %s", h.Mode())
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	c, installerKey := dial(t, f, "ks1")
	if !bytes.Equal(rescueKey.Marshal(), installerKey.Marshal()) {
		t.Errorf("the installer serves another host key than the rescue it came from")
	}
	disk := h.Disks()[0]
	run(t, c, `set -e
parted -s /dev/sda mklabel gpt mkpart grub 1MiB 2MiB set 1 bios_grub on mkpart root ext4 2MiB 100%
udevadm settle
mkfs.ext4 -q -L nixos /dev/sda2
udevadm settle
mount /dev/disk/by-label/nixos /mnt
nixos-generate-config --root /mnt`)
	config := fmt.Sprintf(`{ config, lib, pkgs, ... }:
{
  imports = [ ./hardware-configuration.nix ];
  boot.loader.grub.devices = [ %q ];
  networking.hostName = "web1";
  networking.useDHCP = false;
  networking.usePredictableInterfaceNames = false;
  networking.interfaces.eth0.ipv4.addresses = [ { address = %q; prefixLength = 24; } ];
  networking.interfaces.eth0.ipv6.addresses = [ { address = %q; prefixLength = 64; } ];
  networking.defaultGateway = %q;
  networking.defaultGateway6 = { address = %q; interface = "eth0"; };
  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keys = [ %q ];
  system.stateVersion = "24.05";
}
`, disk.ByIDPath(), h.IPv4().Addr(), h.IPv6().Addr(), f.Gateway4(), f.Gateway6(), f.ClientPublicKey())
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s.Stdin = strings.NewReader(config)
	if out, err := s.CombinedOutput("cat > /mnt/etc/nixos/configuration.nix"); err != nil {
		t.Fatalf("write configuration.nix: %v: %s", err, out)
	}
	out := run(t, c, "nixos-install --root /mnt --no-root-passwd 2>&1; cat /mnt/etc/ssh/ssh_host_ed25519_key.pub; umount /mnt")
	if !strings.Contains(out, "installation finished") {
		t.Fatalf("nixos-install:\n%s", out)
	}
	c.Close()

	rebootThroughAPI(t, f, "ks1", "harddisk", "hd", "")
	eventually(t, 60*time.Second, "installed system", func() error {
		if h.Mode() != ModeDisk {
			return fmt.Errorf("mode %s", h.Mode())
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	c, diskKey := dial(t, f, "ks1")
	defer c.Close()
	if got := run(t, c, "hostname; . /etc/os-release; echo $ID"); got != "web1\nnixos\n" {
		t.Errorf("installed system: %q", got)
	}
	if bytes.Equal(diskKey.Marshal(), rescueKey.Marshal()) {
		t.Errorf("the installed system serves the rescue's host key")
	}
	if !strings.Contains(out, strings.Fields(string(diskKeyLine(diskKey)))[1]) {
		t.Errorf("the installed system serves a key nixos-install did not write")
	}
	if st, _ := f.Emulator().Server(h.Service()); st.Mode != ovhapi.ModeDisk {
		t.Errorf("the API says %s", st.Mode)
	}
}
