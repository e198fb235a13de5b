package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nixbook/nixbook/internal/clock"
	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/transport"
)

type system = moduletest.System

var (
	ovhRescue = system{Hostname: "rescue12-customer-eu", HostKey: "rescue-key",
		OSRelease: "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"}
	kexecInstaller = system{Hostname: "nixos-installer", HostKey: "rescue-key",
		OSRelease: "ID=nixos\nVARIANT_ID=installer\nVERSION_ID=\"22.11\"\nPRETTY_NAME=\"NixOS 22.11 (Raccoon)\"\n"}
	installedNixOS = system{Hostname: "ks1", HostKey: "installed-key",
		OSRelease: "ID=nixos\nVERSION_ID=\"24.05\"\nPRETTY_NAME=\"NixOS 24.05 (Uakari)\"\n"}
)

// machine is a modules.Host over a small model of a server that boots
// (moduletest.Machine): files, links, mounts, swaps, ZFS pools and the
// programs install runs, which change that model as the real ones change
// the server. A reboot boots what bootTarget says.
type machine struct {
	*moduletest.Machine

	mu          sync.Mutex
	files       map[string]string
	links       map[string]string
	dirs        map[string]bool
	mounts      []facts.Mount
	swaps       []string
	zpool       bool
	pools       []string
	installOut  string // what nixos-install prints
	installExit int
	bootTarget  func() system // what a reboot boots; nil: installedNixOS
	runs        []string
	uploads     []string
	evalOut     string // what nix eval prints (a flake's lock-out summary)
	imported    string // what nix-store --import read
}

var _ modules.Host = (*machine)(nil)

func newMachine(sys system) *machine {
	m := &machine{
		Machine: moduletest.NewMachine(sys),
		files:   map[string]string{}, links: map[string]string{}, dirs: map[string]bool{},
		installOut: "building the configuration in /mnt/etc/nixos/configuration.nix...\ninstalling the boot loader...\nInstallation finished. No error reported.\ninstallation finished!\n",
	}
	m.APIVars = map[string]any{}
	m.API = ovh.Env{RetryWait: time.Millisecond} // no ovh.conf or environment
	return m
}

func (m *machine) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	if transport.IsMutating(cmd.Args) && !(len(cmd.Args) > 1 && cmd.Args[0] == "zpool" && cmd.Args[1] == "list") {
		return transport.Result{ExitCode: -1}, fmt.Errorf("%w: %s", transport.ErrReadOnly, cmd.Line())
	}
	return m.run(cmd, false)
}

func (m *machine) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	return m.run(cmd, true)
}

func (m *machine) ReadFile(ctx context.Context, p string) ([]byte, error) {
	res, err := m.run(transport.Cmd{Args: []string{"cat", "--", p}}, false)
	if err != nil {
		if strings.Contains(string(res.Stderr), "No such file") {
			return nil, fmt.Errorf("read %s: %w", p, fs.ErrNotExist)
		}
		return nil, err
	}
	return res.Stdout, nil
}

func (m *machine) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	b, err := io.ReadAll(src)
	if err != nil {
		return err
	}
	if err := m.Up(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[path.Dir(dst)] {
		return fmt.Errorf("upload %s: no such directory", dst)
	}
	m.files[dst] = string(b)
	m.uploads = append(m.uploads, dst)
	return nil
}

func fail(cmd transport.Cmd, code int, stderr string) (transport.Result, error) {
	res := transport.Result{ExitCode: code, Stderr: []byte(stderr)}
	return res, transport.NewExitError(cmd, res)
}

