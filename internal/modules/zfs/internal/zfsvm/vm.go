// Package zfsvm boots a small Debian guest with real ZFS under QEMU for
// tests: the Debian kernel, ZFS built for it by DKMS, and an initramfs that
// runs udev and sshd without systemd, so that it boots in seconds even under
// software emulation. Tests reach it over SSH on a forwarded loopback port
// and get fresh virtual disks to build pools on.
//
// The image and QEMU are sim/vm's (the simulated fleet's vm hosts run the
// same): built from Debian's packages on first use (about 5 minutes on two
// cores) and cached, so later runs only boot it (about 12 s).
package zfsvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/ssh"
	"github.com/nixbook/nixbook/sim/vm"
)

// Options shape a VM.
type Options struct {
	Disks    int   // virtual disks; 0 means 4
	DiskSize int64 // bytes per disk (sparse files); 0 means 1 GiB
	MemoryMB int   // 0 means 1024
	CPUs     int   // 0 means 1
	// BootTimeout bounds the wait for SSH; 0 means 4 minutes.
	BootTimeout time.Duration
}

// Disk is one virtual disk of the guest.
type Disk struct {
	Serial string // as the guest sees it
	Path   string // /dev/vda, /dev/vdb, ...
	ByID   string // /dev/disk/by-id/virtio-<serial>, made by the guest's udev
	Image  string // the raw file on this machine
}

// VM is a running guest.
type VM struct {
	Addr     string // 127.0.0.1
	Port     int    // forwarded to the guest's port 22
	KeyFile  string // private key root accepts
	HostKey  string // the guest's public host key, authorized_keys format
	Disks    []Disk
	Console  string // the guest's console log on this machine
	Image    vm.Image
	BootTime time.Duration // from starting QEMU until SSH answered

	knownHosts string
	machine    *vm.Machine
	mu         sync.Mutex
	conn       *ssh.Conn
	dialer     *ssh.Dialer
}

// Start boots a VM with four fresh disks of 1 GiB and stops it when the test
// ends. It skips the test under -short, when QEMU is missing, and when the
// image is not built and cannot be (not root); a failing build or boot
// fails the test.
func Start(t testing.TB) *VM { return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *VM {
	t.Helper()
	heavytest.Require(t, "a QEMU guest with real ZFS")
	if _, err := exec.LookPath(vm.QEMU); err != nil {
		t.Skipf("zfsvm: %s not found (make deps installs qemu-system-x86)", vm.QEMU)
	}
	img, err := vm.Ensure(context.Background(), t.Logf)
	if errors.Is(err, vm.ErrNeedsRoot) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	vm, err := boot(t, img, opts)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func (o Options) withDefaults() Options {
	if o.Disks == 0 {
		o.Disks = 4
	}
	if o.DiskSize == 0 {
		o.DiskSize = 1 << 30
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 1024
	}
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 4 * time.Minute
	}
	return o
}

func boot(t testing.TB, img vm.Image, opts Options) (*VM, error) {
	opts = opts.withDefaults()
	dir := t.TempDir()
	guest := &VM{
		Addr:       "127.0.0.1",
		KeyFile:    img.Key,
		HostKey:    img.HostKey,
		Console:    filepath.Join(dir, "console.log"),
		Image:      img,
		knownHosts: filepath.Join(dir, "known_hosts"),
	}
	cfg := vm.MachineConfig{
		Kernel: img.Kernel, Initrd: img.Initrd,
		Append:   "console=ttyS0 quiet net.ifnames=0 panic=-1",
		MemoryMB: opts.MemoryMB, CPUs: opts.CPUs,
		Console: guest.Console,
	}
	for i := range opts.Disks {
		d := Disk{
			Serial: fmt.Sprintf("zfsvm-%d", i),
			Path:   "/dev/vd" + string(rune('a'+i)),
			Image:  filepath.Join(dir, fmt.Sprintf("disk%d.raw", i)),
		}
		d.ByID = "/dev/disk/by-id/virtio-" + d.Serial
		f, err := os.Create(d.Image)
		if err != nil {
			return nil, fmt.Errorf("zfsvm: %w", err)
		}
		err = f.Truncate(opts.DiskSize)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("zfsvm: %w", err)
		}
		cfg.Disks = append(cfg.Disks, vm.DiskFile{Image: d.Image, Serial: d.Serial})
		guest.Disks = append(guest.Disks, d)
	}

	// Should another process take the picked port before QEMU does, QEMU
	// fails and the next port is tried.
	var lastErr error
	for range 3 {
		port, err := vm.FreePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		guest.Port, cfg.Port = port, port
		if err := writeKnownHosts(guest); err != nil {
			return nil, err
		}
		lastErr = guest.run(t, cfg, opts.BootTimeout)
		if lastErr == nil {
			t.Logf("zfsvm: booted in %s, ssh on %s:%d", guest.BootTime.Round(100*time.Millisecond), guest.Addr, guest.Port)
			return guest, nil
		}
		if !vm.PortTaken(guest.Console) {
			break
		}
	}
	return nil, lastErr
}

