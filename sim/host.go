package sim

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nixbook/nixbook/sim/hostinit"
	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/internal/hostnet"
	"github.com/nixbook/nixbook/sim/internal/nvram"
	"github.com/nixbook/nixbook/sim/internal/swaps"
)

// Mode is what a host runs.
type Mode string

// Boot modes, as a real server goes through them.
const (
	ModeRescue    Mode = "rescue"    // OVH's Debian rescue, new host key every boot
	ModeInstaller Mode = "installer" // the NixOS installer booted by kexec
	ModeDisk      Mode = "disk"      // what is installed on the disks
	ModeOff       Mode = "off"       // powered off
	ModeIPXE      Mode = "ipxe"      // stuck in an iPXE shell: never on the network
	// ModeWindowsRescue is a Windows rescue: it ignores the rescue key and
	// takes a mailed password, so nixbook never gets in.
	ModeWindowsRescue Mode = "windows-rescue"
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeRescue, ModeInstaller, ModeDisk, ModeOff, ModeIPXE:
		return m, nil
	}
	return "", fmt.Errorf("unknown boot mode %q (want rescue, installer, disk or off)", s)
}

// Faults a host can be given.
const (
	// FaultNeverReturns: after its first boot, the host never comes back
	// from a reboot.
	FaultNeverReturns = "never-returns"
	// FaultKexecHangs: a kexec into the installer never comes back.
	FaultKexecHangs = "kexec-hangs"
)

// Host is one simulated server.
type Host struct {
	f       *Fleet
	spec    HostSpec
	service string // OVH service name
	v4, v6  netip.Prefix
	link    hostnet.Link // in the host's network namespace
	veth    string       // the bridge side of the host's link
	disks   []*Disk
	dir     string // DIR/hosts/NAME
	socket  string // control socket on the machine
	server  *http.Server
	// devs are the host's block devices as its boots show them: the disks'
	// names, its /dev, /sys/block and udev database.
	devs *devtree.Tree

	// op serialises what changes the host's life: boots and kills.
	op sync.Mutex

	mu          sync.Mutex
	mode        Mode
	bootID      string
	boots       int
	up          bool   // its services run (SSH may still be refused if the network is down)
	why         string // why it does not answer SSH, when it does not
	hostKey     KeyPair
	machineID   string
	authorized  string // authorized_keys of this boot
	rescueKey   string // last rescue key set through the API
	nic         string // the link's name inside the host now
	online      bool   // the network is configured
	gen         uint64 // bumps on every reboot, so a stale pending boot gives up
	kexecLoaded bool
	stopping    bool // the controller is killing the init
	faults      map[string]bool
	proc        *os.Process
	done        chan struct{}

	// installerRan says the installer has booted: the next disk boot is
	// the first after an install. lost is the disk (its name as made) the
	// host has lost, for good; "" while it has all its disks.
	installerRan bool
	lost         string

	installed string // one line about what disk mode found on the disks
	// firstBootKey is the host key an installed system without one made at
	// its first boot.
	firstBootKey KeyPair
	// volumes hold the loop devices of the opened LUKS volume the booted
	// system's root lies in (see diskboot.System.Volume).
	volumes []*os.File

	// swap is the host's swap list (swapon, swapoff, /proc/swaps).
	swap *swaps.Emulator
	// nvram is a UEFI host's firmware variables; nil on BIOS.
	nvram *nvram.NVRAM

	// vm is set for a host that is a QEMU machine (kind: vm): it has no
	// namespaces, loop devices or /dev of the controller's making.
	vm *vmHost
}

// Name is the host's inventory name.
func (h *Host) Name() string { return h.spec.Name }

// Service is the host's OVH service name.
func (h *Host) Service() string { return h.service }

// Addr is the host's IPv4 address (what the controller dials).
func (h *Host) Addr() netip.Addr { return h.v4.Addr() }

// IPv4 is the host's IPv4 address with its prefix.
func (h *Host) IPv4() netip.Prefix { return h.v4 }

// IPv6 is the host's IPv6 address with its /64.
func (h *Host) IPv6() netip.Prefix { return h.v6 }

// Disks are the host's disks.
func (h *Host) Disks() []*Disk { return h.disks }

