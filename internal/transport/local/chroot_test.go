package local_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
)

// A tiny root with a static busybox as /bin/sh is enough to prove that
// commands, their working directory, environment and uploads land inside.
func TestChrootRunsInsideRoot(t *testing.T) {
	heavytest.Root(t, "chroot")
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox-static not installed (make deps installs it)")
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "work"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755)
	for _, applet := range []string{"sh", "pwd", "cat", "env", "echo"} {
		os.Symlink("busybox", filepath.Join(root, "bin", applet))
	}
	os.WriteFile(filepath.Join(root, transport.ChrootEnvFile), []byte("export PATH=/bin\nexport INSIDE=yes\n"), 0o644)

	c := transport.Chroot(&local.Conn{}, root)
	ctx := context.Background()
	res, err := c.Run(ctx, transport.Cmd{Args: []string{"pwd"}, Dir: "/work"})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "/work" {
		t.Fatalf("pwd = %q, %v", res.Stdout, err)
	}
	res, err = c.Run(ctx, transport.Cmd{Args: []string{"sh", "-c", `echo "$INSIDE/$EXTRA"`}, Env: map[string]string{"EXTRA": "a b"}})
	if err != nil || string(res.Stdout) != "yes/a b\n" {
		t.Fatalf("env = %q, %v", res.Stdout, err)
	}
	hostile := `$(echo pwned) "quoted" 'single'`
	res, err = c.Run(ctx, transport.Cmd{Args: []string{"echo", hostile}})
	if err != nil || string(res.Stdout) != hostile+"\n" {
		t.Fatalf("echo = %q, %v", res.Stdout, err)
	}
	if err := c.Upload(ctx, "/etc/motd", strings.NewReader("inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc", "motd")); string(got) != "inside\n" {
		t.Fatalf("upload landed outside the root: %q", got)
	}
	res, err = c.Run(ctx, transport.Cmd{Args: []string{"cat", "/etc/motd"}})
	if err != nil || string(res.Stdout) != "inside\n" {
		t.Fatalf("cat = %q, %v", res.Stdout, err)
	}
}
