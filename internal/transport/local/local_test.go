package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/transport"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		cmd        transport.Cmd
		wantStdout string
		wantStderr string
		wantExit   int
		anyStderr  bool // the shell reports the signal in its own words
	}{
		{
			name:       "argv is quoted, not interpreted",
			cmd:        transport.Cmd{Args: []string{"printf", "%s|", "a b", "$HOME", "it's", "`id`", "*"}},
			wantStdout: "a b|$HOME|it's|`id`|*|",
		},
		{
			name:       "stdin",
			cmd:        transport.Cmd{Args: []string{"cat"}, Stdin: strings.NewReader("from stdin\n")},
			wantStdout: "from stdin\n",
		},
		{
			name:       "dir",
			cmd:        transport.Cmd{Args: []string{"pwd"}, Dir: dir},
			wantStdout: dir + "\n",
		},
		{
			name:       "env",
			cmd:        transport.Cmd{Args: []string{"printenv", "GREETING"}, Env: map[string]string{"GREETING": "hello world"}},
			wantStdout: "hello world\n",
		},
		{
			name:       "non-zero exit",
			cmd:        transport.Cmd{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}},
			wantStdout: "out\n",
			wantStderr: "err\n",
			wantExit:   3,
		},
		{
			name:      "killed by a signal",
			cmd:       transport.Cmd{Args: []string{"sh", "-c", "kill -TERM $$"}},
			wantExit:  143,
			anyStderr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var live bytes.Buffer
			tt.cmd.Stdout = &live
			res, err := (&Conn{}).Run(context.Background(), tt.cmd)
			if got := string(res.Stdout); got != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got, tt.wantStdout)
			}
			if got := live.String(); got != tt.wantStdout {
				t.Errorf("streamed stdout = %q, want %q", got, tt.wantStdout)
			}
			if got := string(res.Stderr); got != tt.wantStderr && !tt.anyStderr {
				t.Errorf("stderr = %q, want %q", got, tt.wantStderr)
			}
			if res.ExitCode != tt.wantExit {
				t.Errorf("exit code = %d, want %d", res.ExitCode, tt.wantExit)
			}
			var exit *transport.ExitError
			if gotExitErr := errors.As(err, &exit); gotExitErr != (tt.wantExit != 0) {
				t.Fatalf("err = %v, want an ExitError: %v", err, tt.wantExit != 0)
			}
			if exit != nil && exit.ExitCode != tt.wantExit {
				t.Errorf("ExitError.ExitCode = %d, want %d", exit.ExitCode, tt.wantExit)
			}
		})
	}
}

func TestRunCancelKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The grandchild writes its pid and sleeps; killing only sh would leave it.
	_, err := (&Conn{}).Run(ctx, transport.Cmd{Args: []string{"sh", "-c", `sleep 30 & echo $! > "$1"; wait`, "sh", pidFile}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Run returned after %s, want soon after the deadline", d)
	}
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return // gone or a zombie waiting for init: killed
		}
		if time.Now().After(deadline) {
			t.Fatalf("background sleep %s survived the cancel", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunBackgroundChildDoesNotHang(t *testing.T) {
	start := time.Now()
	res, err := (&Conn{WaitDelay: 200 * time.Millisecond}).Run(context.Background(),
		transport.Cmd{Args: []string{"sh", "-c", "sleep 5 & echo started"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "started\n" {
		t.Errorf("stdout = %q", res.Stdout)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %s: it waited for the background child", d)
	}
}

func TestUpload(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "file")
	c := &Conn{}
	if err := os.WriteFile(dst, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(context.Background(), dst, strings.NewReader("new content"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "new content" {
		t.Errorf("content = %q", got)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("mode = %v, want 0755 whatever the umask", fi.Mode())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only the file (no temporary left)", len(entries))
	}
}

func TestUploadMissingParent(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "missing", "file")
	err := (&Conn{}).Upload(context.Background(), dst, strings.NewReader("x"), 0o644)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

func TestUploadCancelledLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "file")
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := readerFunc(func(p []byte) (int, error) {
		cancel()
		return copy(p, "partial"), nil
	})
	if err := (&Conn{}).Upload(ctx, dst, r, 0o644); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancelled", err)
	}
	got, _ := os.ReadFile(dst)
	if string(got) != "old" {
		t.Errorf("content = %q, want the old file untouched", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want the temporary removed", len(entries))
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
