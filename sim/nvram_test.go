package sim

import (
	"strings"
	"testing"
)

// efibootmgr against a UEFI host's NVRAM: what it lists, what changes it,
// and which changes take the server away from OVH's netboot.
func TestEfibootmgr(t *testing.T) {
	tests := []struct {
		name      string
		calls     [][]string
		wantOut   []string // in the last call's stdout
		wantErr   string   // in the last call's stderr
		diskFirst string   // the label ahead of the network boot, if any
	}{
		{name: "as OVH delivers it", calls: [][]string{{}}, wantOut: []string{"BootCurrent: 0000\n", "BootOrder: 0000,0001\n", "Boot0000* UEFI: PXE IPv4", "Boot0001* debian\n"}},
		{name: "verbose", calls: [][]string{{"-v"}}, wantOut: []string{`Boot0001* debian	HD(1,GPT)/File(\EFI\debian\grubx64.efi)`}},
		{name: "grub-install's entry goes first", calls: [][]string{{"-c", "-d", "/dev/sda", "-p", "1", "-l", `\EFI\NixOS-boot\grubx64.efi`, "-L", "NixOS-boot"}},
			wantOut: []string{"BootOrder: 0002,0000,0001\n", "Boot0002* NixOS-boot\n"}, diskFirst: "NixOS-boot"},
		{name: "put back behind the network", calls: [][]string{{"-c", "-L", "NixOS-boot"}, {"--bootorder=0000,0002,0001"}},
			wantOut: []string{"BootOrder: 0000,0002,0001\n"}},
		{name: "the disk first by hand", calls: [][]string{{"-o", "1,0"}}, diskFirst: "debian"},
		{name: "deleted", calls: [][]string{{"-b", "0001", "-B"}}, wantOut: []string{"BootOrder: 0000\n"}},
		{name: "delete what is not there", calls: [][]string{{"-b", "0007", "-B"}}, wantErr: "No such file or directory"},
		{name: "an order naming nothing", calls: [][]string{{"-o", "0000,0009"}}, wantErr: "Invalid BootOrder"},
		{name: "a value missing", calls: [][]string{{"-L"}}, wantErr: "option -L needs a value"},
		{name: "not simulated", calls: [][]string{{"--write-signature"}}, wantErr: "not simulated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNVRAM()
			var out, errOut string
			for _, args := range tt.calls {
				r := n.efibootmgr(args)
				out, errOut = r.Stdout, r.Stderr
				if (r.Code != 0) != (r.Stderr != "") {
					t.Errorf("efibootmgr %v: code %d, stderr %q", args, r.Code, r.Stderr)
				}
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tt.wantErr) || (tt.wantErr == "") != (errOut == "") {
				t.Errorf("stderr %q, want %q", errOut, tt.wantErr)
			}
			e, writes, ok := n.diskFirst()
			if ok != (tt.diskFirst != "") || e.label != tt.diskFirst {
				t.Errorf("disk first: %v %q, want %q", ok, e.label, tt.diskFirst)
			}
			if ok && len(writes) == 0 {
				t.Errorf("the writes are not recorded")
			}
		})
	}
}

// No arguments make efibootmgr panic.
func FuzzEfibootmgr(f *testing.F) {
	f.Add("-c -d /dev/sda -p 1 -l \\EFI\\x.efi -L x")
	f.Add("-o 0000,0001")
	f.Add("-b 0001 -B")
	f.Fuzz(func(t *testing.T, args string) {
		n := newNVRAM()
		n.efibootmgr(strings.Fields(args))
		n.diskFirst()
	})
}
