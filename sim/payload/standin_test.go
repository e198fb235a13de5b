package payload

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
