// Package unsquash is the `unsquash` module: it extracts the store of a
// mounted NixOS ISO (nix-store.squashfs) into the rescue root, a disk
// partition, as the 2015 rescue procedure does, because the rescue's RAM
// disk is too small for it. The free space is checked against the image's
// unpacked size first.
package unsquash

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/fetch"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
)

// MarkerName is the file in dest that records which image was extracted
// there completely, by its sha256.
const MarkerName = ".nixbook-unsquashed"

// Args are the arguments of `unsquash`.
type Args struct {
	Src    string `yaml:"src" default:"/root/image/nix-store.squashfs" doc:"the squashfs image of the store, on the mounted ISO"`
	Root   string `yaml:"root" default:"/root/rescue" doc:"the rescue root: a directory on a disk partition that gets the store and later becomes the chroot; must not be under /mnt, the installed system's root"`
	Dest   string `yaml:"dest" doc:"where the store goes; default <root>/nix/store"`
	Device string `yaml:"device" doc:"a partition to mount at root first, such as /dev/disk/by-label/nixos-rescue (the seed's 2 GB partition); empty when root is mounted already"`
}

// Spec is the `unsquash` module.
var Spec = modules.Spec{
	Name:    "unsquash",
	Summary: "Extract the NixOS ISO's nix-store.squashfs into the rescue root, checking the free space first.",
	Args:    Args{},
	Example: `- name: Unpack the ISO's store onto the rescue partition
  unsquash:
    src: /root/image/nix-store.squashfs
    root: /root/rescue
    device: /dev/disk/by-label/nixos-rescue
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		if err := a.validate(); err != nil {
			return nil, err
		}
		return &module{args: a}, nil
	}),
}

func (a *Args) validate() error {
	for _, p := range []struct{ name, value string }{{"src", a.Src}, {"root", a.Root}, {"dest", a.Dest}, {"device", a.Device}} {
		if p.value != "" && !path.IsAbs(p.value) {
			return fmt.Errorf("%s %q: want an absolute path", p.name, p.value)
		}
	}
	a.Src, a.Root = path.Clean(a.Src), path.Clean(a.Root)
	if a.Root == "/" {
		return errors.New("root: / would put the store on the rescue system itself; give the rescue partition's mount point, such as /root/rescue")
	}
	if hostfs.Under(a.Root, hostfs.TargetRoot) {
		return fmt.Errorf("root %s is under %s, the installed system's root: choose a path outside it, such as /root/rescue", a.Root, hostfs.TargetRoot)
	}
	if a.Dest == "" {
		a.Dest = path.Join(a.Root, "nix", "store")
	}
	a.Dest = path.Clean(a.Dest)
	if a.Dest == "/" || a.Dest == "/nix/store" {
		return fmt.Errorf("dest %s is the rescue system's own; extract under root", a.Dest)
	}
	return nil
}

type module struct{ args Args }

type plan struct {
	mount       []transport.Cmd
	install     []transport.Cmd
	mkdir       transport.Cmd
	extract     transport.Cmd
	srcSHA256   string // empty when src was not there at check time
	spaceProven bool   // the check ran against the final file system
}

func (m *module) marker() string { return path.Join(m.args.Dest, MarkerName) }

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	a := m.args
	p := &plan{}
	out := modules.Output{"src": a.Src, "dest": a.Dest, "root": a.Root}
	var changes []modules.Change

	// The rescue partition first: everything else is measured on it.
	rootReady := true
	if a.Device != "" {
		c, cmds, err := planRootMount(ctx, h, a.Device, a.Root)
		if err != nil {
			return nil, err
		}
		if cmds != nil {
			rootReady = false
			p.mount = cmds
			changes = append(changes, c)
		}
	}

	srcStats, err := hostfs.StatFiles(ctx, h, a.Src)
	if err != nil {
		return nil, err
	}
	srcThere := srcStats[a.Src].Type == "regular file"
	if srcThere {
		if p.srcSHA256, err = hostfs.SHA256(ctx, h, a.Src); err != nil {
			return nil, err
		}
		out["sha256"] = p.srcSHA256
	}
	done, err := m.extracted(ctx, h, p.srcSHA256)
	if err != nil {
		return nil, err
	}
	if done && rootReady {
		if !srcThere {
			return &modules.Plan{Output: out, Message: fmt.Sprintf("%s holds a complete store (%s); %s is not there to compare with", a.Dest, MarkerName, a.Src)}, nil
		}
		return &modules.Plan{Output: out}, nil
	}

	tools, err := hostfs.LookPath(ctx, h, "unsquashfs")
	if err != nil {
		return nil, err
	}
	if _, ok := tools["unsquashfs"]; !ok {
		c := modules.Change{Summary: "install squashfs-tools (unsquashfs) with apt-get"}
		env := map[string]string{"DEBIAN_FRONTEND": "noninteractive"}
		p.install = []transport.Cmd{
			c.Cmd("apt-get", "update", "-q"),
			{Args: []string{"apt-get", "install", "-y", "-q", "squashfs-tools"}, Env: env},
		}
		c.Commands = append(c.Commands, p.install[1].Line())
		changes = append(changes, c)
	}

	c := modules.Change{Summary: fmt.Sprintf("extract %s into %s", a.Src, a.Dest)}
	switch {
	case !srcThere:
		c.Summary += fmt.Sprintf(" (%s is not there yet: mount the ISO first, with fetch_iso)", a.Src)
	case p.install == nil && rootReady:
		need, err := m.checkSpace(ctx, h)
		if err != nil {
			return nil, err
		}
		p.spaceProven = true
		c.Summary += fmt.Sprintf(" (about %s, %d inodes)", hostfs.FormatBytes(need.Bytes), need.Inodes)
		out["size"] = need.Bytes
	default:
		c.Summary += " (free space checked before extracting)"
	}
	p.mkdir = c.Cmd("mkdir", "-p", "--", path.Dir(a.Dest))
	// -f: a run cut short left files behind; they are overwritten.
	p.extract = c.Cmd("unsquashfs", "-f", "-d", a.Dest, a.Src)
	c.Summary += ", then record " + MarkerName
	changes = append(changes, c)
	return &modules.Plan{Changes: changes, Output: out, Data: p}, nil
}

// extracted reports whether dest holds a complete extraction of the image
// with sum (any image when sum is unknown).
func (m *module) extracted(ctx context.Context, h modules.ReadOnlyHost, sum string) (bool, error) {
	b, err := h.ReadFile(ctx, m.marker())
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	got := strings.TrimSpace(string(b))
	return got != "" && (sum == "" || got == sum), nil
}

// planRootMount plans mounting device at root; nil commands when it is
// mounted there already. Something else at root is refused.
func planRootMount(ctx context.Context, h modules.ReadOnlyHost, device, root string) (modules.Change, []transport.Cmd, error) {
	c := modules.Change{Summary: fmt.Sprintf("mount %s at %s", device, root)}
	mnt, err := hostfs.InspectMount(ctx, h, root)
	if err != nil {
		return c, nil, err
	}
	if mnt.Mounted {
		want := resolve(ctx, h, device)
		if mnt.Source == device || mnt.Source == want || resolve(ctx, h, mnt.Source) == want {
			return c, nil, nil
		}
		return c, nil, fmt.Errorf("%s has %s mounted, not %s (%s): unmount it or choose another root", root, mnt.Source, device, want)
	}
	cmds := []transport.Cmd{c.Cmd("mkdir", "-p", "--", root), c.Cmd("mount", "--", device, root)}
	return c, cmds, nil
}

// resolve follows links such as /dev/disk/by-label/x to the device node.
func resolve(ctx context.Context, h modules.ReadOnlyHost, p string) string {
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"readlink", "-m", "--", p}})
	if err != nil {
		return p
	}
	return strings.TrimSpace(string(res.Stdout))
}

func (m *module) Apply(ctx context.Context, h modules.Host, pl *modules.Plan) (modules.Output, error) {
	p, err := modkit.PlanData[*plan](pl)
	if err != nil {
		return nil, err
	}
	a := m.args
	out := modules.Output{}
	for k, v := range pl.Output {
		out[k] = v
	}
	for _, cmd := range p.mount {
		if _, err := h.Run(ctx, cmd); err != nil {
			return nil, fmt.Errorf("mount the rescue partition: %w", err)
		}
	}
	for _, cmd := range p.install {
		if _, err := h.Run(ctx, cmd); err != nil {
			return nil, fmt.Errorf("install squashfs-tools: %w", err)
		}
	}
	sum := p.srcSHA256
	if sum == "" {
		// The ISO was mounted after the check (a dry run's check, or an
		// earlier task of this run).
		st, err := hostfs.StatFiles(ctx, h, a.Src)
		if err != nil {
			return nil, err
		}
		if st[a.Src].Type != "regular file" {
			return nil, fmt.Errorf("%s does not exist: mount the NixOS ISO first (fetch_iso)", a.Src)
		}
		if sum, err = hostfs.SHA256(ctx, h, a.Src); err != nil {
			return nil, err
		}
		out["sha256"] = sum
	}
	if !p.spaceProven {
		need, err := m.checkSpace(ctx, h)
		if err != nil {
			return nil, err
		}
		out["size"] = need.Bytes
	}
	if _, err := h.Run(ctx, p.mkdir); err != nil {
		return nil, err
	}
	progress := fetch.NewProgressLog(h.Log, 0)
	extract := p.extract
	extract.Stdout, extract.Stderr = progress, progress
	h.Log("extracting %s into %s", a.Src, a.Dest)
	_, err = h.Run(ctx, extract)
	progress.Flush()
	if err != nil {
		return nil, fmt.Errorf("extract the store: %w", err)
	}
	if err := h.Upload(ctx, m.marker(), strings.NewReader(sum+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("record the extraction: %w", err)
	}
	return out, nil
}

// Need is what an extraction takes on an ext4-like file system.
type Need struct {
	Bytes  int64
	Inodes int64
}

// checkSpace compares the image's unpacked size with the room on dest's
// file system, less what a cut-short run already put there, and fails
// with the numbers when it does not fit.
func (m *module) checkSpace(ctx context.Context, h modules.ReadOnlyHost) (Need, error) {
	a := m.args
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"unsquashfs", "-lls", a.Src}})
	if err != nil {
		return Need{}, fmt.Errorf("list %s: %w", a.Src, err)
	}
	need, err := EstimateNeed(res.Stdout)
	if err != nil {
		return Need{}, fmt.Errorf("list %s: %w", a.Src, err)
	}
	free, err := hostfs.FreeSpace(ctx, h, a.Dest)
	if err != nil {
		return Need{}, err
	}
	var used Need
	if st, err := hostfs.StatFiles(ctx, h, a.Dest); err == nil && st[a.Dest].Type == "directory" {
		used = usage(ctx, h, a.Dest)
	}
	missing := Need{Bytes: max(need.Bytes-used.Bytes, 0), Inodes: max(need.Inodes-used.Inodes, 0)}
	where := a.Root
	if !hostfs.Under(a.Dest, a.Root) {
		where = path.Dir(a.Dest)
	}
	if missing.Bytes > free.Bytes {
		want, have := formatPair(missing.Bytes, free.Bytes)
		return need, fmt.Errorf("unpacking %s requires about %s, %s has %s available: the store needs more space than the rescue system has, so put root on a disk partition (the seed's nixos-rescue) of at least %s",
			path.Base(a.Src), want, where, have, hostfs.FormatBytes(roundUpGiB(need.Bytes*11/10)))
	}
	if free.Inodes > 0 && missing.Inodes > free.Inodes {
		return need, fmt.Errorf("unpacking %s requires %d inodes, %s has %d free: make the rescue partition's file system with more inodes (mkfs.ext4 -i 8192) or bigger",
			path.Base(a.Src), missing.Inodes, where, free.Inodes)
	}
	return need, nil
}

// formatPair prints two sizes so that they read differently when they are.
func formatPair(a, b int64) (string, string) {
	fa, fb := hostfs.FormatBytes(a), hostfs.FormatBytes(b)
	if fa == fb && a != b {
		return fmt.Sprintf("%.1f MiB", float64(a)/(1<<20)), fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fa, fb
}

func roundUpGiB(n int64) int64 { return (n + 1<<30 - 1) >> 30 << 30 }

// usage is what dest holds already (du's blocks and its entries).
func usage(ctx context.Context, h modules.ReadOnlyHost, dir string) Need {
	var n Need
	if res, err := h.Probe(ctx, transport.Cmd{Args: []string{"du", "-s", "-x", "-B1", "--", dir}}); err == nil {
		if f := strings.Fields(string(res.Stdout)); len(f) > 0 {
			n.Bytes, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	if res, err := h.Probe(ctx, transport.Cmd{Args: []string{"du", "-s", "-x", "--inodes", "--", dir}}); err == nil {
		if f := strings.Fields(string(res.Stdout)); len(f) > 0 {
			n.Inodes, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return n
}

// blockSize is the allocation unit the estimate assumes: ext4's default.
const blockSize = 4096

// inlineSymlink is the longest link target ext4 keeps inside the inode.
const inlineSymlink = 59

// EstimateNeed reads `unsquashfs -lls` output and estimates what the
// extracted tree takes on ext4: every regular file rounded up to whole
// blocks, a block per directory (more for big ones) and per long symbolic
// link, and an inode per entry.
func EstimateNeed(listing []byte) (Need, error) {
	var n Need
	sc := bufio.NewScanner(bytes.NewReader(listing))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || len(f[0]) != 10 || !strings.Contains(f[1], "/") {
			continue // headers such as "Parallel unsquashfs: Using 2 processors"
		}
		n.Inodes++
		switch f[0][0] {
		case '-', 'd', 'l':
		default:
			continue // devices, fifos and sockets take only their inode
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return Need{}, fmt.Errorf("size %q in %q: %w", f[2], sc.Text(), err)
		}
		switch f[0][0] {
		case '-':
			n.Bytes += roundUp(size)
		case 'd':
			// squashfs directory sizes run close to ext4's entry sizes.
			n.Bytes += max(roundUp(size), blockSize)
		case 'l':
			if size > inlineSymlink {
				n.Bytes += blockSize
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Need{}, err
	}
	if n.Inodes == 0 {
		return Need{}, errors.New("no entries listed: not a squashfs image?")
	}
	// File system metadata (inode tables, journal) comes on top, but mkfs
	// reserves most of it before anything is written: a few percent left.
	n.Bytes += n.Bytes / 50
	return n, nil
}

func roundUp(n int64) int64 { return (n + blockSize - 1) / blockSize * blockSize }
