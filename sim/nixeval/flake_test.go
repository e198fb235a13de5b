package nixeval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// flakeRoot is testdata/ovh-zfs with testdata/flake/flake.nix beside its
// configuration.nix.
func flakeRoot(t *testing.T) string {
	t.Helper()
	dir := root(t, "")
	data, err := os.ReadFile(filepath.Join("testdata", "flake", "flake.nix"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "nixos", "flake.nix"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEvaluateFlake(t *testing.T) {
	requireNix(t)
	ctx := context.Background()
	dir := flakeRoot(t)
	flake := filepath.Join(dir, "etc", "nixos")
	plain, err := Evaluate(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		want    []string // Bootable's reasons, as substrings
		wantErr string
	}{
		{name: "ks1"},
		{name: "locked-out", want: []string{"no SSH server runs"}},
		{name: "ks9", wantErr: "has no nixosConfigurations.ks9 (it has: ks1, locked-out)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EvaluateFlake(ctx, dir, flake, tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reasons := Bootable(ks1(), got, []string{"/dev/disk/by-id/ata-QEMU_HARDDISK_SIM0001"})
			if len(reasons) != len(tt.want) {
				t.Fatalf("reasons %q, want %q", reasons, tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(reasons[i], w) {
					t.Errorf("reason %q, want %q", reasons[i], w)
				}
			}
			if tt.name != "ks1" {
				return
			}
			// The flake's system is the configuration plus its own module.
			if tz := got.Raw["time"].(map[string]any)["timeZone"]; tz != "Europe/Paris" {
				t.Errorf("timeZone %v", tz)
			}
			if got.Hostname != plain.Hostname || got.HostID != plain.HostID || strings.Join(got.RootKeys, ",") != strings.Join(plain.RootKeys, ",") ||
				strings.Join(got.GrubDevices, ",") != strings.Join(plain.GrubDevices, ",") {
				t.Errorf("flake system %+v differs from its configuration.nix %+v", got, plain)
			}
		})
	}
}
