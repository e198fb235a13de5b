package rescue

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	testAK = "TDPKJdwZwAQPwKX2"
	testAS = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk"
	testCK = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY"
	testSN = "ns1.ip-203-0-113.eu"
	edKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy@fleet"
)

// account is an emulated OVH account on loopback whose reboots reboot the
// fake servers registered with it.
type account struct {
	emu      *ovhapi.Emulator
	endpoint string
	servers  map[string]*server
	// boots says what a server's reboot into a netboot runs; nil: the
	// rescue for a rescue boot, Debian for the disk.
	boots func(ovhapi.Netboot) system
}

func newAccount(t *testing.T, cfg ovhapi.Config) *account {
	t.Helper()
	a := &account{servers: map[string]*server{}}
	cfg.AppKey, cfg.AppSecret, cfg.ConsumerKey = testAK, testAS, testCK
	if cfg.Timings == (ovhapi.Timings{}) {
		cfg.Timings = ovhapi.Timings{Init: 5 * time.Millisecond, Todo: 5 * time.Millisecond, Doing: 10 * time.Millisecond}
	}
	cfg.OnReboot = func(ctx context.Context, name string, boot ovhapi.Netboot, key string) error {
		s, ok := a.servers[name]
		if !ok {
			return nil
		}
		into := debianOnDisk
		switch {
		case a.boots != nil:
			into = a.boots(boot)
		case ovhapi.ModeOf(boot) == ovhapi.ModeRescue:
			into = ovhRescue
		}
		s.Reboot(into)
		return nil
	}
	if cfg.Weather == nil {
		cfg.Weather = ovhapi.Calm()
	}
	a.emu = ovhapi.New(cfg)
	t.Cleanup(func() { a.emu.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var err error
	if a.endpoint, err = a.emu.Serve(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return a
}

// add registers a server with the API and returns its machine, whose
// variables name the account.
func (a *account) add(name string, bootID int64) *server {
	a.emu.AddServer(ovhapi.Server{Name: name, IP: "203.0.113.10", IPv6Block: "2001:db8:1:2a00::/64", BootID: bootID})
	s := newServer(map[string]any{
		"ovh_service":            name,
		"ovh_endpoint":           a.endpoint,
		"ovh_application_key":    testAK,
		"ovh_application_secret": testAS,
		"ovh_consumer_key":       testCK,
		"rescue_ssh_key":         edKey,
		"ovh_rate_limit":         "1000/s burst 1000",
	})
	a.servers[name] = s
	return s
}

// testModule builds the module with a fast clock; the server's API view
// (newServer) has fast pauses.
func testModule(t *testing.T, args string, s *server) *module {
	t.Helper()
	m := moduletest.NewFor(t, Spec, args, s.APIVars).(*module)
	m.clock = fastClock()
	return m
}

func TestPlans(t *testing.T) {
	tests := []struct {
		name   string
		args   string
		setup  func(a *account, s *server)
		bootID int64
	}{
		{name: "to-rescue", args: ""},
		{name: "to-rescue-already-set", args: "", setup: func(a *account, s *server) {
			c := testClient(t, a)
			if err := c.SetBoot(context.Background(), testSN, 230242, edKey); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "in-rescue", args: "", setup: func(a *account, s *server) { s.SetRunning(ovhRescue) }},
		{name: "harddisk", args: "boot: harddisk", bootID: 230242},
		{name: "harddisk-already", args: "boot: harddisk"},
		{name: "monitoring-off", args: "", setup: func(a *account, s *server) { s.APIVars[ovh.VarMonitoring] = "off" }},
		{name: "monitoring-off-already-set", args: "", setup: func(a *account, s *server) {
			s.APIVars[ovh.VarMonitoring] = false
			c := testClient(t, a)
			if err := c.SetBoot(context.Background(), testSN, 230242, edKey); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "harddisk-monitoring-back", args: "boot: harddisk", setup: func(a *account, s *server) {
			s.APIVars[ovh.VarMonitoring] = "off"
			c := testClient(t, a)
			if err := c.Do(context.Background(), ovh.Request{Method: "PUT", Path: ovh.ServerPath(testSN), Body: map[string]any{"monitoring": false}}, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "explicit-args", args: "service: " + testSN + "\nssh_key: " + edKey + "\ntimeout: 30m\ntask_timeout: 5m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t, ovhapi.Config{})
			s := a.add(testSN, tt.bootID)
			if tt.setup != nil {
				tt.setup(a, s)
			}
			before := len(a.emu.Calls(testSN))
			p, err := testModule(t, tt.args, s).Check(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			moduletest.Golden(t, filepath.Join("testdata", tt.name+".golden"), moduletest.FormatPlan(p), *update)
			for _, c := range a.emu.Calls(testSN)[before:] {
				if c.Method != "GET" {
					t.Errorf("check made %s %s", c.Method, c.Path)
				}
			}
		})
	}
}

func testClient(t *testing.T, a *account) *ovh.Client {
	c, err := ovh.New(ovh.Config{Endpoint: a.endpoint, Credentials: ovh.Credentials{AppKey: testAK, AppSecret: testAS, ConsumerKey: testCK}, Limiters: ovh.NewLimiters()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRebootIntoRescue(t *testing.T) {
	a := newAccount(t, ovhapi.Config{})
	s := a.add(testSN, 0)
	m := testModule(t, "", s)
	ctx := context.Background()
	p, err := m.Check(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Apply(ctx, s, p)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, s.AllLogs())
	}
	st, _ := a.emu.Server(testSN)
	if st.Mode != ovhapi.ModeRescue || st.BootID != 230242 || st.RescueSSHKey != edKey {
		t.Errorf("server %+v: want rescue12-customer (230242) with the key", st)
	}
	if len(st.Tasks) != 1 || st.Tasks[0].Boot.Kernel != "rescue12-customer" {
		t.Errorf("tasks %+v: want one reboot into rescue12-customer", st.Tasks)
	}
	if got := s.Facts(); !got.Rescue || got.BootID != "boot-2" {
		t.Errorf("facts after apply: %+v, want the rescue on boot-2", got)
	}
	if changes := s.KeyChanges(); len(changes) != 1 || changes[0] != "disk-key -> host-key-2" {
		t.Errorf("key changes %q, want the rescue's new key recorded once", changes)
	}
	for _, d := range s.Dials() {
		if !d.NewSystem {
			t.Errorf("a reconnect did not accept a new system: %+v", d)
		}
	}
	if s.runs[0] != "cat "+boot.IDPath {
		t.Errorf("first command %q, want the boot id read", s.runs[0])
	}
	if out["rescue"] != true || out["boot"] != "rescue12-customer" {
		t.Errorf("output %v", out)
	}
	again, err := m.Check(ctx, s)
	if err != nil || again.Changed() {
		t.Fatalf("second check: %v, %s", err, moduletest.FormatPlan(again))
	}
}

func TestHarddiskSetsTheNetbootWithoutReboot(t *testing.T) {
	a := newAccount(t, ovhapi.Config{})
	s := a.add(testSN, 230242)
	m := testModule(t, "boot: harddisk", s)
	ctx := context.Background()
	p, err := m.Check(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	st, _ := a.emu.Server(testSN)
	if st.BootID != 1 || len(st.Tasks) != 0 || s.Reboots() != 0 {
		t.Errorf("server %+v, reboots %d: want the disk boot and no reboot", st, s.Reboots())
	}
	if again, err := m.Check(ctx, s); err != nil || again.Changed() {
		t.Errorf("second check: %v, %s", err, moduletest.FormatPlan(again))
	}
}

// queryIDs matches the query id API errors show, which changes every run.
var queryIDs = regexp.MustCompile(` \(query id [^)]*\)`)

func TestCheckFailures(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		vars    map[string]any
		boots   []ovhapi.Netboot
		wantErr string
	}{
		{name: "wrong application secret", vars: map[string]any{"ovh_application_secret": "0000secret0000"},
			wantErr: "ovh: GET /dedicated/server/" + testSN + ": 400 Client::BadRequest: Invalid signature (credentials for ENDPOINT: " +
				"application_key from inventory variable ovh_application_key, application_secret from inventory variable ovh_application_secret, " +
				"consumer_key from inventory variable ovh_consumer_key; they need GET, PUT and POST on /dedicated/server/*: ENDPOINT_ROOT/createToken/?GET=/dedicated/server&GET=/dedicated/server/*&PUT=/dedicated/server/*&POST=/dedicated/server/*)"},
		{name: "unknown application key", vars: map[string]any{"ovh_application_key": "XXXXXXXXXXXXXXXX"},
			wantErr: "ovh: GET /dedicated/server/" + testSN + ": 403 Client::Forbidden: Invalid application key (credentials for"},
		{name: "unknown server", vars: map[string]any{"ovh_service": "ns9.ip-198-51-100.eu"},
			wantErr: "ovh: GET /dedicated/server/ns9.ip-198-51-100.eu: 404 Client::NotFound: This service does not exist"},
		{name: "no credentials", vars: map[string]any{"ovh_consumer_key": nil},
			wantErr: "ovh: no consumer key for ENDPOINT: set ovh_consumer_key (or OVH_CONSUMER_KEY, or consumer_key in the [ENDPOINT] section of ovh.conf); `nixbook ovh login --endpoint ENDPOINT` makes one for the application key, or create all three at ENDPOINT_ROOT/createToken/"},
		{name: "no service", vars: map[string]any{"ovh_service": nil},
			wantErr: "no OVH service name: set the task's service argument or the host's ovh_service variable (the server's name in the OVH manager, such as ns1234.ip-203-0-113.eu)"},
		{name: "no rescue key", vars: map[string]any{"rescue_ssh_key": nil},
			wantErr: "no rescue SSH key: set the task's ssh_key or the host's rescue_ssh_key variable"},
		{name: "bad rescue key", vars: map[string]any{"rescue_ssh_key": "ssh-dss AAAA"},
			wantErr: `ssh_key: not an SSH public key: "ssh-dss AAAA"`},
		{name: "no Linux rescue", boots: []ovhapi.Netboot{{ID: 1, BootType: "harddisk", Kernel: "hd"}, {ID: 203323, BootType: "rescue", Kernel: "ipxe-shell"}},
			wantErr: testSN + ": no Linux rescue among the server's boots (ipxe-shell (id 203323))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t, ovhapi.Config{})
			s := a.add(testSN, 0)
			if tt.boots != nil {
				a.emu.AddServer(ovhapi.Server{Name: testSN, IP: "203.0.113.10", Boots: tt.boots})
			}
			for k, v := range tt.vars {
				if v == nil {
					delete(s.APIVars, k)
				} else {
					s.APIVars[k] = v
				}
			}
			// A bad value the host's variables give fails when the task is
			// built for the host, as validate does; a missing one, at Check.
			m, err := Spec.New(moduletest.DecoderFor(tt.args, s.APIVars))
			if err == nil {
				m.(*module).clock = fastClock()
				_, err = m.Check(context.Background(), s)
			}
			want := strings.ReplaceAll(tt.wantErr, "ENDPOINT_ROOT", strings.TrimSuffix(a.endpoint, "/1.0"))
			want = strings.ReplaceAll(want, "ENDPOINT", a.endpoint)
			if err == nil || !strings.HasPrefix(queryIDs.ReplaceAllString(err.Error(), ""), want) {
				t.Fatalf("err = %v\nwant  %s…", err, want)
			}
			for _, secret := range []string{testAS, "0000secret0000", testCK} {
				if strings.Contains(err.Error()+s.AllLogs(), secret) {
					t.Errorf("a secret shows in the error or log: %v\n%s", err, s.AllLogs())
				}
			}
		})
	}
}

func TestApplyFailures(t *testing.T) {
	tests := []struct {
		name    string
		fault   ovhapi.Fault
		prepare func(a *account, s *server)
		args    string
		wantErr string
		check   func(t *testing.T, err error)
	}{
		{name: "task ovhError surfaces its comment", fault: ovhapi.Fault{TaskStatus: "ovhError", Comment: "Server is in intervention, please retry later"},
			wantErr: "ovh: task ID (hardReboot) on " + testSN + " ended ovhError: Server is in intervention, please retry later"},
		{name: "task customerError surfaces its comment", fault: ovhapi.Fault{TaskStatus: "customerError", Comment: "The server is not powered on"},
			wantErr: "ovh: task ID (hardReboot) on " + testSN + " ended customerError: The server is not powered on"},
		{name: "API errors are retried", fault: ovhapi.Fault{HTTP500: 2}},
		{name: "the task takes too long", fault: ovhapi.Fault{SlowTask: time.Hour}, args: "task_timeout: 200ms",
			wantErr: "ovh: task ID on " + testSN + " still doing (Reboot asked): context deadline exceeded"},
		{name: "the host never comes back", prepare: func(a *account, s *server) { s.NeverBack = true }, args: "timeout: 2m",
			wantErr: "after the reboot into rescue12-customer (id 230242) (task ID done): did not answer SSH on a new boot within 2m (gave up after 2m0s",
			check: func(t *testing.T, err error) {
				var te *boot.TimeoutError
				if !errors.As(err, &te) {
					t.Errorf("%T is not a boot.TimeoutError", err)
				}
			}},
		{name: "the host comes back in another system", prepare: func(a *account, s *server) {
			a.boots = func(ovhapi.Netboot) system { return debianOnDisk }
		}, wantErr: "after the reboot into rescue12-customer (id 230242) (task ID done): came back running Debian GNU/Linux 12 (bookworm) (hostname ks1), not the rescue system",
			check: func(t *testing.T, err error) {
				var we *boot.WrongSystemError
				if !errors.As(err, &we) {
					t.Errorf("%T is not a boot.WrongSystemError", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t, ovhapi.Config{})
			s := a.add(testSN, 0)
			if tt.prepare != nil {
				tt.prepare(a, s)
			}
			m := testModule(t, tt.args, s)
			ctx := context.Background()
			p, err := m.Check(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			a.emu.InjectFault(testSN, tt.fault)
			_, err = m.Apply(ctx, s, p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("apply: %v", err)
				}
				return
			}
			st, _ := a.emu.Server(testSN)
			want := tt.wantErr
			if len(st.Tasks) > 0 {
				want = strings.ReplaceAll(want, "task ID", fmt.Sprintf("task %d", st.Tasks[0].ID))
			}
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v\nwant  %s…", err, want)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

// TestSecretsNeverShown runs a whole rescue with the secrets as host
// variables and looks for them in everything a user could see.
func TestSecretsNeverShown(t *testing.T) {
	a := newAccount(t, ovhapi.Config{})
	s := a.add(testSN, 0)
	m := testModule(t, "", s)
	ctx := context.Background()
	a.emu.InjectFault(testSN, ovhapi.Fault{HTTP500: 1})
	p, err := m.Check(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Apply(ctx, s, p)
	if err != nil {
		t.Fatal(err)
	}
	seen := moduletest.FormatPlan(p) + fmt.Sprintf("%v %+v %#v", out, p.Data, p.Changes) + s.AllLogs()
	for _, secret := range []string{testAK, testAS, testCK} {
		if strings.Contains(seen, secret) {
			t.Errorf("secret %s… shows:\n%s", secret[:4], seen)
		}
	}
	if !strings.Contains(s.AllLogs(), "ovh: PUT /dedicated/server/"+testSN+": 200") {
		t.Errorf("the API calls are not in the host's log:\n%s", s.AllLogs())
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		args, wantErr string
	}{
		{args: ""},
		{args: "boot: harddisk"},
		{args: "boot: disk", wantErr: `boot: want rescue or harddisk, got "disk"`},
		{args: "endpoint: ovh-fr", wantErr: `ovh: unknown endpoint "ovh-fr"`},
		{args: "endpoint: http://127.0.0.1:8080/1.0"},
		{args: "ssh_key: ssh-rsa nope", wantErr: `ssh_key: not an SSH public key: "ssh-rsa nope"`},
		{args: "timeout: 0", wantErr: "timeout and task_timeout must be positive"},
		{args: "service: [a]", wantErr: "args.yml:1"},
		{args: "bogus: 1", wantErr: "args.yml:1"},
	}
	for _, tt := range tests {
		_, err := Spec.New(moduletest.Decoder(tt.args))
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("New(%q): %v", tt.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("New(%q) err = %v, want %s", tt.args, err, tt.wantErr)
		}
	}
}

// TestRunningRescue: facts, which the runner keeps only for the boot the
// host runs, answer without a command; without them the host's names are
// read in one; a host SSH does not reach is left to the API.
func TestRunningRescue(t *testing.T) {
	tests := []struct {
		name    string
		running system
		facts   bool // the host's facts were gathered
		down    bool
		want    string
		runs    int
	}{
		{name: "rescue, from the facts", running: ovhRescue, facts: true, want: "rescue12-customer-eu"},
		{name: "disk, from the facts", running: debianOnDisk, facts: true},
		{name: "rescue, no facts", running: ovhRescue, want: "rescue12-customer-eu", runs: 1},
		{name: "disk, no facts", running: debianOnDisk, runs: 1},
		{name: "not reachable", running: ovhRescue, down: true, runs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(nil)
			s.SetRunning(tt.running)
			if !tt.facts {
				s.SetFacts(&facts.Facts{})
			}
			if tt.down {
				s.NeverBack = true
				s.Reboot(ovhRescue)
			}
			got, err := RunningRescue(context.Background(), s)
			if err != nil || got != tt.want {
				t.Errorf("RunningRescue = %q, %v; want %q", got, err, tt.want)
			}
			if len(s.runs) != tt.runs {
				t.Errorf("ran %q, want %d commands", s.runs, tt.runs)
			}
			if tt.down && !strings.Contains(s.AllLogs(), "not reachable over SSH; the rescue goes through the API") {
				t.Errorf("log %q", s.AllLogs())
			}
		})
	}
}

// TestSplitHeadOfThisMachine cuts what this machine's head prints of
// files with and without a last newline, and of one that is missing.
func TestSplitHeadOfThisMachine(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("ks1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("ID=debian\nVERSION_ID=12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("head", "-v", "-c", "65536", "--", a, filepath.Join(dir, "missing"), b).Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("head: %v, want exit 1 for the missing file", err)
	}
	files := splitHead(string(out))
	if strings.TrimSpace(files[a]) != "ks1" || strings.TrimSpace(files[b]) != "ID=debian\nVERSION_ID=12" || len(files) != 2 {
		t.Errorf("splitHead(%q) = %q", out, files)
	}
}

// TestReadSystemOfThisMachine reads this machine's names through the local
// transport, as head prints them, and checks them against the files.
func TestReadSystemOfThisMachine(t *testing.T) {
	h := moduletest.NewLocalHost(t)
	name, osr, err := readSystem(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	wantName, _ := os.ReadFile(hostnameFile)
	wantRel, _ := os.ReadFile(osReleaseFile)
	if name != strings.TrimSpace(string(wantName)) || osr != facts.ParseOSRelease(string(wantRel)) {
		t.Errorf("readSystem = %q, %+v; the files say %q, %+v", name, osr, wantName, facts.ParseOSRelease(string(wantRel)))
	}
}

var _ modules.Module = (*module)(nil)

// TestHarddiskContract runs the module contract suite on `boot: harddisk`
// against the emulated API: Check only reads, two Checks agree, and Apply
// converges.
func TestHarddiskContract(t *testing.T) {
	moduletest.Run(t, Spec, func(t *testing.T, dir string) (string, *moduletest.LocalHost) {
		a := newAccount(t, ovhapi.Config{})
		s := a.add(testSN, 230242)
		h := moduletest.NewLocalHost(t)
		h.VarsMap = s.APIVars
		h.ReachVal = modules.Reach{Dial: "203.0.113.10"} // the emulated server's address
		h.VarsMap["ovh_rate_limit"] = "1000/s burst 1000"
		return "boot: harddisk", h
	})
}

func TestExampleLoads(t *testing.T) {
	var b strings.Builder
	b.WriteString("- hosts: all\n  tasks:\n")
	for _, line := range strings.Split(strings.TrimRight(Spec.Example, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	if _, err := playbooks.LoadBytes("example.yml", []byte(b.String()), t.TempDir(), modules.NewRegistry(Spec)); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
}

// TestApplySetsTheServersOwnRescue: the plan reads the rescue list once for
// the servers of a range, but a server of that range that lacks the
// chosen rescue gets its own at apply.
func TestApplySetsTheServersOwnRescue(t *testing.T) {
	a := newAccount(t, ovhapi.Config{})
	first := a.add(testSN, 0)
	const other = "ns2.ip-203-0-113.eu"
	a.emu.AddServer(ovhapi.Server{Name: other, IP: "203.0.113.11", CommercialRange: "fs", Boots: []ovhapi.Netboot{
		{ID: 1, BootType: "harddisk", Kernel: "hd", Description: "Boot to disk"},
		{ID: 230243, BootType: "rescue", Kernel: "rescue12-customer", Description: "Customer rescue system (Debian-12-based)"},
	}})
	second := newServer(map[string]any{
		"ovh_service": other, "ovh_endpoint": a.endpoint, "ovh_application_key": testAK,
		"ovh_application_secret": testAS, "ovh_consumer_key": testCK, "rescue_ssh_key": edKey,
		"ovh_rate_limit": "1000/s burst 1000",
	})
	second.Address = "203.0.113.11"
	a.servers[other] = second
	// Hosts of one run: the runner gives them the account's one cache.
	run := ovh.NewLimiters()
	first.API.Limiters, second.API.Limiters = run, run
	ctx := context.Background()
	if _, err := testModule(t, "", first).Check(ctx, first); err != nil {
		t.Fatal(err)
	}
	m := testModule(t, "", second) // as the runner builds a task's module for each host
	p, err := m.Check(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.emu.Calls(other); len(got) != 1 {
		t.Errorf("the second check made %v, want only its server read (the range's list is shared)", got)
	}
	if _, err := m.Apply(ctx, second, p); err != nil {
		t.Fatalf("apply: %v\n%s", err, second.AllLogs())
	}
	if st, _ := a.emu.Server(other); st.BootID != 230243 || st.Mode != ovhapi.ModeRescue {
		t.Errorf("server %+v: want its own rescue (230243)", st)
	}
}

// TestHarddiskOnUEFIPointsToTheInstalledLoader: on a UEFI server, booting
// the disk also sets efiBootloaderPath to the loader NixOS installed
// (GRUB as removable), without which the emulator's server, like OVH's,
// stays in the UEFI shell; a BIOS server's call leaves it alone.
func TestHarddiskOnUEFIPointsToTheInstalledLoader(t *testing.T) {
	tests := []struct {
		name     string
		firmware string
		vars     map[string]any
		wantPath string // efiBootloaderPath after the apply
		wantBody bool   // the PUT carries efiBootloaderPath
	}{
		{name: "uefi", firmware: "uefi", wantPath: ovh.RemovableEFILoader, wantBody: true},
		{name: "uefi with systemd-boot", firmware: "uefi", vars: map[string]any{ovh.VarEFIBootloaderPath: `\EFI\systemd\systemd-bootx64.efi`},
			wantPath: `\EFI\systemd\systemd-bootx64.efi`, wantBody: true},
		{name: "bios", firmware: "bios"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t, ovhapi.Config{})
			s := a.add(testSN, 230242)
			// The server's firmware is the one the rescue's facts report.
			a.emu.AddServer(ovhapi.Server{Name: testSN, IP: "203.0.113.10", BootID: 230242, Firmware: tt.firmware})
			// What the install left on the EFI system partition.
			a.emu.SetEFILoaders(testSN, []string{ovh.RemovableEFILoader, `\EFI\systemd\systemd-bootx64.efi`})
			s.Facts().Firmware = tt.firmware
			for k, v := range tt.vars {
				s.APIVars[k] = v
			}
			m := testModule(t, "boot: harddisk", s)
			ctx := context.Background()
			p, err := m.Check(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			plan := moduletest.FormatPlan(p)
			if got := strings.Contains(plan, "efiBootloaderPath"); got != tt.wantBody {
				t.Errorf("plan mentions efiBootloaderPath: %t, want %t\n%s", got, tt.wantBody, plan)
			}
			if _, err := m.Apply(ctx, s, p); err != nil {
				t.Fatal(err)
			}
			st, _ := a.emu.Server(testSN)
			if st.EFIBootloaderPath != tt.wantPath {
				t.Errorf("efiBootloaderPath %q, want %q", st.EFIBootloaderPath, tt.wantPath)
			}
			if got := ovhapi.ModeOf(st.Boot); got != ovhapi.ModeDisk {
				t.Errorf("a reboot now boots %s (%s), want the disk", st.Boot.Kernel, got)
			}
			if again, err := m.Check(ctx, s); err != nil || again.Changed() {
				t.Errorf("second check: %v, %s", err, moduletest.FormatPlan(again))
			}
		})
	}
}
