package cli_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

const (
	ovhTestAK = "TDPKJdwZwAQPwKX2"
	ovhTestAS = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk"
)

// emulators are the OVH API emulators of the running scripts, by $WORK.
var emulators sync.Map

// TestOVHScripts runs the scripts in testdata/ovh, each against an OVH API
// emulator of its own on loopback, at $OVH_API, whose application key and
// secret are in OVH_APPLICATION_KEY and OVH_APPLICATION_SECRET.
func TestOVHScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/ovh",
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			emu := ovhapi.New(ovhapi.Config{AppKey: ovhTestAK, AppSecret: ovhTestAS, ConsumerKey: "unused", Weather: ovhapi.BadDay(1)})
			ctx, cancel := context.WithCancel(context.Background())
			url, err := emu.Serve(ctx, "127.0.0.1:0")
			if err != nil {
				cancel()
				return err
			}
			env.Defer(func() { cancel(); emu.Close() })
			emulators.Store(env.WorkDir, emu)
			env.Setenv("OVH_API", url)
			env.Setenv("OVH_APPLICATION_KEY", ovhTestAK)
			env.Setenv("OVH_APPLICATION_SECRET", ovhTestAS)
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":    exitCode,
			"bgrun":       bg.run,
			"bgwait":      bg.wait,
			"ovhvalidate": ovhValidate,
			"filemode":    fileMode,
		},
	})
}

// ovhValidate waits (up to 30 s) for a consumer key pending validation on
// the script's emulator and opens its validation URL over HTTP, as its
// owner would in a browser; $VALIDATION_TOKEN is then its token.
func ovhValidate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: ovhvalidate")
	}
	v, ok := emulators.Load(ts.Getenv("WORK"))
	if !ok {
		ts.Fatalf("no emulator for this script")
	}
	emu := v.(*ovhapi.Emulator)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if urls := emu.PendingValidations(); len(urls) > 0 {
			resp, err := http.Get(urls[0])
			ts.Check(err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				ts.Fatalf("%s: %s\n%s", urls[0], resp.Status, body)
			}
			_, token, _ := strings.Cut(urls[0], "credentialToken=")
			ts.Setenv("VALIDATION_TOKEN", token)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("ovhvalidate: no consumer key pending validation")
}

// fileMode checks a file's permission bits: filemode FILE 0600.
func fileMode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: filemode FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := st.Mode().Perm(); got != os.FileMode(want) {
		ts.Fatalf("%s: mode %s, want %s", args[0], got, fmt.Sprintf("%04o", want))
	}
}
