// Package fetchiso is the `fetch_iso` module: it downloads a NixOS ISO on
// the host (resumable, verified by its sha256) and loop-mounts it read-only,
// as the 2015 rescue procedure does before it unpacks the ISO's store. It
// also holds the download plumbing the kexec module shares.
package fetchiso

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/fetch"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
)

// Args are the arguments of `fetch_iso`.
type Args struct {
	URL      string `yaml:"url" required:"" doc:"where to download the ISO from (http, https or ftp)"`
	SHA256   string `yaml:"sha256" doc:"the ISO's sha256, 64 hex digits; required unless checksum: false is written out"`
	Checksum bool   `yaml:"checksum" default:"true" doc:"verify the sha256; false skips the check (then an existing file is trusted as it is)"`
	Dest     string `yaml:"dest" default:"/root/nixos.iso" doc:"where the ISO goes; the rescue's /root and /tmp are small RAM disks, so a big ISO may need a disk partition (the free space is checked against the size the server announces)"`
	Mount    string `yaml:"mount" default:"/root/image" doc:"where the ISO is mounted read-only; must not be under /mnt, the installed system's root"`
	Tool     string `yaml:"tool" default:"auto" doc:"download with curl, wget, or auto (curl when the host has it)"`
}

// Spec is the `fetch_iso` module.
var Spec = modules.Spec{
	Name:    "fetch_iso",
	Summary: "Download a NixOS ISO on the host, verify its sha256 and loop-mount it read-only.",
	Args:    Args{},
	Example: `- name: Fetch the NixOS installer ISO
  fetch_iso:
    url: "{{ nixos_iso_url }}"
    sha256: "{{ nixos_iso_sha256 }}"
    dest: /root/rescue/nixos.iso
    mount: /root/image
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		if err := a.validate(); err != nil {
			return nil, err
		}
		return &module{args: a}, nil
	}),
}

func (a *Args) validate() error {
	u, err := url.Parse(a.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ftp") {
		return fmt.Errorf("url %q: want an http, https or ftp URL", a.URL)
	}
	switch {
	case a.Checksum && a.SHA256 == "":
		return errors.New(`sha256 is required: give the ISO's sha256 (from the release's .sha256 file), or write checksum: false to skip the check`)
	case !a.Checksum && a.SHA256 != "":
		return errors.New("sha256 is given but checksum: false says not to check it: drop one of them")
	case a.Checksum:
		if a.SHA256, err = hostfs.NormalizeSHA256(a.SHA256); err != nil {
			return err
		}
	}
	if err := absPath("dest", a.Dest); err != nil {
		return err
	}
	if strings.HasSuffix(a.Dest, "/") {
		return fmt.Errorf("dest %q: want a file path", a.Dest)
	}
	if err := absPath("mount", a.Mount); err != nil {
		return err
	}
	a.Dest, a.Mount = path.Clean(a.Dest), path.Clean(a.Mount)
	if a.Mount == "/" {
		return errors.New("mount: / cannot be the ISO's mount point")
	}
	if hostfs.Under(a.Mount, hostfs.TargetRoot) {
		return fmt.Errorf("mount %s is under %s, the installed system's root: choose a path outside it, such as /root/image", a.Mount, hostfs.TargetRoot)
	}
	if hostfs.Under(a.Dest, a.Mount) {
		return fmt.Errorf("dest %s is under mount %s: the ISO would be hidden by its own mount", a.Dest, a.Mount)
	}
	switch a.Tool {
	case "auto", "curl", "wget":
	default:
		return fmt.Errorf("tool %q: want auto, curl or wget", a.Tool)
	}
	return nil
}

func absPath(name, p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("%s %q: want an absolute path", name, p)
	}
	return nil
}

type module struct{ args Args }

// ExtractedMarker is the file, in mount, that says the ISO's files were
// extracted there (when the kernel could not loop-mount it) and from which
// ISO: its sha256, or its size when unverified.
const ExtractedMarker = ".nixbook-extracted"

type plan struct {
	download *fetch.Steps
	umount   *transport.Cmd
	mount    []transport.Cmd
	// extract is the fallback when the mount fails for want of kernel
	// support (no iso9660, no loop devices, as in containers).
	extract bool
	// fallback are the commands of the extraction, in the plan too: install
	// xorriso (when missing), remove the marker, extract.
	fallback extraction
	identity string // what the marker records; empty until downloaded
}

// extraction is how an ISO's files are extracted where it cannot be mounted.
type extraction struct {
	install         []transport.Cmd
	unmark, xorriso transport.Cmd
}

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	a := m.args
	d := fetch.Download{URL: a.URL, Dest: a.Dest}
	if a.Checksum {
		d.SHA256 = a.SHA256
	}
	file, err := d.Inspect(ctx, h)
	if err != nil {
		return nil, err
	}
	mnt, err := hostfs.InspectMount(ctx, h, a.Mount)
	if err != nil {
		return nil, err
	}
	haveFile := d.Complete(file)
	fromDest := false
	if mnt.Mounted {
		if fromDest, err = mountedFrom(ctx, h, mnt, a.Dest); err != nil {
			return nil, err
		}
		if !fromDest {
			return nil, fmt.Errorf("%s already has %s (%s) mounted, not %s: unmount it or choose another mount", a.Mount, mnt.Source, mnt.FSType, a.Dest)
		}
	}

	p := &plan{}
	if haveFile {
		p.identity = identity(d, file)
	}
	out := modules.Output{"dest": a.Dest, "mount": a.Mount, "url": a.URL}
	if d.SHA256 != "" {
		out["sha256"] = d.SHA256
	}
	var changes []modules.Change
	if !haveFile {
		if mnt.Mounted {
			// The mounted file is about to be replaced: the old one goes first.
			c := modules.Change{Summary: fmt.Sprintf("unmount the old ISO from %s", a.Mount)}
			cmd := c.Cmd("umount", "--", a.Mount)
			p.umount = &cmd
			changes = append(changes, c)
			mnt.Mounted = false
		}
		if d.Tool, err = fetch.FindTool(ctx, h, a.Tool); err != nil {
			return nil, err
		}
		c := modules.Change{Summary: fmt.Sprintf("download %s to %s with %s", a.URL, a.Dest, d.Tool)}
		if !a.Checksum {
			c.Summary += ", unverified (checksum: false)"
		}
		p.download = d.Plan(&c, file)
		changes = append(changes, c)
	}
	switch {
	case !mnt.Mounted:
		if haveFile {
			marker, err := h.ReadFile(ctx, path.Join(a.Mount, ExtractedMarker))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			if strings.TrimSpace(string(marker)) == p.identity {
				out["extracted"] = true
				break
			}
		}
		c := modules.Change{Summary: fmt.Sprintf("mount %s read-only at %s (where the kernel cannot loop-mount an ISO, its files are extracted there with xorriso instead)", a.Dest, a.Mount)}
		p.mount = []transport.Cmd{
			c.Cmd("mkdir", "-p", "--", a.Mount),
			c.Cmd("mount", "-o", "loop,ro", "--", a.Dest, a.Mount),
		}
		p.extract = true
		p.fallback = planExtraction(&c, a.Dest, a.Mount)
		changes = append(changes, c)
	case !mnt.ReadOnly():
		c := modules.Change{Summary: fmt.Sprintf("remount %s read-only", a.Mount)}
		p.mount = []transport.Cmd{c.Cmd("mount", "-o", "remount,ro", "--", a.Mount)}
		changes = append(changes, c)
	}
	return &modules.Plan{Changes: changes, Output: out, Data: p}, nil
}

// identity names a complete download in the extraction marker.
func identity(d fetch.Download, s fetch.FileState) string {
	if d.SHA256 != "" {
		return d.SHA256
	}
	return fmt.Sprintf("size %d", s.Size)
}

func (m *module) Apply(ctx context.Context, h modules.Host, pl *modules.Plan) (modules.Output, error) {
	p, err := modkit.PlanData[*plan](pl)
	if err != nil {
		return nil, err
	}
	out := modules.Output{}
	for k, v := range pl.Output {
		out[k] = v
	}
	if p.umount != nil {
		if _, err := h.Run(ctx, *p.umount); err != nil {
			return nil, err
		}
	}
	identity := p.identity
	if p.download != nil {
		sum, err := p.download.Run(ctx, h)
		if err != nil {
			return nil, err
		}
		if sum != "" {
			out["sha256"] = sum
			identity = sum
		} else {
			st, err := hostfs.StatFiles(ctx, h, m.args.Dest)
			if err != nil {
				return nil, err
			}
			identity = fmt.Sprintf("size %d", st[m.args.Dest].Size)
		}
	}
	for _, cmd := range p.mount {
		res, err := h.Run(ctx, cmd)
		if err == nil {
			continue
		}
		if !p.extract || !cannotLoopMount(res) {
			return nil, fmt.Errorf("mount the ISO: %w", err)
		}
		h.Log("this kernel cannot loop-mount the ISO (%s): extracting its files into %s instead", strings.Join(strings.Fields(string(res.Stderr)), " "), m.args.Mount)
		if err := m.extract(ctx, h, p.fallback, identity); err != nil {
			return nil, err
		}
		out["extracted"] = true
		break
	}
	return out, nil
}

// cannotLoopMount reports a mount that failed for want of kernel support
// rather than because of the file.
func cannotLoopMount(res transport.Result) bool {
	msg := string(res.Stderr) + string(res.Stdout)
	for _, s := range []string{"unknown filesystem type", "failed to setup loop device", "No such device", "could not find any free loop device"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// planExtraction lists in c the commands of the fallback extraction of
// iso into mount, which Apply runs only where the mount fails: they are
// part of what the plan may do.
func planExtraction(c *modules.Change, iso, mount string) extraction {
	x := extraction{
		install: []transport.Cmd{
			{Args: []string{"apt-get", "update", "-q"}},
			{Args: []string{"apt-get", "install", "-y", "-q", "xorriso"}, Env: map[string]string{"DEBIAN_FRONTEND": "noninteractive"}},
		},
		unmark:  transport.Cmd{Args: []string{"rm", "-f", "--", path.Join(mount, ExtractedMarker)}},
		xorriso: transport.Cmd{Args: []string{"xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", mount}},
	}
	for _, cmd := range append(slices.Clone(x.install), x.unmark, x.xorriso) {
		c.Commands = append(c.Commands, cmd.Line())
	}
	return x
}

// extract copies the ISO's files into the mount directory with xorriso,
// installing it first when missing, and records which ISO it was.
func (m *module) extract(ctx context.Context, h modules.Host, x extraction, identity string) error {
	a := m.args
	found, err := hostfs.LookPath(ctx, h, "xorriso")
	if err != nil {
		return err
	}
	if _, ok := found["xorriso"]; !ok {
		for _, cmd := range x.install {
			if _, err := h.Run(ctx, cmd); err != nil {
				return fmt.Errorf("install xorriso to extract the ISO: %w", err)
			}
		}
	}
	marker := path.Join(a.Mount, ExtractedMarker)
	if _, err := h.Run(ctx, x.unmark); err != nil {
		return err
	}
	progress := fetch.NewProgressLog(h.Log, 0)
	cmd := x.xorriso
	cmd.Stderr = progress
	_, err = h.Run(ctx, cmd)
	progress.Flush()
	if err != nil {
		return fmt.Errorf("extract the ISO: %w", err)
	}
	if err := h.Upload(ctx, marker, strings.NewReader(identity+"\n"), 0o444); err != nil {
		return fmt.Errorf("record the extraction: %w", err)
	}
	return nil
}

// mountedFrom reports whether the mount shows file: a loop device backed by
// it. Where sysfs does not tell (containers hide the loop devices), an ISO
// mount of a loop device is taken to be ours when the file is there.
func mountedFrom(ctx context.Context, h modules.ReadOnlyHost, mnt hostfs.MountState, file string) (bool, error) {
	if mnt.Source == file {
		return true, nil
	}
	if !strings.HasPrefix(mnt.Source, "/dev/loop") {
		return false, nil
	}
	backing, err := h.ReadFile(ctx, "/sys/block/"+path.Base(mnt.Source)+"/loop/backing_file")
	if err != nil {
		return mnt.FSType == "iso9660", nil
	}
	b := strings.TrimSuffix(strings.TrimSpace(string(backing)), " (deleted)")
	if b == file {
		return true, nil
	}
	// The file may be reached through a symbolic link.
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"readlink", "-f", "--", file}})
	if err == nil && strings.TrimSpace(string(res.Stdout)) == b {
		return true, nil
	}
	return false, nil
}
