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
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/sim/simstate"
	"github.com/nixbook/nixbook/sim/vm"
)

// KindVM is the kind of a host that is a QEMU machine (kind: vm in the
// overrides): a Debian kernel with real ZFS booted by QEMU under software
// emulation, its disks virtio disks with serials, reached on a forwarded
// loopback port.
const KindVM = "vm"

// vmRescueInit is the init of a vm host's rescue (laid over the image's).
//
//go:embed vmrescue.sh
var vmRescueInit string

// vmHost is what a host that is a QEMU machine has beyond a Host.
type vmHost struct {
	img     vm.Image
	port    int    // on 127.0.0.1, forwarded to the guest's port 22
	console string // the guest's serial console, every boot appended
	// machine is the running QEMU, nil when off; guarded by the host's mu.
	machine *vm.Machine
}

// buildVMHost makes a vm host's disk images and boots it the first time.
func (f *Fleet) buildVMHost(ctx context.Context, h *Host) error {
	s := h.spec
	if err := f.mkdirs(h.dir); err != nil {
		return err
	}
	img, err := vm.Ensure(ctx, f.logf)
	if err != nil {
		return err
	}
	port, err := vm.FreePort()
	if err != nil {
		return err
	}
	h.vm = &vmHost{img: img, port: port, console: filepath.Join(h.dir, "console.log")}
	for _, path := range []string{h.vm.console, h.vmInitrd()} {
		if err := f.state.Add(simstate.Files, path); err != nil {
			return err
		}
	}
	for i, ds := range s.Disks {
		d := &Disk{
			Name:   diskName(Virtio, i),
			Kind:   Virtio,
			Size:   ds.Size,
			Serial: fmt.Sprintf("NBS%s%03d%02d", strings.ToUpper(f.plan.id), s.Index, i),
		}
		d.Image = filepath.Join(f.dir, "disks", s.Name+"-"+d.Name+".img")
		if err := f.state.Add(simstate.Files, d.Image); err != nil {
			return err
		}
		if err := createImage(d.Image, d.Size); err != nil {
			return err
		}
		h.disks = append(h.disks, d)
	}
	h.op.Lock()
	defer h.op.Unlock()
	return h.bootLocked(ctx, bootRequest{mode: s.Mode, rescueKey: f.clientKey.Public, first: true})
}

// vmInitrd is where a boot's initramfs (the image's and the boot's files)
// is written.
func (h *Host) vmInitrd() string { return filepath.Join(h.dir, "initrd.cpio") }

// vmBootLocked starts QEMU booting r.mode: the rescue in RAM (the image's
// kernel and initramfs with a new host key), or the firmware on the disks.
// h.op is held.
func (h *Host) vmBootLocked(r bootRequest) error {
	cfg := vm.MachineConfig{
		MemoryMB: h.spec.MemoryMiB,
		Port:     h.vm.port,
		MAC:      h.spec.MAC,
		Console:  h.vm.console,
	}
	for _, d := range h.disks {
		cfg.Disks = append(cfg.Disks, vm.DiskFile{Image: d.Image, Serial: d.Serial})
	}
	var hostKey KeyPair
	switch r.mode {
	case ModeRescue:
		key, err := newKeyPair("root@" + rescueHostname)
		if err != nil {
			return err
		}
		hostKey = key
		files := []vm.File{
			{Path: "/init", Mode: 0o755, Data: vmRescueInit},
			{Path: "/etc/hostname", Data: rescueHostname + "\n"},
			{Path: "/etc/hosts", Data: "127.0.0.1\tlocalhost\n" + h.v4.Addr().String() + "\t" + rescueHostname + "\n"},
			{Path: "/etc/os-release", Data: rescueOSRelease},
			{Path: "/etc/machine-id", Mode: 0o444, Data: newMachineID() + "\n"},
			{Path: "/etc/resolv.conf", Data: resolvConf},
			{Path: "/etc/ssh/ssh_host_ed25519_key", Mode: 0o600, Data: key.Private},
			{Path: "/etc/ssh/ssh_host_ed25519_key.pub", Data: key.Public},
			{Path: "/root/.ssh/authorized_keys", Mode: 0o600, Data: r.rescueKey},
		}
		if err := vm.WriteInitrd(h.vmInitrd(), h.vm.img.Initrd, files); err != nil {
			return err
		}
		cfg.Kernel, cfg.Initrd = h.vm.img.Kernel, h.vmInitrd()
		cfg.Append = "console=ttyS0 quiet net.ifnames=0 panic=-1"
	case ModeDisk:
		// The firmware (SeaBIOS) boots the disks; what they hold decides.
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
	h.up, h.online, h.why = true, true, ""
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
	select {
	case <-m.Exited():
	case <-ctx.Done():
		return
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

// sshAddr is where the controller reaches the host's SSH server.
func (h *Host) sshAddr() netip.AddrPort {
	if h.vm != nil {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(h.vm.port))
	}
	return netip.AddrPortFrom(h.v4.Addr(), 22)
}

// SSHAddr is the address and port nixbook dials for the host: its address
// on the fleet's network, or a loopback port for a vm host.
func (h *Host) SSHAddr() netip.AddrPort { return h.sshAddr() }

// vmBootID is the boot id the guest's kernel made for its current boot, as
// its init printed it on the console; empty until it has.
func (h *Host) vmBootID() string {
	b, err := os.ReadFile(h.vm.console)
	if err != nil {
		return ""
	}
	if i := bytes.LastIndex(b, []byte("\n--- ")); i >= 0 {
		b = b[i:]
	}
	const mark = "nixbook-vm: boot_id "
	i := bytes.LastIndex(b, []byte(mark))
	if i < 0 {
		return ""
	}
	line, _, _ := strings.Cut(string(b[i+len(mark):]), "\n")
	return strings.TrimSpace(line)
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
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = vmDefaultMemoryMiB
	}
	return nil
}

// vmDefaultMemoryMiB is a vm host's RAM unless ram says: enough for the
// rescue in RAM with ZFS, little enough for a shared machine.
const vmDefaultMemoryMiB = 1024
