// Package hostinit is the part of the simulated fleet that runs inside a
// host: its init (PID 1 of the host's PID namespace, which builds the host's
// root, /dev and /run and runs sshd) and the simulator's own `reboot`,
// `shutdown`, `systemctl`, `kexec`, `udevadm`, `swapon` and `swapoff`, which
// ask the controller through a unix socket instead of touching the machine.
//
// It depends on the standard library and x/sys only, so the helper binary
// that carries it builds fast and never breaks with the rest of the fleet.
package hostinit

// Paths inside a host.
const (
	// HelperPath is where the helper binary is bound inside a host.
	HelperPath = "/run/nixbook-sim/nixbook-sim"
	// ControlPath is where the host's control socket is bound inside a host.
	ControlPath = "/run/nixbook-sim/control.sock"
)

// InitArg, as argv[1], makes the helper run as a host's init.
const InitArg = "__nixbook-sim-hostinit"

// ReaperArg, as argv[1] followed by a fleet directory and its owner token,
// makes the helper wait on its stdin: a line ReaperDone ends it quietly, end
// of file (the fleet's process died) makes it remove what that fleet
// recorded.
const ReaperArg = "__nixbook-sim-reaper"

// ReaperDone tells the reaper the fleet went down cleanly.
const ReaperDone = "done"

// Messages the init and the controller exchange on the init's stdout/stdin.
const (
	// MsgMounted says the host's file systems are ready: the controller fills
	// /dev and configures the network, then answers MsgStart. It is followed
	// by the device number of the boot's RAM disk.
	MsgMounted = "mounted"
	// MsgStart lets the init start the host's services.
	MsgStart = "start"
)

// PartitionsHeader starts the host's /proc/partitions, which the controller
// rewrites as the host's disks change.
const PartitionsHeader = "major minor  #blocks  name\n\n"

// SwapsHeader starts the host's /proc/swaps, which the controller rewrites
// as the host turns swap on and off.
const SwapsHeader = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"

// Commands returns the in-host commands that are the simulator's own, by the
// paths they replace inside a host.
func Commands() map[string]string {
	return map[string]string{
		"/usr/sbin/reboot":   "reboot",
		"/usr/sbin/shutdown": "shutdown",
		"/usr/sbin/poweroff": "poweroff",
		"/usr/sbin/halt":     "halt",
		"/usr/sbin/kexec":    "kexec",
		"/usr/bin/systemctl": "systemctl",
		"/usr/bin/udevadm":   "udevadm",
		"/usr/sbin/udevadm":  "udevadm",
		// The machine's kernel would turn swap on for every host at once.
		"/usr/sbin/swapon":  "swapon",
		"/usr/sbin/swapoff": "swapoff",
		// The firmware's boot entries (NVRAM) are the controller's.
		"/usr/bin/efibootmgr": "efibootmgr",
	}
}

// Config is one boot of one host, handed by the controller to the init as a
// single JSON line on its stdin.
type Config struct {
	Host     string `json:"host"`
	Mode     string `json:"mode"`
	Hostname string `json:"hostname"`
	BootID   string `json:"boot_id"`
	// StageDir is an empty directory of the machine on which the init mounts
	// the boot's tmpfs (only inside the host's mount namespace).
	StageDir string `json:"stage_dir"`
	// RAMDiskMiB sizes the tmpfs under the root overlay, /tmp, /mnt and /root:
	// the rescue's RAM disk.
	RAMDiskMiB int `json:"ramdisk_mib"`
	// MemoryMiB is the RAM the host's /proc/meminfo shows; 0 leaves the
	// machine's.
	MemoryMiB int `json:"memory_mib,omitempty"`
	// UEFI shows /sys/firmware/efi (with efivars), as a server booted in
	// UEFI mode has; without it /sys/firmware has no efi, whatever the
	// machine booted with.
	UEFI bool `json:"uefi,omitempty"`
	// Helper is the helper binary on the machine; Control the host's control
	// socket on the machine. Both are bound under /run/nixbook-sim.
	Helper  string `json:"helper"`
	Control string `json:"control"`
	// Hide lists directories of the machine shown empty inside the host.
	Hide []string `json:"hide"`
	// Remove lists glob patterns of the machine's files removed from the
	// host's view (its own host keys, for one).
	Remove []string `json:"remove"`
	// Files are written into the host's root (after Remove).
	Files []File `json:"files"`
	// Dirs are directories of the machine made once the stage is mounted
	// (under StageDir: the upper layers of overlays in Mounts).
	Dirs []string `json:"dirs,omitempty"`
	// Mounts are made before the host's root is pivoted: Source is a path of
	// the machine, Target a path inside the host.
	Mounts []Mount `json:"mounts"`
	// Activate is run once the files are written, before the services (the
	// installer's activation script); its output goes to the console.
	Activate []string `json:"activate,omitempty"`
	// SSHD starts OpenSSH's sshd with /etc/ssh/sshd_config; false for a boot
	// that never comes up on the network.
	SSHD bool `json:"sshd"`
}

// File is a file, or a symbolic link when Link is set, written inside a host.
type File struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
	Data string `json:"data,omitempty"`
	Link string `json:"link,omitempty"`
}

// Mount is one mount made by the init before it pivots into the host's root.
type Mount struct {
	// Source is a path or device of the machine, or with InRoot a path
	// inside the host's root (after the mounts before it).
	Source string `json:"source"`
	InRoot bool   `json:"in_root,omitempty"`
	// Create makes the source directory first, as NixOS's activation makes
	// /root and /home on the installed root.
	Create   bool   `json:"create,omitempty"`
	Target   string `json:"target"`
	FSType   string `json:"fstype,omitempty"` // empty: a bind mount
	Options  string `json:"options,omitempty"`
	ReadOnly bool   `json:"readonly,omitempty"`
}

// Request is what an in-host command sends the controller: its argv and
// the directory it runs in (relative paths in argv are relative to it).
type Request struct {
	Argv []string `json:"argv"`
	Dir  string   `json:"dir,omitempty"`
}

// Reply is the controller's answer, printed and returned by the command.
type Reply struct {
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	Code   int    `json:"code"`
}
