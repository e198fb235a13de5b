package kexec

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/internal/fetch"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
)

var update = flag.Bool("update", false, "rewrite golden files")

var line = moduletest.Line

const (
	tarSum  = "c8f20950cc8a1dd53a7fadcdf83f83c2d7876d4629e55330653055c66851ca86"
	tarball = "/root/kexec/kexec.tar.gz"
)

const debianRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
`

const installerRelease = `ID=nixos
NAME=NixOS
PRETTY_NAME="NixOS 22.11 (Raccoon)"
VARIANT_ID=installer
VERSION_ID="22.11"
`

// loadFacts reads a facts fixture of the facts package.
func loadFacts(t *testing.T, name string) *facts.Facts {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "facts", "testdata", name+".golden"))
	if err != nil {
		t.Fatal(err)
	}
	var f facts.Facts
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

func rescue(f *facts.Facts) *moduletest.ScriptedHost {
	h := &moduletest.ScriptedHost{
		FactsVal: f,
		Files: map[string]string{
			"/etc/os-release": debianRelease,
			boot.IDPath:       "4f6c1d0e-8a4b-4e5e-9a57-2c9d8e1b7f31\n",
		},
		Probes: map[string]moduletest.Reply{
			line("stat", "-c", "%s\t%F\t%n", "--", tarball, tarball+".part"): moduletest.Missing(tarball),
			line("which", "curl", "wget"):                                    {Stdout: "/usr/bin/curl\n/usr/bin/wget\n"},
		},
	}
	// The rescue's address is static unless a test says otherwise.
	if f != nil {
		for i := range f.Interfaces {
			f.Interfaces[i].IPv4Dynamic = nil
		}
	}
	return h
}

// dhcpLease makes the rescue's address a DHCP lease.
func dhcpLease(h *moduletest.ScriptedHost) {
	u, _ := rescueUplink(h.FactsVal)
	h.FactsVal.Interface(u.nic).IPv4Dynamic = []string{u.v4.String()}
}

func TestCheckGolden(t *testing.T) {
	tests := []struct {
		name  string
		facts string
		args  string
		setup func(h *moduletest.ScriptedHost)
	}{
		{name: "kimsufi-rescue", facts: "kimsufi-rescue", args: "sha256: " + tarSum},
		{name: "debian9-rescue-wget-extra-flags", facts: "debian9-rescue-old-lsblk", args: "sha256: " + tarSum + "\ntool: wget\nextra_flags: --kexec-syscall-auto\ndest: /srv/kexec"},
		{
			name: "tarball-already-there", facts: "kimsufi-rescue", args: "sha256: " + tarSum,
			setup: func(h *moduletest.ScriptedHost) {
				h.Probes[line("stat", "-c", "%s\t%F\t%n", "--", tarball, tarball+".part")] = moduletest.Reply{Stdout: "1064787\tregular file\t" + tarball + "\n", Exit: 1}
				h.Probes[line("sha256sum", "--", tarball)] = moduletest.Reply{Stdout: tarSum + "  " + tarball + "\n"}
			},
		},
		{
			name: "unverified-own-image", facts: "kimsufi-rescue",
			args: "url: https://github.com/nix-community/nixos-images/releases/download/nixos-24.05/nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz\nchecksum: false",
		},
		{name: "rescue-with-a-dhcp-lease", facts: "kimsufi-rescue", args: "sha256: " + tarSum, setup: dhcpLease},
		{name: "rescue-with-a-dhcp-lease-left-alone", facts: "kimsufi-rescue", args: "sha256: " + tarSum + "\nkeep_lease: false", setup: dhcpLease},
		{name: "too-little-memory", facts: "busybox-minimal", args: "sha256: " + tarSum},
		{name: "memory-from-meminfo", args: "sha256: " + tarSum + "\nmin_memory: 2GiB", setup: func(h *moduletest.ScriptedHost) {
			h.Files["/proc/meminfo"] = "MemTotal:        1917484 kB\nMemFree:          123456 kB\n"
		}},
		{name: "in-the-installer", facts: "nixos-installer-nvme", args: "sha256: " + tarSum, setup: func(h *moduletest.ScriptedHost) {
			h.Files["/etc/os-release"] = installerRelease
		}},
		{name: "in-an-old-installer-without-variant", facts: "kimsufi-rescue", args: "sha256: " + tarSum, setup: func(h *moduletest.ScriptedHost) {
			h.Files["/etc/os-release"] = "ID=nixos\nPRETTY_NAME=\"NixOS 21.05 (Okapi)\"\n"
			h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: `TARGET="/" SOURCE="tmpfs" FSTYPE="tmpfs" FSROOT="/" OPTIONS="rw"` + "\n"}
		}},
		{name: "on-an-installed-nixos", facts: "kimsufi-rescue", args: "sha256: " + tarSum, setup: func(h *moduletest.ScriptedHost) {
			h.Files["/etc/os-release"] = "ID=nixos\nPRETTY_NAME=\"NixOS 24.05 (Uakari)\"\n"
			h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: `TARGET="/" SOURCE="/dev/sda2" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"` + "\n"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *facts.Facts
			if tt.facts != "" {
				f = loadFacts(t, tt.facts)
			}
			h := rescue(f)
			if tt.setup != nil {
				tt.setup(h)
			}
			if strings.Contains(tt.args, "dest: /srv/kexec") {
				h.Probes[line("stat", "-c", "%s\t%F\t%n", "--", "/srv/kexec/kexec.tar.gz", "/srv/kexec/kexec.tar.gz.part")] = moduletest.Missing("/srv/kexec/kexec.tar.gz")
			}
			m := moduletest.New(t, Spec, tt.args)
			p, err := moduletest.CheckScripted(context.Background(), m, h)
			got := moduletest.Outcome(p, err, h, moduletest.FormatPlan)
			moduletest.Golden(t, filepath.Join("testdata", tt.name+".golden"), got, *update)
		})
	}
}

