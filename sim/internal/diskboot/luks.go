package diskboot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/sim/internal/devtree"
)

// initrdSecrets is where the payload's nixos-install leaves the files
// boot.initrd.secrets copies into the initrd, under /boot (relative to the
// boot file system, or to a root that holds /boot).
const initrdSecrets = "nixbook-sim-initrd-secrets"

// luksVolume is a LUKS volume of the host's disks, opened at boot with a
// key the installed system's initrd holds.
type luksVolume struct {
	part    string   // sda3, as the host names it
	names   []string // every path the host has for the partition
	openers []string // the initrd paths of the keys that open it
	loop    *os.File // the volume's data segment, held open while in use
	fs      *installedFS
}

// lockedVolume is a LUKS volume no key of the initrd opens.
type lockedVolume struct {
	part string
	why  string
}

// unlockLUKS opens, as the installed system's initrd would, each LUKS
// volume of the host's disks with the keys the initrd holds (the copies
// nixos-install left on /boot), and mounts what it holds read-only for a
// look. The key check is the real cryptsetup's; the volume is the data
// segment mapped by a loop device, as this kernel has no device-mapper.
func (b Boot) unlockLUKS(ctx context.Context, mounted []*installedFS) ([]*luksVolume, []lockedVolume) {
	keys := map[string]string{} // initrd path -> the copy on the machine
	for _, m := range mounted {
		for _, dir := range []string{filepath.Join(m.mount, initrdSecrets), filepath.Join(m.mount, "boot", initrdSecrets)} {
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					rel, _ := filepath.Rel(dir, p)
					keys["/"+rel] = p
				}
				return nil
			})
		}
	}
	var opened []*luksVolume
	var locked []lockedVolume
	for _, d := range b.Disks {
		parts, err := devtree.Partitions(d.Loop)
		if err != nil {
			continue
		}
		for _, p := range parts {
			props := devtree.Probe(ctx, p.MachinePath)
			if props["ID_FS_TYPE"] != "crypto_LUKS" {
				continue
			}
			v := &luksVolume{part: d.PartName(p.Number), names: partitionNames(d, p.Number, props)}
			for _, dest := range slices.Sorted(maps.Keys(keys)) {
				if exec.CommandContext(ctx, "cryptsetup", "open", "--test-passphrase", "--key-file", keys[dest], p.MachinePath).Run() == nil {
					v.openers = append(v.openers, dest)
				}
			}
			if len(v.openers) == 0 {
				why := fmt.Sprintf("no key in the initrd opens the LUKS volume on /dev/%s: the initrd waits for its passphrase on the console", v.part)
				if _, err := exec.LookPath("cryptsetup"); err != nil {
					why = "cryptsetup is not installed on the machine (apt-get install cryptsetup-bin): the LUKS volume on /dev/" + v.part + " cannot be looked into"
				}
				locked = append(locked, lockedVolume{part: v.part, why: why})
				continue
			}
			if err := b.mapVolume(ctx, v, p.MachinePath); err != nil {
				locked = append(locked, lockedVolume{part: v.part, why: fmt.Sprintf("the LUKS volume on /dev/%s: %v", v.part, err)})
				continue
			}
			opened = append(opened, v)
		}
	}
	return opened, locked
}

// partitionNames are the paths of a host's partition: its node and the
// /dev/disk links udev makes for it.
func partitionNames(d *devtree.Disk, n int, props map[string]string) []string {
	names := []string{"/dev/" + d.PartName(n), fmt.Sprintf("%s-part%d", d.ByIDPath(), n)}
	for key, dir := range map[string]string{"ID_FS_UUID": "by-uuid", "ID_PART_ENTRY_UUID": "by-partuuid", "ID_PART_ENTRY_NAME": "by-partlabel"} {
		if v := props[key]; v != "" {
			names = append(names, "/dev/disk/"+dir+"/"+v)
		}
	}
	sort.Strings(names)
	return names
}

// mapVolume maps the volume's data segment with a loop device that clears
// itself once unused, holds it open, and mounts it read-only for a look.
func (b Boot) mapVolume(ctx context.Context, v *luksVolume, dev string) error {
	out, err := exec.CommandContext(ctx, "cryptsetup", "luksDump", "--dump-json-metadata", dev).Output()
	if err != nil {
		return fmt.Errorf("read its LUKS2 header: %w", err)
	}
	var meta struct {
		Segments map[string]struct {
			Offset string `json:"offset"`
		} `json:"segments"`
	}
	if err := json.Unmarshal(out, &meta); err != nil {
		return fmt.Errorf("read its LUKS2 header: %w", err)
	}
	offset, err := strconv.ParseUint(meta.Segments["0"].Offset, 10, 64)
	if err != nil {
		return fmt.Errorf("its LUKS2 header has no data segment: %w", err)
	}
	loop, err := mapSegment(dev, offset)
	if err != nil {
		return err
	}
	v.loop = loop
	fstype := devtree.Probe(ctx, loop.Name())["ID_FS_TYPE"]
	if !mountable(fstype) {
		return fmt.Errorf("it holds %q, no file system the machine mounts", fstype)
	}
	m := &installedFS{device: loop.Name(), name: v.part, fstype: fstype, mount: filepath.Join(b.Dir, "inspect", v.part+"-luks")}
	if err := os.MkdirAll(m.mount, 0o700); err != nil {
		return err
	}
	if err := unix.Mount(m.device, m.mount, fstype, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount what it holds: %w", err)
	}
	v.fs = m
	return nil
}

// mapSegment maps dev from offset with a free loop device that the kernel
// clears once nothing holds it (the returned file, a mount): a fleet that
// dies leaves none behind.
func mapSegment(dev string, offset uint64) (*os.File, error) {
	backing, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	for range 10 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("find a free loop device: %w", err)
		}
		loop, err := os.OpenFile(fmt.Sprintf("/dev/loop%d", n), os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Info: unix.LoopInfo64{Offset: offset, Flags: unix.LO_FLAGS_AUTOCLEAR}}
		err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		if err == nil {
			return loop, nil
		}
		loop.Close()
		if !errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("map the volume: %w", err)
		}
	}
	return nil, errors.New("map the volume: every free loop device was taken meanwhile")
}

// luksReasons says why the initrd of the installed system would not open
// the volume its root lies in: no boot.initrd.luks.devices entry names the
// partition, or the entry's keyFile is no key that opens it.
func luksReasons(raw map[string]any, v *luksVolume) []string {
	devices := attrs(attrs(attrs(attrs(raw, "boot"), "initrd"), "luks"), "devices")
	for _, name := range slices.Sorted(maps.Keys(devices)) {
		entry := attrs(devices, name)
		device, _ := entry["device"].(string)
		if !slices.Contains(v.names, device) {
			continue
		}
		keyFile, _ := entry["keyFile"].(string)
		switch {
		case keyFile == "":
			return []string{fmt.Sprintf("the root is in the LUKS volume on /dev/%s and boot.initrd.luks.devices.%s has no keyFile: the initrd waits for its passphrase on the console", v.part, name)}
		case !slices.Contains(v.openers, keyFile):
			return []string{fmt.Sprintf("the root is in the LUKS volume on /dev/%s and boot.initrd.luks.devices.%s.keyFile %s is no key of the initrd (boot.initrd.secrets) that opens it: the initrd waits for its passphrase on the console", v.part, name, keyFile)}
		}
		return nil
	}
	return []string{fmt.Sprintf("the root is in the LUKS volume on /dev/%s and no boot.initrd.luks.devices entry names it (%s): the initrd never opens it and finds no root", v.part, strings.Join(v.names, ", "))}
}

func attrs(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}
