package diskboot

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/internal/heavytest"
)

// What a look mounts is seen by the look and the programs it runs, and by
// no one else: not by this process's other threads, so not by a host's
// init cloned from them, and not after the look.
func TestALookMountsInItsOwnNamespace(t *testing.T) {
	heavytest.Root(t, "mounts a tmpfs")
	dir := t.TempDir()
	const marker = "nixbook-look-marker"
	// Seen from another thread, and from the main thread, which /proc/self
	// shows.
	mountedHere := func() bool {
		seen := make(chan bool)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			thread, err1 := os.ReadFile("/proc/thread-self/mountinfo")
			main, err2 := os.ReadFile("/proc/self/mountinfo")
			if err1 != nil || err2 != nil {
				t.Error(err1, err2)
			}
			seen <- strings.Contains(string(thread), dir) || strings.Contains(string(main), dir)
		}()
		return <-seen
	}
	var inLook, seenByChild, seenOutside bool
	err := inPrivateMounts(func() {
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
			t.Error(err)
			return
		}
		defer unix.Unmount(dir, 0)
		if err := os.WriteFile(dir+"/"+marker, nil, 0o600); err != nil {
			t.Error(err)
		}
		_, err := os.Stat(dir + "/" + marker)
		inLook = err == nil
		out, _ := exec.Command("ls", dir).Output()
		seenByChild = strings.Contains(string(out), marker)
		seenOutside = mountedHere()
	})
	if err != nil {
		t.Fatal(err)
	}
	if !inLook || !seenByChild {
		t.Errorf("the look sees its mount: %v; a program it runs: %v", inLook, seenByChild)
	}
	if seenOutside || mountedHere() {
		t.Errorf("the look's mount is seen outside it")
	}
	if _, err := os.Stat(dir + "/" + marker); err == nil {
		t.Errorf("the look's file system outlives it")
	}
}
