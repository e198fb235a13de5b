// Package hostfs reads what plans need to know of a host's files and mounts:
// stat, sha256, free space, what is mounted where, which programs it has.
// Everything here probes; nothing changes the host, except RunSHA256 which
// an Apply calls to verify what it wrote.
package hostfs

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// TargetRoot is where the installed system's file systems are mounted
// (nixos-install --root /mnt). Nothing of the installation media may sit
// under it, or it ends up in, or is unmounted with, the new system.
const TargetRoot = "/mnt"

// Under reports whether p is dir or inside it.
func Under(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// MountState is what findmnt says of a mount point.
type MountState struct {
	Mounted                bool
	Source, FSType, Target string
	// FSRoot is the directory of the file system mounted there: / for a
	// whole file system, another path for a bind mount of a directory.
	FSRoot  string
	Options []string
	// Propagation is findmnt's: shared, private, slave, unbindable, with
	// modifiers; empty where findmnt does not tell.
	Propagation string
	// MajMin is the device number of what is mounted ("8:1"), which ties a
	// mount to a block device whatever name it was mounted by.
	MajMin string
}

// Shared reports whether mount events here reach other mounts: unmounting
// under a shared bind would unmount the original too.
func (s MountState) Shared() bool {
	for _, p := range strings.Split(s.Propagation, ",") {
		if p == "shared" {
			return true
		}
	}
	return false
}

// ReadOnly reports whether the mount has the ro option.
func (s MountState) ReadOnly() bool {
	for _, o := range s.Options {
		if o == "ro" {
			return true
		}
	}
	return false
}

// InspectMount asks findmnt what is mounted exactly at target (the last
// mount there, the one that is visible).
func InspectMount(ctx context.Context, h modules.ReadOnlyHost, target string) (MountState, error) {
	mounts, err := Mounts(ctx, h)
	if err != nil {
		return MountState{}, err
	}
	return MountAt(mounts, target), nil
}

// MountAt picks what is mounted exactly at target from a list of Mounts:
// the last mount there, the one that is visible; not Mounted when none.
func MountAt(mounts []MountState, target string) MountState {
	target = path.Clean(target)
	var s MountState
	for _, m := range mounts {
		if m.Target == target {
			s = m
		}
	}
	return s
}

// MountsArgv is how Mounts asks: every mount, one line of KEY="value"
// pairs each, the one format of findmnt's that survives any character in a
// path. Each call returns a fresh slice.
func MountsArgv() []string {
	return []string{"findmnt", "-n", "-P", "-o", "TARGET,SOURCE,FSTYPE,FSROOT,OPTIONS,PROPAGATION,MAJ:MIN"}
}

// Mounts lists the host's mounts in the order they were made, as findmnt
// lists them from /proc/self/mountinfo.
func Mounts(ctx context.Context, h modules.ReadOnlyHost) ([]MountState, error) {
	res, err := h.Probe(ctx, transport.Cmd{Args: MountsArgv()})
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	return ParseMounts(res.Stdout), nil
}

// ParseMounts reads the output of MountsArgv.
func ParseMounts(out []byte) []MountState {
	var mounts []MountState
	for _, line := range strings.Split(string(out), "\n") {
		kv := parsePairs(line)
		if kv["TARGET"] == "" {
			continue
		}
		majMin := kv["MAJ:MIN"]
		if majMin == "" {
			majMin = kv["MAJ_MIN"] // util-linux 2.39 and later name it so
		}
		mounts = append(mounts, MountState{
			Mounted:     true,
			Target:      kv["TARGET"],
			Source:      kv["SOURCE"],
			FSType:      kv["FSTYPE"],
			FSRoot:      kv["FSROOT"],
			Options:     strings.Split(kv["OPTIONS"], ","),
			Propagation: kv["PROPAGATION"],
			MajMin:      majMin,
		})
	}
	return mounts
}

// parsePairs reads findmnt -P output: KEY="value" pairs, with \x escapes.
func parsePairs(line string) map[string]string {
	out := map[string]string{}
	for {
		line = strings.TrimLeft(line, " ")
		eq := strings.Index(line, `="`)
		if eq < 0 {
			return out
		}
		key := line[:eq]
		rest := line[eq+2:]
		end := strings.IndexByte(rest, '"')
		if end < 0 {
			return out
		}
		out[key] = Unescape(rest[:end])
		line = rest[end+1:]
	}
}

// Unescape undoes the \xNN escapes util-linux (lsblk, findmnt) uses for
// unsafe characters.
func Unescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			var v byte
			if _, err := fmt.Sscanf(s[i+2:i+4], "%02x", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
