package nixosgen

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/nixbook/nixbook/internal/facts"
)

// mount is a file system of the new system: Target is relative to root.
type mount struct {
	Device, Target, FSType string
}

// pseudoFS are kernel and helper file systems, never part of a layout.
var pseudoFS = []string{
	"proc", "sysfs", "securityfs", "cgroup", "cgroup2", "debugfs", "devpts", "devtmpfs",
	"autofs", "fusectl", "mqueue", "hugetlbfs", "pstore", "efivarfs", "binfmt_misc",
	"configfs", "bpf", "tracefs", "rpc_pipefs", "squashfs", "overlay", "nsfs",
}

// layoutMounts reads /proc/self/mounts and keeps the file systems mounted
// at or under root, as nixos-generate-config will see them: the chroot
// helpers' bind mounts of /dev, /proc, /sys and /run are left out. A later
// mount on the same target hides the earlier one.
func layoutMounts(procMounts, root string) (mounts []mount, rootMounted bool) {
	prefix := root
	if prefix == "/" {
		prefix = ""
	}
	for _, pm := range facts.ParseProcMounts(procMounts) {
		dev, target, fstype := pm.Device, pm.Mountpoint, pm.FSType
		var rel string
		switch {
		case target == root:
			rel = "/"
		case strings.HasPrefix(target, prefix+"/"):
			rel = strings.TrimPrefix(target, prefix)
		default:
			continue
		}
		if slices.Contains(pseudoFS, fstype) || helperMount(rel) || fstype == "tmpfs" && rel == "/tmp" {
			continue
		}
		mounts = slices.DeleteFunc(mounts, func(m mount) bool { return m.Target == rel })
		mounts = append(mounts, mount{Device: dev, Target: rel, FSType: fstype})
		if rel == "/" {
			rootMounted = true
		}
	}
	return mounts, rootMounted
}

func helperMount(rel string) bool {
	for _, p := range []string{"/proc", "/sys", "/dev", "/run"} {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return rel == "/nix/store"
}

// mountAt is the file system mounted exactly at target.
func mountAt(mounts []mount, target string) (mount, bool) {
	for _, m := range mounts {
		if m.Target == target {
			return m, true
		}
	}
	return mount{}, false
}

// mountHolding is the file system a path lives on: the mount with the
// longest target that contains it.
func mountHolding(mounts []mount, p string) (mount, bool) {
	var best mount
	found := false
	for _, m := range mounts {
		if (m.Target == "/" || p == m.Target || strings.HasPrefix(p, m.Target+"/")) && (!found || len(m.Target) > len(best.Target)) {
			best, found = m, true
		}
	}
	return best, found
}

// hwFileSystem is one fileSystems entry of hardware-configuration.nix.
type hwFileSystem struct {
	Target, Device, FSType string
}

var hwFileSystemEntry = regexp.MustCompile(`fileSystems\."((?:[^"\\]|\\.)*)"\s*=\s*\{\s*device\s*=\s*"((?:[^"\\]|\\.)*)";\s*fsType\s*=\s*"([^"]*)";`)

// hardwareFileSystems reads the fileSystems entries nixos-generate-config
// wrote.
func hardwareFileSystems(text string) []hwFileSystem {
	var out []hwFileSystem
	for _, m := range hwFileSystemEntry.FindAllStringSubmatch(text, -1) {
		out = append(out, hwFileSystem{Target: unquoteNix(m[1]), Device: unquoteNix(m[2]), FSType: m[3]})
	}
	return out
}

func unquoteNix(s string) string {
	return strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`).Replace(s)
}

// staleHardware says why hardware-configuration.nix no longer describes the
// layout mounted under root, or "" when it does. missing reports which of
// the by-uuid (or other /dev) devices it names do not exist.
func staleHardware(hw []hwFileSystem, mounts []mount, missing func([]string) []string) string {
	byTarget := map[string]hwFileSystem{}
	var devices []string
	for _, e := range hw {
		byTarget[e.Target] = e
		if strings.HasPrefix(e.Device, "/dev/") {
			devices = append(devices, e.Device)
		}
	}
	for _, m := range mounts {
		e, ok := byTarget[m.Target]
		switch {
		case !ok:
			return fmt.Sprintf("it has no entry for %s (%s), which is mounted now", m.Target, m.FSType)
		case e.FSType != m.FSType:
			return fmt.Sprintf("it says %s is %s, but %s is mounted there now", m.Target, e.FSType, m.FSType)
		case m.FSType == "zfs" && e.Device != m.Device:
			return fmt.Sprintf("it mounts %s at %s, but %s is mounted there now", e.Device, m.Target, m.Device)
		}
	}
	for _, e := range hw {
		if _, ok := mountAt(mounts, e.Target); !ok && !strings.HasPrefix(e.Target, "/nix/.") {
			return fmt.Sprintf("it lists %s, which is not mounted now", e.Target)
		}
	}
	if gone := missing(devices); len(gone) > 0 {
		return fmt.Sprintf("%s no longer exists", strings.Join(gone, ", "))
	}
	return ""
}

// hardwarePath is where nixos-generate-config writes under root.
func hardwarePath(root string) string { return path.Join(root, "etc/nixos/hardware-configuration.nix") }
