package transport

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
)

// mutating lists programs that change a host. A read-only connection refuses
// them whatever their arguments; it is a backstop behind the type-level gate
// (modules only get a read-only host in Check), not the main line of defence.
var mutating = []string{
	"rm", "rmdir", "mv", "cp", "dd", "tee", "truncate", "shred", "install", "ln", "mkdir", "touch",
	"chmod", "chown", "chgrp", "chattr", "sed", "patch",
	"parted", "sfdisk", "sgdisk", "fdisk", "gdisk", "wipefs", "mkfs", "mke2fs", "mkswap", "swapon", "swapoff",
	"mount", "umount", "losetup", "zpool", "zfs", "mdadm", "pvcreate", "vgcreate", "lvcreate", "cryptsetup",
	"reboot", "shutdown", "poweroff", "halt", "kexec", "systemctl", "init", "telinit",
	"apt-get", "apt", "dpkg", "curl", "wget", "tar", "unsquashfs", "chroot", "useradd", "usermod", "passwd",
	"nixos-install", "nixos-rebuild", "nix-channel", "nix-env", "nixos-generate-config",
	"kill", "pkill", "killall",
}

// shells may run anything; a read-only connection refuses them too.
var shells = []string{"sh", "bash", "dash", "zsh", "busybox", "env", "sudo", "xargs", "nohup", "setsid", "exec"}

// IsMutating reports whether argv starts with a program a read-only
// connection refuses. mkfs.ext4 and the like count as mkfs.
func IsMutating(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	prog := path.Base(argv[0])
	if i := indexByte(prog, '.'); i > 0 {
		prog = prog[:i]
	}
	if readOnlyUse(prog, argv[1:]) {
		return false
	}
	return slices.Contains(mutating, prog) || slices.Contains(shells, prog)
}

// readOnlyUse reports whether a program that can change the host is called
// in a way that only reads: listing a squashfs image, say.
func readOnlyUse(prog string, args []string) bool {
	switch prog {
	case "unsquashfs":
		return unsquashfsListing(args)
	case "zpool":
		return zpoolQuery(args)
	case "zfs":
		return len(args) > 0 && (args[0] == "list" || args[0] == "get")
	}
	return false
}

// zpoolQuery allows `zpool list|get|status` without -c (which runs scripts),
// and `zpool import` with no pool to import: it lists importable pools.
func zpoolQuery(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "list", "get", "status":
		for _, a := range args[1:] {
			if len(a) > 1 && a[0] == '-' && a[1] != '-' && indexByte(a, 'c') > 0 {
				return false
			}
		}
		return true
	case "import":
		rest := args[1:]
		for i := 0; i < len(rest); i++ {
			switch rest[i] {
			case "-d":
				if i+1 == len(rest) {
					return false
				}
				i++ // the directory to search
			case "-D", "-s":
			default:
				return false // a pool to import, or an option that changes something
			}
		}
		return true
	}
	return false
}

// unsquashfsListing allows `unsquashfs -s|-l|-ll|-lls|... IMAGE [PATHS]`:
// with a listing or statistics option and no other option, it extracts
// nothing.
func unsquashfsListing(args []string) bool {
	listing := []string{"-s", "-stat", "-l", "-ls", "-ll", "-lls", "-lc", "-llc", "-lln", "-llnumeric", "-linfo"}
	harmless := []string{"-UTC", "-n", "-no-progress", "-q", "-quiet"}
	lists, operands := false, 0
	for _, a := range args {
		switch {
		case slices.Contains(listing, a):
			lists = true
		case slices.Contains(harmless, a):
		case len(a) > 0 && a[0] == '-':
			return false // -d, -f, -dest and anything unknown
		default:
			operands++
		}
	}
	return lists && operands > 0
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// ReadOnly wraps c so that uploads and mutating programs are refused.
// Reads go through a small allow-list of shell-free probes.
func ReadOnly(c Conn) Conn { return readOnly{c} }

type readOnly struct{ Conn }

func (r readOnly) Run(ctx context.Context, cmd Cmd) (Result, error) {
	if IsMutating(cmd.Args) {
		return Result{ExitCode: -1}, fmt.Errorf("%w: %s", ErrReadOnly, cmd.Line())
	}
	return r.Conn.Run(ctx, cmd)
}

func (r readOnly) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	return fmt.Errorf("%w: upload to %s", ErrReadOnly, dst)
}
