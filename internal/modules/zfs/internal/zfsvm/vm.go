// Package zfsvm boots a small Debian guest with real ZFS under QEMU for
// tests: the Debian kernel, ZFS built for it by DKMS, and an initramfs that
// runs udev and sshd without systemd, so that it boots in seconds even under
// software emulation. Tests reach it over SSH on a forwarded loopback port
// and get fresh virtual disks to build pools on.
//
// The image is built from Debian's packages on first use (rootfs.sh, then
// initrd.sh: about 5 minutes on two cores) and cached under CacheDir, keyed
// by the scripts' content, so later runs only boot it (about 12 s).
package zfsvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/ssh"
)

// QEMU is the emulator the VM runs in.
const QEMU = "qemu-system-x86_64"

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
	Image    Image
	BootTime time.Duration // from starting QEMU until SSH answered

	knownHosts string
	cmd        *exec.Cmd
	exited     chan struct{}
	waitErr    error
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
	if _, err := exec.LookPath(QEMU); err != nil {
		t.Skipf("zfsvm: %s not found (make deps installs qemu-system-x86)", QEMU)
	}
	img, err := Ensure(context.Background(), t.Logf)
	if errors.Is(err, ErrNeedsRoot) {
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

func boot(t testing.TB, img Image, opts Options) (*VM, error) {
	opts = opts.withDefaults()
	dir := t.TempDir()
	vm := &VM{
		Addr:       "127.0.0.1",
		KeyFile:    img.Key,
		HostKey:    img.HostKey,
		Console:    filepath.Join(dir, "console.log"),
		Image:      img,
		knownHosts: filepath.Join(dir, "known_hosts"),
		exited:     make(chan struct{}),
	}
	args := []string{
		"-accel", "tcg", // KVM hangs on this class of machine; software emulation works
		"-m", strconv.Itoa(opts.MemoryMB), "-smp", strconv.Itoa(opts.CPUs),
		"-nographic", "-no-reboot",
		"-kernel", img.Kernel, "-initrd", img.Initrd,
		"-append", "console=ttyS0 quiet net.ifnames=0 panic=-1",
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
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,if=none,id=d%d,format=raw,cache=unsafe", d.Image, i),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=d%d,serial=%s", i, d.Serial))
		vm.Disks = append(vm.Disks, d)
	}

	// The forwarded port is picked by listening and closing; should another
	// process take it meanwhile, QEMU fails and the next port is tried.
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		vm.Port = port
		if err := writeKnownHosts(vm); err != nil {
			return nil, err
		}
		full := append(append([]string(nil), args...), "-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", port), "-device", "virtio-net-pci,netdev=n0")
		lastErr = vm.run(t, full, opts.BootTimeout)
		if lastErr == nil {
			t.Logf("zfsvm: booted in %s, ssh on %s:%d", vm.BootTime.Round(100*time.Millisecond), vm.Addr, vm.Port)
			return vm, nil
		}
		if !strings.Contains(vm.consoleTail(), "hostfwd") {
			break
		}
	}
	return nil, lastErr
}

func (vm *VM) run(t testing.TB, args []string, timeout time.Duration) error {
	console, err := os.Create(vm.Console)
	if err != nil {
		return fmt.Errorf("zfsvm: %w", err)
	}
	cmd := exec.Command(QEMU, args...)
	cmd.Stdin = bytes.NewReader(nil)
	cmd.Stdout = console
	cmd.Stderr = console
	// Should the test binary die (a timeout), QEMU goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		console.Close()
		return fmt.Errorf("zfsvm: start %s: %w", QEMU, err)
	}
	vm.cmd = cmd
	vm.exited = make(chan struct{})
	go func() {
		vm.waitErr = cmd.Wait()
		console.Close()
		close(vm.exited)
	}()
	t.Cleanup(vm.stop)

	vm.dialer = ssh.NewDialer(ssh.DialerOptions{
		Store:          hostkeys.New(vm.knownHosts),
		SSHConfigPath:  "none",
		ConnectTimeout: 5 * time.Second,
	})
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-vm.exited:
			return fmt.Errorf("zfsvm: %s exited while booting (%v):\n%s", QEMU, vm.waitErr, vm.consoleTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := vm.dialer.DialSSH(ctx, vm.Target(), transport.DialOptions{})
		cancel()
		if err == nil {
			vm.BootTime = time.Since(start)
			vm.conn = conn
			return nil
		}
		var changed *hostkeys.ChangedError
		if errors.As(err, &changed) {
			vm.stop()
			return fmt.Errorf("zfsvm: the guest presented another host key than the image's: %w", err)
		}
		if time.Now().After(deadline) {
			vm.stop()
			return fmt.Errorf("zfsvm: no SSH after %s (%v); console:\n%s", timeout, err, vm.consoleTail())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stop kills QEMU: the disks are scratch files, nothing needs a clean
// shutdown.
func (vm *VM) stop() {
	vm.mu.Lock()
	if vm.conn != nil {
		vm.conn.Close()
		vm.conn = nil
	}
	if vm.dialer != nil {
		vm.dialer.Close()
	}
	vm.mu.Unlock()
	if vm.cmd == nil || vm.cmd.Process == nil {
		return
	}
	select {
	case <-vm.exited:
		return
	default:
	}
	_ = vm.cmd.Process.Kill()
	<-vm.exited
}

// Target is the guest as a transport target, named "zfsvm".
func (vm *VM) Target() transport.Target {
	return transport.Target{Name: "zfsvm", Address: vm.Addr, Port: vm.Port, User: "root", KeyFiles: []string{vm.KeyFile}}
}

// Conn is the VM's SSH connection, opened at boot through nixbook's SSH
// transport with the image's host key pinned.
func (vm *VM) Conn() transport.Conn {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.conn
}

// Dial opens another connection.
func (vm *VM) Dial(ctx context.Context) (transport.Conn, error) {
	return vm.dialer.Dial(ctx, vm.Target(), transport.DialOptions{})
}

// Run runs argv in the guest and returns its stdout, failing the test when
// it fails.
func (vm *VM) Run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := vm.Conn().Run(ctx, transport.Cmd{Args: args})
	if err != nil {
		t.Fatalf("zfsvm: %s: %v\n%s", transport.Cmd{Args: args}.Line(), err, res.Stderr)
	}
	return string(res.Stdout)
}

// consoleTail is the end of the guest's console.
func (vm *VM) consoleTail() string {
	b, err := os.ReadFile(vm.Console)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("zfsvm: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeKnownHosts pins the image's host key, so the dial proves it reached
// this guest and not whatever else listens on the port.
func writeKnownHosts(vm *VM) error {
	line := fmt.Sprintf("[zfsvm]:%d %s\n", vm.Port, vm.HostKey)
	return os.WriteFile(vm.knownHosts, []byte(line), 0o600)
}

// Host is a modules.Host on the guest, over the VM's connection, with the
// guest's facts gathered as the runner gathers them.
func (vm *VM) Host(t testing.TB) *moduletest.LocalHost {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := vm.Conn()
	f, err := facts.Gather(ctx, func(ctx context.Context, argv []string) ([]byte, error) {
		res, err := conn.Run(ctx, transport.Cmd{Args: argv})
		return res.Stdout, err
	})
	if err != nil {
		t.Fatalf("zfsvm: gather facts: %v", err)
	}
	return &moduletest.LocalHost{HostName: "zfsvm", Conn: conn, VarsMap: map[string]any{}, FactsVal: f, Logf: t.Logf}
}
