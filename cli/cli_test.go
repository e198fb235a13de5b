package cli_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nixbook/nixbook/cli"
	"github.com/nixbook/nixbook/internal/sshdtest"
)

var update = flag.Bool("update", false, "rewrite the scripts' expected output")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"nixbook": func() { os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scripts in testdata/script against three real
// sshd servers on loopback, reachable through $INVENTORY.
func TestScripts(t *testing.T) {
	servers := sshdtest.StartFleet(t, 3, sshdtest.Options{})
	dir := t.TempDir()
	inv := sshdtest.WriteInventory(t, dir, servers)
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("INVENTORY", inv)
			env.Setenv("NO_COLOR", "")
			env.Setenv("HOME", env.WorkDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": exitCode,
			"waitfor":  waitFor,
		},
	})
}

// exitCode runs a command and checks its exact exit code:
//
//	exitcode 2 nixbook run play.yml -i $INVENTORY
//
// Its stdout and stderr go to $WORK/stdout and $WORK/stderr.
func exitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"), "HOME="+ts.Getenv("HOME"), "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	got := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		got = exit.ExitCode()
	} else if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	work := ts.Getenv("WORK")
	os.WriteFile(filepath.Join(work, "stdout"), stdout.Bytes(), 0o644)
	os.WriteFile(filepath.Join(work, "stderr"), stderr.Bytes(), 0o644)
	if got != want {
		ts.Fatalf("%s exited %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args[1:], " "), got, want, stdout.String(), stderr.String())
	}
}

// waitFor waits up to 30 s for a file to exist and contain a pattern:
//
//	waitfor $WORK/logs/h1.log 'run: sleep 60'
func waitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfor FILE PATTERN")
	}
	re, err := regexp.Compile(args[1])
	if err != nil {
		ts.Fatalf("waitfor: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && re.Match(data) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("waitfor: %s never matched %q", args[0], args[1])
}