func (guest *VM) run(t testing.TB, cfg vm.MachineConfig, timeout time.Duration) error {
	start := time.Now()
	m, err := vm.StartMachine(cfg)
	if err != nil {
		return fmt.Errorf("zfsvm: %w", err)
	}
	guest.machine = m
	t.Cleanup(guest.stop)

	guest.dialer = ssh.NewDialer(ssh.DialerOptions{
		Store:          hostkeys.New(guest.knownHosts),
		SSHConfigPath:  "none",
		ConnectTimeout: 5 * time.Second,
	})
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-m.Exited():
			return fmt.Errorf("zfsvm: %s exited while booting (%v):\n%s", vm.QEMU, m.Err(), m.ConsoleTail(30))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := guest.dialer.DialSSH(ctx, guest.Target(), transport.DialOptions{})
		cancel()
		if err == nil {
			guest.BootTime = time.Since(start)
			guest.conn = conn
			return nil
		}
		var changed *hostkeys.ChangedError
		if errors.As(err, &changed) {
			guest.stop()
			return fmt.Errorf("zfsvm: the guest presented another host key than the image's: %w", err)
		}
		if time.Now().After(deadline) {
			guest.stop()
			return fmt.Errorf("zfsvm: no SSH after %s (%v); console:\n%s", timeout, err, m.ConsoleTail(30))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stop kills QEMU: the disks are scratch files, nothing needs a clean
// shutdown.
func (guest *VM) stop() {
	guest.mu.Lock()
	if guest.conn != nil {
		guest.conn.Close()
		guest.conn = nil
	}
	if guest.dialer != nil {
		guest.dialer.Close()
	}
	guest.mu.Unlock()
	if guest.machine != nil {
		guest.machine.Kill()
	}
}

// Target is the guest as a transport target, named "zfsvm".
func (guest *VM) Target() transport.Target {
	return transport.Target{Name: "zfsvm", Address: guest.Addr, Port: guest.Port, User: "root", KeyFiles: []string{guest.KeyFile}}
}

// Conn is the VM's SSH connection, opened at boot through nixbook's SSH
// transport with the image's host key pinned.
func (guest *VM) Conn() transport.Conn {
	guest.mu.Lock()
	defer guest.mu.Unlock()
	return guest.conn
}

// Dial opens another connection.
func (guest *VM) Dial(ctx context.Context) (transport.Conn, error) {
	return guest.dialer.Dial(ctx, guest.Target(), transport.DialOptions{})
}

// Run runs argv in the guest and returns its stdout, failing the test when
// it fails.
func (guest *VM) Run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := guest.Conn().Run(ctx, transport.Cmd{Args: args})
	if err != nil {
		t.Fatalf("zfsvm: %s: %v\n%s", transport.Cmd{Args: args}.Line(), err, res.Stderr)
	}
	return string(res.Stdout)
}

// writeKnownHosts pins the image's host key, so the dial proves it reached
// this guest and not whatever else listens on the port.
func writeKnownHosts(guest *VM) error {
	line := fmt.Sprintf("[zfsvm]:%d %s\n", guest.Port, guest.HostKey)
	return os.WriteFile(guest.knownHosts, []byte(line), 0o600)
}

// Host is a modules.Host on the guest, over the VM's connection, with the
// guest's facts gathered as the runner gathers them.
func (guest *VM) Host(t testing.TB) *moduletest.LocalHost {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := guest.Conn()
	f, err := facts.Gather(ctx, func(ctx context.Context, argv []string) ([]byte, error) {
		res, err := conn.Run(ctx, transport.Cmd{Args: argv})
		return res.Stdout, err
	})
	if err != nil {
		t.Fatalf("zfsvm: gather facts: %v", err)
	}
	return &moduletest.LocalHost{HostName: "zfsvm", Conn: conn, VarsMap: map[string]any{}, FactsVal: f, Logf: t.Logf}
}
