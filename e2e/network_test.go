package e2e

import (
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim"
)

// An installed system whose IPv6 is broken (the user's flake forces another
// server's IPv6 gateway) still answers SSH over IPv4; nixbook checks IPv6
// after the final boot and fails the task, naming what is wrong.
func TestBrokenIPv6OfTheInstalledSystemIsCaught(t *testing.T) {
	f := start(t, 1)
	dir := t.TempDir()
	gitRepo(t, dir, map[string]string{
		"flake.nix": `{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
  outputs = { self, nixpkgs, ... }: {
    nixosConfigurations.ks1 = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [ ./hosts/ks1 ({ lib, ... }: { networking.defaultGateway6 = lib.mkForce "2001:db8:ffff::1"; }) ];
    };
  };
}
`,
	}, "flake.nix")
	r := f.nixbook(t, "install.yml", "-e", "fs_layout=ext4", "-e", "flake="+dir)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2 (IPv6 broken):\n%s", r.code, r.out)
	}
	if m := f.Mode("ks1"); m != sim.ModeDisk || !strings.Contains(f.osRelease(t, "ks1"), "ID=nixos") {
		t.Fatalf("ks1 is in %s mode, want its installed NixOS answering over IPv4: %+v", m, f.Status("ks1"))
	}
	for _, want := range []string{
		"failed: [ks1] Install NixOS",
		"the installed system answers over IPv4 but its IPv6 does not work: it has no IPv6 default route (want one via " + f.Sim().Gateway6().String() + ")",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the run does not say %q:\n%s", want, r.out)
		}
	}
	if st := f.Status("ks1"); !strings.Contains(st.Installed, "IPv6 does not work: IPv6 default gateway 2001:db8:ffff::1") {
		t.Errorf("the simulator does not say why: %q", st.Installed)
	}
}
