package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The archive unpacks with GNU cpio as the kernel unpacks it: files with
// their modes, inside directories made for them.
func TestCpioUnpacks(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not found")
	}
	files := []File{
		{Path: "/etc/ssh/ssh_host_ed25519_key", Mode: 0o600, Data: "secret\n"},
		{Path: "/etc/hostname", Data: "rescue12-customer-eu\n"},
		{Path: "/root/.ssh/authorized_keys", Data: "ssh-ed25519 AAAA x\n"},
		{Path: "/init", Mode: 0o755, Data: "#!/bin/sh\n"},
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte, 1)
	go func() { b, _ := cmd.CombinedOutput(); out <- b }()
	_, _ = stdin.Write(Cpio(files))
	stdin.Close()
	if b := <-out; cmd.ProcessState == nil || !cmd.ProcessState.Success() {
		t.Fatalf("cpio: %s", b)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Path)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != f.Data {
			t.Errorf("%s: %q, %v", f.Path, b, err)
			continue
		}
		st, _ := os.Stat(p)
		want := os.FileMode(f.Mode)
		if want == 0 {
			want = 0o644
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", f.Path, st.Mode().Perm(), want)
		}
	}
}
