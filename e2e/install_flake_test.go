package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim"
)

// userFlake writes a git repository holding the user's flake: one system
// per server, each importing the host folder nixbook places (hosts/<name>)
// and a module of the flake's own; ks2's turns sshd off.
func userFlake(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"flake.nix": `{
  description = "servers";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
  outputs = { self, nixpkgs, ... }: let
    server = name: extra: nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [ (./hosts + "/${name}") ./common.nix extra ];
    };
  in {
    nixosConfigurations.ks1 = server "ks1" { };
    nixosConfigurations.ks2 = server "ks2" ({ lib, ... }: { services.openssh.enable = lib.mkForce false; });
  };
}
`,
		"common.nix": "{ pkgs, ... }: {\n  time.timeZone = \"UTC\";\n  environment.systemPackages = [ pkgs.htop ];\n}\n",
		"secret.key": "untracked: never copied",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, argv := range [][]string{{"init", "-q"}, {"add", "flake.nix", "common.nix"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, argv...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", argv, err, out)
		}
	}
	return dir
}

// The 2024 path with the user's flake instead of a generated
// configuration: ks1 installs nixosConfigurations.ks1 (nixbook's host folder
// placed where the flake imports it) and boots it; ks2's system would run no
// sshd, so it is refused before anything is installed.
func TestInstallFlakeFleet(t *testing.T) {
	f := start(t, 2)
	flake := userFlake(t)
	args := []string{"-e", "fs_layout=ext4", "-e", "flake=" + flake}

	check := f.nixbook(t, "install.yml", append(args, "--check")...)
	if check.code != 0 {
		t.Fatalf("--check exit %d:\n%s", check.code, check.out)
	}
	r := f.nixbook(t, "install.yml", args...)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2 (ks2 is refused):\n%s", r.code, r.out)
	}
	if m := f.Mode("ks1"); m != sim.ModeDisk {
		t.Fatalf("ks1 is in %s mode, want disk: %+v\n%s", m, f.Status("ks1"), r.out)
	}
	if rel := f.osRelease(t, "ks1"); !strings.Contains(rel, `VERSION_ID="26.05"`) {
		t.Errorf("ks1 runs:\n%s", rel)
	}
	listing := f.sh(t, "ks1", "cd /etc/nixos && find . -type f | sort")
	for _, want := range []string{"./flake.nix", "./common.nix", "./hosts/ks1/default.nix", "./hosts/ks1/hardware-configuration.nix", "./hosts/ks1/nixbook-network.nix"} {
		if !strings.Contains(listing, want+"\n") {
			t.Errorf("/etc/nixos lacks %s:\n%s", want, listing)
		}
	}
	if strings.Contains(listing, "secret.key") || strings.Contains(listing, "./configuration.nix") {
		t.Errorf("/etc/nixos holds what it should not:\n%s", listing)
	}
	if !strings.Contains(r.out, "refusing to install nixosConfigurations.ks2") || !strings.Contains(r.out, "no SSH server would run") {
		t.Errorf("ks2 was not refused with the reason:\n%s", r.out)
	}
	if m := f.Mode("ks2"); m == sim.ModeDisk {
		t.Errorf("ks2 booted its disk")
	}
}