func TestArgs(t *testing.T) {
	tests := []struct{ args, wantErr string }{
		{args: "sha256: " + tarSum},
		{args: "{}", wantErr: "sha256 is required: give the sha256 of nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz"},
		{args: "checksum: false\nsha256: " + tarSum, wantErr: "drop one of them"},
		{args: "sha256: xyz", wantErr: "64 hexadecimal digits"},
		{args: "sha256: " + tarSum + "\nurl: file:///root/kexec.tgz", wantErr: "want an http, https or ftp URL"},
		{args: "sha256: " + tarSum + "\ndest: kexec", wantErr: "want an absolute path"},
		{args: "sha256: " + tarSum + "\ntimeout: 0", wantErr: "timeout must be positive"},
		{args: "sha256: " + tarSum + "\nmin_memory: lots", wantErr: "want a number"},
		{args: "sha256: " + tarSum + "\ntool: scp", wantErr: "want auto, curl or wget"},
	}
	for _, tt := range tests {
		_, err := Spec.New(moduletest.Decoder(tt.args))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: err = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
	m, err := Spec.New(moduletest.Decoder("sha256: " + tarSum))
	if err != nil {
		t.Fatal(err)
	}
	if a := m.(*module).args; a.URL != DefaultURL || a.MinMemory != 1536<<20 || a.Timeout.D() != 10*time.Minute || a.Dest != "/root/kexec" {
		t.Errorf("defaults: %+v", a)
	}
}

func TestParseSize(t *testing.T) {
	tests := map[string]Size{"1.5GiB": 1536 << 20, "1536MiB": 1536 << 20, "2G": 2 << 30, "512m": 512 << 20, "1024": 1024, "1 KiB": 1024, "3gib": 3 << 30}
	for in, want := range tests {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GiB", "1.5 parsecs", "-1G"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
}

// machine plays the host side of a kexec: the rescue answers until kexec/run
// has run, then the host is gone for a few dials, then it is back as the
// installer (or as never, or with another key).
type machine struct {
	*moduletest.ScriptedHost
	downDials int
	never     bool // never comes back
	newKey    bool // comes back with another host key
	runOut    string
	runExit   int
	ran       bool
	unloadErr bool   // kexec -u fails (the host has left)
	onRun     func() // called as kexec/run runs
	onDial    func() // called at each dial

	dials    int
	dialOpts []transport.DialOptions
	stdins   []string // what each command run with a stdin read
}

func newMachine() *machine {
	h := rescue(&facts.Facts{MemoryMB: 4096})
	m := &machine{ScriptedHost: h, downDials: 2, runOut: "machine will boot into nixos in 6s...\n"}
	h.Runs = map[string]moduletest.Reply{
		line("sha256sum", "--", tarball+".part"): {Stdout: tarSum + "  " + tarball + ".part\n"},
	}
	h.ReconnectFn = m.reconnect
	return m
}

func (m *machine) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	if cmd.Stdin != nil {
		b, err := io.ReadAll(cmd.Stdin)
		if err != nil {
			return transport.Result{}, err
		}
		m.stdins = append(m.stdins, cmd.Line()+"\n"+string(b))
	}
	if strings.HasSuffix(cmd.Line(), "/kexec/kexec -u") && m.unloadErr {
		m.Ran = append(m.Ran, cmd.Line())
		return transport.Result{ExitCode: -1}, errors.New("connection lost")
	}
	if strings.Contains(cmd.Line(), "setsid --wait") {
		if m.onRun != nil {
			m.onRun()
		}
		m.ran = true
		m.ScriptedHost.Runs[cmd.Line()] = moduletest.Reply{Stdout: m.runOut, Exit: m.runExit}
	}
	return m.ScriptedHost.Run(ctx, cmd)
}

func (m *machine) reconnect(ctx context.Context, opts transport.DialOptions) error {
	m.dials++
	if m.onDial != nil {
		m.onDial()
	}
	m.dialOpts = append(m.dialOpts, opts)
	switch {
	case !m.ran:
	case m.never || m.downDials > 0:
		m.downDials--
		return errors.New("dial tcp 203.0.113.1:22: connect: connection refused")
	case m.newKey:
		return &hostkeys.ChangedError{Name: "ks1"}
	default:
		m.Files["/etc/os-release"] = installerRelease
		m.Files[boot.IDPath] = "9a1c0e43-0000-4e5e-9a57-000000000001\n"
	}
	return ctx.Err()
}

// An interrupt after kexec/run started never reads as a plain failure: the
// scheduled boot is cancelled on the host (kexec -u), or the message says
// the host may still boot the installer.
func TestApplyInterrupted(t *testing.T) {
	tests := []struct {
		name    string
		adjust  func(m *machine, cancel func())
		wantErr []string
		notErr  string
	}{
		{name: "while waiting, boot cancelled", adjust: func(m *machine, cancel func()) { m.never, m.onDial = true, cancel },
			wantErr: []string{"context canceled", "was cancelled (kexec -u); it stays in the rescue system"}},
		{name: "while waiting, host gone", adjust: func(m *machine, cancel func()) { m.never, m.onDial, m.unloadErr = true, cancel, true },
			wantErr: []string{"the host may boot the NixOS installer in a few seconds, or already has", "kexec -u failed", "run the playbook again"}},
		{name: "while kexec/run starts", adjust: func(m *machine, cancel func()) { m.onRun = cancel },
			wantErr: []string{"while kexec/run was starting: the host may boot the NixOS installer in a few seconds"}, notErr: "kexec/run failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.adjust(m, cancel)
			mod := moduletest.New(t, Spec, "sha256: "+tarSum+"\ntimeout: 1m").(*module)
			mod.clock = moduletest.NewClock().Time()
			plan, err := moduletest.CheckScripted(context.Background(), mod, m.ScriptedHost)
			if err != nil {
				t.Fatal(err)
			}
			_, err = mod.Apply(ctx, m, plan)
			if err == nil {
				t.Fatal("apply succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.notErr != "" && strings.Contains(err.Error(), tt.notErr) {
				t.Errorf("error %q says %q", err, tt.notErr)
			}
			if !slices.Contains(m.Ran, "/root/kexec/kexec/kexec -u") {
				t.Errorf("kexec -u not sent; ran %q", m.Ran)
			}
		})
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		adjust  func(m *machine)
		wantErr []string
	}{
		{name: "comes back as the installer"},
		{name: "kexec/run fails", adjust: func(m *machine) { m.runOut, m.runExit = "kexec_load failed: Invalid argument\n", 1 },
			wantErr: []string{"kexec/run failed, the host stays in the rescue system", "kexec_load failed"}},
		{name: "never comes back", adjust: func(m *machine) { m.never = true },
			wantErr: []string{"did not come back as the NixOS installer within 1m", "try another image", "install-iso.yml", "rescue"}},
		{name: "another host key", adjust: func(m *machine) { m.newKey = true },
			wantErr: []string{"came back from kexec with another host key, refused"}},
		{name: "does not fit", adjust: func(m *machine) {
			m.Runs[line("curl", "-fsSIL", "--max-time", "30", "--", DefaultURL)] = moduletest.Reply{Stdout: "HTTP/2 200\r\ncontent-length: 629145600\r\n\r\n"}
			m.Probes[line("stat", "-f", "-c", "%a %S %d", "--", "/root/kexec")] = moduletest.Reply{Stdout: "262144 4096 1000\n"}
		}, wantErr: []string{
			"refused before the kexec, the host stays in the rescue system: the kexec installer does not fit: kexec.tar.gz is 600.0 MiB and unpacks to 600.0 MiB more; /root/kexec has 1.0 GiB available (1.2 GiB needed)",
			"use a smaller image", "install-iso.yml",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			if tt.adjust != nil {
				tt.adjust(m)
			}
			mod := moduletest.New(t, Spec, "sha256: "+tarSum+"\ntimeout: 1m").(*module)
			mod.clock = moduletest.NewClock().Time()
			plan, err := moduletest.CheckScripted(context.Background(), mod, m.ScriptedHost)
			if err != nil {
				t.Fatal(err)
			}
			out, err := mod.Apply(context.Background(), m, plan)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("apply succeeded")
				}
				if space := (*fetch.SpaceError)(nil); strings.Contains(tt.name, "fit") && !errors.As(err, &space) {
					t.Errorf("error %q does not wrap the fetch.SpaceError", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v\nlogs: %q", err, m.Logs)
			}
			if out["installer"] != true {
				t.Errorf("output %v", out)
			}
			want := []string{
				"mkdir -p -- /root/kexec",
				"curl -fsSIL --max-time 30 -- " + DefaultURL,
				"curl -fL --retry 5 -C - -o /root/kexec/kexec.tar.gz.part -- " + DefaultURL,
				"sha256sum -- /root/kexec/kexec.tar.gz.part",
				"mv -f -- /root/kexec/kexec.tar.gz.part /root/kexec/kexec.tar.gz",
				"tar -xzf /root/kexec/kexec.tar.gz -C /root/kexec",
				"env TMPDIR=/root/kexec setsid --wait /root/kexec/kexec/run",
			}
			var ran []string
			for _, r := range m.Ran {
				if !strings.HasPrefix(r, "stat ") && !strings.HasPrefix(r, "cat ") {
					ran = append(ran, r)
				}
			}
			if strings.Join(ran, "\n") != strings.Join(want, "\n") {
				t.Errorf("ran:\n%s\nwant:\n%s", strings.Join(ran, "\n"), strings.Join(want, "\n"))
			}
			for _, o := range m.dialOpts {
				if o.NewSystem {
					t.Error("reconnected with NewSystem: a changed key would have been accepted")
				}
			}
			if m.dials < 3 {
				t.Errorf("%d dials: the wait did not go through the host's absence", m.dials)
			}
		})
	}
}

// An installer that answers at the rescue's IPv6 address but no more at its
// own once its network is restored fails the kexec task, which a block's
// rescue (kexec_fallback) may take over: the host answered, it is not
// unreachable.
func TestApplyAnswersOnlyElsewhere(t *testing.T) {
	m := newMachine()
	f := rescueFacts()
	f.MemoryMB = 4096
	m.FactsVal = f
	m.ReconnectFn = func(ctx context.Context, opts transport.DialOptions) error {
		if m.ran && opts.Address == "" {
			return fmt.Errorf("dial tcp 203.0.113.10:22: connect: no route to host: %w", transport.ErrUnreachable)
		}
		return m.reconnect(ctx, opts)
	}
	mod := moduletest.New(t, Spec, "sha256: "+tarSum+"\ntimeout: 1m").(*module)
	mod.clock = moduletest.NewClock().Time()
	plan, err := moduletest.CheckScripted(context.Background(), mod, m.ScriptedHost)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mod.Apply(context.Background(), m, plan)
	if err == nil || !strings.Contains(err.Error(), "the installer answered at 2001:db8:1:2::10 but not at 203.0.113.10") {
		t.Fatalf("apply: %v, want the installer found elsewhere only", err)
	}
	if errors.Is(err, transport.ErrUnreachable) {
		t.Errorf("apply: %v wraps transport.ErrUnreachable", err)
	}
}

// A lease is made static, with its default route, by one exec before the
// kexec: the plan's one ip -4 -batch, both lines on its stdin.
func TestApplyPinsTheLeaseInOneExec(t *testing.T) {
	m := newMachine()
	f := rescueFacts()
	f.MemoryMB = 4096
	f.Interfaces[0].IPv4Dynamic = []string{"203.0.113.10/24"}
	m.FactsVal = f
	mod := moduletest.New(t, Spec, "sha256: "+tarSum+"\ntimeout: 1m").(*module)
	mod.clock = moduletest.NewClock().Time()
	plan, err := moduletest.CheckScripted(context.Background(), mod, m.ScriptedHost)
	if err != nil {
		t.Fatal(err)
	}
	out, err := mod.Apply(context.Background(), m, plan)
	if err != nil {
		t.Fatalf("apply: %v\nlogs: %q", err, m.Logs)
	}
	if out["lease_kept"] != "203.0.113.10/24" {
		t.Errorf("output %v", out)
	}
	var ipRuns []string
	for _, r := range m.Ran {
		if strings.HasPrefix(r, "ip ") {
			ipRuns = append(ipRuns, r)
		}
	}
	if !slices.Equal(ipRuns, []string{"ip -4 -batch -"}) {
		t.Errorf("ran %q, want one ip -4 -batch -", ipRuns)
	}
	want := "ip -4 -batch -\naddr change 203.0.113.10/24 dev eth0 valid_lft forever preferred_lft forever\nroute replace default via 203.0.113.254 dev eth0 proto static\n"
	if !slices.Contains(m.stdins, want) {
		t.Errorf("stdins %q, want %q", m.stdins, want)
	}
}
