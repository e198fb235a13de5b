package install

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/internal/netboot"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/transport"
)

type finishPlan struct {
	umounts  []transport.Cmd
	swapoffs []transport.Cmd
	exports  []transport.Cmd

	service string
	netboot *netboot.Step // nil: no OVH service, the netboot is left alone

	reboot bool
	bootID transport.Cmd
	detach transport.Cmd

	// What the root was, for the advice when the system does not come back.
	rootSource, rootFSType string
}

func under(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }

// targetMounts picks what must be unmounted before the reboot, in the order
// to unmount it (the reverse of mounting): everything mounted at or under
// root since the last mount at root itself (anything older is hidden
// beneath it and is not the installed system's), and every other mount of a
// disk or dataset mounted there (a chroot's bind copies), which would keep
// it busy.
func targetMounts(all []facts.Mount, root string) []facts.Mount {
	start := 0
	for i, m := range all {
		if m.Mountpoint == root {
			start = i
		}
	}
	sources := map[string]bool{}
	for _, m := range all[start:] {
		if under(m.Mountpoint, root) && (strings.HasPrefix(m.Device, "/dev/") || m.FSType == "zfs") {
			sources[m.Device] = true
		}
	}
	var out []facts.Mount
	for i := len(all) - 1; i >= 0; i-- {
		m := all[i]
		if under(m.Mountpoint, root) && i >= start || !under(m.Mountpoint, root) && sources[m.Device] {
			out = append(out, m)
		}
	}
	return out
}

// diskSwaps lists the swap partitions of /proc/swaps, whose first line is a
// header. The rescue and the installer run from memory, so swap on a disk
// is the installed system's. zram swap stays.
func diskSwaps(text string) []string {
	var out []string
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 2 || f[1] != "partition" {
			continue
		}
		dev := facts.UnescapeOctal(f[0])
		if strings.HasPrefix(dev, "/dev/zram") {
			continue
		}
		out = append(out, dev)
	}
	return out
}

// checkFinish plans the way from the installer to the installed system.
// alone says this stage runs on its own, after a system stage of an earlier
// task, so that what it reboots into can be checked.
func (m *module) checkFinish(ctx context.Context, h modules.ReadOnlyHost, alone bool) (*finishPlan, []modules.Change, string, error) {
	root := m.args.Root
	fp := &finishPlan{reboot: m.args.Reboot}
	var changes []modules.Change
	var notes []string

	mountsText, err := h.ReadFile(ctx, "/proc/mounts")
	if err != nil {
		return nil, nil, "", err
	}
	mounts := facts.ParseProcMounts(string(mountsText))
	for _, mt := range mounts {
		if mt.Mountpoint == root {
			fp.rootSource, fp.rootFSType = mt.Device, mt.FSType
		}
	}
	if fp.rootSource == "" {
		notes = append(notes, "nothing is mounted at "+root+" now")
	} else if alone {
		if systemProfile(ctx, h, root) == "" {
			return nil, nil, "", fmt.Errorf("no NixOS system under %s (%s has no nix/var/nix/profiles/system): run the install's system stage first; rebooting now would not boot NixOS",
				root, fp.rootSource)
		}
	}
	if targets := targetMounts(mounts, root); len(targets) > 0 {
		c := modules.Change{Summary: fmt.Sprintf("unmount %s (%d mounts)", root, len(targets))}
		for _, mt := range targets {
			fp.umounts = append(fp.umounts, c.Cmd("umount", mt.Mountpoint))
		}
		changes = append(changes, c)
	}

	swapsText, err := h.ReadFile(ctx, "/proc/swaps")
	if err != nil && !absent(err) {
		return nil, nil, "", err
	}
	if swaps := diskSwaps(string(swapsText)); len(swaps) > 0 {
		c := modules.Change{Summary: "turn off swap on " + strings.Join(swaps, ", ")}
		for _, s := range swaps {
			fp.swapoffs = append(fp.swapoffs, c.Cmd("swapoff", s))
		}
		changes = append(changes, c)
	}

	pools, err := m.pools(ctx, h, mounts)
	if err != nil {
		return nil, nil, "", err
	}
	if len(pools) > 0 {
		c := modules.Change{Summary: "export ZFS pool " + strings.Join(pools, ", ") + " so that the installed system imports it cleanly"}
		for _, p := range pools {
			fp.exports = append(fp.exports, c.Cmd("zpool", "export", p))
		}
		changes = append(changes, c)
	}

	if service := m.service(); service != "" {
		client, err := h.OVH(m.args.Endpoint)
		if err != nil {
			return nil, nil, "", err
		}
		step, err := netboot.HarddiskStep(ctx, client, netboot.ClaimOf(h, service, m.args.Inventory))
		if err != nil {
			return nil, nil, "", err
		}
		fp.service, fp.netboot = service, step
		if step.Request != nil {
			changes = append(changes, step.Change(service))
		}
	} else {
		notes = append(notes, fmt.Sprintf("no OVH service (service or %s): the netboot is left as it is", ovh.VarService))
	}

	if m.args.Reboot {
		c := modules.Change{Summary: fmt.Sprintf("reboot into the installed system and wait up to %s for it to answer SSH as NixOS, recording its new host key", m.args.Timeout)}
		if m.args.GenerateHostKey {
			c.Summary = fmt.Sprintf("pin the host key nixbook generated in known_hosts, reboot into the installed system and wait up to %s for it to answer SSH as NixOS with that key", m.args.Timeout)
		}
		fp.bootID = c.Cmd("cat", boot.IDPath)
		fp.detach = c.Cmd("sh", "-c", `nohup "$@" </dev/null >/dev/null 2>&1 &`, "sh", "sh", "-c", "sync; sleep 1; reboot")
		c.Commands = append(c.Commands,
			fmt.Sprintf("reconnect until SSH answers on a new boot, accepting the installed system's new host key (up to %s)", m.args.Timeout),
			"cat /etc/os-release   # must say ID=nixos, not the installer or the rescue")
		changes = append(changes, c)
	}
	return fp, changes, joinNotes(notes), nil
}

