package sim

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/payload"
	"github.com/nixbook/nixbook/sim/simstate"
	"github.com/nixbook/nixbook/sim/vm"
)

// KindVM is the kind of a host that is a QEMU machine (kind: vm in the
// overrides): a Debian kernel with real ZFS booted by QEMU under software
// emulation, its disks virtio disks with serials, reached on a forwarded
// loopback port.
const KindVM = "vm"

// vmHost is what a host that is a QEMU machine has beyond a Host.
type vmHost struct {
	img     vm.Image
	tools   vm.Tools
	port    int    // on 127.0.0.1, forwarded to the guest's port 22
	console string // the guest's serial console, every boot appended
	// machine is the running QEMU, nil when off; guarded by the host's mu.
	machine *vm.Machine
	// pulled are the disks taken out of the machine (PullDisk), by index;
	// guarded by the host's mu.
	pulled map[int]bool
}

// buildVMHost makes a vm host's disk images and boots it the first time.
func (f *Fleet) buildVMHost(ctx context.Context, h *Host) error {
	s := h.spec
	if err := f.mkdirs(h.dir); err != nil {
		return err
	}
	port, err := vm.FreePort(h.vmAddr().String())
	if err != nil {
		return err
	}
	h.vm = &vmHost{img: f.vms.img, tools: f.vms.tools, port: port, console: filepath.Join(h.dir, "console.log")}
	for _, path := range []string{h.vm.console, h.vmInitrd(), h.vmEFIVars()} {
		if err := f.state.Add(simstate.Files, path); err != nil {
			return err
		}
	}
	if s.UEFI() {
		// The host's NVRAM: its own copy of OVMF's empty variable store,
		// which the firmware writes and keeps across boots.
		vars, err := os.ReadFile(h.vm.tools.OVMFVars)
		if err != nil {
			return err
		}
		if err := os.WriteFile(h.vmEFIVars(), vars, 0o600); err != nil {
			return err
		}
	}
	for i, ds := range s.Disks {
		d := &Disk{
			Name:   devtree.DiskName(Virtio, i),
			Kind:   Virtio,
			Size:   ds.Size,
			Serial: fmt.Sprintf("NBS%s%03d%02d", strings.ToUpper(f.plan.ID), s.Index, i),
		}
		d.Image = filepath.Join(f.dir, "disks", s.Name+"-"+d.Name+".img")
		if err := f.state.Add(simstate.Files, d.Image); err != nil {
			return err
		}
		if err := devtree.CreateImage(d.Image, d.Size); err != nil {
			return err
		}
		h.disks = append(h.disks, d)
	}
	h.devs.SetDisks(h.disks)
	h.op.Lock()
	defer h.op.Unlock()
	return h.bootLocked(ctx, bootRequest{mode: s.Mode, rescueKey: f.clientKey.Public, first: true})
}

// vmInitrd is where a boot's initramfs (the image's and the boot's files)
// is written.
func (h *Host) vmInitrd() string { return filepath.Join(h.dir, "initrd.cpio") }

// vmEFIVars is a UEFI vm host's variable store (OVMF's VARS file).
func (h *Host) vmEFIVars() string { return filepath.Join(h.dir, "OVMF_VARS.fd") }

