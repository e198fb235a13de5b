package install

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	testAK = "TDPKJdwZwAQPwKX2"
	testAS = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk"
	testCK = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY"
	testSN = "ns1.ip-203-0-113.eu"

	configNix  = "{ imports = [ ./hardware-configuration.nix ./network.nix ]; boot.loader.grub.devices = [ \"/dev/sda\" ]; }\n"
	networkNix = "{ networking.hostName = \"ks1\"; }\n"
	hardware   = "{ fileSystems.\"/\".device = \"/dev/disk/by-label/nixos\"; }\n"
)

// startAPI serves an emulated account on loopback with the server's
// netboot at bootID (0: the disk).
func startAPI(t *testing.T, bootID int64) *ovhapi.Emulator {
	t.Helper()
	emu := ovhapi.New(ovhapi.Config{AppKey: testAK, AppSecret: testAS, ConsumerKey: testCK, Weather: ovhapi.Calm()})
	t.Cleanup(func() { emu.Close() })
	emu.AddServer(ovhapi.Server{Name: testSN, IP: "203.0.113.10", BootID: bootID})
	return emu
}

func serve(t *testing.T, emu *ovhapi.Emulator) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	endpoint, err := emu.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return endpoint
}

// withAPI gives the machine the account's variables and makes its reboots
// boot what the API's netboot says, as a real server's do.
func withAPI(t *testing.T, m *machine, emu *ovhapi.Emulator) {
	endpoint := serve(t, emu)
	for k, v := range map[string]any{
		"ovh_service": testSN, "ovh_endpoint": endpoint, "ovh_rate_limit": "1000/s burst 1000",
		"ovh_application_key": testAK, "ovh_application_secret": testAS, "ovh_consumer_key": testCK,
	} {
		m.APIVars[k] = v
	}
	m.bootTarget = func() system {
		st, _ := emu.Server(testSN)
		switch ovhapi.ModeOf(st.Boot) {
		case ovhapi.ModeRescue:
			return system{Hostname: ovhRescue.Hostname, OSRelease: ovhRescue.OSRelease, HostKey: "rescue-key-2"}
		case ovhapi.ModeDisk:
			return installedNixOS
		}
		panic("unexpected boot " + st.Boot.Kernel)
	}
}

// withConfig writes a configuration under /mnt.
func withConfig(m *machine) {
	m.files["/mnt/etc/nixos/configuration.nix"] = configNix
	m.files["/mnt/etc/nixos/network.nix"] = networkNix
	m.files["/mnt/etc/nixos/hardware-configuration.nix"] = hardware
}

// rescueLayout is the ISO path after partition, fetch_iso and chroot: the
// seed's layout on sda, the chroot on sda4 with /mnt bound into it.
func rescueLayout(m *machine) {
	m.mounts = []facts.Mount{
		{Device: "/dev/sda1", Mountpoint: "/mnt", FSType: "ext4"},
		{Device: "/dev/sda2", Mountpoint: "/mnt/home", FSType: "ext4"},
		{Device: "/dev/sda4", Mountpoint: "/root/rescue", FSType: "ext4"},
		{Device: "/dev/loop0", Mountpoint: "/root/iso", FSType: "iso9660"},
		{Device: "udev", Mountpoint: "/root/rescue/dev", FSType: "devtmpfs"},
		{Device: "proc", Mountpoint: "/root/rescue/proc", FSType: "proc"},
		{Device: "/dev/sda1", Mountpoint: "/root/rescue/mnt", FSType: "ext4"},
		{Device: "/dev/sda2", Mountpoint: "/root/rescue/mnt/home", FSType: "ext4"},
		{Device: "tmpfs", Mountpoint: "/run", FSType: "tmpfs"},
	}
	m.swaps = []string{"/dev/sda3"}
}

