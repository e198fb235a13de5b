package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	gitRepo(t, dir, files, "flake.nix", "common.nix")
	return dir
}

// gitRepo writes files into dir and makes it a git repository tracking
// the files named by track.
func gitRepo(t *testing.T, dir string, files map[string]string, track ...string) {
	t.Helper()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, argv := range [][]string{{"init", "-q"}, append([]string{"add"}, track...)} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, argv...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", argv, err, out)
		}
	}
}

// The 2024 path with the user's flake instead of a generated
// configuration: ks1 installs nixosConfigurations.ks1 (nixbook's host folder
// placed where the flake imports it) and boots it. ks2's system would run no
// sshd: the controller evaluates it (with the fleet's controller_nix, the
// payload's offline stand-in, as a real controller does with Nix) and
// refuses it before anything changes, in --check as in the run.
func TestInstallFlakeFleet(t *testing.T) {
	f := start(t, 2)
	flake := userFlake(t)
	args := []string{"-e", "fs_layout=ext4", "-e", "flake=" + flake}
	sums := f.DiskSHA256("ks2")
	// The preflight's refusal, which says nothing was changed (the server's
	// own evaluation, just before nixos-install, says nothing was installed).
	const refusal = "refusing to install nixosConfigurations.ks2 of " +
		"%s: the server would lock you out: services.openssh.enable is not true: no SSH server would run; nothing was changed"
	f.refusedBeforeAnyChange(t, "ks2", "install.yml", append([]string{"-l", "ks2"}, args...), fmt.Sprintf(refusal, flake))

	check := f.nixbook(t, "install.yml", append(args, "--check")...)
	if check.code != 2 || !strings.Contains(check.out, fmt.Sprintf(refusal, flake)) || check.recap(t, "ks1")["failed"] != 0 {
		t.Fatalf("--check exit %d, want ks2 alone refused:\n%s", check.code, check.out)
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
	if !strings.Contains(r.out, fmt.Sprintf(refusal, flake)) {
		t.Errorf("ks2 was not refused with the reason before anything changed:\n%s", r.out)
	}
	// ks1's flake tracks no hosts/ks1: the controller evaluated it with the
	// folder rendered from ks1's facts, as the install step places it.
	if log, _ := os.ReadFile(filepath.Join(f.logs, "ks1.log")); !strings.Contains(string(log), "nixosConfigurations.ks1 of "+flake+", evaluated on the controller with") {
		t.Errorf("ks1's flake was not evaluated on the controller:\n%s", log)
	}
	if m := f.Mode("ks2"); m != sim.ModeRescue || fmt.Sprint(f.DiskSHA256("ks2")) != fmt.Sprint(sums) {
		t.Errorf("ks2, refused, changed: mode %s", m)
	}
}

// build_on: local: the controller builds each server's system (with the
// fleet's controller_nix, the payload's stand-in, as a real controller with
// Nix) and copies its closure into the server's store; the server installs
// it with nixos-install --system, never evaluating or building the flake
// itself. Each server's system is built once (the plan only evaluates its
// path); that Nix's store builds a system already there no more is
// sim/payload's TestControllerBuildAndCopy.
func TestInstallFlakeBuiltOnTheController(t *testing.T) {
	f := start(t, 2)
	store := t.TempDir()
	t.Setenv("NIXBOOK_SIM_CONTROLLER_STORE", store)
	flake := userFlake(t)
	// ks2 installs ks1's system definition, under its own host folder.
	args := []string{"-e", "fs_layout=ext4", "-e", "flake=" + flake + "#ks1", "-e", "build_on=local"}

	check := f.nixbook(t, "install.yml", append(args, "--check")...)
	if check.code != 0 {
		t.Fatalf("--check exit %d:\n%s", check.code, check.out)
	}
	r := f.nixbook(t, "install.yml", args...)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	builds, _ := os.ReadFile(filepath.Join(store, "nix/var/log/nixbook-sim-builds"))
	built := strings.Fields(string(builds))
	if len(built) != 2 || built[0] == built[1] {
		t.Errorf("the controller built %q, want one system per server (their host folders differ)", built)
	}
	for _, h := range []string{"ks1", "ks2"} {
		if m := f.Mode(h); m != sim.ModeDisk {
			t.Fatalf("%s is in %s mode: %+v\n%s", h, m, f.Status(h), r.out)
		}
		system := strings.TrimSpace(f.sh(t, h, "readlink /nix/var/nix/profiles/system"))
		if !slices.Contains(built, system) {
			t.Errorf("%s runs %s, not a system the controller built (%q)", h, system, built)
		}
		log, _ := os.ReadFile(filepath.Join(f.logs, h+".log"))
		if !strings.Contains(string(log), "nixos-install --root /mnt --no-root-passwd --system "+system) || strings.Contains(string(log), "--flake") {
			t.Errorf("%s did not install the system the controller built:\n%s", h, log)
		}
	}
}
