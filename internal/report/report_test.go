package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/runner"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// events is a run in miniature: a play, results of every kind, a check-mode
// plan with commands and a diff, and the recap.
func events() []runner.Event {
	return []runner.Event{
		{Type: runner.EventPlayStart, Play: "install", Hosts: []string{"ks1", "ks2"}},
		{Type: runner.EventNotice, Host: "ks1", Msg: "ks1: recorded new host key ssh-ed25519 SHA256:abc"},
		{Type: runner.EventTaskStart, Host: "ks1", Task: "partition"},
		{Type: runner.EventOutput, Host: "ks1", Task: "partition", Line: "remote output is not shown without -v"},
		{Type: runner.EventResult, Host: "ks1", Task: "gather facts", Status: runner.StatusOK},
		{Type: runner.EventResult, Host: "ks1", Task: "partition", Status: runner.StatusWouldChange, Duration: 2300 * time.Millisecond,
			Changes: []modules.Change{{Summary: "gpt on /dev/sda", Commands: []string{"parted -s /dev/sda mklabel gpt", "mkfs.ext4 -F -L nixos /dev/sda2"}}}},
		{Type: runner.EventResult, Host: "ks1", Task: "motd", Status: runner.StatusChanged,
			Changes:   []modules.Change{{Summary: "write /etc/motd", Before: "a\nb\nc\n", After: "a\nB\nc\n"}},
			Unplanned: []string{"rm -f -- /etc/motd.old"}},
		{Type: runner.EventResult, Host: "ks2", Task: "loop", Status: runner.StatusSkipped, Item: "x"},
		{Type: runner.EventResult, Host: "ks1", Task: "pool", Status: runner.StatusUnknown, Msg: "zpool not found on ks1 (after \"kexec\", which would change the host)"},
		{Type: runner.EventResult, Host: "ks2", Task: "show", Status: runner.StatusOK, Msg: "hello"},
		{Type: runner.EventResult, Host: "ks2", Task: "fails", Status: runner.StatusFailed, Msg: "command exited 1: false"},
		{Type: runner.EventResult, Host: "ks3", Task: "connect", Status: runner.StatusUnreachable, Msg: "dial tcp 192.0.2.3:22: connection refused"},
		{Type: runner.EventPlayAbort, Msg: "max_fail_percentage 0% exceeded"},
		{Type: runner.EventRecap, Recap: []runner.HostRecap{
			{Host: "ks1", OK: 3, Changed: 2, Unknown: 1},
			{Host: "ks2", OK: 1, Failed: 1, Skipped: 1, Rescued: 1},
			{Host: "ks3", Unreachable: 1},
		}},
	}
}

func TestHumanGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts HumanOptions
	}{
		{"human.golden", HumanOptions{Width: 60}},
		{"human-check.golden", HumanOptions{Width: 60, Check: true}},
		{"human-verbose.golden", HumanOptions{Width: 60, Verbose: 1}},
		{"human-by-host.golden", HumanOptions{Width: 60, Check: true, ByHost: true}},
	} {
		var b bytes.Buffer
		h := NewHuman(&b, tc.opts)
		for _, e := range events() {
			h.Event(e)
		}
		golden(t, tc.name, b.String())
	}
}

func TestHumanLiveLinesAreErased(t *testing.T) {
	var b bytes.Buffer
	h := NewHuman(&b, HumanOptions{Width: 60, Live: true})
	h.Event(runner.Event{Type: runner.EventTaskStart, Host: "ks1", Task: "install", Time: time.Now()})
	h.Event(runner.Event{Type: runner.EventResult, Host: "ks1", Task: "install", Status: runner.StatusChanged})
	out := b.String()
	if !strings.Contains(out, "  ks1 [install]") || !strings.Contains(out, "\x1b[1A\x1b[J") {
		t.Fatalf("live line not drawn then erased: %q", out)
	}
	if !strings.HasSuffix(out, "changed: [ks1] install\n") {
		t.Fatalf("result not the last line after the live area cleared: %q", out)
	}
}

func TestDiff(t *testing.T) {
	long := strings.Repeat("same\n", 10)
	for _, tc := range []struct{ a, b, want string }{
		{"", "new\n", "+new"},
		{"old\n", "", "-old"},
		{"a\nb\nc\n", "a\nB\nc\n", " a|-b|+B| c"},
		{long + "x\n" + long, long + "y\n" + long, "@@ 7 unchanged lines @@| same| same| same|-x|+y| same| same| same|@@ 7 unchanged lines @@"},
		{"a\nb", "a\nc", " a|-b|\\ No newline at end of file|+c|\\ No newline at end of file"},
		{"a\n", "a", "-a|+a|\\ No newline at end of file"},
		{"same\n", "same\n", ""},
	} {
		if got := strings.Join(Diff(tc.a, tc.b), "|"); got != tc.want {
			t.Errorf("Diff(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestJSONOneObjectPerLine(t *testing.T) {
	var b bytes.Buffer
	emit := JSON(&b)
	for _, e := range events() {
		emit(e)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(events()) {
		t.Fatalf("%d lines for %d events", len(lines), len(events()))
	}
	if !strings.HasPrefix(lines[len(lines)-1], `{"type":"recap"`) {
		t.Errorf("last line %s", lines[len(lines)-1])
	}
}

// A one-line change in a 16k-line file costs memory in proportion to the
// file, not its square (the quadratic diff took 2 GiB here).
func TestDiffLinear(t *testing.T) {
	const n = 16000
	var a, b strings.Builder
	for i := range n {
		fmt.Fprintf(&a, "line %d of a long configuration file\n", i)
		if i == n/2 {
			b.WriteString("a changed line\n")
			continue
		}
		fmt.Fprintf(&b, "line %d of a long configuration file\n", i)
	}
	x, y := a.String(), b.String()
	var got []string
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got = Diff(x, y)
	runtime.ReadMemStats(&after)
	if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(64*(len(x)+len(y))); alloc > limit {
		t.Errorf("diff of %d-byte files allocated %d bytes, want at most %d", len(x)+len(y), alloc, limit)
	}
	want := []string{
		"@@ 7997 unchanged lines @@",
		" line 7997 of a long configuration file", " line 7998 of a long configuration file", " line 7999 of a long configuration file",
		"-line 8000 of a long configuration file", "+a changed line",
		" line 8001 of a long configuration file", " line 8002 of a long configuration file", " line 8003 of a long configuration file",
		"@@ 7996 unchanged lines @@",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Diff = %q, want %q", got, want)
	}
}