// zfsLayout is the kexec path: an ESP and swap on nvme, the rest a pool.
func zfsLayout(m *machine) {
	m.zpool = true
	m.pools = []string{"rpool"}
	m.mounts = []facts.Mount{
		{Device: "tmpfs", Mountpoint: "/", FSType: "tmpfs"},
		{Device: "rpool/root/nixos", Mountpoint: "/mnt", FSType: "zfs"},
		{Device: "/dev/nvme0n1p1", Mountpoint: "/mnt/boot", FSType: "vfat"},
		{Device: "rpool/home", Mountpoint: "/mnt/home", FSType: "zfs"},
		{Device: "rpool/data", Mountpoint: "/mnt/srv/data disk", FSType: "zfs"},
	}
	m.swaps = []string{"/dev/nvme0n1p2", "/dev/zram0"}
}

func testModule(t *testing.T, args string) *module {
	t.Helper()
	return testModuleFor(t, args, nil)
}

// testModuleFor builds the module for host m, as the runner does: its
// arguments with a var tag default from m's variables.
func testModuleFor(t *testing.T, args string, m *machine) *module {
	t.Helper()
	var vars map[string]any
	if m != nil {
		vars = m.APIVars
	}
	mod := moduletest.NewFor(t, Spec, args, vars).(*module)
	mod.clock = fastClock()
	return mod
}

func TestPlans(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		sys     system
		bootID  int64 // the netboot now; 0: no OVH service
		prepare func(m *machine)
	}{
		{name: "system-fresh", args: "stage: system", sys: ovhRescue, prepare: withConfig},
		{name: "system-channel-ready", args: "stage: system\ninstall_args: [--option, substituters, https://cache.nixos.org]", sys: ovhRescue, prepare: func(m *machine) {
			withConfig(m)
			m.files[channelsFile] = DefaultChannel + " nixos\n"
			m.dirs[channelDir] = true
		}},
		{name: "system-other-channel", args: "stage: system\nchannel: https://nixos.org/channels/nixos-24.11", sys: ovhRescue, prepare: func(m *machine) {
			withConfig(m)
			m.files[channelsFile] = DefaultChannel + " nixos\n"
			m.dirs[channelDir] = true
		}},
		{name: "system-done", args: "stage: system", sys: ovhRescue, prepare: func(m *machine) {
			withConfig(m)
			installed(m)
		}},
		{name: "system-config-changed", args: "stage: system", sys: ovhRescue, prepare: func(m *machine) {
			withConfig(m)
			installed(m)
			m.files["/mnt/etc/nixos/network.nix"] = "{ networking.hostName = \"ks1-renamed\"; }\n"
		}},
		{name: "system-no-config-yet", args: "stage: system", sys: ovhRescue},
		{name: "finish-ext4-sda", args: "stage: finish", sys: ovhRescue, bootID: 230242, prepare: func(m *machine) {
			rescueLayout(m)
			installed(m)
		}},
		{name: "finish-zfs-nvme-netboot-ready", args: "stage: finish\ntimeout: 30m", sys: kexecInstaller, bootID: 1, prepare: func(m *machine) {
			zfsLayout(m)
			installed(m)
		}},
		{name: "finish-named-pools", args: "stage: finish\npools: [rpool, tank]", sys: kexecInstaller, bootID: 1, prepare: func(m *machine) {
			zfsLayout(m)
			installed(m)
		}},
		{name: "finish-no-service-no-reboot", args: "stage: finish\nreboot: false", sys: ovhRescue, prepare: func(m *machine) {
			rescueLayout(m)
			installed(m)
		}},
		{name: "finish-nothing-mounted", args: "stage: finish", sys: ovhRescue, bootID: 230242},
		{name: "all-kexec-zfs", args: "", sys: kexecInstaller, bootID: 230242, prepare: func(m *machine) {
			zfsLayout(m)
			m.files["/mnt/etc/nixos/configuration.nix"] = configNix
		}},
		{name: "installed", args: "", sys: installedNixOS, bootID: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(tt.sys)
			if tt.bootID != 0 {
				withAPI(t, m, startAPI(t, tt.bootID))
			}
			if tt.prepare != nil {
				tt.prepare(m)
			}
			p, err := testModuleFor(t, tt.args, m).Check(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			got := moduletest.FormatPlan(p)
			if ep, ok := m.APIVars["ovh_endpoint"].(string); ok {
				got = strings.ReplaceAll(got, ep, "ENDPOINT")
			}
			moduletest.Golden(t, filepath.Join("testdata", tt.name+".golden"), got, *update)
			if runs := m.commands(); len(runs) != 0 {
				t.Errorf("check ran %q", runs)
			}
		})
	}
}