// NIC is the name of the host's network interface in rescue.
func (h *Host) NIC() string { return h.spec.NIC }

// MAC is the host's MAC address.
func (h *Host) MAC() string { return h.spec.MAC }

// Status is a host's state for `nixbook-sim status` and tests.
type Status struct {
	Name      string `json:"name"`
	Service   string `json:"service"`
	IPv4      string `json:"ipv4"`
	IPv6      string `json:"ipv6"`
	Mode      Mode   `json:"mode"`
	BootID    string `json:"boot_id"`
	Boots     int    `json:"boots"`
	Up        bool   `json:"up"`
	SSH       bool   `json:"ssh"`
	Why       string `json:"why,omitempty"`
	HostKey   string `json:"host_key,omitempty"` // authorized_keys line
	Disks     string `json:"disks"`
	Installed string `json:"installed,omitempty"`
	LostDisk  string `json:"lost_disk,omitempty"` // as made (sdb): gone since the install (lose_disk)
	PID       int    `json:"pid,omitempty"`
	// SSHAddr is where a vm host answers SSH (a loopback address and
	// port); empty for a host on the fleet's network, reached at IPv4:22.
	SSHAddr string `json:"ssh_addr,omitempty"`
}

// Status reports the host's state. SSH is whether the port answers with an
// SSH banner now.
func (h *Host) Status(ctx context.Context) Status {
	h.mu.Lock()
	s := Status{
		Name: h.spec.Name, Service: h.service, IPv4: h.v4.String(), IPv6: h.v6.String(), Mode: h.mode, BootID: h.bootID, Boots: h.boots,
		Up: h.up, Why: h.why, HostKey: strings.TrimSpace(h.hostKey.Public), Installed: h.installed, LostDisk: h.lost,
	}
	if h.proc != nil {
		s.PID = h.proc.Pid
	}
	h.mu.Unlock()
	var parts []string
	if h.vm != nil {
		h.mu.Lock()
		for i, d := range h.disks {
			if !h.vm.pulled[i] {
				parts = append(parts, fmt.Sprintf("%s %s virtio %s", d.Name, humanSize(d.Size), d.Serial))
			}
		}
		h.mu.Unlock()
		s.BootID, s.SSHAddr = h.BootID(), h.sshAddr().String()
	} else {
		for _, d := range h.devs.BootDisks() {
			parts = append(parts, fmt.Sprintf("%s %s %s", d.Name, humanSize(d.Size), devtree.Describe(ctx, d)))
		}
	}
	s.Disks = strings.Join(parts, "; ")
	s.SSH = sshBanner(ctx, h.sshAddr(), 500*time.Millisecond) == nil
	if s.SSH {
		s.Why = ""
	} else if s.Why == "" {
		s.Why = "no answer on port 22"
	}
	return s
}

// Mode is the host's boot mode now.
func (h *Host) Mode() Mode {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mode
}

// BootID is the host's current /proc/sys/kernel/random/boot_id.
func (h *Host) BootID() string {
	if h.vm != nil {
		return h.vmBootID()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bootID
}

// HostKey is the public host key the host serves now (authorized_keys line).
func (h *Host) HostKey() string {
	h.mu.Lock()
	key, mode := strings.TrimSpace(h.hostKey.Public), h.mode
	h.mu.Unlock()
	if h.vm != nil && key == "" && mode == ModeDisk {
		// What the system on a vm host's disks serves is known by asking.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		key, _ = h.vmServedHostKey(ctx)
	}
	return key
}

// InjectFault gives the host a fault (FaultNeverReturns, FaultKexecHangs),
// or takes it away when on is false.
func (h *Host) InjectFault(fault string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.faults == nil {
		h.faults = map[string]bool{}
	}
	h.faults[fault] = on
}

func (h *Host) hasFault(f string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.faults[f]
}

// pid is the host init's PID on the machine, 0 when the host is down.
func (h *Host) pid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return 0
	}
	return h.proc.Pid
}

// bootRequest says what a boot brings up.
type bootRequest struct {
	mode      Mode
	rescueKey string            // rescue: root's authorized key
	carried   map[string]string // installer: files kexec carries over (path -> content)
	lease4    bool              // installer: the rescue's IPv4 address was a DHCP lease at the kexec
	first     bool              // the fleet's first boot of the host
}

