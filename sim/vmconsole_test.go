package sim

import (
	"path/filepath"
	"testing"
)

func TestVMConsoleState(t *testing.T) {
	tests := []struct {
		file, bootID string
		mode         Mode
		failure      string
	}{
		{"kexec.log", "1f0e5c43-5a8e-4f61-9d0b-8c1a7f3b9e21", ModeInstaller, ""},
		{"stage1.log", "b737cba4-cd2c-4181-9e59-12613053c2f2", ModeDisk, "the installed system's stage 1 stopped: cannot import the root pool rpool (host id 0badcafe): cannot import 'rpool': pool was previously in use from another system."},
		// The boot before the last marker says nothing of this one.
		{"grub-rescue.log", "", "", "GRUB stopped at its rescue prompt: error: no such device: 89a39a96-db2a-46d5-91d6-d2053f0dfa4b.; error: unknown filesystem."},
		{"blank-disks.log", "", "", "the firmware found no bootable disk"},
		// OVMF on a disk without a loader it can start.
		{"uefi-shell.log", "", "", "the firmware found no loader: it stopped in the UEFI shell"},
		{"missing.log", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			id, mode, failure := vmConsoleState(filepath.Join("testdata", "vmconsole", tt.file))
			if id != tt.bootID || mode != tt.mode || failure != tt.failure {
				t.Errorf("got %q, %q, %q\nwant %q, %q, %q", id, mode, failure, tt.bootID, tt.mode, tt.failure)
			}
		})
	}
}
