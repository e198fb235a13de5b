package sim

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixbook/nixbook/sim/payload"
	"github.com/nixbook/nixbook/sim/simstate"
	"github.com/nixbook/nixbook/sim/vm"
)

// vmGuest holds the scripts of a vm host's systems: the inits of the
// rescue, the installer and the installed system, the steps they share,
// kexec/run and the installer's nixos-install.
//
//go:embed vmguest/*.sh
var vmGuest embed.FS

func vmScript(name string) string {
	b, err := vmGuest.ReadFile("vmguest/" + name)
	if err != nil {
		panic(err) // embedded: present by construction
	}
	return string(b)
}

// vmKexecName is the tarball's name, the same as the real one's: the kexec
// module names the download after the URL.
const vmKexecName = "nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz"

// serveVMKexec builds the kexec tarball of the vm hosts (the payload's
// installer, but as a kernel and an initramfs that the real kexec boots)
// and serves it on the bridge beside the payload; the vm hosts' inventory
// entries point kexec_url and kexec_sha256 at it.
func (f *Fleet) serveVMKexec(ctx context.Context, p *payload.Payload, img vm.Image, tools vm.Tools) error {
	dir := filepath.Join(f.dir, "vm-kexec")
	if err := f.mkdirs(dir); err != nil {
		return err
	}
	start := time.Now()
	art, err := buildVMKexec(dir, p, img, tools)
	if err != nil {
		return fmt.Errorf("the vm hosts' kexec tarball: %w", err)
	}
	for _, path := range []string{art.Path, filepath.Join(dir, "initrd")} {
		if err := f.state.Add(simstate.Files, path); err != nil {
			return err
		}
	}
	f.logf("vm hosts' kexec installer built in %s (%d MiB)", time.Since(start).Round(100*time.Millisecond), art.Size>>20)
	// A vm host's gateway is QEMU's, whose connections reach this machine's
	// 127.0.0.1: served there, the tarball is at the gateway for the guest.
	base, stop, err := payload.Serve(f.ctx, &payload.Payload{ISO: p.ISO, Kexec: art}, "127.0.0.1:0")
	if err != nil {
		return err
	}
	f.onDown(func(context.Context) error { return stop() })
	_, port, _ := strings.Cut(strings.TrimPrefix(base, "http://"), ":")
	url := "http://" + net.JoinHostPort(f.plan.GW4.String(), port) + "/" + art.Name
	f.vms.kexecVars = [][2]string{{"kexec_url", url}, {"kexec_sha256", art.SHA256}}
	return nil
}

// buildVMKexec writes the tarball in dir: kexec/run, kexec/bzImage (the
// image's Debian kernel), kexec/initrd (the image's initramfs, the tools,
// the payload's store and the installer's own files) and kexec/kexec and
// kexec/ip, which run the guest's.
func buildVMKexec(dir string, p *payload.Payload, img vm.Image, tools vm.Tools) (payload.Artifact, error) {
	store, err := vm.Tree(p.StoreDir, "/nix/store")
	if err != nil {
		return payload.Artifact{}, err
	}
	kernel, err := os.ReadFile(img.Kernel)
	if err != nil {
		return payload.Artifact{}, err
	}
	baseInitrd, err := os.ReadFile(img.Initrd)
	if err != nil {
		return payload.Artifact{}, err
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost\n"
	own := []vm.File{
		{Path: "/init", Mode: 0o755, Data: vmScript("installer.sh")},
		{Path: "/nixbook-vm/boot.sh", Data: vmScript("boot.sh")},
		{Path: "/nixbook-vm/system", Data: p.System + "\n"},
		{Path: "/nixbook-vm/system-init", Mode: 0o755, Data: vmScript("system.sh")},
		{Path: "/nixbook-vm/vmlinuz", Data: string(kernel)},
		{Path: "/nixbook-vm/initrd.cpio", Data: string(baseInitrd)},
		{Path: "/etc/hostname", Data: installerHostname + "\n"},
		{Path: "/etc/hosts", Data: hosts},
		{Path: "/etc/machine-id", Mode: 0o444, Data: newMachineID() + "\n"},
		{Path: "/usr/local/bin/nixos-install", Mode: 0o755, Data: vmScript("nixos-install.sh")},
	}
	swBin := filepath.Join(p.StoreDir, strings.TrimPrefix(p.System, "/nix/store/"), "sw", "bin")
	for _, tool := range nixosTools(swBin) {
		if tool != "nixos-install" {
			own = append(own, vm.File{Path: "/usr/local/bin/" + tool, Link: p.System + "/sw/bin/" + tool})
		}
	}
	initrd := filepath.Join(dir, "initrd")
	if err := vm.Concat(initrd, []string{img.Initrd, tools.Overlay}, append(vm.Cpio(store), vm.Cpio(own)...)); err != nil {
		return payload.Artifact{}, err
	}
	tarball := filepath.Join(dir, vmKexecName)
	entries := []tarEntry{
		{name: "kexec/run", mode: 0o755, data: vmScript("kexec-run.sh")},
		{name: "kexec/kexec", mode: 0o755, data: "#!/bin/sh\n# kexec-tools: the guest's own (a vm host runs the real one).\nexec /usr/sbin/kexec \"$@\"\n"},
		{name: "kexec/ip", mode: 0o755, data: "#!/bin/sh\n# iproute2: the guest's own.\nexec ip \"$@\"\n"},
		{name: "kexec/bzImage", mode: 0o644, path: img.Kernel},
		{name: "kexec/initrd", mode: 0o644, path: initrd},
	}
	if err := writeTarGz(tarball, entries); err != nil {
		return payload.Artifact{}, err
	}
	sum, size, err := fileSHA256(tarball)
	if err != nil {
		return payload.Artifact{}, err
	}
	return payload.Artifact{Name: vmKexecName, Path: tarball, SHA256: sum, Size: size}, nil
}

type tarEntry struct {
	name string
	mode int64
	data string // the content, or
	path string // a file holding it
}

func writeTarGz(dst string, entries []tarEntry) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	gz, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "kexec/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(1, 0)}); err != nil {
		return err
	}
	for _, e := range entries {
		var r io.Reader = strings.NewReader(e.data)
		size := int64(len(e.data))
		if e.path != "" {
			f, err := os.Open(e.path)
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			r, size = f, st.Size()
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, r); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return out.Close()
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