// reboot ends everything the host runs and boots it again into r after the
// host's boot delay (or delay when it is not negative). It returns once the
// host is down.
func (h *Host) reboot(ctx context.Context, r bootRequest, delay time.Duration) {
	h.op.Lock()
	h.mu.Lock()
	h.gen++
	gen := h.gen
	h.mu.Unlock()
	h.stopLocked(ctx, "rebooting")
	h.op.Unlock()
	if delay < 0 {
		delay = h.spec.BootDelay
	}
	h.f.goBackground(func(fctx context.Context) {
		select {
		case <-time.After(delay):
		case <-fctx.Done():
			return
		}
		h.op.Lock()
		defer h.op.Unlock()
		h.mu.Lock()
		stale := h.gen != gen
		h.mu.Unlock()
		if stale {
			return
		}
		if err := h.bootLocked(fctx, r); err != nil {
			h.f.logf("%s: boot %s: %v", h.spec.Name, r.mode, err)
			h.setDown(r.mode, "boot failed: "+err.Error())
		}
	})
}

// powerOff stops the host and leaves it off.
func (h *Host) powerOff(ctx context.Context, why string) {
	h.op.Lock()
	defer h.op.Unlock()
	h.mu.Lock()
	h.gen++
	h.mu.Unlock()
	h.stopLocked(ctx, why)
	h.setDown(ModeOff, why)
}

func (h *Host) setDown(mode Mode, why string) {
	h.mu.Lock()
	h.mode, h.up, h.why = mode, false, why
	h.mu.Unlock()
	h.f.modeChanged(h, mode)
}

// stopLocked kills the host's PID namespace (every process, and with the
// last of them its mount namespace) and takes its network down. h.op is held.
func (h *Host) stopLocked(ctx context.Context, why string) {
	if h.vm != nil {
		h.vmStopLocked(why)
		return
	}
	h.mu.Lock()
	proc, done := h.proc, h.done
	h.up, h.why = false, why
	h.stopping = true
	h.devs.Halt()
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.stopping = false
		h.mu.Unlock()
	}()
	// Swap ends with the kernel; its devices are let go first, so the
	// host's own loop devices below can be freed.
	h.swap.Clear()
	if proc != nil {
		// Loop devices the host set up outlive its processes: note them now,
		// free them once it is gone.
		loops := h.devs.OwnLoops(proc.Pid)
		_ = proc.Signal(syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			h.f.logf("%s: init %d does not die", h.spec.Name, proc.Pid)
		}
		devtree.DetachLoops(loops)
	}
	h.releaseVolumes()
	h.mu.Lock()
	h.proc, h.done, h.kexecLoaded = nil, nil, false
	h.devs.Reset()
	nic := h.nic
	h.online = false
	h.mu.Unlock()
	if err := h.link.Down(ctx, nic); err != nil {
		h.f.logf("%s: %v", h.spec.Name, err)
	}
}