// vmBootLocked starts QEMU booting r.mode: the rescue in RAM (the image's
// kernel and initramfs with a new host key), or the firmware on the disks.
// A UEFI host's firmware is OVMF for every boot (a rescue's kernel starts
// through its EFI stub, so the guest sees /sys/firmware/efi); its disk
// boot starts the loader efiBootloaderPath names, or stops in the UEFI
// shell as a namespace UEFI host does. h.op is held.
func (h *Host) vmBootLocked(ctx context.Context, r bootRequest) error {
	if r.mode == ModeDisk && h.spec.UEFI() {
		if err := h.efiBoot(ctx, h.efiBootloaderPath()); err != nil {
			h.mu.Lock()
			h.online = false
			h.mu.Unlock()
			h.setDown(ModeIPXE, "booted the UEFI shell: "+err.Error()+"; no operating system, no network")
			return nil
		}
	}
	dns := h.f.plan.Subnet.Addr().As4()
	dns[3] = 253
	if h.spec.Index == 253 {
		dns[3] = 252
	}
	cfg := vm.MachineConfig{
		Net4:     h.f.plan.Subnet.String(),
		Gateway4: h.f.plan.GW4.String(),
		DNS4:     netip.AddrFrom4(dns).String(),
		Guest4:   h.v4.Addr().String(),
		MemoryMB: h.spec.MemoryMiB,
		Listen:   h.vmAddr().String(),
		Port:     h.vm.port,
		MAC:      h.spec.MAC,
		Console:  h.vm.console,
	}
	if h.spec.UEFI() {
		cfg.Firmware, cfg.EFIVars = h.vm.tools.OVMFCode, h.vmEFIVars()
	}
	h.mu.Lock()
	for i, d := range h.disks {
		if !h.vm.pulled[i] {
			cfg.Disks = append(cfg.Disks, vm.DiskFile{Image: d.Image, Serial: d.Serial})
		}
	}
	h.mu.Unlock()
	var hostKey KeyPair
	switch r.mode {
	case ModeRescue:
		key, err := newKeyPair("root@" + rescueHostname)
		if err != nil {
			return err
		}
		hostKey = key
		files := []vm.File{
			{Path: "/init", Mode: 0o755, Data: vmScript("rescue.sh")},
			{Path: "/nixbook-vm/boot.sh", Data: vmScript("boot.sh")},
			{Path: "/etc/hostname", Data: rescueHostname + "\n"},
			{Path: "/etc/hosts", Data: "127.0.0.1\tlocalhost\n" + h.v4.Addr().String() + "\t" + rescueHostname + "\n"},
			{Path: "/etc/os-release", Data: rescueOSRelease},
			{Path: "/etc/machine-id", Mode: 0o444, Data: newMachineID() + "\n"},
			{Path: "/etc/resolv.conf", Data: resolvConf},
			{Path: "/etc/ssh/ssh_host_ed25519_key", Mode: 0o600, Data: key.Private},
			{Path: "/etc/ssh/ssh_host_ed25519_key.pub", Data: key.Public},
			{Path: "/root/.ssh/authorized_keys", Mode: 0o600, Data: r.rescueKey},
			{Path: "/etc/nixbook-vm/net", Data: h.vmNetwork()},
		}
		if err := vm.Concat(h.vmInitrd(), []string{h.vm.img.Initrd, h.vm.tools.Overlay}, vm.Cpio(files)); err != nil {
			return err
		}
		cfg.Kernel, cfg.Initrd = h.vm.img.Kernel, h.vmInitrd()
		cfg.Append = "console=ttyS0 quiet net.ifnames=0 panic=-1"
	case ModeDisk:
		// The firmware (SeaBIOS, or OVMF through the removable path) boots
		// the disks; what they hold decides.
	default:
		return fmt.Errorf("a vm host cannot boot into %s yet", r.mode)
	}
	if err := appendConsole(h.vm.console, fmt.Sprintf("--- %s boot into %s\n", time.Now().Format(time.RFC3339), r.mode)); err != nil {
		return err
	}
	m, err := vm.StartMachine(cfg)
	if err != nil {
		return err
	}
	if err := h.f.state.AddProc(m.Pid(), "qemu of "+h.spec.Name); err != nil {
		h.f.logf("%s: record qemu: %v", h.spec.Name, err)
	}
	h.mu.Lock()
	h.vm.machine = m
	h.mode, h.bootID = r.mode, ""
	h.boots++
	// A rescue comes up; what the disks hold is known once it has said so
	// on the console (see vmFollow).
	h.up, h.online, h.why = true, r.mode != ModeDisk, ""
	h.hostKey, h.authorized = hostKey, r.rescueKey
	h.installed = ""
	h.mu.Unlock()
	h.f.goBackground(func(ctx context.Context) { h.vmWatch(ctx, m) })
	h.f.modeChanged(h, r.mode)
	return nil
}

// vmWatch follows a QEMU until it exits: a guest that rebooted by itself
// boots again into what its netboot says, one that powered off stays off.
func (h *Host) vmWatch(ctx context.Context, m *vm.Machine) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-m.Exited():
			running = false
		case <-ctx.Done():
			return
		case <-tick.C:
			h.vmFollow(m)
		}
	}
	_ = h.f.state.RemoveProc(m.Pid())
	h.mu.Lock()
	mine := h.vm.machine == m
	h.mu.Unlock()
	if !mine || m.Killed() || ctx.Err() != nil {
		return
	}
	if m.GuestRebooted() {
		h.f.logf("%s: the guest rebooted", h.spec.Name)
		h.softReboot()
		return
	}
	why := "powered off from inside"
	if err := m.Err(); err != nil {
		why = fmt.Sprintf("QEMU exited (%v): see %s", err, h.vm.console)
	}
	h.powerOff(ctx, why)
}

// vmStopLocked pulls the machine's plug. h.op is held.
func (h *Host) vmStopLocked(why string) {
	h.mu.Lock()
	m := h.vm.machine
	h.vm.machine = nil
	h.up, h.online, h.why = false, false, why
	h.mu.Unlock()
	if m != nil {
		m.Kill()
		_ = h.f.state.RemoveProc(m.Pid())
	}
}

