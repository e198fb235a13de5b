// Package sim runs a simulated fleet of OVH/Kimsufi dedicated servers on one
// Linux machine, to rehearse reinstalls on: each host is a network, mount,
// UTS and PID namespace with its own /dev holding only its own loop-backed
// disks, a real OpenSSH server, and boot modes (rescue, installer, disk, off)
// driven by an OVH API emulator and by the simulator's own reboot, kexec and
// udevadm inside the host. Everything made on the machine is recorded in the
// fleet directory's state.json so Down removes exactly that.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nixbook/nixbook/sim/hostinit"
	"github.com/nixbook/nixbook/sim/internal/devcgroup"
	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/internal/hostnet"
	"github.com/nixbook/nixbook/sim/internal/nvram"
	"github.com/nixbook/nixbook/sim/internal/swaps"
	"github.com/nixbook/nixbook/sim/ovhapi"
	"github.com/nixbook/nixbook/sim/payload"
	"github.com/nixbook/nixbook/sim/simstate"
)

// Config describes a fleet.
type Config struct {
	// Dir holds the fleet's files: fleet.yml, ovh.conf, the client key, the
	// disk images, logs and state.json.
	Dir string
	// Hosts is the number of servers, ks1 to ksN.
	Hosts int
	// Subnet is the fleet's IPv4 /24; empty picks a free one (203.0.113.0/24,
	// 198.51.100.0/24, 192.0.2.0/24, then 198.18.0.0/15), so that fleets of
	// concurrent tests do not collide. Subnet6 is the range the hosts' IPv6
	// /64s come from (default derived from Subnet).
	Subnet, Subnet6 string
	// BootDelay is how long a reboot takes (default 2s).
	BootDelay time.Duration
	// Overrides change hosts from the defaults.
	Overrides *Overrides
	// Helper is a binary that calls hostinit.Dispatch first thing; it becomes
	// every host's init and its reboot, kexec and udevadm. Default: this
	// executable.
	Helper string
	// Logf receives progress and problems; nil for none.
	Logf func(format string, args ...any)
	// Parallel is how many hosts are built at once (default 8).
	Parallel int
	// Timings of the API's reboot tasks (default 0.5s init, 0.5s todo, 1s
	// doing); Flavour is the API's flavour, "kimsufi" (default) or "ovh";
	// APIAddr where it listens (default 127.0.0.1 on a free port).
	Timings ovhapi.Timings
	Flavour string
	APIAddr string
	// CalmAPI turns off the API's bad day (ovhapi.BadDay, the default);
	// Overrides.API changes it further.
	CalmAPI bool
	// Payload builds (or takes from PayloadCache, default the user's cache
	// directory) the NixOS ISO and kexec tarball and serves them on the
	// bridge; the installer mode then runs the payload's installer.
	// NixOSVersion is its release (default 24.05).
	Payload      bool
	PayloadCache string
	NixOSVersion string

	// hooks let tests hold the fleet where races happen; nil otherwise.
	hooks *testHooks
}

// testHooks are called at moments a test needs to hold or look at.
type testHooks struct {
	// initStarted: a host's init runs (PID pid on the machine) but has not
	// been handed its config, so it has built nothing yet.
	initStarted func(h *Host, pid int)
	// downCleaned: Down has removed the fleet's record and files, and is
	// not done yet.
	downCleaned func()
}

// Fleet is a running simulated fleet.
type Fleet struct {
	cfg    Config
	dir    string
	plan   hostnet.Plan
	state  *simstate.State
	helper string
	hosts  []*Host
	byName map[string]*Host

	clientKeyFile string
	clientKey     KeyPair

	sockDir    string
	emu        *ovhapi.Emulator
	creds      Credentials
	loops      *devtree.MachineLoops // the machine's loop devices, as the hosts see them
	nodes      *devtree.NodeWatch    // writes to the hosts' disk nodes; nil: none seen
	reaper     *exec.Cmd
	reaperIn   io.WriteCloser
	payload    *payload.Payload
	payloadURL string
	// payloadVars are the payload's inventory variables, in order.
	payloadVars [][2]string
	// vms is what the fleet's vm hosts share; nil without one.
	vms *vmFleet

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	netboot func(h *Host) (bootRequest, bool) // what the API's netboot says a host boots
	extras  []func(context.Context) error     // run by Down before the record is cleaned
	downed  bool
}

// ClientKeyName is the client key's file name in the fleet directory.
const ClientKeyName = "id_ed25519"

