package transport

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// TestCheckReadOnlyAllows lists the probes modules issue: each must pass.
func TestCheckReadOnlyAllows(t *testing.T) {
	tests := [][]string{
		{"cat", "--", "/etc/os-release"},
		{"cat", "--", "/proc/self/mounts"},
		{"stat", "-L", "-c", "%a %U %G %u %g", "--", "/etc/hosts", "/proc/self"},
		{"stat", "-f", "-c", "%a %S %d", "--", "/mnt"},
		{"test", "-d", "/sys/firmware/efi"},
		{"test", "-e", "/mnt/etc/nixos"},
		{"readlink", "-m", "--", "/dev/disk/by-id/x"},
		{"readlink", "/mnt/nix/var/nix/profiles/system"},
		{"find", "/mnt/etc/nixos", "-type", "f"},
		{"find", "/nix/store", "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"},
		{"sha256sum", "--", "/root/nixos.iso"},
		{"du", "-s", "-x", "--inodes", "--", "/mnt"},
		{"which", "curl", "wget", "xorriso"},
		{"findmnt", "-J", "-l", "-o", "TARGET,SOURCE,FSTYPE,MAJ:MIN"},
		{"lsblk", "-J", "-b", "-o", "NAME,SIZE,TYPE,MOUNTPOINT,MAJ:MIN", "/dev/sda"},
		{"blkid", "-p", "-o", "export", "/dev/sda", "/dev/sda1"},
		{"blkid", "-c", "/dev/null", "-o", "value", "-s", "TYPE", "/dev/sda1"},
		{"ls", "-1p", "/proc/spl/kstat/zfs"},
		{"hostid"},
		{"hostname"},
		{"hostname", "-f"},
		{"uname", "-r"},
		{"id", "-u"},
		{"df", "-B1", "/"},
		{"zpool", "list", "-H", "-o", "name"},
		{"zpool", "import", "-d", "/dev/disk/by-id"},
		{"zfs", "get", "-H", "-o", "value", "type", "rpool/home"},
		{"ip", "-j", "addr", "show"},
		{"ip", "-br", "link"},
		{"ip", "route", "get", "1.1.1.1"},
		{"ip", "-6", "route", "show", "default"},
		{"sgdisk", "-p", "/dev/sda"},
		{"sgdisk", "-i", "2", "/dev/sda"},
		{"sgdisk", "--info=2", "/dev/sda"},
		{"udevadm", "info", "-q", "property", "-n", "/dev/sda"},
		{"nix-instantiate", "--parse", "-E", "{ }"},
		{"unsquashfs", "-lls", "/iso/nix-store.squashfs"},
		{"/usr/bin/cat", "/etc/hostname"},
		{"/run/current-system/sw/bin/lsblk", "-J"},
	}
	for _, argv := range tests {
		if err := CheckReadOnly(Cmd{Args: argv}); err != nil {
			t.Errorf("CheckReadOnly(%q) = %v, want nil", argv, err)
		}
	}
}