// sshAddr is where the controller reaches the host's SSH server: for a vm
// host a port on its own loopback address, which is also its address in
// the OVH API, so that nixbook proves the service is the host it dials as
// it does on a real server.
func (h *Host) sshAddr() netip.AddrPort {
	if h.spec.Kind == KindVM {
		port := 0
		if h.vm != nil {
			port = h.vm.port
		}
		return netip.AddrPortFrom(h.vmAddr(), uint16(port))
	}
	return netip.AddrPortFrom(h.v4.Addr(), 22)
}

// vmAddr is a vm host's loopback address, 127.B.C.N for the fleet's
// subnet A.B.C.0/24 and the host's index N: no two fleets' hosts share one.
func (h *Host) vmAddr() netip.Addr {
	b := h.v4.Addr().As4()
	return netip.AddrFrom4([4]byte{127, b[1], b[2], b[3]})
}

// SSHAddr is the address and port nixbook dials for the host: its address
// on the fleet's network, or a loopback port for a vm host.
func (h *Host) SSHAddr() netip.AddrPort { return h.sshAddr() }

// vmBootID is the boot id the guest's kernel made for its current boot, as
// its init printed it on the console; empty until it has.
func (h *Host) vmBootID() string {
	id, _, _ := vmConsoleState(h.vm.console)
	return id
}

// vmConsoleState is what the guest's inits said on the console since QEMU
// last started: the boot id and mode of the last boot (a kexec boots
// another kernel in the same QEMU), and why its stage 1 stopped, if it did.
func vmConsoleState(console string) (bootID string, mode Mode, failure string) {
	b, err := os.ReadFile(console)
	if err != nil {
		return "", "", ""
	}
	if i := bytes.LastIndex(b, []byte("\n--- ")); i >= 0 {
		b = b[i:]
	}
	for _, line := range strings.Split(string(b), "\n") {
		_, said, ok := strings.Cut(strings.TrimSpace(line), "nixbook-vm: ")
		if !ok {
			continue
		}
		if rest, ok := strings.CutPrefix(said, "boot_id "); ok {
			id, m, _ := strings.Cut(rest, " mode ")
			bootID, mode, failure = strings.TrimSpace(id), Mode(strings.TrimSpace(m)), ""
		} else if rest, ok := strings.CutPrefix(said, "stage 1 failed: "); ok {
			failure = "the installed system's stage 1 stopped: " + strings.TrimSpace(rest)
		}
	}
	if bootID == "" && bytes.Contains(b, []byte("No bootable device")) {
		failure = "the firmware found no bootable disk"
	}
	// OVMF with no loader it can start runs its shell.
	if bootID == "" && bytes.Contains(b, []byte("UEFI Interactive Shell")) {
		failure = "the firmware found no loader: it stopped in the UEFI shell"
	}
	// GRUB that cannot find its /boot stops at its rescue prompt, after
	// its error lines.
	if i := bytes.LastIndex(b, []byte("grub rescue>")); i >= 0 && bootID == "" {
		var errs []string
		for _, line := range strings.Split(string(b[:i]), "\n") {
			if j := strings.Index(line, "error: "); j >= 0 {
				errs = append(errs, strings.TrimSpace(ansi.ReplaceAllString(line[j:], "")))
			}
		}
		failure = "GRUB stopped at its rescue prompt: " + strings.Join(errs, "; ")
	}
	return bootID, mode, failure
}

// ansi matches the terminal escapes GRUB writes on the serial console.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// vmFollow takes what the guest said into the host's state: a kexec into
// the installer (the same host key, another boot), a stage 1 that stopped.
func (h *Host) vmFollow(m *vm.Machine) {
	_, mode, failure := vmConsoleState(h.vm.console)
	h.mu.Lock()
	if h.vm.machine != m {
		h.mu.Unlock()
		return
	}
	changed := mode != "" && mode != h.mode
	if changed {
		h.mode = mode
		h.boots++
		h.installerRan = h.installerRan || mode == ModeInstaller
	}
	switch {
	case failure != "":
		// It never reaches the network: as a server whose initrd waits.
		h.why, h.online = failure, false
	case mode != "":
		h.online = true
	}
	h.mu.Unlock()
	if changed {
		h.f.modeChanged(h, mode)
	}
}

// vmServedHostKey asks the guest's SSH server for its host key: what a
// system installed on the disks serves is only known by asking it.
func (h *Host) vmServedHostKey(ctx context.Context) (string, error) {
	var got ssh.PublicKey
	errGot := errors.New("host key received")
	cfg := &ssh.ClientConfig{
		User:              "root",
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			got = key
			return errGot
		},
		Timeout: 5 * time.Second,
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", h.sshAddr().String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _, _, err = ssh.NewClientConn(c, h.sshAddr().String(), cfg)
	if got == nil {
		return "", fmt.Errorf("no host key: %w", err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(got))), nil
}

