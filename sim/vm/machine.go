package vm

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// QEMU is the emulator guests run in.
const QEMU = "qemu-system-x86_64"

// DiskFile is a raw image the guest sees as a virtio disk with a serial
// (so its udev makes /dev/disk/by-id/virtio-SERIAL).
type DiskFile struct {
	Image  string
	Serial string
}

// MachineConfig shapes one run of QEMU.
type MachineConfig struct {
	// Kernel, Initrd and Append boot a kernel directly, as a network boot
	// does; without Kernel the firmware boots the disks, in their order.
	Kernel, Initrd, Append string
	// Firmware is the UEFI firmware's code (OVMF), with EFIVars its
	// writable variable store; empty means SeaBIOS (legacy BIOS).
	Firmware, EFIVars string
	Disks             []DiskFile
	MemoryMB          int // 0 means 1024
	CPUs              int // 0 means 1
	// Port on Listen (a loopback address, default 127.0.0.1) forwarded to
	// the guest's port 22.
	Listen string
	Port   int
	// MAC of the guest's NIC; empty lets QEMU pick.
	MAC string
	// Net4, Gateway4 and DNS4 shape QEMU's user network: the guest's /24,
	// the gateway in it (connections to which reach this machine's
	// 127.0.0.1) and its name server. Empty: QEMU's 10.0.2.0/24. QEMU's
	// own IPv6 is off: a guest sets its addresses itself.
	// Guest4 is the guest's address, where the forwarded port goes.
	Net4, Gateway4, DNS4, Guest4 string
	// Console is the file the guest's serial console is appended to.
	Console string
}

// Machine is a running QEMU.
type Machine struct {
	cmd     *exec.Cmd
	console string
	exited  chan struct{}
	mu      sync.Mutex
	err     error
	killed  bool
}

// Args are QEMU's arguments for c.
func (c MachineConfig) Args() []string {
	mem, cpus := c.MemoryMB, c.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 1
	}
	args := []string{
		"-accel", "tcg", // KVM hangs on this class of machine; software emulation works
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-nographic", "-no-reboot",
	}
	if c.Kernel != "" {
		args = append(args, "-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.Append)
	}
	if c.Firmware != "" {
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+c.Firmware,
			"-drive", "if=pflash,format=raw,file="+c.EFIVars)
	}
	for i, d := range c.Disks {
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,if=none,id=d%d,format=raw,cache=unsafe", d.Image, i),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=d%d,serial=%s,bootindex=%d", i, d.Serial, i+1))
	}
	nic := "virtio-net-pci,netdev=n0"
	if c.MAC != "" {
		nic += ",mac=" + c.MAC
	}
	listen := c.Listen
	if listen == "" {
		listen = "127.0.0.1"
	}
	netdev := fmt.Sprintf("user,id=n0,hostfwd=tcp:%s:%d-%s:22", listen, c.Port, c.Guest4)
	if c.Net4 != "" {
		netdev += fmt.Sprintf(",net=%s,host=%s,dns=%s,ipv6=off", c.Net4, c.Gateway4, c.DNS4)
	}
	args = append(args,
		"-netdev", netdev,
		"-device", nic)
	return args
}

// StartMachine starts QEMU. It runs until the guest powers off or reboots
// (QEMU runs with -no-reboot: whoever started it decides what boots next)
// or until Kill.
func StartMachine(c MachineConfig) (*Machine, error) {
	console, err := os.OpenFile(c.Console, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	cmd := exec.Command(QEMU, c.Args()...)
	cmd.Stdin = bytes.NewReader(nil)
	cmd.Stdout = console
	cmd.Stderr = console
	// Should the process that started it die, QEMU goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		console.Close()
		return nil, fmt.Errorf("vm: start %s: %w", QEMU, err)
	}
	m := &Machine{cmd: cmd, console: c.Console, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		console.Close()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(m.exited)
	}()
	return m, nil
}

// Pid is QEMU's process id.
func (m *Machine) Pid() int { return m.cmd.Process.Pid }

// Exited is closed once QEMU has exited.
func (m *Machine) Exited() <-chan struct{} { return m.exited }

// Err is how QEMU exited (after Exited).
func (m *Machine) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Killed says whether Kill ended QEMU (rather than the guest).
func (m *Machine) Killed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.killed
}

// Kill pulls the plug and waits for QEMU to be gone: disks are written
// through QEMU's cache=unsafe, which the kernel's page cache keeps.
func (m *Machine) Kill() {
	m.mu.Lock()
	m.killed = true
	m.mu.Unlock()
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
}

// ConsoleTail is the last n lines of the guest's console.
func (m *Machine) ConsoleTail(n int) string { return Tail(m.console, n) }

// GuestRebooted says whether the guest's last words on the console were a
// reboot rather than a power-off (the kernel prints either as it goes).
func (m *Machine) GuestRebooted() bool {
	b, err := os.ReadFile(m.console)
	if err != nil {
		return false
	}
	i, j := bytes.LastIndex(b, []byte("reboot: Restarting system")), bytes.LastIndex(b, []byte("reboot: Power down"))
	return i > j
}

// Tail is the last n lines of a file.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreePort picks a free port on a loopback address by listening and
// closing; should another process take it before QEMU does, QEMU fails to
// start its forwarding (see PortTaken).
func FreePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("vm: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortTaken says whether QEMU's console shows it could not forward its port.
func PortTaken(console string) bool { return strings.Contains(Tail(console, 30), "hostfwd") }
