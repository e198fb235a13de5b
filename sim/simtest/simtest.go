// Package simtest starts a simulated fleet for a test and always takes it
// down: at the end of the test, when the test panics, and (through the
// fleet's reaper) when the test process is killed.
//
//	func TestInstall(t *testing.T) {
//		f := simtest.Start(t, 3)
//		// f.FleetYAML is an inventory of 3 servers in rescue mode.
//	}
//
// The hosts need a helper binary for their init and their reboot, kexec and
// udevadm. Call simtest.Main from TestMain to let the test binary be it;
// otherwise Start builds it once (go build, cached).
package simtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/hostinit"
	"github.com/nixbook/nixbook/sim/ovhapi"
	"github.com/nixbook/nixbook/sim/payload"
)

// HelperEnv names the helper binary; Main sets it to the test binary.
const HelperEnv = "NIXBOOK_SIM_HELPER"

// Main runs the tests of a package whose TestMain calls it, with the test
// binary serving as the hosts' helper:
//
//	func TestMain(m *testing.M) { simtest.Main(m) }
func Main(m *testing.M) {
	if code, ok := hostinit.Dispatch(os.Args); ok {
		os.Exit(code)
	}
	if self, err := os.Executable(); err == nil {
		os.Setenv(HelperEnv, self)
	}
	os.Exit(m.Run())
}

// Host is one server of the fleet.
type Host struct {
	Name    string   // inventory name: ks1, ks2, ...
	Addr    string   // IPv4 address to dial (a loopback address for a vm host)
	Port    int      // 22, or a vm host's forwarded port
	KeyFile string   // root's private key
	Service string   // OVH service name
	Disks   []string // kernel names at the first boot: /dev/sda
	DiskIDs []string // the same disks by id, as fleet.yml names them
}

// Fleet is a running fleet of a test.
type Fleet struct {
	t         testing.TB
	sim       *sim.Fleet
	Dir       string
	FleetYAML string // the inventory, Ansible-shaped
	OVHConf   string // go-ovh's configuration for the emulator
	Hosts     []Host
	// Emulator is the OVH API emulator, for fault injection.
	Emulator *ovhapi.Emulator
}

type options struct {
	cfg     sim.Config
	timeout time.Duration
}

// Option changes the fleet Start makes.
type Option func(*options)

// WithOverrides sets per-host overrides (disks, NIC, faults, ...).
func WithOverrides(o *sim.Overrides) Option { return func(op *options) { op.cfg.Overrides = o } }

// WithoutPayload skips building and serving the NixOS payload.
func WithoutPayload() Option { return func(op *options) { op.cfg.Payload = false } }

// WithBootDelay sets how long a reboot takes (default 300ms).
func WithBootDelay(d time.Duration) Option { return func(op *options) { op.cfg.BootDelay = d } }

// WithTimings sets the API's reboot task timings.
func WithTimings(tm ovhapi.Timings) Option { return func(op *options) { op.cfg.Timings = tm } }

// WithConfig changes anything else of the fleet's configuration.
func WithConfig(change func(*sim.Config)) Option { return func(op *options) { change(&op.cfg) } }

// Start brings up n servers (in rescue mode unless overridden) and waits
// until those that should answer SSH do.
// The test is skipped when it cannot run a fleet (not root, tools missing).
func Start(t testing.TB, n int, opts ...Option) *Fleet {
	t.Helper()
	heavytest.Root(t, "a simulated fleet: network namespaces, loop devices, a bridge")
	for _, tool := range []string{"ip", "nsenter", "losetup", "blkid", "parted"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the simulated fleet needs %s", tool)
		}
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("the simulated fleet needs OpenSSH's server (apt-get install openssh-server)")
	}
	op := options{
		cfg: sim.Config{
			Dir:       filepath.Join(t.TempDir(), "fleet"),
			Hosts:     n,
			BootDelay: 300 * time.Millisecond,
			Payload:   true,
			Timings:   ovhapi.Timings{Init: 100 * time.Millisecond, Todo: 100 * time.Millisecond, Doing: 300 * time.Millisecond},
			Logf:      t.Logf,
		},
		timeout: 5 * time.Minute,
	}
	for _, o := range opts {
		o(&op)
	}
	if op.cfg.Helper == "" {
		helper, err := Helper()
		if err != nil {
			t.Fatalf("simtest: %v", err)
		}
		op.cfg.Helper = helper
	}
	ctx, cancel := context.WithTimeout(context.Background(), op.timeout)
	defer cancel()
	sf, err := sim.Up(ctx, op.cfg)
	if err != nil {
		t.Fatalf("simtest: fleet up: %v", err)
	}
	t.Cleanup(func() {
		if err := sf.Down(context.Background()); err != nil {
			t.Errorf("simtest: fleet down: %v", err)
		}
	})
	// Hosts told to start off or on empty disks are not waited for.
	if up := sf.ExpectedUp(); len(up) > 0 {
		if err := sf.WaitSSH(ctx, up...); err != nil {
			t.Fatalf("simtest: %v", err)
		}
	}
	f := &Fleet{
		t: t, sim: sf, Dir: sf.Dir(), FleetYAML: sf.InventoryPath(), OVHConf: sf.OVHConfPath(),
		Emulator: sf.Emulator(),
	}
	for _, h := range sf.Hosts() {
		ssh := h.SSHAddr()
		host := Host{Name: h.Name(), Addr: ssh.Addr().String(), Port: int(ssh.Port()), KeyFile: sf.ClientKeyFile(), Service: h.Service()}
		for _, d := range h.Disks() {
			host.Disks = append(host.Disks, d.Path())
			host.DiskIDs = append(host.DiskIDs, d.ByIDPath())
		}
		f.Hosts = append(f.Hosts, host)
	}
	return f
}

