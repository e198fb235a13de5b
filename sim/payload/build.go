package payload

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixbook/nixbook/sim/nixeval"
)

// epoch is the time every file of the artifacts carries, as in the Nix
// store, so that the same inputs give the same bytes.
const epoch = 1

const kexecTarball = "nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz"

func build(ctx context.Context, work, release string, t tools) (*Payload, error) {
	version := fullVersion(release)
	label := "nixos-minimal-" + release + "-x86_64"
	s := &store{dir: filepath.Join(work, "store")}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	paths, err := fillStore(ctx, s, release, version, t)
	if err != nil {
		return nil, err
	}

	isoDir := filepath.Join(work, "iso")
	if err := os.MkdirAll(isoDir, 0o755); err != nil {
		return nil, err
	}
	squashfs := filepath.Join(isoDir, "nix-store.squashfs")
	mksquashfs := exec.CommandContext(ctx, t.mksquashfs, s.dir, squashfs,
		"-comp", "zstd", "-Xcompression-level", "9", "-all-root", "-no-xattrs",
		"-all-time", fmt.Sprint(epoch), "-mkfs-time", fmt.Sprint(epoch), "-noappend", "-quiet")
	if out, err := mksquashfs.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mksquashfs: %w: %s", err, out)
	}
	if err := isoBootFiles(isoDir, paths.system, label, version); err != nil {
		return nil, err
	}
	if err := setTimes(isoDir); err != nil {
		return nil, err
	}
	isoPath := filepath.Join(work, "nixos-minimal-"+version+"-x86_64-linux.iso")
	xorriso := exec.CommandContext(ctx, t.xorriso, "-as", "mkisofs",
		"-o", isoPath, "-volid", label, "-iso-level", "3", "-joliet", "-joliet-long", "-rational-rock",
		isoDir)
	xorriso.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", epoch))
	if out, err := xorriso.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("xorriso: %w: %s", err, out)
	}
	if err := os.RemoveAll(isoDir); err != nil {
		return nil, err
	}

	if err := writeControllerNix(work, paths.data); err != nil {
		return nil, fmt.Errorf("controller nix: %w", err)
	}

	kexecPath := filepath.Join(work, kexecTarball)
	if err := writeKexecTarball(kexecPath, paths, t); err != nil {
		return nil, fmt.Errorf("kexec tarball: %w", err)
	}

	iso, err := artifact(isoPath)
	if err != nil {
		return nil, err
	}
	kexec, err := artifact(kexecPath)
	if err != nil {
		return nil, err
	}
	return &Payload{
		ISO: iso, Kexec: kexec,
		Release: release, FullVersion: version, Label: label,
		StoreDir: s.dir, System: paths.system,
		ControllerNix: filepath.Join(work, controllerNix),
	}, nil
}

// controllerNix is where, in a payload, the `nix` stand-in for the
// controller lies; `nix-store` is beside it.
const controllerNix = "controller/bin/nix"

