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