// bootLocked boots the host into r.mode. h.op is held.
func (h *Host) bootLocked(ctx context.Context, r bootRequest) error {
	if !r.first && h.hasFault(FaultNeverReturns) {
		h.setDown(r.mode, "fault injected: the server never comes back")
		return nil
	}
	if r.mode == ModeInstaller && h.hasFault(FaultKexecHangs) {
		h.setDown(r.mode, "fault injected: kexec hangs, the installer never comes up")
		return nil
	}
	switch r.mode {
	case ModeOff:
		h.setDown(ModeOff, "powered off")
		return nil
	case ModeIPXE:
		h.setDown(ModeIPXE, "booted the iPXE shell: no operating system, no network")
		return nil
	case ModeWindowsRescue:
		h.setDown(ModeWindowsRescue, "booted a Windows rescue: it takes a password sent by mail, not the rescue key")
		return nil
	}
	h.mu.Lock()
	switch {
	case r.mode == ModeInstaller:
		h.installerRan = true
	case r.mode == ModeDisk && h.installerRan && h.spec.LoseDisk != "" && h.lost == "":
		// The disk dies after the install, before the installed system's
		// first boot.
		h.lost = h.spec.LoseDisk
		h.f.logf("%s: disk %s is lost (lose_disk)", h.spec.Name, h.lost)
	}
	if h.vm != nil {
		for i, d := range h.disks {
			if d.Name == h.lost {
				h.pullLocked(i)
			}
		}
		h.mu.Unlock()
		return h.vmBootLocked(ctx, r)
	}
	h.devs.NameDisks(h.boots, h.lost)
	h.mu.Unlock()
	if r.mode == ModeDisk && h.spec.UEFI() {
		// The firmware starts the loader the API's efiBootloaderPath names,
		// if the EFI system partitions hold it now.
		if err := h.efiBoot(ctx, h.efiBootloaderPath()); err != nil {
			h.setDown(ModeIPXE, "booted the UEFI shell: "+err.Error()+"; no operating system, no network")
			return nil
		}
	}
	b, err := h.prepare(ctx, r)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.mode, h.bootID = r.mode, b.cfg.BootID
	h.boots++
	h.why = b.why
	h.installed = b.installed
	h.mu.Unlock()
	if err := h.start(ctx, b); err != nil {
		return err
	}
	h.f.modeChanged(h, r.mode)
	return nil
}

// boot is a prepared boot: the init's config and the network it brings up.
type boot struct {
	cfg       hostinit.Config
	nic       string        // the link's name in this boot
	network   bool          // configure the addresses and routes
	net       hostnet.Setup // what they are
	why       string        // why SSH will not answer, when it will not
	installed string
	hostKey   KeyPair
	machineID string
	authKeys  string
	osRelease string
}

