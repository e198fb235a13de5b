package sim

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixbook/nixbook/sim/hostinit"
)

// shutdownGrace lets an in-host reboot command answer before the host dies,
// as a real reboot lets the SSH session see its command return.
const shutdownGrace = 300 * time.Millisecond

// command runs one of the simulator's own in-host commands for the host.
func (h *Host) command(ctx context.Context, req hostinit.Request) hostinit.Reply {
	name, args := req.Argv[0], req.Argv[1:]
	switch name {
	case "reboot":
		return h.cmdReboot(name, args)
	case "poweroff", "halt":
		return h.cmdPowerOff(name, args)
	case "shutdown":
		return h.cmdShutdown(args)
	case "systemctl":
		return h.cmdSystemctl(args)
	case "kexec":
		return h.cmdKexec(args)
	case "udevadm":
		return h.cmdUdevadm(ctx, args)
	case "swapon":
		return h.swap.Swapon(ctx, req.Dir, args)
	case "swapoff":
		return h.swap.Swapoff(ctx, req.Dir, args)
	case "efibootmgr":
		if h.nvram == nil { // a BIOS host has no EFI variables
			return hostinit.Reply{Stderr: "EFI variables are not supported on this system.\n", Code: 2}
		}
		return h.nvram.Efibootmgr(args)
	}
	return hostinit.Reply{Stderr: name + ": not provided by the simulator\n", Code: 127}
}

func helpAsked(args []string) bool {
	for _, a := range args {
		if a == "--help" || a == "-h" {
			return true
		}
	}
	return false
}

func (h *Host) cmdReboot(name string, args []string) hostinit.Reply {
	if helpAsked(args) {
		return hostinit.Reply{Stdout: name + " [--force]: reboot this simulated server (nixbook-sim)\n"}
	}
	h.softReboot()
	return hostinit.Reply{}
}

func (h *Host) cmdPowerOff(name string, args []string) hostinit.Reply {
	if helpAsked(args) {
		return hostinit.Reply{Stdout: name + ": power this simulated server off (nixbook-sim)\n"}
	}
	h.fromInside(func(ctx context.Context) {
		h.powerOff(ctx, "powered off from inside (use the API or `nixbook-sim reboot` to start it)")
	})
	return hostinit.Reply{}
}

// cmdShutdown understands `shutdown [-r|-h|-P|-c] [now|+0|+N] [message]`;
// every delay is taken as now.
func (h *Host) cmdShutdown(args []string) hostinit.Reply {
	reboot := false
	for _, a := range args {
		switch a {
		case "-r", "--reboot":
			reboot = true
		case "-c":
			return hostinit.Reply{}
		case "--help":
			return hostinit.Reply{Stdout: "shutdown [-r|-h] [now]: simulated (nixbook-sim)\n"}
		}
	}
	if reboot {
		return h.cmdReboot("shutdown", nil)
	}
	return h.cmdPowerOff("shutdown", nil)
}

func (h *Host) cmdSystemctl(args []string) hostinit.Reply {
	verb := ""
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			verb = a
			break
		}
	}
	switch verb {
	case "reboot":
		return h.cmdReboot("systemctl", nil)
	case "poweroff", "halt":
		return h.cmdPowerOff("systemctl", nil)
	case "kexec":
		return h.cmdKexec([]string{"-e"})
	case "is-system-running":
		return hostinit.Reply{Stdout: "running\n"}
	}
	return hostinit.Reply{
		Stderr: "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n",
		Code:   1,
	}
}

// cmdKexec emulates kexec-tools: `-l/--load KERNEL ...` then `-e/--exec`
// boot the NixOS installer, as does the payload's `--nixbook-sim-installer`.
func (h *Host) cmdKexec(args []string) hostinit.Reply {
	load, exec, unload := false, false, false
	for _, a := range args {
		switch {
		case a == "--nixbook-sim-installer":
			load, exec = true, true
		case a == "-l" || a == "--load" || a == "-s" || a == "--kexec-file-syscall" || strings.HasPrefix(a, "--kexec-syscall"):
			load = true
		case a == "-e" || a == "--exec":
			exec = true
		case a == "-u" || a == "--unload":
			unload = true
		case a == "-v" || a == "--version":
			return hostinit.Reply{Stdout: "kexec-tools 2.0.26 (nixbook-sim)\n"}
		case a == "-h" || a == "--help":
			return hostinit.Reply{Stdout: "kexec -l KERNEL [--initrd=FILE] [--command-line=...]; kexec -e (nixbook-sim: boots the NixOS installer)\n"}
		}
	}
	h.mu.Lock()
	switch {
	case unload:
		h.kexecLoaded = false
	case load:
		h.kexecLoaded = true
	}
	loaded := h.kexecLoaded
	h.mu.Unlock()
	if !exec {
		return hostinit.Reply{}
	}
	if !loaded {
		return hostinit.Reply{Stderr: "Nothing has been loaded!\n", Code: 1}
	}
	carried, err := h.carriedFiles()
	if err != nil {
		return hostinit.Reply{Stderr: fmt.Sprintf("kexec: %v\n", err), Code: 1}
	}
	// kexec/run records the network in the initrd, leases as leases.
	h.mu.Lock()
	nic := h.nic
	h.mu.Unlock()
	lease4 := h.link.IsLease(context.Background(), nic, h.v4.Addr())
	h.fromInside(func(ctx context.Context) {
		// kexec skips the firmware: no boot delay.
		h.reboot(ctx, bootRequest{mode: ModeInstaller, carried: carried, lease4: lease4}, time.Second)
	})
	return hostinit.Reply{}
}

