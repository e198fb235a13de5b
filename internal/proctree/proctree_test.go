package proctree

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

// A child of this process is in its tree, with its parent known.
func TestTree(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if got := Parents()[cmd.Process.Pid]; got != os.Getpid() {
		t.Errorf("parent of the child: %d, want %d", got, os.Getpid())
	}
	tree := Tree(os.Getpid())
	if tree[0] != os.Getpid() || !slices.Contains(tree, cmd.Process.Pid) {
		t.Errorf("tree %v lacks the child %d", tree, cmd.Process.Pid)
	}
}