// installed leaves what a successful system stage leaves.
func installed(m *machine) {
	m.links["/mnt/nix/var/nix/profiles/system"] = "/nix/store/0a1b2c3d-nixos-system-ks1-24.05"
	m.files[channelsFile] = DefaultChannel + " nixos\n"
	m.dirs[channelDir] = true
	var sums []string
	res, _ := m.run(cmdOf("find", "/mnt/etc/nixos", "-type", "f"), false)
	files := strings.Fields(string(res.Stdout))
	if len(files) > 0 {
		out, _ := m.run(cmdOf(append([]string{"sha256sum", "--"}, files...)...), false)
		for _, line := range strings.Split(strings.TrimSpace(string(out.Stdout)), "\n") {
			sum, file, _ := strings.Cut(line, "  ")
			sums = append(sums, sum+"  "+strings.TrimPrefix(file, "/mnt/"))
		}
	}
	m.files["/mnt"+MarkerPath] = markerText(DefaultChannel, sums)
}

func TestInstallAndBootTheDisk(t *testing.T) {
	m := newMachine(ovhRescue)
	emu := startAPI(t, 230242)
	withAPI(t, m, emu)
	rescueLayout(m)
	withConfig(m)
	ctx := context.Background()

	// The ISO path: the system stage (in the chroot), then finish.
	system := testModuleFor(t, "stage: system", m)
	finish := testModuleFor(t, "stage: finish", m)
	for _, mod := range []*module{system, finish} {
		p, err := mod.Check(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		out, err := mod.Apply(ctx, m, p)
		if err != nil {
			t.Fatalf("%s: %v\n%s", mod.args.Stage, err, m.AllLogs())
		}
		if out["installed"] != true {
			t.Errorf("%s output %v", mod.args.Stage, out)
		}
	}
	want := []string{
		"nix-channel --add https://nixos.org/channels/nixos-26.05 nixos",
		"nix-channel --update nixos",
		"nixos-install --root /mnt --no-root-passwd",
		"mkdir -p /mnt/var/lib/nixbook",
		"umount /root/rescue/mnt/home", "umount /root/rescue/mnt", "umount /mnt/home", "umount /mnt",
		"swapoff /dev/sda3",
		"cat /proc/sys/kernel/random/boot_id",
		`sh -c 'nohup "$@" </dev/null >/dev/null 2>&1 &' sh sh -c 'sync; sleep 1; reboot'`,
	}
	if got := m.commands(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st, _ := emu.Server(testSN); st.BootID != 1 {
		t.Errorf("netboot %d, want the disk (1)", st.BootID)
	}
	if len(m.KeyChanges()) != 1 || m.KeyChanges()[0] != "rescue-key -> installed-key" {
		t.Errorf("key changes %q, want the installed system's key recorded", m.KeyChanges())
	}
	if !InstalledNixOS(m.Facts()) {
		t.Errorf("facts after the reboot: %+v", m.Facts())
	}
	if len(m.uploads) != 1 || !strings.Contains(m.files["/mnt"+MarkerPath], "configuration.nix") {
		t.Errorf("marker %q uploads %q", m.files["/mnt"+MarkerPath], m.uploads)
	}
	// A second run changes nothing.
	for _, mod := range []*module{system, finish} {
		if p, err := mod.Check(ctx, m); err != nil || p.Changed() {
			t.Errorf("%s rerun: %v %s", mod.args.Stage, err, moduletest.FormatPlan(p))
		}
	}
}

func TestRerunAfterAFailure(t *testing.T) {
	// nixos-install failed half-way: the channel is there, nothing installed.
	m := newMachine(kexecInstaller)
	emu := startAPI(t, 230242)
	withAPI(t, m, emu)
	zfsLayout(m)
	withConfig(m)
	m.installExit = 1
	m.installOut = "error: builder for '/nix/store/x-linux-6.6.drv' failed with exit code 2\n"
	mod := testModuleFor(t, "", m)
	ctx := context.Background()
	p, err := mod.Check(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mod.Apply(ctx, m, p)
	if err == nil || !strings.Contains(err.Error(), "nixos-install failed") || !strings.Contains(err.Error(), "failed with exit code 2") {
		t.Fatalf("err = %v", err)
	}
	if m.Boot() != 1 || len(m.mounts) != 5 {
		t.Fatalf("a failed install went on to unmount or reboot: boot %d, mounts %v", m.Boot(), m.mounts)
	}
	m.installExit, m.installOut = 0, "installation finished!\n"
	p, err = mod.Check(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	plan := moduletest.FormatPlan(p)
	if strings.Contains(plan, "nix-channel") || !strings.Contains(plan, "nixos-install") {
		t.Errorf("rerun plan should only install:\n%s", plan)
	}
	if _, err := mod.Apply(ctx, m, p); err != nil {
		t.Fatalf("rerun: %v\n%s", err, m.AllLogs())
	}
	if !InstalledNixOS(m.Facts()) || len(m.pools) != 0 {
		t.Errorf("facts %+v pools %v", m.Facts(), m.pools)
	}
}

func TestBootLoaderFailureStopsBeforeTheReboot(t *testing.T) {
	m := newMachine(kexecInstaller)
	withAPI(t, m, startAPI(t, 230242))
	zfsLayout(m)
	withConfig(m)
	m.installOut = "installing the GRUB 2 boot loader on /dev/sda...\nInstalling for i386-pc platform.\n" +
		"/nix/store/abc-grub-2.12/sbin/grub-install: warning: this GPT partition label contains no BIOS Boot Partition; embedding won't be possible.\n" +
		"/nix/store/abc-grub-2.12/sbin/grub-install: error: will not proceed with blocklists.\n" +
		"/nix/store/def-install-grub.pl: installation of GRUB on /dev/sda failed: Inappropriate ioctl for device\ninstallation finished!\n"
	mod := testModule(t, "")
	ctx := context.Background()
	p, err := mod.Check(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mod.Apply(ctx, m, p)
	want := "nixos-install exited 0 but its boot loader step failed, so the disk would not boot: " +
		"/nix/store/abc-grub-2.12/sbin/grub-install: error: will not proceed with blocklists.; " +
		"/nix/store/def-install-grub.pl: installation of GRUB on /dev/sda failed: Inappropriate ioctl for device; " +
		"fix boot.loader in /mnt/etc/nixos/configuration.nix and run again (nothing was rebooted)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	if m.Boot() != 1 || len(m.uploads) != 0 {
		t.Errorf("went on after a failed boot loader: boot %d, uploads %v", m.Boot(), m.uploads)
	}
	for _, c := range m.commands() {
		if strings.HasPrefix(c, "umount") || strings.HasPrefix(c, "zpool") {
			t.Errorf("ran %q after the failed boot loader", c)
		}
	}
}

func TestWaitFailures(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(m *machine, emu *ovhapi.Emulator)
		api     bool
		want    string
	}{
		{name: "never comes back", api: true, prepare: func(m *machine, _ *ovhapi.Emulator) { m.NeverBack = true },
			want: "did not answer SSH within 20m after booting the installed system. Its configuration may not bring the network up " +
				"(check the interface name, addresses and gateways in /mnt/etc/nixos), or its initrd may not have imported the pool rpool: networking.hostId must be " +
				"the host id the pool was last used under (`zpool import` in the rescue says which), and boot.zfs.forceImportRoot = false makes any other fatal. " +
				"Boot it into the rescue system (the rescue module, or the OVH manager: " +
				"Netboot > Rescue, then restart), import and mount its root (`zpool import -f -N rpool && mount -t zfs rpool/root/nixos /mnt`) and read that boot's journal with " +
				"`journalctl -D /mnt/var/log/journal -b -0` (did not answer SSH on a new boot within 20m (gave up after 20m0s"},
		{name: "a UEFI server never comes back", api: true, prepare: func(m *machine, _ *ovhapi.Emulator) { m.NeverBack = true; m.Facts().Firmware = "uefi" },
			want: "did not answer SSH within 20m after booting the installed system. Its configuration may not bring the network up " +
				"(check the interface name, addresses and gateways in /mnt/etc/nixos), or, on this UEFI server, its EFI system partitions may hold no loader " +
				`at the efiBootloaderPath the OVH API names (\EFI\BOOT\BOOTX64.EFI; GRUB installed as removable is at \EFI\BOOT\BOOTX64.EFI), which leaves it in the UEFI shell, ` +
				"or its initrd may not have imported the pool rpool"},
		{name: "no service: boots the rescue again",
			want: "rebooted but came back running Debian GNU/Linux 12 (bookworm) (hostname rescue12-customer-eu), not the installed NixOS: its netboot still says rescue; " +
				"give the task a service (or the host an ovh_service variable) so that install sets it to the disk, or set it in the OVH manager, then run again"},
		{name: "disk does not boot: the installer again", api: true, prepare: func(m *machine, _ *ovhapi.Emulator) {
			m.bootTarget = func() system {
				return system{Hostname: "nixos-installer", OSRelease: kexecInstaller.OSRelease, HostKey: "k2"}
			}
		}, want: "rebooted but came back running NixOS 22.11 (Raccoon) (hostname nixos-installer), not the installed NixOS: the disk did not boot and the installer came back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(kexecInstaller)
			emu := startAPI(t, 230242)
			if tt.api {
				withAPI(t, m, emu)
			} else {
				m.bootTarget = func() system {
					return system{Hostname: ovhRescue.Hostname, OSRelease: ovhRescue.OSRelease, HostKey: "rescue-key-2"}
				}
			}
			zfsLayout(m)
			installed(m)
			if tt.prepare != nil {
				tt.prepare(m, emu)
			}
			mod := testModule(t, "stage: finish")
			ctx := context.Background()
			p, err := mod.Check(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = mod.Apply(ctx, m, p)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant  %s…", err, tt.want)
			}
		})
	}
}

func TestFinishRefusesAnEmptyRoot(t *testing.T) {
	m := newMachine(ovhRescue)
	rescueLayout(m)
	_, err := testModule(t, "stage: finish").Check(context.Background(), m)
	want := "no NixOS system under /mnt (/dev/sda1 has no nix/var/nix/profiles/system): run the install's system stage first; rebooting now would not boot NixOS"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
}

func TestNoConfigurationAtApply(t *testing.T) {
	m := newMachine(ovhRescue)
	mod := testModule(t, "stage: system")
	p, err := mod.Check(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mod.Apply(context.Background(), m, p)
	want := "/mnt/etc/nixos/configuration.nix does not exist: write the configuration first (the nixos_config module); nothing was installed"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	if len(m.commands()) != 0 {
		t.Errorf("ran %q", m.commands())
	}
}

func TestBootLoaderErrors(t *testing.T) {
	tests := []struct {
		name, out string
		want      []string
	}{
		{name: "clean", out: "installing the boot loader...\nInstallation finished. No error reported.\ninstallation finished!\n"},
		{name: "grub warning only", out: "grub-install: warning: Attempting to install GRUB to a disk with multiple partition labels.\nInstallation finished. No error reported.\n"},
		{name: "install-grub.pl died", out: "Died at /nix/store/x-install-grub.pl line 645.\n", want: []string{"Died at /nix/store/x-install-grub.pl line 645."}},
		{name: "efi variables", out: "/nix/store/g/sbin/grub-install: error: EFI variables are not supported on this system..\n",
			want: []string{"/nix/store/g/sbin/grub-install: error: EFI variables are not supported on this system.."}},
		{name: "systemd-boot", out: "Failed to install bootloader\n", want: []string{"Failed to install bootloader"}},
		{name: "error line", out: "copying channel...\nerror: getting status of '/mnt/boot': No such file or directory\n",
			want: []string{"error: getting status of '/mnt/boot': No such file or directory"}},
	}
	for _, tt := range tests {
		if got := BootLoaderErrors(tt.out); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct{ args, wantErr string }{
		{args: ""},
		{args: "stage: finish\nreboot: false\npools: rpool"},
		{args: "stage: reboot", wantErr: `stage: want system, finish or all, got "reboot"`},
		{args: "root: /", wantErr: `root: want an absolute directory other than /, got "/"`},
		{args: "root: mnt", wantErr: `root: want an absolute directory other than /, got "mnt"`},
		{args: "channel: nixos-24.05", wantErr: `channel: want an http(s) URL such as https://nixos.org/channels/nixos-26.05, got "nixos-24.05"`},
		{args: "release: \"25.11\""},
		{args: "release: unstable"},
		{args: "release: \"26.5\"", wantErr: `release: want a NixOS release such as 26.05 (or unstable), got "26.5"`},
		{args: "release: latest", wantErr: `release: want a NixOS release such as 26.05 (or unstable), got "latest"`},
		{args: "pools: [rpool/root]", wantErr: `pools: "rpool/root" is not a pool name`},
		{args: "timeout: 0", wantErr: "timeout must be positive"},
		{args: "endpoint: moon", wantErr: `ovh: unknown endpoint "moon"`},
	}
	for _, tt := range tests {
		_, err := Spec.New(moduletest.Decoder(tt.args))
		if (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("New(%q) = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

func TestReleaseChannel(t *testing.T) {
	tests := []struct{ args, want string }{
		{args: "", want: "https://nixos.org/channels/nixos-26.05"},
		{args: `release: "25.11"`, want: "https://nixos.org/channels/nixos-25.11"},
		{args: "release: unstable", want: "https://nixos.org/channels/nixos-unstable"},
		// An explicit channel wins over the release.
		{args: "release: \"25.11\"\nchannel: https://example.org/nixos-mirror", want: "https://example.org/nixos-mirror"},
		// A template that omits the channel leaves it empty: the release decides.
		{args: "channel: \"\"", want: "https://nixos.org/channels/nixos-26.05"},
	}
	for _, tt := range tests {
		mod := testModule(t, tt.args)
		if mod.args.Channel != tt.want {
			t.Errorf("%q: channel %q, want %q", tt.args, mod.args.Channel, tt.want)
		}
	}
}

func TestTargetMounts(t *testing.T) {
	all := []facts.Mount{
		{Device: "tmpfs", Mountpoint: "/mnt", FSType: "tmpfs"},     // hidden under the root: not the system's
		{Device: "tmpfs", Mountpoint: "/mnt/old", FSType: "tmpfs"}, // hidden too
		{Device: "/dev/sda1", Mountpoint: "/mnt", FSType: "ext4"},
		{Device: "/dev/sda4", Mountpoint: "/root/rescue", FSType: "ext4"},
		{Device: "/dev/sda1", Mountpoint: "/root/rescue/mnt", FSType: "ext4"}, // a chroot's bind copy
		{Device: "/dev/sda2", Mountpoint: "/mnt/home", FSType: "ext4"},
		{Device: "tmpfs", Mountpoint: "/mnt/tmp", FSType: "tmpfs"},
		{Device: "tmpfs", Mountpoint: "/run", FSType: "tmpfs"},
		{Device: "/dev/sda2", Mountpoint: "/mnt/home", FSType: "ext4"}, // stacked twice
	}
	var got []string
	for _, m := range targetMounts(all, "/mnt") {
		got = append(got, m.Mountpoint)
	}
	want := []string{"/mnt/home", "/mnt/tmp", "/mnt/home", "/root/rescue/mnt", "/mnt"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := targetMounts([]facts.Mount{{Device: "/dev/sda2", Mountpoint: "/mnt/boot", FSType: "vfat"}}, "/mnt"); len(got) != 1 {
		t.Errorf("without a mount at root: %v", got)
	}
}

var _ modules.Module = (*module)(nil)

func TestExampleLoads(t *testing.T) {
	play := "- hosts: all\n  tasks:\n" + indent(Spec.Example, "    ")
	if _, err := playbooks.LoadBytes("example.yml", []byte(play), t.TempDir(), modules.NewRegistry(Spec)); err != nil {
		t.Fatalf("%v\n%s", err, play)
	}
}

func indent(text, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if line != "" {
			b.WriteString(prefix + line)
		}
		b.WriteString("\n")
	}
	return b.String()
}
