package runnertest

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/runner"
)

func TestResultAccessors(t *testing.T) {
	res := &Result{
		Recap: &runner.Recap{Hosts: []runner.HostRecap{{Host: "h1", Changed: 2}, {Host: "h2", Failed: 1}}},
		Events: []runner.Event{
			{Type: runner.EventTaskStart, Host: "h1", Task: "loop"},
			{Type: runner.EventOutput, Host: "h1", Task: "loop", Line: "one"},
			{Type: runner.EventResult, Host: "h1", Task: "loop", Item: "a", Status: runner.StatusChanged, Msg: "item a"},
			{Type: runner.EventOutput, Host: "h2", Task: "loop", Line: "other host"},
			{Type: runner.EventOutput, Host: "h1", Task: "loop", Line: "two"},
			{Type: runner.EventResult, Host: "h1", Task: "loop", Status: runner.StatusChanged, Msg: "whole task",
				Changes: []modules.Change{{Commands: []string{"a", "b"}}, {Commands: []string{"c"}}}},
			{Type: runner.EventResult, Host: "h2", Task: "loop", Status: runner.StatusFailed, Msg: "h2 failed"},
			{Type: runner.EventResult, Host: "h1", Task: "after", Status: runner.StatusOK},
		},
	}
	for _, tc := range []struct{ name, got, want string }{
		{"recap of h2", fmt.Sprintf("%+v", res.HostRecap("h2")), fmt.Sprintf("%+v", runner.HostRecap{Host: "h2", Failed: 1})},
		{"recap of a host not in it", fmt.Sprintf("%+v", res.HostRecap("h9")), fmt.Sprintf("%+v", runner.HostRecap{})},
		{"message of the whole task, not of an item", res.Message("h1", "loop"), "whole task"},
		{"message of another host", res.Message("h2", "loop"), "h2 failed"},
		{"message of a task that did not run", res.Message("h1", "missing"), ""},
		{"statuses in order, items left out", strings.Join(res.Statuses("h1"), " "), "loop=changed after=ok"},
		{"planned commands", strings.Join(res.Planned("h1", "loop"), " "), "a b c"},
		{"output of the host only", res.Output("h1", "loop"), "one\ntwo"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestKnownKeys(t *testing.T) {
	var lines []string
	want := map[string][]string{}
	for _, hosts := range []string{"ks1", "[ks1]:2222", "ks10", "ks2,ks1", "[ks2]:22", "xks1"} {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		key, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, hosts+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))))
		for _, name := range strings.Split(hosts, ",") {
			bare := strings.TrimPrefix(strings.SplitN(name, "]", 2)[0], "[")
			want[bare] = append(want[bare], ssh.FingerprintSHA256(key))
		}
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"ks1", "ks2", "ks10", "ks3"} {
		got := KnownKeys(t, known, host)
		if fmt.Sprint(got) != fmt.Sprint(want[host]) {
			t.Errorf("%s: %q, want %q", host, got, want[host])
		}
	}
	if n := len(KnownKeys(t, known, "ks1")); n != 3 {
		t.Errorf("ks1 has %d keys, want 3 (bare, on a port, among other names)", n)
	}
}
