package runner_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/modules/builtin"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/runner/runnertest"
	"github.com/nixbook/nixbook/internal/sshdtest"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// harness runs playbooks against real sshd servers on loopback.
type harness struct {
	t          *testing.T
	servers    []*sshdtest.Server
	inventory  string
	knownHosts string
	work       string // where the playbooks write, one directory per host
}

func newHarness(t *testing.T, n int) *harness {
	t.Helper()
	servers := sshdtest.StartFleet(t, n, sshdtest.Options{})
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	for _, s := range servers {
		if err := os.MkdirAll(filepath.Join(work, s.Name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{t: t, servers: servers, inventory: sshdtest.WriteInventory(t, dir, servers), work: work, knownHosts: filepath.Join(dir, "known_hosts")}
}

func (h *harness) run(ctx context.Context, playbook string, opts runner.Options) *runnertest.Result {
	h.t.Helper()
	if opts.ExtraVars == nil {
		opts.ExtraVars = map[string]any{}
	}
	opts.ExtraVars["work"] = h.work
	opts.LogDir = filepath.Join(h.t.TempDir(), "logs")
	eng := tmpl.New()
	return runnertest.Run(ctx, h.t, runnertest.Config{
		Inventory: h.inventory, Playbook: playbook, KnownHosts: h.knownHosts, ConnectTimeout: 5 * time.Second,
		Registry: builtin.Registry(eng, eng), Templates: eng, Options: opts,
	})
}

const fullPlaybook = `
- name: exercise the engine
  hosts: all
  gather_facts: true
  vars:
    dir: "{{ work }}/{{ inventory_hostname }}"
  tasks:
    - name: who
      command: echo "hello from {{ inventory_hostname }}"
      register: who
    - name: motd
      copy:
        dest: "{{ dir }}/motd"
        content: "{{ who.stdout }}\n"
        mode: "0640"
    - name: templated
      template:
        src: host.j2
        dest: "{{ dir }}/host.txt"
    - name: files in a loop
      command:
        cmd: touch "{{ dir }}/{{ item }}"
        creates: "{{ dir }}/{{ item }}"
      loop: [a, b, c]
    - name: only when the echo worked
      shell: echo ok > "{{ dir }}/when"
      when: who.rc == 0 and 'hello' in who.stdout
    - name: never runs
      command: touch "{{ dir }}/never"
      when: who.rc != 0
    - name: counts to three
      shell: n=$(cat "{{ dir }}/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "{{ dir }}/count"; echo $n
      register: counter
      until: counter.stdout == "3"
      retries: 5
      delay: 0
    - name: facts are there
      assert:
        that:
          - facts.boot_id | length > 0
          - facts.kernel != ""
`

func TestPlaybookOverTwentyHosts(t *testing.T) {
	h := newHarness(t, 20)
	tpl := filepath.Join(h.work, "host.j2")
	if err := os.WriteFile(tpl, []byte("name={{ inventory_hostname }} kernel={{ facts.kernel }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pb := strings.Replace(fullPlaybook, "src: host.j2", "src: "+tpl, 1)
	res := h.run(context.Background(), pb, runner.Options{})
	if code := res.Recap.Outcome(); code != runner.OutcomeOK {
		t.Fatalf("outcome %d, recap %+v\nevents of h1: %v (%s)", code, res.Recap.Hosts, res.Statuses("h1"), res.Message("h1", "who"))
	}
	for _, s := range h.servers {
		dir := filepath.Join(h.work, s.Name)
		motd, err := os.ReadFile(filepath.Join(dir, "motd"))
		if err != nil || string(motd) != "hello from "+s.Name+"\n" {
			t.Errorf("%s: motd = %q, %v", s.Name, motd, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "motd")); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: motd mode %v, %v", s.Name, fi.Mode(), err)
		}
		host, _ := os.ReadFile(filepath.Join(dir, "host.txt"))
		if !strings.HasPrefix(string(host), "name="+s.Name+" kernel=") || strings.TrimSpace(string(host)) == "name="+s.Name+" kernel=" {
			t.Errorf("%s: host.txt = %q", s.Name, host)
		}
		for _, f := range []string{"a", "b", "c", "when"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", s.Name, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
			t.Errorf("%s: the task with a false condition ran", s.Name)
		}
		if count, _ := os.ReadFile(filepath.Join(dir, "count")); string(count) != "3\n" {
			t.Errorf("%s: count = %q, want 3 attempts", s.Name, count)
		}
		r := res.HostRecap(s.Name)
		if r.Failed != 0 || r.Unreachable != 0 || r.Skipped != 1 || r.Changed != 6 {
			t.Errorf("%s: recap %+v, want 6 changed, 1 skipped", s.Name, r)
		}
	}

	// A second run changes only what always runs (command without creates, the counter).
	res = h.run(context.Background(), pb, runner.Options{})
	got := strings.Join(res.Statuses("h7"), " ")
	want := "gather facts=ok who=changed motd=ok templated=ok files in a loop=ok only when the echo worked=changed never runs=skipped counts to three=failed"
	if got != want {
		t.Errorf("second run on h7:\n got %s\nwant %s", got, want)
	}
}

// snapshot hashes every file under dir with its mode.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		sum := ""
		if d.Type().IsRegular() {
			data, _ := os.ReadFile(path)
			sum = fmt.Sprintf("%x", sha256.Sum256(data))
		}
		out[path] = fmt.Sprintf("%v %s", fi.Mode(), sum)
		return nil
	})
	return out
}

func TestCheckChangesNothing(t *testing.T) {
	h := newHarness(t, 5)
	tpl := filepath.Join(h.work, "host.j2")
	os.WriteFile(tpl, []byte("name={{ inventory_hostname }}\n"), 0o644)
	os.WriteFile(filepath.Join(h.work, "h2", "static"), []byte("old content\n"), 0o600)
	pb := strings.Replace(fullPlaybook, "src: host.j2", "src: "+tpl, 1) + `
    - name: static
      copy:
        dest: "{{ dir }}/static"
        content: "new content\n"
`
	before := snapshot(t, h.work)
	res := h.run(context.Background(), pb, runner.Options{Check: true, Diff: true})
	after := snapshot(t, h.work)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("--check changed files:\nbefore %v\nafter  %v", before, after)
	}
	if code := res.Recap.Outcome(); code != runner.OutcomeOK {
		t.Fatalf("exit %d: %v", code, res.Statuses("h1"))
	}
	got := strings.Join(res.Statuses("h2"), " ")
	// motd needs the echo's output, which only a real run has: it is unknown, not failed.
	for _, want := range []string{"who=would change", "motd=unknown until applied", "templated=would change", "files in a loop=would change", "static=would change"} {
		if !strings.Contains(got, want) {
			t.Errorf("h2 results %s: missing %q", got, want)
		}
	}
	// The diff of the existing motd shows the old content.
	found := false
	for _, e := range res.Events {
		if e.Host == "h2" && e.Task == "static" && e.Type == runner.EventResult {
			for _, c := range e.Changes {
				if c.Before == "old content\n" {
					found = true
				}
			}
		}
	}
	if !found {
		t.Error("--diff: no change with the old content as Before")
	}
}

