package payload

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNixEvalFlake runs the payload's `nix eval` on a local flake, as the
// install module does to refuse a system that would lock the user out: the
// store's, in a host's view of /nix/store, and the controller's copy, on the
// machine as it is.
func TestNixEvalFlake(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate is not installed (apt-get install nix-bin)")
	}
	if _, err := os.Stat("/nix"); err != nil {
		t.Skip("no /nix to mount the store over")
	}
	p := built(t)
	dir := t.TempDir()
	const flake = `{ outputs = { nixpkgs, ... }: { nixosConfigurations.ks1 = nixpkgs.lib.nixosSystem { modules = [ { services.openssh.enable = true; networking.hostName = "ks1"; } ]; }; }; }`
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr bool
	}{
		{name: "apply", args: []string{"eval", "--json", "--apply", "c: { ssh = c.services.openssh.enable; host = c.networking.hostName; }", dir + "#nixosConfigurations.ks1.config"},
			want: `{"host":"ks1","ssh":true}`},
		{name: "an attribute path", args: []string{"--extra-experimental-features", "nix-command flakes", "eval", "--json", dir + `#nixosConfigurations."ks1".config.networking.hostName`},
			want: `"ks1"`},
		{name: "a system the flake lacks", args: []string{"eval", "--json", dir + "#nixosConfigurations.ks2.config"},
			want: "has no nixosConfigurations.ks2", wantErr: true},
		{name: "remote", args: []string{"eval", "--json", "github:example/infra#nixosConfigurations.ks1.config"},
			want: "unable to download 'github:example/infra'", wantErr: true},
	}
	// A link to the controller's copy, as a PATH entry may be.
	link := filepath.Join(t.TempDir(), "nix")
	if err := os.Symlink(p.ControllerNix, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		for _, where := range []string{"host", "controller"} {
			t.Run(tt.name+"/"+where, func(t *testing.T) {
				var cmd *exec.Cmd
				if where == "host" {
					script := `mount -t tmpfs tmpfs /nix && mkdir /nix/store && mount --bind -o ro "$1" /nix/store && shift && exec "$@"`
					argv := append([]string{"-m", "--propagation", "private", "--", "sh", "-c", script, "sh", p.StoreDir, p.System + "/sw/bin/nix"}, tt.args...)
					cmd = exec.Command("unshare", argv...)
				} else {
					cmd = exec.Command(link, tt.args...)
				}
				cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
				out, err := cmd.CombinedOutput()
				if (err != nil) != tt.wantErr || !strings.Contains(string(out), tt.want) {
					t.Fatalf("nix %s: error %v, output:\n%s\nwant error %v and %q", strings.Join(tt.args, " "), err, out, tt.wantErr, tt.want)
				}
			})
		}
	}
}

// The controller's nix builds a flake's system once, whatever asks for it
// again, at the path its evaluation names; its nix-store exports the
// closure and imports it into another root's store, as a controller copies
// a system to a server.
func TestControllerBuildAndCopy(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate is not installed (apt-get install nix-bin)")
	}
	p := built(t)
	dir := t.TempDir()
	const flake = `{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05"; outputs = { nixpkgs, ... }: { nixosConfigurations.ks1 = nixpkgs.lib.nixosSystem { modules = [ { networking.hostName = "ks1"; boot.loader.grub.devices = [ "/dev/sda" ]; fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; }; } ]; }; }; }`
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	nixStore := filepath.Join(filepath.Dir(p.ControllerNix), "nix-store")
	run := func(stdin []byte, prog string, args ...string) string {
		t.Helper()
		cmd := exec.Command(prog, args...)
		cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NIXBOOK_SIM_CONTROLLER_STORE=" + store}
		if stdin != nil {
			cmd.Stdin = strings.NewReader(string(stdin))
		}
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("%s %s: %v: %s", filepath.Base(prog), strings.Join(args, " "), err, stderr)
		}
		return string(out)
	}
	attr := "path:" + dir + `#nixosConfigurations."ks1".config.system.build.toplevel`
	planned := run(nil, p.ControllerNix, "eval", "--raw", attr+".outPath")
	if !strings.HasPrefix(planned, "/nix/store/") || !strings.HasSuffix(planned, "-nixos-system-ks1-26.05.20260528."+planned[len(planned)-12:]) {
		t.Fatalf("outPath %q", planned)
	}
	for range 2 {
		if got := strings.TrimSpace(run(nil, p.ControllerNix, "build", "--no-link", "--print-out-paths", attr)); got != planned {
			t.Fatalf("built %q, evaluated %q", got, planned)
		}
	}
	if log, _ := os.ReadFile(filepath.Join(store, "nix/var/log/nixbook-sim-builds")); string(log) != planned+"\n" {
		t.Errorf("builds: %q, want one of %s", log, planned)
	}
	if got := strings.TrimSpace(run(nil, nixStore, "--query", "--requisites", planned)); got != planned {
		t.Errorf("closure %q", got)
	}
	export := run(nil, nixStore, "--export", planned)
	target := t.TempDir()
	run([]byte(export), nixStore, "--store", target, "--import")
	vars, err := os.ReadFile(filepath.Join(target, planned, "nixbook-sim-install-vars"))
	if err != nil || !strings.Contains(string(vars), "grub_devices='/dev/sda'") {
		t.Errorf("imported system: %q, %v", vars, err)
	}
}