// softReboot reboots the host from inside: the server goes through its
// firmware and the netboot set in the API picks what it boots.
func (h *Host) softReboot() {
	h.fromInside(func(ctx context.Context) {
		h.reboot(ctx, h.f.netbootRequest(h), -1)
	})
}

// fromInside carries out what a command inside the host asked for (a
// reboot, a kexec, a power-off) once a real shutdown would have got there,
// unless the host was rebooted meanwhile: the command's boot is over, and
// it acts on nothing.
func (h *Host) fromInside(do func(ctx context.Context)) {
	h.mu.Lock()
	gen := h.gen
	h.mu.Unlock()
	h.f.goBackground(func(ctx context.Context) {
		time.Sleep(shutdownGrace)
		h.mu.Lock()
		stale := h.gen != gen
		h.mu.Unlock()
		if !stale {
			do(ctx)
		}
	})
}

func (h *Host) cmdUdevadm(ctx context.Context, args []string) hostinit.Reply {
	if len(args) == 0 {
		return hostinit.Reply{Stderr: "udevadm: missing command\n", Code: 2}
	}
	switch args[0] {
	case "settle", "trigger":
		if err := h.devs.Sync(ctx, true); err != nil {
			return hostinit.Reply{Stderr: fmt.Sprintf("udevadm %s: %v\n", args[0], err), Code: 1}
		}
		return hostinit.Reply{}
	case "control", "monitor":
		return hostinit.Reply{}
	case "test-builtin":
		if len(args) >= 3 && args[1] == "net_id" {
			return h.netID(filepath.Base(args[2]))
		}
		return hostinit.Reply{Stderr: "udevadm test-builtin: only net_id is simulated\n", Code: 1}
	case "info":
		return h.devs.UdevInfo(ctx, args[1:])
	case "--version", "version":
		return hostinit.Reply{Stdout: "252\n"}
	}
	return hostinit.Reply{Stderr: "udevadm " + args[0] + ": not simulated\n", Code: 1}
}

// netID prints what systemd's net_id builtin would for the host's NIC: the
// predictable names a NixOS with usePredictableInterfaceNames would use.
func (h *Host) netID(iface string) hostinit.Reply {
	h.mu.Lock()
	cur := h.nic
	h.mu.Unlock()
	if iface != cur && iface != h.spec.NIC {
		return hostinit.Reply{Stderr: fmt.Sprintf("Failed to open device '/sys/class/net/%s': No such device\n", iface), Code: 1}
	}
	mac := strings.ReplaceAll(h.spec.MAC, ":", "")
	var b strings.Builder
	b.WriteString("ID_NET_NAMING_SCHEME=v252\n")
	fmt.Fprintf(&b, "ID_NET_NAME_MAC=enx%s\n", mac)
	p := h.spec.predictedName()
	if h.Mode() == ModeRescue && h.spec.RescuePredicted != "" {
		p = h.spec.RescuePredicted
	}
	if p != "" {
		if strings.HasPrefix(p, "eno") {
			fmt.Fprintf(&b, "ID_NET_NAME_ONBOARD=%s\n", p)
		} else {
			fmt.Fprintf(&b, "ID_NET_NAME_PATH=%s\n", p)
		}
	}
	return hostinit.Reply{Stdout: b.String(), Stderr: "Load module index\nParsed configuration file /usr/lib/systemd/network/99-default.link\nCreated link configuration context.\nUsing default interface naming scheme 'v252'.\nUnload module index\nUnloaded link configuration context.\n"}
}