// writeControllerNix writes the payload's `nix` and `nix-store` stand-ins
// for the controller, which has no /nix/store: the same scripts, their
// store paths found beside them at run time (the payload is renamed into
// place after the build), started by the controller's bash. What they
// build and export lies in $NIXBOOK_SIM_CONTROLLER_STORE/nix/store (default:
// nixbook-sim-controller in the user's cache directory). A rehearsal's
// controller evaluates and builds a flake with them as a real controller
// does with Nix.
func writeControllerNix(work string, data scriptData) error {
	local := data
	for _, p := range []*string{&local.Bash, &local.Busybox, &local.OpenSSH, &local.Eval, &local.NixConf} {
		*p = "$store/" + strings.TrimPrefix(*p, storeDir+"/")
	}
	for _, name := range []string{"nix", "nix-store"} {
		text, err := render(name, local)
		if err != nil {
			return err
		}
		_, body, _ := strings.Cut(string(text), "\n") // the store's shebang
		self := path.Join(path.Dir(controllerNix), name)
		header := "#!/usr/bin/env bash\n" +
			"# The payload's " + name + " stand-in, for the controller of a rehearsal: its\n" +
			"# store is the payload's store directory, found from where this file is.\n" +
			"store=$(readlink -f \"$0\")\n" +
			"store=${store%/" + self + "}/store\n" +
			"storeRoot=${NIXBOOK_SIM_CONTROLLER_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/nixbook-sim-controller}\n"
		dst := filepath.Join(work, filepath.FromSlash(self))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, []byte(header+body), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// storePaths are the paths fillStore made.
type storePaths struct {
	bash, busybox, openssh, eval, nixConf, system string
	data                                          scriptData
}

func fillStore(ctx context.Context, s *store, release, version string, t tools) (storePaths, error) {
	var p storePaths
	var err error
	p.bash, err = s.add("bash-static-"+t.bashVersion, func(dir string) error {
		if err := copyFile(t.bash, filepath.Join(dir, "bin", "bash"), 0o755); err != nil {
			return err
		}
		return os.Symlink("bash", filepath.Join(dir, "bin", "sh"))
	})
	if err != nil {
		return p, err
	}
	applets, err := busyboxApplets(ctx, t.busybox)
	if err != nil {
		return p, err
	}
	p.busybox, err = s.add("busybox-"+t.busyboxVersion, func(dir string) error {
		if err := copyFile(t.busybox, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
			return err
		}
		for _, a := range applets {
			if a == "busybox" {
				continue
			}
			if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	// ssh-keygen with the libraries it loads, started through their loader
	// as a Nix wrapper would: nixos-install makes the host keys with it.
	p.openssh, err = s.add("openssh-"+t.opensshVersion, func(dir string) error {
		if err := copyFile(t.sshKeygen, filepath.Join(dir, "libexec", "ssh-keygen"), 0o755); err != nil {
			return err
		}
		if err := copyFile(t.loader, filepath.Join(dir, "lib", filepath.Base(t.loader)), 0o755); err != nil {
			return err
		}
		for _, lib := range t.libs {
			if err := copyFile(lib, filepath.Join(dir, "lib", filepath.Base(lib)), 0o644); err != nil {
				return err
			}
		}
		wrapper := fmt.Sprintf("#! %s/bin/bash\n# Starts Debian's ssh-keygen with the libraries of this store path.\nexec @out@/lib/%s --argv0 ssh-keygen --library-path @out@/lib @out@/libexec/ssh-keygen \"$@\"\n",
			p.bash, filepath.Base(t.loader))
		return writeFile(filepath.Join(dir, "bin", "ssh-keygen"), []byte(wrapper), 0o755)
	})
	if err != nil {
		return p, err
	}

	p.nixConf, err = s.addFile("nix.conf", []byte(nixConf), 0o444)
	if err != nil {
		return p, err
	}
	p.eval, err = s.add("nixbook-sim-eval", func(dir string) error {
		if err := os.CopyFS(dir, nixeval.Evaluator()); err != nil {
			return err
		}
		vars, err := scripts.ReadFile("scripts/install-vars.nix")
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(dir, "install-vars.nix"), vars, 0o644)
	})
	if err != nil {
		return p, err
	}
	p.data = scriptData{
		Bash: p.bash, Busybox: p.busybox, OpenSSH: p.openssh, Eval: p.eval, NixConf: p.nixConf,
		Version:  release,
		GrubHash: storeHash("grub-2.12", nil),
	}
	generate, err := s.add("nixos-generate-config", func(dir string) error {
		return writeScript(dir, "bin/nixos-generate-config", "nixos-generate-config", p.data)
	})
	if err != nil {
		return p, err
	}
	install, err := s.add("nixos-install", func(dir string) error {
		if err := writeScript(dir, "bin/nixos-install", "nixos-install", p.data); err != nil {
			return err
		}
		awk, err := scripts.ReadFile("scripts/nixconf.awk")
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(dir, "share", "nixconf.awk"), awk, 0o644)
	})
	if err != nil {
		return p, err
	}
	cryptsetup, err := s.add("cryptsetup-2.6.1", func(dir string) error {
		return writeScript(dir, "bin/cryptsetup", "cryptsetup", p.data)
	})
	if err != nil {
		return p, err
	}
	nix, err := s.add("nix-2.18.1", func(dir string) error {
		for _, name := range []string{"nix-channel", "nix-env", "nix", "nix-store"} {
			if err := writeScript(dir, "bin/"+name, name, p.data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return p, err
	}

	p.system, err = s.add("nixos-system-nixos-"+version, func(dir string) error {
		for _, name := range []string{"init", "activate"} {
			if err := writeScript(dir, name, name, p.data); err != nil {
				return err
			}
		}
		if err := writeFile(filepath.Join(dir, "nixos-version"), []byte(version), 0o444); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, "etc", "os-release"), []byte(osRelease(release, version)), 0o444); err != nil {
			return err
		}
		for _, f := range []string{"kernel", "initrd"} {
			if err := writeFile(filepath.Join(dir, f), []byte(standInImage), 0o444); err != nil {
				return err
			}
		}
		versionScript := fmt.Sprintf("#! %s/bin/bash\necho %q\n", p.bash, version+" ("+codename(release)+")")
		if err := writeFile(filepath.Join(dir, "sw", "bin", "nixos-version"), []byte(versionScript), 0o755); err != nil {
			return err
		}
		links := map[string]string{"bash": p.bash + "/bin/bash", "ssh-keygen": p.openssh + "/bin/ssh-keygen"}
		for _, a := range applets {
			if _, ok := links[a]; !ok {
				links[a] = p.busybox + "/bin/" + a
			}
		}
		for _, tool := range []string{generate + "/bin/nixos-generate-config", install + "/bin/nixos-install",
			nix + "/bin/nix-channel", nix + "/bin/nix-env", nix + "/bin/nix", nix + "/bin/nix-store", cryptsetup + "/bin/cryptsetup"} {
			links[filepath.Base(tool)] = tool
		}
		for _, name := range sortedKeys(links) {
			if err := os.Symlink(links[name], filepath.Join(dir, "sw", "bin", name)); err != nil {
				return err
			}
		}
		return nil
	})
	return p, err
}

const standInImage = "This is a stand-in made by nixbook-sim: the simulated servers boot no kernel.\n"

const nixConf = `# WARNING: this file is generated from the nix.* options in
# your NixOS configuration, typically
# /etc/nixos/configuration.nix.  Do not edit it!
allowed-users = *
auto-optimise-store = false
builders =
cores = 0
experimental-features = nix-command flakes
max-jobs = auto
require-sigs = true
sandbox = true
sandbox-fallback = false
substituters = https://cache.nixos.org/
system-features = nixos-test benchmark big-parallel kvm
trusted-public-keys = cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=
trusted-substituters =
trusted-users = root
`

func osRelease(release, version string) string {
	name := codename(release)
	return fmt.Sprintf(`ANSI_COLOR="1;34"
BUG_REPORT_URL="https://github.com/NixOS/nixpkgs/issues"
BUILD_ID="%[2]s"
DOCUMENTATION_URL="https://nixos.org/learn.html"
HOME_URL="https://nixos.org/"
ID=nixos
LOGO="nix-snowflake"
NAME=NixOS
PRETTY_NAME="NixOS %[1]s (%[3]s)"
SUPPORT_URL="https://nixos.org/community.html"
VARIANT_ID=installer
VERSION="%[1]s (%[3]s)"
VERSION_CODENAME=%[4]s
VERSION_ID="%[1]s"
`, release, version, name, strings.ToLower(strings.ReplaceAll(name, "ñ", "n")))
}

// isoBootFiles lays out the rest of the ISO like the minimal ISO's.
func isoBootFiles(isoDir, system, label, version string) error {
	cmdline := fmt.Sprintf("init=%s/init root=LABEL=%s boot.shell_on_fail console=ttyS0,115200n8 console=tty0 loglevel=4", system, label)
	files := map[string]string{
		"boot/bzImage": standInImage,
		"boot/initrd":  standInImage,
		"boot/grub/grub.cfg": fmt.Sprintf(`set timeout=10
menuentry "NixOS %[1]s Installer" {
  linux /boot/bzImage %[2]s
  initrd /boot/initrd
}
`, version, cmdline),
		"isolinux/isolinux.cfg": fmt.Sprintf(`SERIAL 0 115200
TIMEOUT 100
DEFAULT boot
LABEL boot
MENU LABEL NixOS %[1]s Installer
LINUX /boot/bzImage
APPEND %[2]s
INITRD /boot/initrd
`, version, cmdline),
		"EFI/boot/bootx64.efi": standInImage,
		"version.txt":          version,
	}
	for _, name := range sortedKeys(files) {
		if err := writeFile(filepath.Join(isoDir, name), []byte(files[name]), 0o444); err != nil {
			return err
		}
	}
	return nil
}

func setTimes(root string) error {
	t := time.Unix(epoch, 0)
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(path, t, t)
	})
}

// writeKexecTarball packs kexec/ as nixos-images does; the archive has
// fixed times and owners, so the same inputs give the same bytes.
func writeKexecTarball(path string, p storePaths, t tools) error {
	run, err := render("kexec-run", p.data)
	if err != nil {
		return err
	}
	kexec, err := render("kexec-kexec", p.data)
	if err != nil {
		return err
	}
	ip, err := os.ReadFile(t.busybox) // busybox runs as ip(8) by its name
	if err != nil {
		return err
	}
	initrd := fmt.Sprintf("%sinit=%s/init\n", standInImage, p.system)
	entries := []struct {
		name string
		data []byte
		mode int64
	}{
		{"kexec/", nil, 0o755},
		{"kexec/bzImage", []byte(standInImage), 0o444},
		{"kexec/initrd", []byte(initrd), 0o444},
		{"kexec/ip", ip, 0o555},
		{"kexec/kexec", kexec, 0o555},
		{"kexec/run", run, 0o555},
	}
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.name, Mode: e.mode, Size: int64(len(e.data)),
			ModTime: time.Unix(epoch, 0), Uname: "root", Gname: "root",
			Typeflag: tar.TypeReg, Format: tar.FormatGNU,
		}
		if strings.HasSuffix(e.name, "/") {
			hdr.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func writeFile(path string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, mode)
}