// Sim is the fleet itself, for what this package does not wrap.
func (f *Fleet) Sim() *sim.Fleet { return f.sim }

func (f *Fleet) host(name string) *sim.Host {
	f.t.Helper()
	h, ok := f.sim.Host(name)
	if !ok {
		f.t.Fatalf("simtest: no host %q in the fleet", name)
	}
	return h
}

// Host returns a host by name.
func (f *Fleet) Host(name string) Host {
	f.t.Helper()
	for _, h := range f.Hosts {
		if h.Name == name {
			return h
		}
	}
	f.t.Fatalf("simtest: no host %q in the fleet", name)
	return Host{}
}

// DiskSHA256 is a checksum of each of a host's disk images by disk name
// (sda, nvme0n1), taken after flushing what the host wrote: compare two to
// prove nothing was written.
func (f *Fleet) DiskSHA256(host string) map[string]string {
	f.t.Helper()
	sums, err := f.sim.DiskSHA256(host)
	if err != nil {
		f.t.Fatalf("simtest: %v", err)
	}
	return sums
}

// Mode is what the host runs now: rescue, installer, disk, off or ipxe.
func (f *Fleet) Mode(host string) sim.Mode {
	f.t.Helper()
	return f.host(host).Mode()
}

// BootID is the host's current boot id.
func (f *Fleet) BootID(host string) string {
	f.t.Helper()
	return f.host(host).BootID()
}

// HostKey is the public host key the host serves now (authorized_keys line).
func (f *Fleet) HostKey(host string) string {
	f.t.Helper()
	return f.host(host).HostKey()
}

// Status is the host's status, with why it does not answer SSH.
func (f *Fleet) Status(host string) sim.Status {
	f.t.Helper()
	return f.host(host).Status(context.Background())
}

// Reboot reboots a host into a mode, as `nixbook-sim reboot` does.
func (f *Fleet) Reboot(host string, mode sim.Mode) {
	f.t.Helper()
	if err := f.sim.Reboot(context.Background(), host, mode); err != nil {
		f.t.Fatalf("simtest: %v", err)
	}
}

// InjectFault gives a host a fault of the fleet: sim.FaultNeverReturns or
// sim.FaultKexecHangs. API faults go through Emulator.InjectFault.
func (f *Fleet) InjectFault(host, fault string) {
	f.t.Helper()
	f.host(host).InjectFault(fault, true)
}

// WaitSSH waits until the hosts answer SSH.
func (f *Fleet) WaitSSH(timeout time.Duration, hosts ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return f.sim.WaitSSH(ctx, hosts...)
}

// Helper returns the hosts' helper binary: $NIXBOOK_SIM_HELPER (set by Main),
// else cmd/nixbook-sim-host built with go build into payload.DefaultDir()/bin
// (rebuilt when the sources change, under a lock so parallel test packages
// share it).
func Helper() (string, error) {
	if h := os.Getenv(HelperEnv); h != "" {
		return h, nil
	}
	cache, err := payload.DefaultDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", err
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	out := filepath.Join(dir, "nixbook-sim-host")
	goTool, err := exec.LookPath("go")
	if err != nil {
		if _, serr := os.Stat(out); serr == nil {
			return out, nil
		}
		return "", errors.New("no helper binary: call simtest.Main from TestMain, set " + HelperEnv + ", or put go on PATH")
	}
	// Build to a new file and rename, so hosts running the old binary keep it.
	tmp := out + ".new"
	cmd := exec.Command(goTool, "build", "-o", tmp, "github.com/nixbook/nixbook/cmd/nixbook-sim-host")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the hosts' helper: %w: %s", err, msg)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// Payload builds, or finds in the user's cache, the simulated fleet's
// NixOS ISO and kexec tarball (the cache the simulator itself uses).
func Payload(t testing.TB) *payload.Payload {
	t.Helper()
	heavytest.Root(t, "the NixOS payload, whose store belongs to root")
	dir, err := payload.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+payload.LockWait)
	defer cancel()
	p, err := payload.Build(ctx, payload.Options{Dir: dir})
	if err != nil {
		t.Fatalf("build the NixOS payload: %v", err)
	}
	return p
}