// TestCheckReadOnlyRefuses is the negative space: programs that change the
// host, run other programs or are simply unknown, and read-only programs
// called in a way that writes.
func TestCheckReadOnlyRefuses(t *testing.T) {
	tests := []struct {
		argv []string
		why  string // part of the error
	}{
		{nil, "no program"},
		{[]string{""}, "not known"},
		// Programs that change the host.
		{[]string{"rm", "-rf", "/"}, "not known"},
		{[]string{"reboot"}, "not known"},
		{[]string{"blkdiscard", "/dev/sda"}, "not known"},
		{[]string{"efibootmgr", "-B", "-b", "0001"}, "not known"},
		{[]string{"wipefs", "-a", "/dev/sda"}, "not known"},
		{[]string{"mkfs.ext4", "/dev/sda1"}, "not known"},
		{[]string{"dd", "if=/dev/zero", "of=/dev/sda"}, "not known"},
		{[]string{"tee", "/etc/passwd"}, "not known"},
		{[]string{"touch", "/x"}, "not known"},
		{[]string{"mount", "/dev/sda1", "/mnt"}, "not known"},
		{[]string{"systemctl", "reboot"}, "not known"},
		{[]string{"kexec", "-e"}, "not known"},
		{[]string{"modprobe", "zfs"}, "not known"},
		{[]string{"date", "-s", "2000-01-01"}, "not known"},
		{[]string{"curl", "-o", "/x", "http://example.com"}, "not known"},
		{[]string{"tar", "-tzf", "x.tgz"}, "not known"},
		{[]string{"kill", "1"}, "not known"},
		// parted writes even when it prints.
		{[]string{"parted", "-s", "/dev/sda", "print"}, "parted may write"},
		{[]string{"parted", "-l"}, "parted may write"},
		// Interpreters.
		{[]string{"sh", "-c", "true"}, "interpreter"},
		{[]string{"bash", "-c", "cat /etc/hosts"}, "interpreter"},
		{[]string{"awk", `BEGIN{system("reboot")}`}, "interpreter"},
		{[]string{"sed", "-i", "s/a/b/", "/etc/hosts"}, "interpreter"},
		{[]string{"perl", "-e", "unlink '/x'"}, "interpreter"},
		{[]string{"python3", "-c", "import os"}, "interpreter"},
		{[]string{"busybox", "rm", "/x"}, "interpreter"},
		{[]string{"busybox", "cat", "/etc/hosts"}, "interpreter"},
		{[]string{"jq", "-n", "input"}, "interpreter"},
		// Wrappers that run another program, however harmless.
		{[]string{"env", "rm", "/x"}, "runs another program"},
		{[]string{"env", "cat", "/etc/hosts"}, "runs another program"},
		{[]string{"xargs", "rm"}, "runs another program"},
		{[]string{"nice", "-n", "10", "cat", "/x"}, "runs another program"},
		{[]string{"timeout", "5", "reboot"}, "runs another program"},
		{[]string{"nohup", "reboot"}, "runs another program"},
		{[]string{"sudo", "cat", "/etc/shadow"}, "runs another program"},
		{[]string{"chroot", "/mnt", "cat", "/etc/hosts"}, "runs another program"},
		{[]string{"nsenter", "-t", "1", "-m", "reboot"}, "runs another program"},
		{[]string{"systemd-run", "reboot"}, "runs another program"},
		// Paths: only system program directories name a known program.
		{[]string{"/usr/sbin/reboot"}, "not known"},
		{[]string{"/tmp/cat", "/etc/hosts"}, "not in a system program directory"},
		{[]string{"./cat", "/etc/hosts"}, "not in a system program directory"},
		{[]string{"bin/cat"}, "not in a system program directory"},
		{[]string{"/usr/bin/../../tmp/cat"}, "not in a system program directory"},
		{[]string{"/nix/store/abc-coreutils/bin/cat", "/x"}, "not in a system program directory"},
		// find's actions.
		{[]string{"find", "/", "-delete"}, "-delete"},
		{[]string{"find", "/", "-name", "x", "-exec", "rm", "{}", ";"}, "-exec"},
		{[]string{"find", "/", "-execdir", "rm", "{}", "+"}, "-execdir"},
		{[]string{"find", "/", "-ok", "rm", "{}", ";"}, "-ok"},
		{[]string{"find", "/", "-okdir", "rm", "{}", ";"}, "-okdir"},
		{[]string{"find", "/", "-fprint", "/etc/passwd"}, "-fprint"},
		{[]string{"find", "/", "-fprint0", "/x"}, "-fprint0"},
		{[]string{"find", "/", "-fprintf", "/x", "%p"}, "-fprintf"},
		{[]string{"find", "/", "-fls", "/x"}, "-fls"},
		// ZFS: query verbs only.
		{[]string{"zpool", "create", "rpool", "/dev/sda2"}, "not a query verb"},
		{[]string{"zpool", "destroy", "rpool"}, "not a query verb"},
		{[]string{"zpool", "import", "rpool"}, "imports a pool"},
		{[]string{"zpool", "import", "-a"}, "imports a pool"},
		{[]string{"zpool", "import", "-f", "-d", "/dev", "rpool"}, "imports a pool"},
		{[]string{"zpool", "status", "-c", "upath"}, "runs scripts"},
		{[]string{"zpool"}, "no query verb"},
		{[]string{"zfs", "destroy", "-r", "rpool"}, "not a query verb"},
		{[]string{"zfs", "set", "mountpoint=/", "rpool"}, "not a query verb"},
		{[]string{"zfs", "mount", "-a"}, "not a query verb"},
		// ip: show and list only.
		{[]string{"ip", "link", "set", "eth0", "down"}, "not a show or list verb"},
		{[]string{"ip", "addr", "add", "10.0.0.1/24", "dev", "eth0"}, "not a show or list verb"},
		{[]string{"ip", "addr", "flush", "dev", "eth0"}, "not a show or list verb"},
		{[]string{"ip", "route", "del", "default"}, "not a show or list verb"},
		{[]string{"ip", "link", "get", "eth0"}, "not a show or list verb"},
		{[]string{"ip", "-batch", "/tmp/cmds"}, "not an output option"},
		{[]string{"ip", "-force", "-batch", "/tmp/cmds"}, "not an output option"},
		{[]string{"ip", "-n", "other", "link", "show"}, "not an output option"},
		{[]string{"ip", "netns", "exec", "x", "reboot"}, "not one that only shows"},
		{[]string{"ip", "monitor"}, "not one that only shows"},
		{[]string{"ip"}, "no object"},
		// Cache writes and other write options of readers.
		{[]string{"blkid", "-g"}, "writes a cache"},
		{[]string{"blkid", "-c", "/etc/blkid.tab", "/dev/sda"}, "writes a cache"},
		{[]string{"blkid", "-pc", "/x"}, "writes a cache"},
		{[]string{"blkid", "--garbage-collect"}, "writes a cache"},
		{[]string{"blkid", "--cache-file=/x"}, "writes a cache"},
		{[]string{"hostname", "evil"}, "sets the host name"},
		{[]string{"hostname", "-F", "/etc/hostname"}, "sets the host name"},
		{[]string{"hostid", "12345678"}, "no arguments"},
		{[]string{"cat", "/dev/watchdog"}, "watchdog"},
		{[]string{"cat", "/dev/watchdog0"}, "watchdog"},
		{[]string{"sgdisk", "-Z", "/dev/sda"}, "edits the partition table"},
		{[]string{"sgdisk", "-p", "-o", "/dev/sda"}, "edits the partition table"},
		{[]string{"sgdisk", "--zap-all", "/dev/sda"}, "edits the partition table"},
		{[]string{"sgdisk", "-p"}, "want one device"},
		{[]string{"udevadm", "trigger"}, "not info"},
		{[]string{"udevadm", "settle"}, "not info"},
		{[]string{"udevadm", "test-builtin", "kmod", "load", "zfs"}, "not info"},
		{[]string{"udevadm", "info", "--cleanup-db"}, "deletes the database"},
		{[]string{"udevadm", "info", "-c"}, "deletes the database"},
		{[]string{"nix-instantiate", "--eval", "-E", "1"}, "may evaluate"},
		{[]string{"nix-instantiate", "/etc/nixos/configuration.nix"}, "without --parse"},
		{[]string{"nix-instantiate", "--parse", "--add-root", "/x", "f.nix"}, "may evaluate"},
		{[]string{"unsquashfs", "-d", "/mnt", "img"}, "extracts"},
	}
	for _, tt := range tests {
		err := CheckReadOnly(Cmd{Args: tt.argv})
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("CheckReadOnly(%q) = %v, want ErrReadOnly", tt.argv, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) {
			t.Errorf("CheckReadOnly(%q) = %v, want it to say %q", tt.argv, err, tt.why)
		}
		if !IsMutating(tt.argv) {
			t.Errorf("IsMutating(%q) = false, want true", tt.argv)
		}
	}
}

func TestCheckReadOnlyEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool // allowed
	}{
		{nil, true},
		{map[string]string{"LC_ALL": "C", "LANG": "C.UTF-8", "TZ": "UTC"}, true},
		{map[string]string{"LD_PRELOAD": "/tmp/x.so"}, false},
		{map[string]string{"PATH": "/tmp"}, false},
		{map[string]string{"LC_ALL": "C", "BASH_ENV": "/tmp/x"}, false},
	}
	for _, tt := range tests {
		err := CheckReadOnly(Cmd{Args: []string{"cat", "/etc/hosts"}, Env: tt.env})
		if got := err == nil; got != tt.want {
			t.Errorf("env %v: err = %v, want allowed %v", tt.env, err, tt.want)
		}
	}
}

type recordingConn struct {
	Conn
	ran []string
}

func (c *recordingConn) Run(ctx context.Context, cmd Cmd) (Result, error) {
	c.ran = append(c.ran, cmd.Line())
	return Result{}, nil
}

func (c *recordingConn) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	c.ran = append(c.ran, "upload "+dst)
	return nil
}

func TestReadOnlyConn(t *testing.T) {
	inner := &recordingConn{}
	ro := ReadOnly(inner)
	ctx := context.Background()
	if _, err := ro.Run(ctx, Cmd{Args: []string{"find", "/", "-delete"}}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("find -delete: err = %v, want ErrReadOnly", err)
	}
	if err := ro.Upload(ctx, "/etc/hosts", strings.NewReader("x"), 0o644); !errors.Is(err, ErrReadOnly) {
		t.Errorf("upload: err = %v, want ErrReadOnly", err)
	}
	if _, err := ro.Run(ctx, Cmd{Args: []string{"cat", "--", "/etc/hosts"}}); err != nil {
		t.Errorf("cat: %v", err)
	}
	if want := []string{"cat -- /etc/hosts"}; strings.Join(inner.ran, "|") != strings.Join(want, "|") {
		t.Errorf("ran %q, want %q", inner.ran, want)
	}
}
