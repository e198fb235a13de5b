// Package heavytest gates the tests that need more than a Go toolchain:
// root, network namespaces, loop devices, QEMU, or packages installed with
// apt. `go test ./...` skips them, so it is fast, hermetic and installs
// nothing; `make test` (and so CI) sets NIXBOOK_HEAVY_TESTS=1 and runs them all.
package heavytest

import (
	"os"
	"testing"
)

// Env is the variable that lets heavy tests run.
const Env = "NIXBOOK_HEAVY_TESTS"

// Enabled says whether heavy tests run.
func Enabled() bool { return os.Getenv(Env) == "1" }

// Require skips the test unless heavy tests run; needs says what it needs.
func Require(t testing.TB, needs string) {
	t.Helper()
	if !Enabled() {
		t.Skipf("heavy test (needs %s): run make test, or set %s=1", needs, Env)
	}
}

// Root is Require for a test that also needs to be root.
func Root(t testing.TB, needs string) {
	t.Helper()
	Require(t, needs)
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s", needs)
	}
}