// start runs the init in the host's namespaces, fills /dev and the network
// while it waits, then lets it start the host's services.
func (h *Host) start(ctx context.Context, b *boot) error {
	cfgJSON, err := json.Marshal(b.cfg)
	if err != nil {
		return err
	}
	console, err := os.OpenFile(filepath.Join(h.dir, "console.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer console.Close()
	fmt.Fprintf(console, "--- %s boot %s into %s\n", time.Now().Format(time.RFC3339), b.cfg.BootID, b.cfg.Mode)
	cmd := exec.Command("nsenter", "--net=/run/netns/"+h.link.Netns, "--", h.f.helper, hostinit.InitArg)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stderr = console
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWPID,
		Setsid:     true,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the host's init: %w", err)
	}
	done := make(chan struct{})
	if err := h.f.state.AddProc(cmd.Process.Pid, "init of "+h.spec.Name); err != nil {
		h.f.logf("%s: record init: %v", h.spec.Name, err)
	}
	go func() {
		err := cmd.Wait()
		_ = h.f.state.RemoveProc(cmd.Process.Pid)
		close(done)
		h.initExited(cmd.Process, err)
	}()
	// Confine the init before it mounts anything: its disks (and the
	// volume its root lies in), nothing else.
	volumes := map[string]bool{}
	h.volumeRules(volumes)
	if err := h.devs.Confine(cmd.Process.Pid, volumes); err != nil {
		h.f.logf("%s: %v", h.spec.Name, err)
	}
	// Until the init has built the host's root, /proc/PID/root is the
	// machine's: nothing fills it (see devtree.Tree.Built).
	h.mu.Lock()
	h.proc, h.done = cmd.Process, done
	h.devs.Reset()
	h.hostKey, h.machineID, h.authorized = b.hostKey, b.machineID, b.authKeys
	h.mu.Unlock()
	if hooks := h.f.cfg.hooks; hooks != nil && hooks.initStarted != nil {
		hooks.initStarted(h, cmd.Process.Pid)
	}

	fail := func(err error) error {
		h.mu.Lock()
		h.stopping = true
		h.devs.Halt()
		h.mu.Unlock()
		_ = cmd.Process.Kill()
		<-done
		h.mu.Lock()
		h.proc, h.done, h.stopping = nil, nil, false
		h.devs.Reset()
		nic := h.nic
		h.online = false
		h.mu.Unlock()
		// A boot that failed is off the network, whatever it had set up.
		if err := h.link.Down(context.WithoutCancel(ctx), nic); err != nil {
			h.f.logf("%s: %v", h.spec.Name, err)
		}
		return err
	}
	if _, err := fmt.Fprintf(stdin, "%s\n", cfgJSON); err != nil {
		return fail(fmt.Errorf("hand the init its config: %w", err))
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != hostinit.MsgMounted {
			console := filepath.Join(h.dir, "console.log")
			return fail(fmt.Errorf("init failed to build the host (see %s):\n%s", console, tailOf(console, 10)))
		}
		var stage uint64
		if len(fields) > 1 {
			stage, _ = strconv.ParseUint(fields[1], 10, 64)
		}
		h.devs.Built(cmd.Process.Pid, stage)
	case <-time.After(60 * time.Second):
		return fail(errors.New("init did not build the host within 60s"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if err := h.devs.Sync(ctx, true); err != nil {
		return fail(fmt.Errorf("fill /dev: %w", err))
	}
	// A server never comes up without its disks.
	if err := h.devs.CheckDisks(cmd.Process.Pid); err != nil {
		return fail(fmt.Errorf("fill /dev: %w", err))
	}
	if err := h.configureNetwork(ctx, b.nic, b.network, b.net); err != nil {
		return fail(err)
	}
	if err := hostnet.FillClassNet(cmd.Process.Pid, b.nic, hostnet.PCISlot(h.spec.predictedName()), h.spec.driver()); err != nil {
		return fail(fmt.Errorf("fill /sys/class/net: %w", err))
	}
	if _, err := fmt.Fprintln(stdin, hostinit.MsgStart); err != nil {
		return fail(fmt.Errorf("start the host: %w", err))
	}
	_ = stdin.Close()
	h.mu.Lock()
	h.up = true
	h.mu.Unlock()
	return nil
}

// initExited handles an init that died without the controller killing it:
// a reboot(2) from inside (busybox's reboot -f) ends the PID namespace with
// SIGHUP, a halt with SIGINT; anything else is a crash of the simulator.
func (h *Host) initExited(proc *os.Process, err error) {
	h.mu.Lock()
	mine := h.proc == proc && !h.stopping
	h.mu.Unlock()
	if !mine || h.f.ctx.Err() != nil {
		return
	}
	var ee *exec.ExitError
	sig := syscall.Signal(0)
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig = ws.Signal()
		}
	}
	h.f.logf("%s: init exited by itself (%v)", h.spec.Name, err)
	switch sig {
	case syscall.SIGHUP:
		h.softReboot()
	case syscall.SIGINT:
		h.f.goBackground(func(ctx context.Context) { h.powerOff(ctx, "halted from inside") })
	default:
		h.f.goBackground(func(ctx context.Context) {
			h.powerOff(ctx, fmt.Sprintf("the host's init died (%v): see %s", err, filepath.Join(h.dir, "console.log")))
		})
	}
}

// configureNetwork names the host's link for this boot and, when the boot
// comes up on the network, gives it the addresses and routes of net.
func (h *Host) configureNetwork(ctx context.Context, nic string, online bool, net hostnet.Setup) error {
	h.mu.Lock()
	cur := h.nic
	h.mu.Unlock()
	if err := h.link.Rename(ctx, cur, nic); err != nil {
		return err
	}
	h.mu.Lock()
	h.nic = nic
	h.mu.Unlock()
	if !online {
		return nil
	}
	if err := h.link.Configure(ctx, nic, net); err != nil {
		return err
	}
	h.mu.Lock()
	h.online = true
	h.mu.Unlock()
	return nil
}

// serveControl answers the host's in-host commands on its control socket.
func (h *Host) serveControl(ctx context.Context) error {
	_ = os.Remove(h.socket)
	l, err := net.Listen("unix", h.socket)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	h.server = &http.Server{
		Handler:     hostinit.Handler(h.command),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() { _ = h.server.Serve(l) }()
	return nil
}

func newBootID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func newMachineID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

// sshBanner checks that addr answers with an SSH banner.
func sshBanner(ctx context.Context, addr netip.AddrPort, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("not an SSH banner: %q", line)
	}
	return nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%dM", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}

// tailOf returns the last n lines of a file, for messages.
func tailOf(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