func TestUnreachableHostDoesNotStopOthers(t *testing.T) {
	h := newHarness(t, 4)
	h.servers[2].Stop()
	res := h.run(context.Background(), `
- hosts: all
  gather_facts: false
  tasks:
    - name: mark
      command: touch "{{ work }}/{{ inventory_hostname }}/done"
`, runner.Options{})
	if o := res.Recap.Outcome(); o != runner.OutcomeUnreachable {
		t.Errorf("outcome %d, want unreachable", o)
	}
	for i, s := range h.servers {
		_, err := os.Stat(filepath.Join(h.work, s.Name, "done"))
		if i == 2 {
			if err == nil {
				t.Error("stopped host ran the task")
			}
			if r := res.HostRecap(s.Name); r.Unreachable != 1 {
				t.Errorf("stopped host recap %+v", r)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}

func TestChangedHostKeyIsRefused(t *testing.T) {
	h := newHarness(t, 3)
	pb := `
- hosts: all
  gather_facts: false
  tasks:
    - command: "true"
`
	if code := h.run(context.Background(), pb, runner.Options{}).Recap.Outcome(); code != runner.OutcomeOK {
		t.Fatalf("first run exit %d", code)
	}
	old := h.servers[1].HostKeyFingerprint()
	h.servers[1].RotateHostKey()
	res := h.run(context.Background(), pb, runner.Options{})
	if r := res.HostRecap("h2"); r.Unreachable != 1 {
		t.Fatalf("h2 recap %+v, want unreachable", r)
	}
	msg := res.Message("h2", "connect")
	for _, want := range []string{old, h.servers[1].HostKeyFingerprint(), "nixbook known-hosts forget h2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if r := res.HostRecap("h1"); r.Changed != 1 {
		t.Errorf("h1 recap %+v", r)
	}
}

func TestInterruptStopsRunningCommands(t *testing.T) {
	h := newHarness(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	start := time.Now()
	res := h.run(ctx, `
- hosts: all
  gather_facts: false
  tasks:
    - name: long
      command: sleep 30
    - name: after
      command: touch "{{ work }}/{{ inventory_hostname }}/after"
`, runner.Options{})
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("interrupted run took %s", d)
	}
	if !res.Recap.Interrupted || res.Recap.Outcome() != runner.OutcomeInterrupted {
		t.Errorf("recap %+v, outcome %d", res.Recap, res.Recap.Outcome())
	}
	for _, s := range h.servers {
		if _, err := os.Stat(filepath.Join(h.work, s.Name, "after")); err == nil {
			t.Errorf("%s: a task started after the interrupt", s.Name)
		}
	}
}

func TestSerialAndMaxFailPercentage(t *testing.T) {
	h := newHarness(t, 6)
	res := h.run(context.Background(), `
- hosts: all
  gather_facts: false
  serial: 2
  max_fail_percentage: 0
  tasks:
    - name: fail on h3
      command: "false"
      when: inventory_hostname == 'h3'
    - name: mark
      command: touch "{{ work }}/{{ inventory_hostname }}/done"
`, runner.Options{})
	if res.Recap.Aborted == "" || res.Recap.Outcome() != runner.OutcomeFailed {
		t.Fatalf("recap %+v", res.Recap)
	}
	for i, s := range h.servers {
		_, err := os.Stat(filepath.Join(h.work, s.Name, "done"))
		ran := err == nil
		// Batches are h1,h2 | h3,h4 | h5,h6: the second batch fails h3, h4 finishes, the third never starts.
		want := i == 0 || i == 1 || i == 3
		if ran != want {
			t.Errorf("%s ran=%v, want %v", s.Name, ran, want)
		}
	}
}

func TestSecretsNeverInOutputOrLogs(t *testing.T) {
	h := newHarness(t, 2)
	const secret = "s3cr3t-ovh-value"
	res := h.run(context.Background(), `
- hosts: all
  gather_facts: false
  tasks:
    - name: echo the secret
      command: echo "key={{ ovh_application_secret }}"
      register: out
    - name: show it
      debug:
        msg: "{{ out.stdout }}"
    - name: hidden
      command: echo "{{ ovh_application_secret }} in a no_log task"
      no_log: true
    - name: fails with it
      command: sh -c 'echo "{{ ovh_application_secret }}" >&2; exit 3'
`, runner.Options{ExtraVars: map[string]any{"ovh_application_secret": secret}, Diff: true})
	if res.Recap.Outcome() != runner.OutcomeFailed {
		t.Fatalf("outcome %d", res.Recap.Outcome())
	}
	for _, e := range res.Events {
		if s := fmt.Sprintf("%+v", e); strings.Contains(s, secret) {
			t.Errorf("event shows the secret: %s", s)
		}
	}
	if msg := fmt.Sprint(res.Events); !strings.Contains(msg, "key=********") {
		t.Errorf("the masked value is not shown in its place")
	}
	logs, _ := filepath.Glob(filepath.Join(res.LogDir, "*.log"))
	if len(logs) != 2 {
		t.Fatalf("logs: %v", logs)
	}
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		if strings.Contains(string(data), secret) {
			t.Errorf("%s holds the secret:\n%s", l, data)
		}
		if fi, _ := os.Stat(l); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", l, fi.Mode())
		}
		if !strings.Contains(string(data), "exit 3") {
			t.Errorf("%s lacks the exit code:\n%s", l, data)
		}
	}
}