func appendConsole(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkVMSpec checks what a vm host cannot be and gives it a vm's defaults:
// its disks are virtio disks, its RAM QEMU's (1 GiB unless ram says).
func checkVMSpec(s *HostSpec) error {
	if len(s.Disks) > 2 {
		return fmt.Errorf("kind vm: %d disks, want one or two (each is emulated in software)", len(s.Disks))
	}
	for i := range s.Disks {
		s.Disks[i].Kind = Virtio
	}
	switch {
	case s.NIC != DefaultNIC || s.Predicted != "":
		return errors.New("kind vm: the NIC is the guest's eth0; nic and predicted_nic do not apply")
	case s.Data != "" && s.Data != "none":
		return fmt.Errorf("kind vm: data %q is not available on a vm host", s.Data)
	case s.ReorderDisks:
		return errors.New("kind vm: reorder_disks is not available on a vm host")
	case s.Mode != ModeRescue && s.Mode != ModeDisk && s.Mode != ModeOff:
		return fmt.Errorf("kind vm: mode %s: a vm host starts in rescue, disk or off", s.Mode)
	case len(s.Faults) > 0:
		return errors.New("kind vm: faults are not available on a vm host")
	case s.DiskController != "" && s.DiskController != "ahci":
		return fmt.Errorf("kind vm: disk_controller %s: a vm host's disks are virtio disks", s.DiskController)
	case len(s.KexecNetwork) > 0:
		return errors.New("kind vm: kexec_network is not available on a vm host (the installer keeps the rescue's network)")
	case s.RescueNetwork == RescueDHCP:
		return errors.New("kind vm: rescue_network dhcp is not available on a vm host (its address is static, on QEMU's network)")
	case s.NICDriver != "" || s.RescuePredicted != "":
		return errors.New("kind vm: the NIC is the guest's eth0; nic_driver and rescue_predicted_nic do not apply")
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = vmDefaultMemoryMiB
	}
	return nil
}

// vmDefaultMemoryMiB is a vm host's RAM unless ram says: the kexec module
// refuses less than 1.5 GiB (the installer lives in RAM), and QEMU takes
// from the machine only what the guest touches.
const vmDefaultMemoryMiB = 2048

// vmFleet is what a fleet's vm hosts share: the image, its tools, and the
// inventory variables of their kexec installer.
type vmFleet struct {
	img       vm.Image
	tools     vm.Tools
	kexecVars [][2]string
}

// prepareVMs builds (or finds cached) what vm hosts boot, when the fleet
// has any, and with a payload serves their kexec installer.
func (f *Fleet) prepareVMs(ctx context.Context, specs []HostSpec, p *payload.Payload) error {
	hasVM := false
	for _, s := range specs {
		hasVM = hasVM || s.Kind == KindVM
	}
	if !hasVM {
		return nil
	}
	img, tools, err := vm.EnsureTools(ctx, f.logf)
	if err != nil {
		return err
	}
	f.vms = &vmFleet{img: img, tools: tools}
	if p == nil {
		return nil
	}
	return f.serveVMKexec(ctx, p, img, tools)
}

// vmNetwork is the rescue's addressing, OVH's IPv4 (see configureNetwork),
// in the shell assignments boot.sh's online reads. QEMU's user network
// carries IPv4 only (its gateway reaches this machine), so a vm host has no
// IPv6, rather than one that leads nowhere: nixbook checks the IPv6 a host
// has after the final boot.
func (h *Host) vmNetwork() string {
	return fmt.Sprintf("ipv4=%s\ngateway4=%s\nipv6=\ngateway6=\n", h.v4, h.f.plan.GW4)
}

// PullDisk takes a vm host's disk (0 is the first) out of the machine, as a
// disk that dies: the running system keeps it until the machine stops, and
// every boot after that is without it.
func (h *Host) PullDisk(index int) error {
	if h.vm == nil {
		return fmt.Errorf("%s: only a vm host's disks can be pulled", h.spec.Name)
	}
	if index < 0 || index >= len(h.disks) {
		return fmt.Errorf("%s has no disk %d", h.spec.Name, index)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pullLocked(index)
	return nil
}

// pullLocked takes a vm host's disk out of the machine. h.mu is held.
func (h *Host) pullLocked(index int) {
	if h.vm.pulled == nil {
		h.vm.pulled = map[int]bool{}
	}
	h.vm.pulled[index] = true
}
