package vm

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A cancelled build stops the script and what it started, and the
// script's EXIT trap runs: no work directory is left, no debootstrap
// goes on writing into the cache.
func TestCancelledScriptStopsItsChildren(t *testing.T) {
	dir := t.TempDir()
	script := []byte(`set -euo pipefail
trap 'touch "$1/cleaned"' EXIT
sh -c 'echo $$ >"$1/child"; exec sleep 300' sh "$1" &
wait
`)
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runScript(ctx, script, log, dir) }()
	var child int
	for i := 0; child == 0; i++ {
		if i > 500 {
			t.Fatal("the script did not start its child")
		}
		time.Sleep(10 * time.Millisecond)
		if b, err := os.ReadFile(filepath.Join(dir, "child")); err == nil {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	start := time.Now()
	cancel()
	if err := <-done; err == nil {
		t.Error("a cancelled script succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the script took %s to stop", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "cleaned")); err != nil {
		t.Error("the script's EXIT trap did not run")
	}
	for i := 0; syscall.Kill(child, 0) == nil; i++ {
		if i > 500 {
			t.Fatalf("the script's child %d still runs", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