// pools are the ZFS pools to export: those the task names, or else every
// imported pool and every pool with a dataset mounted under root.
func (m *module) pools(ctx context.Context, h modules.ReadOnlyHost, mounts []facts.Mount) ([]string, error) {
	imported, known := m.importedPools(ctx, h)
	set := map[string]bool{}
	if len(m.args.Pools) > 0 {
		for _, p := range m.args.Pools {
			// Exporting a pool that is not imported fails: a rerun after the
			// export must not.
			if !known || imported[p] {
				set[p] = true
			}
		}
	} else {
		for p := range imported {
			set[p] = true
		}
		for _, mt := range mounts {
			if mt.FSType == "zfs" && under(mt.Mountpoint, m.args.Root) {
				pool, _, _ := strings.Cut(mt.Device, "/")
				set[pool] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// importedPools asks zpool which pools are imported; known is false when
// it cannot tell (no zpool on the host).
func (m *module) importedPools(ctx context.Context, h modules.ReadOnlyHost) (map[string]bool, bool) {
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"zpool", "list", "-H", "-o", "name"}})
	if err != nil {
		return nil, false
	}
	pools := map[string]bool{}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if p := strings.TrimSpace(line); p != "" {
			pools[p] = true
		}
	}
	return pools, true
}

func (m *module) applyFinish(ctx context.Context, h modules.Host, fp *finishPlan, out modules.Output) error {
	begin := m.clock.Now()
	steps := [][]transport.Cmd{fp.umounts, fp.swapoffs, fp.exports}
	for _, cmds := range steps {
		for _, cmd := range cmds {
			if _, err := h.Run(ctx, cmd); err != nil {
				return fmt.Errorf("%s: %w", cmd.Line(), err)
			}
		}
	}
	if fp.netboot != nil {
		client, err := h.OVHWriter(m.args.Endpoint)
		if err != nil {
			return err
		}
		if err := netboot.Apply(ctx, client, fp.service, fp.netboot); err != nil {
			return err
		}
		h.Log("netboot of %s is %s", fp.service, fp.netboot.Target)
		out["netboot"] = fp.netboot.Target.Kernel
	}
	if !fp.reboot {
		return nil
	}
	res, err := h.Run(ctx, fp.bootID)
	if err != nil {
		return fmt.Errorf("read the boot id before the reboot: %w", err)
	}
	var stale []gossh.PublicKey // nil: the new system's key is recorded when it answers
	if m.args.GenerateHostKey {
		if stale, err = m.pinHostKey(h); err != nil {
			return err
		}
	}
	// What the installer had is what the installed system must answer on.
	want6, has6 := expectIPv6(m.args.IPv6, m.args.IPv6Gateway, h.Facts())
	oldBoot := strings.TrimSpace(string(res.Stdout))
	h.Log("rebooting into the installed system from boot %s", oldBoot)
	if _, err := h.Run(ctx, fp.detach); err != nil {
		// The connection may drop before the command returns: that is the
		// reboot under way, not a failure.
		var exit *transport.ExitError
		if errors.As(err, &exit) && exit.ExitCode >= 0 || ctx.Err() != nil {
			return fmt.Errorf("reboot: %w", err)
		}
		h.Log("connection lost while starting the reboot, as expected: %v", err)
	}
	newBoot, err := boot.WaitSystem(ctx, h, boot.SystemOptions{
		OldBootID: oldBoot,
		Timeout:   m.args.Timeout.D(),
		Clock:     m.clock,
		Want:      "the installed NixOS",
		Is:        InstalledNixOS,
		StaleKeys: stale,
	})
	if err != nil {
		return m.explainWait(h, fp, err)
	}
	f := h.Facts()
	h.Log("%s runs %s on boot %s", h.Name(), describeOS(f), newBoot)
	// The reinstall is over: its disks now hold an earlier install, which a
	// later reinstall erases rather than resumes.
	for _, key := range []string{modules.MemoryReinstall, modules.MemoryDiskNames} {
		if err := h.Remember(key, ""); err != nil {
			return err
		}
	}
	out["installed"] = true
	out["rebooted"] = true
	if has6 {
		if err := verifyIPv6(ctx, h, want6, m.routes); err != nil {
			return err
		}
		out["ipv6"] = want6.addr.Addr().String()
	}
	out["os"] = describeOS(f)
	out["version"] = f.OS.VersionID
	out["hostname"] = f.Hostname
	out["elapsed"] = int(m.clock.Now().Sub(begin).Seconds())
	return nil
}