func (m *machine) run(cmd transport.Cmd, mutate bool) (transport.Result, error) {
	if err := m.Up(); err != nil {
		return transport.Result{ExitCode: -1}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if mutate {
		m.runs = append(m.runs, cmd.Line())
	}
	a := cmd.Args
	ok := func(out string) (transport.Result, error) { return transport.Result{Stdout: []byte(out)}, nil }
	switch {
	case a[0] == "cat":
		p := a[len(a)-1]
		switch p {
		case "/proc/mounts":
			var b strings.Builder
			for _, mt := range m.mounts {
				fmt.Fprintf(&b, "%s %s %s rw 0 0\n", escape(mt.Device), escape(mt.Mountpoint), mt.FSType)
			}
			return ok(b.String())
		case "/proc/swaps":
			b := "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
			for _, s := range m.swaps {
				typ := "partition"
				b += fmt.Sprintf("%s\t%s\t2097148\t0\t-2\n", s, typ)
			}
			return ok(b)
		}
		if data, found := m.SystemFile(p); found {
			return ok(string(data))
		}
		if f, found := m.files[p]; found {
			return ok(f)
		}
		return fail(cmd, 1, "cat: "+p+": No such file or directory")
	case a[0] == "test" && a[1] == "-e":
		if _, f := m.files[a[2]]; f || m.dirs[a[2]] || m.links[a[2]] != "" {
			return ok("")
		}
		return fail(cmd, 1, "")
	case a[0] == "readlink":
		if l, found := m.links[a[1]]; found {
			return ok(l + "\n")
		}
		return fail(cmd, 1, "")
	case a[0] == "find":
		var out []string
		for p := range m.files {
			if strings.HasPrefix(p, a[1]+"/") {
				out = append(out, p)
			}
		}
		sort.Strings(out)
		if len(out) == 0 {
			return ok("")
		}
		return ok(strings.Join(out, "\n") + "\n")
	case a[0] == "sha256sum":
		var b strings.Builder
		for _, p := range a[2:] {
			sum := sha256.Sum256([]byte(m.files[p]))
			fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), p)
		}
		return ok(b.String())
	case a[0] == "zpool" && !m.zpool:
		return fail(cmd, 127, "sh: 1: zpool: not found")
	case a[0] == "zpool" && a[1] == "list":
		if len(m.pools) == 0 {
			return ok("")
		}
		return ok(strings.Join(m.pools, "\n") + "\n")
	case a[0] == "zpool" && a[1] == "export":
		for i, p := range m.pools {
			if p == a[2] {
				for _, mt := range m.mounts {
					if strings.HasPrefix(mt.Device, p+"/") {
						return fail(cmd, 1, "cannot unmount '"+mt.Mountpoint+"': pool or dataset is busy")
					}
				}
				m.pools = append(m.pools[:i], m.pools[i+1:]...)
				return ok("")
			}
		}
		return fail(cmd, 1, "cannot open '"+a[2]+"': no such pool")
	case a[0] == "nix-channel" && a[1] == "--add":
		m.files["/root/.nix-channels"] = a[2] + " " + a[3] + "\n"
		return ok("")
	case a[0] == "nix-channel" && a[1] == "--update":
		m.dirs[channelDir] = true
		return ok("unpacking channels...\n")
	case a[0] == "nixos-install":
		if m.installExit != 0 {
			return fail(cmd, m.installExit, m.installOut)
		}
		root := a[2]
		m.links[root+"/nix/var/nix/profiles/system"] = "/nix/store/0a1b2c3d-nixos-system-ks1-24.05"
		return ok(m.installOut)
	case a[0] == "mkdir":
		m.dirs[a[2]] = true
		return ok("")
	case a[0] == "mv":
		from, to := a[len(a)-2], a[len(a)-1]
		f, found := m.files[from]
		if !found || !m.dirs[path.Dir(to)] {
			return fail(cmd, 1, "mv: cannot move '"+from+"'")
		}
		delete(m.files, from)
		m.files[to] = f
		return ok("")
	case a[0] == "chown" || a[0] == "chmod":
		return ok("")
	case a[0] == "ln":
		m.links[a[len(a)-1]] = a[len(a)-2]
		return ok("")
	case a[0] == "nix" && len(a) > 3 && a[3] == "eval":
		return ok(m.evalOut)
	case a[0] == "nix-store" && a[len(a)-1] == "--import":
		if cmd.Stdin != nil {
			data, _ := io.ReadAll(cmd.Stdin)
			m.imported += string(data)
		}
		return ok("")
	case a[0] == "umount":
		for i := len(m.mounts) - 1; i >= 0; i-- {
			if m.mounts[i].Mountpoint == a[1] {
				for _, other := range m.mounts[i+1:] {
					if strings.HasPrefix(other.Mountpoint, a[1]+"/") {
						return fail(cmd, 32, "umount: "+a[1]+": target is busy.")
					}
				}
				m.mounts = append(m.mounts[:i], m.mounts[i+1:]...)
				return ok("")
			}
		}
		return fail(cmd, 32, "umount: "+a[1]+": not mounted.")
	case a[0] == "swapoff":
		for i, s := range m.swaps {
			if s == a[1] {
				m.swaps = append(m.swaps[:i], m.swaps[i+1:]...)
				return ok("")
			}
		}
		return fail(cmd, 255, "swapoff: "+a[1]+": swapoff failed: Invalid argument")
	case a[0] == "sh" && strings.Contains(strings.Join(a, " "), "reboot"):
		next := installedNixOS
		if m.bootTarget != nil {
			next = m.bootTarget()
		}
		m.Reboot(next)
		m.mounts, m.swaps, m.pools = nil, nil, nil
		return ok("")
	}
	return fail(cmd, 127, "fake machine: no such program: "+cmd.Line())
}

func escape(s string) string { return strings.ReplaceAll(s, " ", `\040`) }

func (m *machine) commands() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.runs...)
}

// fastClock is a clock whose pauses pass at once.
func fastClock() clock.Clock {
	c := moduletest.NewClock()
	return c.Time()
}

func cmdOf(args ...string) transport.Cmd { return transport.Cmd{Args: args} }
