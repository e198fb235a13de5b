package payload

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim/nixeval"
)

// unpack lays the ISO's store out as the 2015 procedure does: unsquashfs
// into <root>/nix/store, the FHS directories, sandbox off, and the init
// patched to exec bash instead of systemd.
func unpack(t *testing.T, p *Payload) (root, init string) {
	t.Helper()
	root = t.TempDir()
	squashfs := filepath.Join(t.TempDir(), "nix-store.squashfs")
	run(t, "xorriso", "-osirrox", "on", "-indev", p.ISO.Path, "-extract", "/nix-store.squashfs", squashfs)
	if err := os.MkdirAll(filepath.Join(root, "nix"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "unsquashfs", "-q", "-d", filepath.Join(root, "nix", "store"), squashfs)
	for _, d := range []string{"etc", "dev", "proc", "sys", "tmp", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := `cd "$1"
INIT=$(find . -type f -path '*nixos*/init')
BASH=$(find . -type f -path '*/bin/bash' | tail -n 1)
find . -type f -path '*-nix.conf' | xargs sed -i 's/sandbox = true/sandbox = false/'
sed -i "s,exec systemd,exec /$BASH," "$INIT"
echo "$INIT"`
	out := run(t, "sh", "-c", script, "sh", root)
	return root, strings.TrimPrefix(strings.TrimSpace(out), ".")
}

// inChroot runs a command in the unpacked root, in a private mount
// namespace with /proc bound in: nothing it mounts outlives it. Its
// standard input is empty, as over a non-interactive SSH session.
func inChroot(t *testing.T, root string, argv ...string) (string, error) {
	t.Helper()
	args := append([]string{"-m", "--propagation", "private", "--", "sh", "-c",
		`root=$1; shift; mount --bind /proc "$root/proc" && exec chroot "$root" "$@"`, "sh", root}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = []string{"HOME=/root", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// inChrootShell runs a script with the installer's environment.
func inChrootShell(t *testing.T, root, script string) (string, error) {
	t.Helper()
	return inChroot(t, root, "/bin/sh", "-c", ". /etc/profile\n"+script)
}

// loopDisk attaches a disk image made by setup and gives the target root
// a block device node for it under the name a server would use.
func loopDisk(t *testing.T, root, name string, sizeMiB int, setup func(img string)) {
	t.Helper()
	img := filepath.Join(t.TempDir(), name+".img")
	if err := os.Truncate(createFile(t, img), int64(sizeMiB)<<20); err != nil {
		t.Fatal(err)
	}
	setup(img)
	dev := strings.TrimSpace(run(t, "losetup", "--find", "--show", img))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	majorMinor := strings.Fields(run(t, "stat", "-L", "-c", "%t %T", dev))
	run(t, "sh", "-c", `mknod "$1" b $((0x$2)) $((0x$3))`, "sh", filepath.Join(root, "dev", name), majorMinor[0], majorMinor[1])
}

func createFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func partitionTable(t *testing.T, script string) func(string) {
	return func(img string) {
		cmd := exec.Command("sfdisk", "-q", img)
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v\n%s", err, out)
		}
	}
}

func ext4(t *testing.T, uuid, label string) func(string) {
	return func(img string) { run(t, "mkfs.ext4", "-q", "-F", "-U", uuid, "-L", label, img) }
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

const (
	rootUUID = "4e9c1b53-0c47-4c1e-9a5e-2b1f6c1d7e01"
	bootUUID = "4e9c1b53-0c47-4c1e-9a5e-2b1f6c1d7e02"
)

// TestSeedProcedureInChroot runs the stand-ins for real, the way the 2015
// procedure does: the ISO's store unpacked, the patched init run once in a
// chroot, then file systems mounted at /mnt, nixos-generate-config,
// nix-channel and nixos-install against disks backed by loop devices.
func TestSeedProcedureInChroot(t *testing.T) {
	requireRoot(t)
	p := built(t)
	root, init := unpack(t, p)

	for _, node := range []struct{ name, spec string }{{"null", "c 1 3"}, {"zero", "c 1 5"}, {"random", "c 1 8"}, {"urandom", "c 1 9"}} {
		run(t, "sh", "-c", `mknod -m 666 "$1" $2`, "sh", filepath.Join(root, "dev", node.name), node.spec)
	}
	loopDisk(t, root, "sda", 8, partitionTable(t, "label: dos\n,4M,L\n,,L\n"))
	loopDisk(t, root, "sda1", 32, ext4(t, rootUUID, "nixos"))
	loopDisk(t, root, "sda2", 8, ext4(t, bootUUID, "boot"))
	loopDisk(t, root, "sdb", 8, partitionTable(t, "label: gpt\n,4M,L\n,,L\n"))
	loopDisk(t, root, "sdc", 8, partitionTable(t, "label: gpt\n,1M,21686148-6449-6E6F-744E-656564454649\n,,L\n"))
	symlink(t, "../../sda1", filepath.Join(root, "dev/disk/by-uuid", rootUUID))
	symlink(t, "../../sda2", filepath.Join(root, "dev/disk/by-uuid", bootUUID))
	symlink(t, "../../sda1", filepath.Join(root, "dev/disk/by-label/nixos"))

	out, err := inChroot(t, root, init)
	if err != nil || !strings.Contains(out, "<<< NixOS Stage 2 >>>") || !strings.Contains(out, "starting systemd...") {
		t.Fatalf("patched init: %v\n%s", err, out)
	}
	if target, _ := os.Readlink(filepath.Join(root, "run/current-system")); target != p.System {
		t.Errorf("/run/current-system -> %q, want %s", target, p.System)
	}
	osRelease, _ := os.ReadFile(filepath.Join(root, "etc/os-release"))
	if !strings.Contains(string(osRelease), "ID=nixos\n") || !strings.Contains(string(osRelease), "VARIANT_ID=installer\n") {
		t.Errorf("installer os-release:\n%s", osRelease)
	}

	const sda = `{ config, lib, pkgs, ... }:
{
  imports = [ ./hardware-configuration.nix ];
  boot.loader.grub.devices = [ "/dev/sda" "/dev/sdc" ];
  networking.hostName = "ks1";
  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin" ];
  system.stateVersion = "24.05";
}
`
	const uefi = `{ lib, ... }:
{
  imports = [ ./hardware-configuration.nix ];
  boot.loader.grub = {
    efiSupport = true;
    efiInstallAsRemovable = true;
    device = "nodev";
  };
  networking.hostName = "ks1";
}
`
	withDevice := func(dev string) string { return strings.Replace(sda, `[ "/dev/sda" "/dev/sdc" ]`, `[ "`+dev+`" ]`, 1) }

	tests := []struct {
		name    string
		config  string // written to /mnt/etc/nixos/configuration.nix first
		script  string
		wantErr bool
		want    []string // in the output
		check   func(t *testing.T, out string, mnt string)
	}{
		{
			name:   "nixos-generate-config writes the files from the mounts",
			script: "nixos-generate-config --root /mnt && cp /mnt/etc/nixos/configuration.nix /root/default.nix && nixos-generate-config --root /mnt",
			want: []string{
				"writing /mnt/etc/nixos/hardware-configuration.nix...",
				"writing /mnt/etc/nixos/configuration.nix...",
				"warning: not overwriting existing /mnt/etc/nixos/configuration.nix",
			},
			check: func(t *testing.T, out, mnt string) {
				hw := readFile(t, mnt, "etc/nixos/hardware-configuration.nix")
				for _, want := range []string{
					"fileSystems.\"/\" =\n    { device = \"/dev/disk/by-uuid/" + rootUUID + "\";\n      fsType = \"ext4\";\n    };",
					"fileSystems.\"/boot\" =\n    { device = \"/dev/disk/by-uuid/" + bootUUID + "\";\n      fsType = \"ext4\";\n    };",
					`boot.initrd.availableKernelModules = [ "ahci" "xhci_pci" "ehci_pci" "usbhid" "usb_storage" "sd_mod" ];`,
					"swapDevices = [ ];",
					`(modulesPath + "/installer/scan/not-detected.nix")`,
				} {
					if !strings.Contains(hw, want) {
						t.Errorf("hardware-configuration.nix lacks %q:\n%s", want, hw)
					}
				}
				if strings.Contains(hw, `"/proc"`) || strings.Contains(hw, `"/dev"`) {
					t.Errorf("hardware-configuration.nix lists the chroot's own mounts:\n%s", hw)
				}
				cfg := readFile(t, mnt, "etc/nixos/configuration.nix")
				if !strings.Contains(cfg, `# boot.loader.grub.device = "/dev/sda"; # or "nodev" for efi only`) || !strings.Contains(cfg, `system.stateVersion = "24.05";`) {
					t.Errorf("default configuration.nix:\n%s", cfg)
				}
			},
		},
		{
			name:    "the default configuration has no GRUB device",
			script:  "cp /root/default.nix /mnt/etc/nixos/configuration.nix && nixos-install --root /mnt --no-root-passwd",
			wantErr: true,
			want:    []string{"building the configuration in /mnt/etc/nixos/configuration.nix...", "Failed assertions:", "You must set the option ‘boot.loader.grub.devices’"},
			check: func(t *testing.T, out, mnt string) {
				if _, err := os.Stat(filepath.Join(mnt, "boot/grub/nixbook-sim-devices")); err == nil {
					t.Error("a failed install left a boot loader record")
				}
			},
		},
		{
			name:    "a syntax error",
			config:  strings.Replace(sda, "system.stateVersion", "{ system.stateVersion", 1),
			script:  "nixos-install --root /mnt --no-root-passwd",
			wantErr: true,
			want:    []string{"error: syntax error, unbalanced braces"},
		},
		{
			name:    "GRUB on a GPT disk without a BIOS boot partition",
			config:  withDevice("/dev/sdb"),
			script:  "nixos-install --root /mnt --no-root-passwd",
			wantErr: true,
			want:    []string{"this GPT partition label contains no BIOS Boot Partition", "will not proceed with blocklists", "installation of GRUB on /dev/sdb failed"},
		},
		{
			name:    "GRUB on a disk the server does not have",
			config:  withDevice("/dev/sdz"),
			script:  "nixos-install --root /mnt --no-root-passwd",
			wantErr: true,
			want:    []string{"failed to get canonical path of `/dev/sdz'", "installation of GRUB on /dev/sdz failed"},
		},
		{
			name:    "a channel that does not exist",
			script:  "nix-channel --add https://nixos.org/channels/nixos-24.5 nixos && nix-channel --update",
			wantErr: true,
			want:    []string{"error: unable to download 'https://nixos.org/channels/nixos-24.5'"},
		},
		{
			name:   "install from the 26.05 channel, a release with its codename",
			config: sda,
			script: "nix-channel --add https://nixos.org/channels/nixos-26.05 nixos && nix-channel --update && nixos-install --root /mnt --no-root-passwd",
			want:   []string{"installation finished!"},
			check: func(t *testing.T, out, mnt string) {
				if rel := readFile(t, mnt, "etc/os-release"); !strings.Contains(rel, `PRETTY_NAME="NixOS 26.05 (Yarara)"`) {
					t.Errorf("installed os-release:\n%s", rel)
				}
			},
		},
		{
			name:   "install from the 24.11 channel with GRUB on two disks",
			config: sda,
			script: "nix-channel --add https://nixos.org/channels/nixos-24.11 nixos && nix-channel --list && nix-channel --update && nixos-install --root /mnt --no-root-passwd",
			want: []string{
				"https://nixos.org/channels/nixos-24.11 nixos", "unpacking channels...", "copying channel...",
				"installing the boot loader...", "installing the GRUB 2 boot loader on /dev/sda...",
				"installing the GRUB 2 boot loader on /dev/sdc...", "Installation finished. No error reported.",
				"installation finished!",
			},
			check: func(t *testing.T, out, mnt string) {
				if got := readFile(t, mnt, "boot/grub/nixbook-sim-devices"); got != "/dev/sda\n/dev/sdc\n" {
					t.Errorf("nixbook-sim-devices = %q", got)
				}
				// /boot is a file system of its own: GRUB loads the copies on it.
				menu := regexp.MustCompile(`(?m)^\s*(linux|initrd) \(\$drive1\)(/kernels/[0-9a-z]{32}-linux-(bzImage|initrd))`).FindAllStringSubmatch(readFile(t, mnt, "boot/grub/grub.cfg"), -1)
				if len(menu) != 2 {
					t.Errorf("grub.cfg does not load a kernel and initrd from /boot's kernels/:\n%s", readFile(t, mnt, "boot/grub/grub.cfg"))
				}
				for _, m := range menu {
					readFile(t, mnt, "boot"+m[2])
				}
				system, err := os.Readlink(filepath.Join(mnt, "nix/var/nix/profiles/system"))
				if err != nil || !regexp.MustCompile(`^/nix/store/[0-9a-z]{32}-nixos-system-ks1-24\.11\.[0-9]{8}\.[0-9a-f]{12}$`).MatchString(system) {
					t.Fatalf("system profile -> %q, %v", system, err)
				}
				if init := readFile(t, mnt, strings.TrimPrefix(system, "/")+"/init"); !strings.HasSuffix(strings.TrimSpace(init), "exec systemd") {
					t.Errorf("installed init:\n%s", init)
				}
				if rel := readFile(t, mnt, "etc/os-release"); !strings.Contains(rel, "ID=nixos\n") || !strings.Contains(rel, `VERSION_ID="24.11"`) {
					t.Errorf("installed os-release:\n%s", rel)
				}
				if !strings.Contains(readFile(t, mnt, "boot/grub/grub.cfg"), system+"/init") {
					t.Error("grub.cfg does not boot the installed system")
				}
				if v := readFile(t, mnt, "nix/var/nix/profiles/per-user/root/channels/nixos/.version"); strings.TrimSpace(v) != "24.11" {
					t.Errorf("copied channel version %q", v)
				}
				if readFile(t, mnt, "etc/hostname") != "ks1\n" {
					t.Error("hostname not set from the configuration")
				}
				fp := run(t, "ssh-keygen", "-l", "-f", filepath.Join(mnt, "etc/ssh/ssh_host_ed25519_key.pub"))
				if !strings.Contains(fp, "(ED25519)") {
					t.Errorf("host key: %s", fp)
				}
				if _, err := os.Stat(filepath.Join(mnt, "etc/NIXOS")); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name:   "a second install keeps the host key and the system path",
			config: sda,
			script: `echo "before $(cat /mnt/etc/ssh/ssh_host_ed25519_key.pub) $(readlink /mnt/nix/var/nix/profiles/system)" &&
nixos-install --root /mnt --no-root-passwd &&
echo "after $(cat /mnt/etc/ssh/ssh_host_ed25519_key.pub) $(readlink /mnt/nix/var/nix/profiles/system)"`,
			want: []string{"installation finished!"},
			check: func(t *testing.T, out, mnt string) {
				before := regexp.MustCompile(`(?m)^before (.*)$`).FindStringSubmatch(out)
				after := regexp.MustCompile(`(?m)^after (.*)$`).FindStringSubmatch(out)
				if before == nil || after == nil || before[1] != after[1] || !strings.Contains(before[1], "ssh-ed25519 ") {
					t.Errorf("host key or system changed across installs: %q, %q", before, after)
				}
			},
		},
		{
			name:   "UEFI with a removable GRUB",
			config: uefi,
			script: "nixos-install --root /mnt --no-root-passwd",
			want:   []string{"Installing for x86_64-efi platform.", "installation finished!"},
			check: func(t *testing.T, out, mnt string) {
				if got := readFile(t, mnt, "boot/grub/nixbook-sim-devices"); got != "nodev\n" {
					t.Errorf("nixbook-sim-devices = %q", got)
				}
				if _, err := os.Stat(filepath.Join(mnt, "boot/EFI/BOOT/BOOTX64.EFI")); err != nil {
					t.Error(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.config != "" {
				if err := os.WriteFile(filepath.Join(root, "tmp/case.nix"), []byte(tt.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			script := `set -e
mount /dev/sda1 /mnt
mkdir -p /mnt/boot
mount /dev/sda2 /mnt/boot
` + func() string {
				if tt.config != "" {
					return "cp /tmp/case.nix /mnt/etc/nixos/configuration.nix\n"
				}
				return ""
			}() + `set +e
( ` + tt.script + ` )
rc=$?
rm -rf /out && mkdir /out && cp -a /mnt/. /out/
exit $rc`
			out, err := inChrootShell(t, root, script)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v; output:\n%s", err, tt.wantErr, out)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if tt.check != nil {
				tt.check(t, out, filepath.Join(root, "out"))
			}
		})
	}
}

func readFile(t *testing.T, dir, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestGenerateConfigGolden pins nixos-generate-config's output for a
// ZFS-on-NVMe-and-SATA server, from a /proc and /dev laid out as files so
// that the result does not depend on this machine.
func TestGenerateConfigGolden(t *testing.T) {
	requireRoot(t)
	p := built(t)
	root, _ := unpack(t, p)
	files := map[string]string{
		"proc/mounts": `/dev/vda1 / ext4 rw,relatime 0 0
rpool/root/nixos /mnt zfs rw,relatime,xattr,noacl 0 0
rpool/home /mnt/home zfs rw,relatime,xattr,noacl 0 0
/dev/sda1 /mnt/boot vfat rw,relatime,fmask=0022,dmask=0022 0 0
/dev/sda3 /mnt/srv/old\040data ext4 rw,relatime 0 0
/dev/nvme0n1p1 /mnt/var/lib ext4 rw,relatime 0 0
tmpfs /mnt/tmp tmpfs rw 0 0
proc /mnt/proc proc rw 0 0
/dev/sdb1 /mnt/dev ext4 rw 0 0
`,
		"proc/swaps": `Filename				Type		Size		Used		Priority
/dev/sda2                               partition	2097148		0		-2
/mnt/swapfile                           file		1048572		0		-3
/tmp/elsewhere                          file		1048572		0		-4
`,
		"proc/cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse vmx sse2\n",
		"dev/sda":      "", "dev/sda1": "", "dev/sda2": "", "dev/sda3": "", "dev/sdb": "", "dev/sdb1": "",
		"dev/nvme0n1": "", "dev/nvme0n1p1": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	symlink(t, "../../sda1", filepath.Join(root, "dev/disk/by-uuid/A1B2-C3D4"))
	symlink(t, "../../sda2", filepath.Join(root, "dev/disk/by-uuid/0b7a7f6e-5d1c-4d3b-9a52-4f1c2e3d4b5a"))
	symlink(t, "../../sda3", filepath.Join(root, "dev/disk/by-label/olddata"))
	if err := os.MkdirAll(filepath.Join(root, "sys/firmware/efi"), 0o755); err != nil {
		t.Fatal(err)
	}
	generate := p.System + "/sw/bin/nixos-generate-config"
	cmd := exec.Command("chroot", root, generate, "--root", "/mnt")
	cmd.Env = []string{"PATH=/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nixos-generate-config: %v\n%s", err, out)
	}
	got := readFile(t, root, "mnt/etc/nixos/hardware-configuration.nix")
	golden := filepath.Join("testdata", "hardware-configuration.golden.nix")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("hardware-configuration.nix differs from %s (run with -update after checking):\n%s", golden, got)
	}
	if cfg := readFile(t, root, "mnt/etc/nixos/configuration.nix"); !strings.Contains(cfg, "boot.loader.systemd-boot.enable = true;") {
		t.Errorf("an EFI machine's default configuration.nix uses systemd-boot:\n%s", cfg)
	}
	// --show-hardware-config prints the same and writes nothing.
	cmd = exec.Command("chroot", root, generate, "--root", "/mnt", "--show-hardware-config", "--no-filesystems")
	cmd.Env = []string{"PATH=/bin"}
	shown, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(shown), "fileSystems") || !strings.Contains(string(shown), `boot.kernelModules = [ "kvm-intel" ];`) {
		t.Errorf("--show-hardware-config --no-filesystems:\n%s", shown)
	}
}

// TestInstallEvaluatesWithNix runs nixos-install where nix-instantiate is
// on PATH (the store mounted at /nix/store in a private namespace): it then
// evaluates the configuration instead of reading its text.
func TestInstallEvaluatesWithNix(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate is not installed (apt-get install nix-bin)")
	}
	if _, err := os.Stat("/nix"); err != nil {
		t.Skip("no /nix to mount the store over")
	}
	p := built(t)
	const hardware = `{ ... }: { fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; }; }`
	const efi = `boot.loader.grub = { efiSupport = true; efiInstallAsRemovable = true; device = "nodev"; };`
	tests := []struct {
		name     string
		mode     os.FileMode
		config   string
		extra    string
		flake    string // written as etc/nixos/flake.nix
		args     string // more arguments of nixos-install
		wantErr  bool
		want     string
		hostname string
	}{
		{
			name:     "a flake's system is evaluated with stub inputs",
			config:   `{ lib, ... }: { imports = [ ./hardware-configuration.nix ]; networking.hostName = "ks-config"; ` + efi + ` }`,
			flake:    `{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05"; outputs = { nixpkgs, ... }: { nixosConfigurations.ks1 = nixpkgs.lib.nixosSystem { modules = [ ./configuration.nix ({ lib, ... }: { networking.hostName = lib.mkForce "ks-flake"; }) ]; }; }; }`,
			args:     "--flake $3/etc/nixos#ks1",
			want:     "installation finished!",
			hostname: "ks-flake\n",
		},
		{
			name:    "a flake without the system asked for",
			config:  `{ ... }: { }`,
			flake:   `{ outputs = { nixpkgs, ... }: { nixosConfigurations.ks1 = nixpkgs.lib.nixosSystem { modules = [ ]; }; }; }`,
			args:    "--flake $3/etc/nixos#ks2",
			wantErr: true,
			want:    "has no nixosConfigurations.ks2 (it has: ks1)",
		},
		{
			name:    "a remote flake cannot be fetched offline",
			config:  `{ ... }: { }`,
			args:    "--flake github:example/infra#ks1",
			wantErr: true,
			want:    "unable to download 'github:example/infra'",
		},
		{
			name:     "priorities decide, not the order of the text",
			config:   `{ lib, ... }: { imports = [ ./hardware-configuration.nix ./extra.nix ]; networking.hostName = lib.mkForce "ks-evaluated"; ` + efi + ` }`,
			extra:    `{ networking.hostName = "ks-text"; }`,
			want:     "installation finished!",
			hostname: "ks-evaluated\n",
		},
		{
			name:    "an undefined variable fails as in Nix",
			config:  `{ lib, ... }: { imports = [ ./hardware-configuration.nix ]; networking.hostName = hostNameFromNowhere; ` + efi + ` }`,
			wantErr: true,
			want:    "undefined variable 'hostNameFromNowhere'",
		},
		{
			name:    "a root nobody else can read",
			mode:    0o700,
			config:  `{ ... }: { }`,
			wantErr: true,
			want:    "should have permissions 755",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, err := os.MkdirTemp("", "nixos-install-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(target) })
			mode := tt.mode
			if mode == 0 {
				mode = 0o755
			}
			if err := os.Chmod(target, mode); err != nil {
				t.Fatal(err)
			}
			for name, text := range map[string]string{"configuration.nix": tt.config, "hardware-configuration.nix": hardware, "extra.nix": tt.extra, "flake.nix": tt.flake} {
				if text == "" {
					continue
				}
				if err := writeFile(filepath.Join(target, "etc/nixos", name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			script := `mount -t tmpfs tmpfs /nix && mkdir /nix/store && mount --bind -o ro "$1" /nix/store && exec "$2" --root "$3" --no-root-passwd ` + tt.args
			cmd := exec.Command("unshare", "-m", "--propagation", "private", "--", "sh", "-c", script, "sh",
				p.StoreDir, p.System+"/sw/bin/nixos-install", target)
			cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr || !strings.Contains(string(out), tt.want) {
				t.Fatalf("nixos-install: error %v, output:\n%s\nwant error %v and %q", err, out, tt.wantErr, tt.want)
			}
			if tt.hostname != "" {
				if got := readFile(t, target, "etc/hostname"); got != tt.hostname {
					t.Errorf("hostname %q, want %q", got, tt.hostname)
				}
				if got := readFile(t, target, "boot/grub/nixbook-sim-devices"); got != "nodev\n" {
					t.Errorf("record %q", got)
				}
				if tt.flake != "" {
					system, err := os.Readlink(filepath.Join(target, "nix/var/nix/profiles/system"))
					if err != nil {
						t.Fatal(err)
					}
					if got := readFile(t, target, strings.TrimPrefix(system, "/")+"/nixbook-sim-flake-name"); got != "ks1\n" {
						t.Errorf("the system does not record its flake: %q", got)
					}
				}
			}
		})
	}
}

// TestTextReadingAgreesWithEvaluation checks nixos-install's fallback,
// which reads Nix as text where no evaluator exists (the 2015 chroot),
// against real evaluation on the fleet's configuration fixtures.
func TestTextReadingAgreesWithEvaluation(t *testing.T) {
	built(t) // installs busybox-static and nix-bin when missing
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	fixtures := "../nixeval/testdata"
	for _, overlay := range []string{"", "uefi-removable", "grub-missing-disk", "seed-2015"} {
		name := overlay
		if name == "" {
			name = "ovh-zfs"
		}
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.CopyFS(root, os.DirFS(filepath.Join(fixtures, "ovh-zfs"))); err != nil {
				t.Fatal(err)
			}
			if overlay != "" {
				src := filepath.Join(fixtures, "cases", overlay, "etc/nixos")
				entries, err := os.ReadDir(src)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					data, err := os.ReadFile(filepath.Join(src, e.Name()))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(root, "etc/nixos", e.Name()), data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			cmd := exec.Command("sh", "-c", `cat "$1"/etc/nixos/*.nix | "$2" awk -f scripts/nixconf.awk`, "sh", root, busybox)
			defs, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			var devices []string
			removable := false
			for _, line := range strings.Split(string(defs), "\n") {
				path, value, _ := strings.Cut(line, "\t")
				switch {
				case (path == "boot.loader.grub.devices" || path == "boot.loader.grub.device") && strings.HasPrefix(value, `"`):
					devices = append(devices, value[1:])
				case path == "boot.loader.grub.efiInstallAsRemovable":
					removable = value == "true"
				}
			}
			in, err := nixeval.Evaluate(context.Background(), root)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(devices, " ") != strings.Join(in.GrubDevices, " ") || removable != in.EFIRemovable {
				t.Errorf("text reading: devices %q removable %v; evaluation: %q %v", devices, removable, in.GrubDevices, in.EFIRemovable)
			}
		})
	}
}