// uefiAdvice is what else keeps a UEFI server off the network: a firmware
// that finds no loader at efiBootloaderPath stops in the UEFI shell.
func uefiAdvice(h modules.Host, inv netboot.Inventory) string {
	if f := h.Facts(); f == nil || f.Firmware != "uefi" {
		return ""
	}
	return fmt.Sprintf(", or, on this UEFI server, its EFI system partitions may hold no loader at the efiBootloaderPath the OVH API names (%s; GRUB installed as removable is at %s), which leaves it in the UEFI shell",
		ovh.EFIPath("uefi", map[string]any{ovh.VarEFIBootloaderPath: inv.EFIBootloaderPath}), ovh.RemovableEFILoader)
}

// zfsAdvice is what else keeps a system whose root is on ZFS off the
// network: its initrd imports the pool, and refuses one that was not
// exported or was last used under another host id.
func zfsAdvice(fp *finishPlan) string {
	if fp.rootFSType != "zfs" {
		return ""
	}
	pool, _, _ := strings.Cut(fp.rootSource, "/")
	return fmt.Sprintf(", or its initrd may not have imported the pool %s: networking.hostId must be the host id the pool was last used under "+
		"(`zpool import` in the rescue says which), and boot.zfs.forceImportRoot = false makes any other fatal", pool)
}

// explainWait turns a failed wait into what the user can do about it.
func (m *module) explainWait(h modules.Host, fp *finishPlan, err error) error {
	var timeout *boot.TimeoutError
	var wrong *boot.WrongSystemError
	switch {
	case errors.As(err, &timeout):
		return fmt.Errorf("did not answer SSH within %s after booting the installed system. Its configuration may not bring the network up "+
			"(check the interface name, addresses and gateways in %s)%s. Boot it into the rescue system (the rescue module, or the OVH manager: "+
			"Netboot > Rescue, then restart), %s and read that boot's journal with `journalctl -D /mnt/var/log/journal -b -0` (%w)",
			m.args.Timeout, path.Join(m.args.Root, "etc/nixos"), uefiAdvice(h, m.args.Inventory)+zfsAdvice(fp), mountAdvice(fp), err)
	case errors.As(err, &wrong):
		msg := fmt.Sprintf("rebooted but %s", wrong)
		if f := h.Facts(); f.Rescue {
			if fp.netboot == nil {
				msg += fmt.Sprintf(": its netboot still says rescue; give the task a service (or the host an %s variable) so that install sets it to the disk, or set it in the OVH manager, then run again", ovh.VarService)
			} else {
				msg += fmt.Sprintf(": the netboot of %s was set to %s, yet the server booted the rescue; check it in the OVH manager and run again", fp.service, fp.netboot.Target)
			}
		} else if f.OS.VariantID == "installer" {
			msg += ": the disk did not boot and the installer came back; check the boot loader settings (boot.loader.grub.devices) and run again"
		}
		return errors.New(msg)
	}
	return fmt.Errorf("wait for the installed system: %w", err)
}

// mountAdvice says how to mount the installed root in the rescue.
func mountAdvice(fp *finishPlan) string {
	switch {
	case fp.rootFSType == "zfs":
		pool, _, _ := strings.Cut(fp.rootSource, "/")
		return fmt.Sprintf("import and mount its root (`zpool import -f -N %s && mount -t zfs %s /mnt`)", pool, fp.rootSource)
	case fp.rootSource != "":
		return fmt.Sprintf("mount its root (`mount %s /mnt`)", fp.rootSource)
	}
	return "mount its root partition on /mnt"
}