// Up builds and boots a fleet. It first clears whatever a crashed fleet left
// in the same directory. On error, everything made so far is removed.
func Up(ctx context.Context, cfg Config) (f *Fleet, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("a fleet needs a directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("a simulated fleet needs root (namespaces, loop devices, a bridge)")
	}
	if err := Cleanup(ctx, dir); err != nil {
		// The dead fleet's reaper may be removing the same things: once more.
		time.Sleep(time.Second)
		if err := Cleanup(ctx, dir); err != nil {
			return nil, fmt.Errorf("clear what a previous fleet left in %s: %w", dir, err)
		}
	}
	var built *payload.Payload
	if cfg.Payload {
		if built, err = buildPayload(ctx, cfg); err != nil {
			return nil, err
		}
	}
	// Fleets of other directories (other tests, other users) pick subnets
	// and make bridges too: one at a time.
	unlock, err := hostnet.LockMachine()
	if err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	p, err := hostnet.Choose(ctx, dir, cfg.Subnet, cfg.Subnet6)
	if err != nil {
		return nil, err
	}
	if cfg.BootDelay == 0 {
		cfg.BootDelay = DefaultBootDelay
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	specs, err := hostSpecs(cfg.Hosts, p, cfg.BootDelay, cfg.Overrides)
	if err != nil {
		return nil, err
	}
	helper := cfg.Helper
	if helper == "" {
		if helper, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if helper, err = filepath.Abs(helper); err != nil {
		return nil, err
	}
	created := false
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	state, err := simstate.Open(dir)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.Background())
	f = &Fleet{
		cfg: cfg, dir: dir, plan: p, state: state, helper: helper,
		byName: map[string]*Host{}, ctx: fctx, cancel: cancel,
		sockDir: filepath.Join("/run/nixbook-sim", p.ID),
		loops:   devtree.NewMachineLoops(),
	}
	defer func() {
		if err != nil {
			_ = f.Down(context.Background())
		}
	}()
	if f.nodes, err = devtree.NewNodeWatch(); err != nil {
		// Without it, every settle and every change of an image's time probes.
		f.logf("%v: the hosts' disks are probed at every settle", err)
		f.nodes, err = nil, nil
	}
	owner := randomKey(16)
	if err := state.Update(func(r *simstate.Record) { r.FleetID, r.Owner = p.ID, owner }); err != nil {
		return f, err
	}
	if err := f.startReaper(owner); err != nil {
		return f, err
	}
	if created {
		if err := state.Add(simstate.Dirs, dir); err != nil {
			return f, err
		}
	}
	if err := f.mkdirs(dir, filepath.Join(dir, "hosts"), filepath.Join(dir, "disks"), "/run/nixbook-sim", f.sockDir); err != nil {
		return f, err
	}
	if err := f.writeClientKey(); err != nil {
		return f, err
	}
	if err := f.makeBridge(ctx); err != nil {
		return f, err
	}
	unlock()
	locked = false
	if err := f.startDHCP(ctx, specs); err != nil {
		return f, err
	}
	if built != nil {
		if err := f.servePayload(ctx, built); err != nil {
			return f, err
		}
	}
	if err := f.prepareVMs(ctx, specs, built); err != nil {
		return f, err
	}
	for _, s := range specs {
		h := &Host{
			f: f, spec: s, veth: p.VethName(s.Index),
			link: hostnet.Link{Host: s.Name, Netns: p.NetnsName(s.Name), Gateway4: p.GW4, DHCPDir: filepath.Join(dir, "dhcp")},
			v4:   p.HostV4(s.Index), v6: p.HostV6(s.Index), nic: s.NIC,
			dir:     filepath.Join(dir, "hosts", s.Name),
			socket:  filepath.Join(f.sockDir, s.Name+".sock"),
			service: serviceName(p, s.Index),
			mode:    ModeOff,
			faults:  map[string]bool{},
		}
		for _, fault := range s.Faults {
			h.faults[fault] = true
		}
		h.devs = devtree.New(devtree.Config{Host: s.Name, ReorderDisks: s.ReorderDisks, Loops: f.loops, Nodes: f.nodes, Logf: f.logf})
		h.swap = swaps.New(swapHost{h})
		if s.UEFI() {
			h.nvram = nvram.New()
		}
		f.hosts = append(f.hosts, h)
		f.byName[s.Name] = h
	}
	if err := f.startAPI(ctx); err != nil {
		return f, err
	}
	// Every disk of the fleet first: a host that booted before another's
	// disks were attached could be let use their loop devices as free
	// ones until its next look at the machine's loop devices.
	for _, step := range []func(context.Context, *Host) error{f.makeDisks, f.buildHost} {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(cfg.Parallel)
		for _, h := range f.hosts {
			g.Go(func() error {
				if err := step(gctx, h); err != nil {
					return fmt.Errorf("%s: %w", h.spec.Name, err)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return f, err
		}
	}
	for _, h := range f.hosts {
		if h.vm == nil {
			f.goBackground(h.devs.Watch)
		}
	}
	if err := f.writeInventory(); err != nil {
		return f, err
	}
	return f, nil
}

// serviceName is a host's OVH service name, shaped like the real ones.
func serviceName(p hostnet.Plan, i int) string {
	b := p.Subnet.Addr().As4()
	return fmt.Sprintf("ns%d.ip-%d-%d-%d.eu", 3100000+i, b[0], b[1], b[2])
}

func (f *Fleet) mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := f.state.Add(simstate.Dirs, d); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a file of the fleet and records it.
func (f *Fleet) writeFile(path string, data []byte, mode os.FileMode) error {
	if err := f.state.Add(simstate.Files, path); err != nil {
		return err
	}
	return os.WriteFile(path, data, mode)
}

func (f *Fleet) writeClientKey() error {
	key, err := newKeyPair("nixbook-sim@" + f.plan.ID)
	if err != nil {
		return err
	}
	f.clientKey = key
	f.clientKeyFile = filepath.Join(f.dir, ClientKeyName)
	if err := f.writeFile(f.clientKeyFile, []byte(key.Private), 0o600); err != nil {
		return err
	}
	return f.writeFile(f.clientKeyFile+".pub", []byte(key.Public), 0o644)
}

// makeBridge creates the fleet's bridge: the hosts' gateway, at .254 and at
// the IPv6 gateway outside every host's /64.
func (f *Fleet) makeBridge(ctx context.Context) error {
	p := f.plan
	if hostnet.LinkExists(p.Bridge) {
		return fmt.Errorf("bridge %s already exists: another fleet uses %s? run `nixbook-sim down --dir` there", p.Bridge, f.dir)
	}
	if err := f.state.Add(simstate.Bridges, p.Bridge); err != nil {
		return err
	}
	return hostnet.IP(ctx, "",
		"link add "+p.Bridge+" type bridge forward_delay 0 stp_state 0",
		"addr add "+p.GW4.String()+"/24 dev "+p.Bridge,
		"addr add "+p.GW6.String()+"/128 dev "+p.Bridge+" nodad",
		"link set dev "+p.Bridge+" up",
		"route add "+p.Prefix6.String()+" dev "+p.Bridge,
	)
}

// makeDisks makes a namespace host's disks: their images, attached to
// loop devices.
func (f *Fleet) makeDisks(ctx context.Context, h *Host) error {
	s := h.spec
	if s.Kind == KindVM {
		return nil
	}
	if err := f.mkdirs(h.dir, filepath.Join(h.dir, "stage")); err != nil {
		return err
	}
	if err := f.state.Add(simstate.Files, filepath.Join(h.dir, "console.log")); err != nil {
		return err
	}
	counts := map[string]int{}
	for i, ds := range s.Disks {
		d := &Disk{
			Name:   devtree.DiskName(ds.Kind, counts[ds.Kind]),
			Kind:   ds.Kind,
			Size:   ds.Size,
			Serial: fmt.Sprintf("NBS%s%03d%02d", strings.ToUpper(f.plan.ID), s.Index, i),
		}
		d.Controller = s.DiskController
		counts[ds.Kind]++
		d.Image = filepath.Join(f.dir, "disks", s.Name+"-"+d.Name+".img")
		if err := f.state.Add(simstate.Files, d.Image); err != nil {
			return err
		}
		if err := devtree.CreateImage(d.Image, d.Size); err != nil {
			return err
		}
		loop, err := devtree.AttachLoop(ctx, d.Image)
		if err != nil {
			return err
		}
		if err := f.state.AddLoop(loop, d.Image); err != nil {
			return err
		}
		d.Loop = loop
		f.loops.AddDisk(loop)
		h.disks = append(h.disks, d)
		if s.Data == "old-os" && i == 0 {
			if err := writeOldOS(ctx, d, f.ClientPublicKey(), s.UEFI()); err != nil {
				return fmt.Errorf("put an old OS on %s: %w", d.Name, err)
			}
		}
	}
	h.devs.SetDisks(h.disks)
	return nil
}

// buildHost makes a host's namespace, link and control socket, and boots
// it the first time.
func (f *Fleet) buildHost(ctx context.Context, h *Host) error {
	s := h.spec
	if s.Kind == KindVM {
		return f.buildVMHost(ctx, h)
	}
	netns := h.link.Netns
	if err := f.state.Add(simstate.Netns, netns); err != nil {
		return err
	}
	if err := hostnet.IP(ctx, "", "netns add "+netns); err != nil {
		return err
	}
	if err := f.state.Add(simstate.Links, h.veth); err != nil {
		return err
	}
	if err := hostnet.IP(ctx, "",
		"link add "+h.veth+" type veth peer name "+s.NIC+" netns "+netns,
		"link set dev "+h.veth+" master "+f.plan.Bridge,
		"link set dev "+h.veth+" up",
	); err != nil {
		return err
	}
	if err := hostnet.IP(ctx, netns,
		"link set dev "+s.NIC+" address "+s.MAC,
		"link set dev lo up",
	); err != nil {
		return err
	}
	cgroup := "nixbook-sim-" + f.plan.ID + "-" + s.Name
	if err := f.state.Add(simstate.Dirs, filepath.Join(devcgroup.Root, cgroup)); err != nil {
		return err
	}
	devices, err := devcgroup.New(cgroup)
	if err != nil {
		return err
	}
	h.devs.SetCgroup(devices)
	if err := f.state.Add(simstate.Files, h.socket); err != nil {
		return err
	}
	if err := h.serveControl(f.ctx); err != nil {
		return err
	}
	h.op.Lock()
	defer h.op.Unlock()
	r := bootRequest{mode: s.Mode, rescueKey: f.clientKey.Public, first: true}
	if err := h.bootLocked(ctx, r); err != nil {
		return err
	}
	return nil
}

// Hosts are the fleet's hosts, ks1 first.
func (f *Fleet) Hosts() []*Host { return f.hosts }

// Host finds a host by inventory name or OVH service name.
func (f *Fleet) Host(name string) (*Host, bool) {
	if h, ok := f.byName[name]; ok {
		return h, true
	}
	for _, h := range f.hosts {
		if h.service == name {
			return h, true
		}
	}
	return nil, false
}

// Dir is the fleet's directory.
func (f *Fleet) Dir() string { return f.dir }

// ClientKeyFile is the private key that logs in as root on every host.
func (f *Fleet) ClientKeyFile() string { return f.clientKeyFile }

// ClientPublicKey is the client key's authorized_keys line.
func (f *Fleet) ClientPublicKey() string { return strings.TrimSpace(f.clientKey.Public) }

// Gateway4 is the hosts' IPv4 gateway (the bridge).
func (f *Fleet) Gateway4() netip.Addr { return f.plan.GW4 }

// Gateway6 is the hosts' IPv6 gateway, outside every host's /64.
func (f *Fleet) Gateway6() netip.Addr { return f.plan.GW6 }

// Bridge is the name of the fleet's bridge.
func (f *Fleet) Bridge() string { return f.plan.Bridge }

// ID is the fleet's short id, which its bridge and namespaces are named after.
func (f *Fleet) ID() string { return f.plan.ID }

// Reboot reboots a host into a mode, as `nixbook-sim reboot --into` does: a
// rescue boot authorizes the fleet's client key (or the API's rescue key).
func (f *Fleet) Reboot(ctx context.Context, name string, mode Mode) error {
	h, ok := f.Host(name)
	if !ok {
		return fmt.Errorf("no host %q in the fleet", name)
	}
	r := bootRequest{mode: mode, rescueKey: f.rescueKeyFor(h)}
	switch mode {
	case ModeOff:
		h.powerOff(ctx, "powered off")
		return nil
	case ModeInstaller:
		carried, err := h.carriedFiles()
		if err != nil {
			return fmt.Errorf("%s: kexec needs a running host: %w", name, err)
		}
		r.carried = carried
	}
	h.reboot(ctx, r, -1)
	return nil
}

// rescueKeyFor is root's authorized key in a rescue boot: the one set through
// the API, else the fleet's client key.
func (f *Fleet) rescueKeyFor(h *Host) string {
	h.mu.Lock()
	key := h.rescueKey
	h.mu.Unlock()
	if f.emu != nil {
		if st, ok := f.emu.Server(h.service); ok && st.RescueSSHKey != "" {
			key = st.RescueSSHKey
		}
	}
	if key == "" {
		key = f.clientKey.Public
	}
	return key
}

// netbootRequest is what a host boots when it reboots by itself: what its
// netboot in the API says, else what it booted first.
func (f *Fleet) netbootRequest(h *Host) bootRequest {
	f.mu.Lock()
	nb := f.netboot
	f.mu.Unlock()
	if nb != nil {
		if r, ok := nb(h); ok {
			return r
		}
	}
	mode := h.spec.Mode
	if mode == ModeInstaller {
		mode = ModeRescue
	}
	return bootRequest{mode: mode, rescueKey: f.rescueKeyFor(h)}
}

// WaitSSH waits until every named host (all when none is named) answers
// with an SSH banner.
func (f *Fleet) WaitSSH(ctx context.Context, names ...string) error {
	hosts := f.hosts
	if len(names) > 0 {
		hosts = nil
		for _, n := range names {
			h, ok := f.Host(n)
			if !ok {
				return fmt.Errorf("no host %q in the fleet", n)
			}
			hosts = append(hosts, h)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, h := range hosts {
		g.Go(func() error {
			for {
				if err := sshBanner(gctx, h.sshAddr(), 2*time.Second); err == nil {
					return nil
				}
				select {
				case <-gctx.Done():
					st := h.Status(context.Background())
					return fmt.Errorf("%s does not answer SSH (%s mode): %s", h.spec.Name, st.Mode, st.Why)
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	return g.Wait()
}

// DiskSHA256 is a checksum of each of a host's disk images by disk name,
// taken after the host's writes are flushed to them.
func (f *Fleet) DiskSHA256(name string) (map[string]string, error) {
	h, ok := f.Host(name)
	if !ok {
		return nil, fmt.Errorf("no host %q in the fleet", name)
	}
	sums := map[string]string{}
	for _, d := range h.disks {
		// A vm host's disks have no loop device: QEMU writes the images.
		if d.Loop != "" {
			if err := devtree.FlushLoop(d.Loop); err != nil {
				return nil, fmt.Errorf("flush %s: %w", d.Name, err)
			}
		}
		sum, err := devtree.ImageSHA256(d.Image)
		if err != nil {
			return nil, err
		}
		sums[d.Name] = sum
	}
	return sums, nil
}

// Status reports every host.
func (f *Fleet) Status(ctx context.Context) []Status {
	out := make([]Status, len(f.hosts))
	var wg sync.WaitGroup
	for i, h := range f.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = h.Status(ctx)
		}()
	}
	wg.Wait()
	return out
}

// modeChanged tells the API what a host runs now, for changes it did not
// make itself (a kexec, a reboot from inside).
func (f *Fleet) modeChanged(h *Host, mode Mode) {
	if f.emu != nil {
		f.emu.SetMode(h.service, string(mode))
	}
}

// goBackground runs fn until the fleet goes down.
func (f *Fleet) goBackground(fn func(ctx context.Context)) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn(f.ctx)
	}()
}

func (f *Fleet) logf(format string, args ...any) {
	if f.cfg.Logf != nil {
		f.cfg.Logf(format, args...)
	}
}

// onDown registers something Down stops before it cleans the record.
func (f *Fleet) onDown(fn func(context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.extras = append(f.extras, fn)
}

// Down stops every host and removes everything the fleet made. It is safe
// to call twice.
func (f *Fleet) Down(ctx context.Context) error {
	f.mu.Lock()
	if f.downed {
		f.mu.Unlock()
		return nil
	}
	f.downed = true
	extras := f.extras
	f.mu.Unlock()
	f.cancel()
	var errs []error
	for i := len(extras) - 1; i >= 0; i-- {
		if err := extras[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, h := range f.hosts {
		h.op.Lock()
		h.stopLocked(ctx, "fleet down")
		h.op.Unlock()
		if h.server != nil {
			_ = h.server.Close()
		}
	}
	f.wg.Wait()
	if f.nodes != nil {
		f.nodes.Close()
	}
	if err := simstate.Cleanup(ctx, f.dir, 0); err != nil {
		errs = append(errs, err)
	}
	if f.cfg.hooks != nil && f.cfg.hooks.downCleaned != nil {
		f.cfg.hooks.downCleaned()
	}
	f.stopReaper()
	return errors.Join(errs...)
}

// startReaper starts the process that cleans the fleet up if this process
// dies without calling Down.
func (f *Fleet) startReaper(owner string) error {
	cmd := exec.Command(f.helper, hostinit.ReaperArg, f.dir, owner)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the fleet's reaper: %w", err)
	}
	f.reaper, f.reaperIn = cmd, in
	return nil
}

func (f *Fleet) stopReaper() {
	if f.reaper == nil {
		return
	}
	_, _ = fmt.Fprintln(f.reaperIn, hostinit.ReaperDone)
	_ = f.reaperIn.Close()
	_ = f.reaper.Wait()
	f.reaper = nil
}

// Cleanup removes what a fleet recorded in dir (a crashed one, or one whose
// process is gone), killing its processes first. Nothing recorded: nothing
// to do.
func Cleanup(ctx context.Context, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, simstate.FileName)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return simstate.Cleanup(ctx, dir, 0)
}
