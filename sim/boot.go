package sim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nixbook/nixbook/sim/hostinit"
)

// What each boot mode calls itself.
const (
	rescueHostname    = "rescue12-customer-eu"
	installerHostname = "nixos-installer"

	rescueOSRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`
	installerOSRelease = `ANSI_COLOR="1;34"
BUG_REPORT_URL="https://github.com/NixOS/nixpkgs/issues"
BUILD_ID="22.11.4773.ea4c80b39be"
DOCUMENTATION_URL="https://nixos.org/learn.html"
HOME_URL="https://nixos.org/"
ID=nixos
LOGO="nix-snowflake"
NAME=NixOS
PRETTY_NAME="NixOS 22.11 (Raccoon)"
SUPPORT_URL="https://nixos.org/community.html"
VARIANT_ID=installer
VERSION="22.11 (Raccoon)"
VERSION_CODENAME=raccoon
VERSION_ID="22.11"
`
	// OVH's resolvers.
	resolvConf = "nameserver 213.186.33.99\nnameserver 2001:41d0:3:163::1\n"
)

// sshdConfig serves root by key only, with the boot's host key and no slow
// extras; SFTP is there because transports upload through it.
const sshdConfig = `Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 /etc/ssh/authorized_keys.d/%u
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
PidFile /run/sshd.pid
MaxStartups 100:30:200
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
`

// hiddenDirs are the machine's directories a host sees empty.
func hiddenDirs() []string {
	var dirs []string
	for _, d := range []string{"/home", "/mnt", "/media", "/nix", "/opt", "/srv", "/work", "/var/lib/nixbook-sim"} {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// prepare builds the boot of r.mode: the init's config, the host key and the
// network it brings up.
func (h *Host) prepare(ctx context.Context, r bootRequest) (*boot, error) {
	b := &boot{nic: h.spec.NIC, network: true, net: h.f.plan.OVH(h.spec.Index)}
	stage := filepath.Join(h.dir, "stage")
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return nil, err
	}
	b.cfg = hostinit.Config{
		Host:       h.spec.Name,
		Mode:       string(r.mode),
		BootID:     newBootID(),
		StageDir:   stage,
		RAMDiskMiB: h.spec.RAMDiskMiB,
		MemoryMiB:  h.spec.MemoryMiB,
		UEFI:       h.spec.UEFI(),
		Helper:     h.f.helper,
		Control:    h.socket,
		Hide:       hiddenDirs(),
		Remove: []string{
			"/etc/ssh/ssh_host_*", "/etc/ssh/sshd_config.d/*", "/etc/ssh/authorized_keys.d",
			"/etc/motd", "/etc/update-motd.d/*",
		},
		SSHD: true,
	}

	switch r.mode {
	case ModeRescue:
		key, err := newKeyPair("root@" + rescueHostname)
		if err != nil {
			return nil, err
		}
		b.hostKey, b.machineID, b.authKeys = key, newMachineID(), r.rescueKey
		b.cfg.Hostname, b.osRelease = rescueHostname, rescueOSRelease
		b.net.DHCP4 = h.spec.RescueNetwork == RescueDHCP
	case ModeInstaller:
		// kexec carries the rescue's host keys, root's authorized keys and
		// machine id into the installer.
		b.hostKey = KeyPair{Private: r.carried["/etc/ssh/ssh_host_ed25519_key"], Public: r.carried["/etc/ssh/ssh_host_ed25519_key.pub"]}
		b.machineID = strings.TrimSpace(r.carried["/etc/machine-id"])
		b.authKeys = r.carried["/root/.ssh/authorized_keys"]
		if b.hostKey.Private == "" || b.hostKey.Public == "" {
			// A fleet that starts in the installer: as if kexec'd from a
			// rescue that had just booted.
			key, err := newKeyPair("root@" + rescueHostname)
			if err != nil {
				return nil, err
			}
			b.hostKey, b.authKeys = key, r.rescueKey
		}
		b.cfg.Hostname, b.osRelease = installerHostname, installerOSRelease
		if r.carried != nil {
			// The installer's network after a kexec, as nixos-images
			// restores it, and what the host's KexecNetwork faults make of it.
			b.net, b.why = h.f.plan.Kexec(h.spec.Index, r.lease4, h.spec.RescueNetwork == RescueDHCP, h.spec.KexecNetwork)
		}
		h.f.installerSystem(b)
		for _, p := range sortedKeys(r.carried) {
			if strings.HasPrefix(p, "/etc/ssh/ssh_host_") && !strings.HasSuffix(p, "_ed25519_key") && !strings.HasSuffix(p, "_ed25519_key.pub") {
				mode := uint32(0o600)
				if strings.HasSuffix(p, ".pub") {
					mode = 0o644
				}
				b.cfg.Files = append(b.cfg.Files, hostinit.File{Path: p, Mode: mode, Data: r.carried[p]})
			}
		}
	case ModeDisk:
		if err := h.prepareDisk(ctx, b); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cannot boot into %s", r.mode)
	}
	if b.machineID == "" {
		b.machineID = newMachineID()
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n%s\t%s\n",
		h.v4.Addr(), b.cfg.Hostname, h.v6.Addr(), b.cfg.Hostname)
	files := []hostinit.File{
		{Path: "/etc/hostname", Data: b.cfg.Hostname + "\n"},
		{Path: "/etc/hosts", Data: hosts},
		{Path: "/etc/os-release", Data: b.osRelease},
		{Path: "/etc/machine-id", Mode: 0o444, Data: b.machineID + "\n"},
		{Path: "/etc/resolv.conf", Data: resolvConf},
		{Path: "/etc/ssh/sshd_config", Data: sshdConfig},
		{Path: "/etc/ssh/ssh_host_ed25519_key", Mode: 0o600, Data: b.hostKey.Private},
		{Path: "/etc/ssh/ssh_host_ed25519_key.pub", Data: b.hostKey.Public},
	}
	if r.mode == ModeDisk {
		// Where NixOS puts users.users.root.openssh.authorizedKeys: /root is
		// the installed disk's, and nothing of the simulator's goes there.
		files = append(files, hostinit.File{Path: "/etc/ssh/authorized_keys.d/root", Mode: 0o644, Data: b.authKeys})
	} else {
		files = append(files,
			hostinit.File{Path: "/root/.ssh/authorized_keys", Mode: 0o600, Data: b.authKeys},
			// A plain root shell: nothing slow at login.
			hostinit.File{Path: "/root/.profile", Data: "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"})
	}
	commands := hostinit.Commands()
	for _, p := range sortedKeys(commands) {
		files = append(files, hostinit.File{Path: p, Link: hostinit.HelperPath})
	}
	b.cfg.Files = append(files, b.cfg.Files...)
	return b, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// carriedFiles reads what kexec carries from the running host: its host
// keys, root's authorized keys and its machine id.
func (h *Host) carriedFiles() (map[string]string, error) {
	pid := h.pid()
	if pid == 0 {
		return nil, fmt.Errorf("%s is not running", h.spec.Name)
	}
	root := fmt.Sprintf("/proc/%d/root", pid)
	carried := map[string]string{}
	keys, _ := filepath.Glob(root + "/etc/ssh/ssh_host_*")
	paths := []string{"/root/.ssh/authorized_keys", "/root/.ssh/authorized_keys2", "/etc/machine-id"}
	for _, k := range keys {
		paths = append(paths, strings.TrimPrefix(k, root))
	}
	for _, p := range paths {
		data, err := os.ReadFile(root + p)
		if err == nil {
			carried[p] = string(data)
		}
	}
	if two := carried["/root/.ssh/authorized_keys2"]; two != "" {
		carried["/root/.ssh/authorized_keys"] += two
		delete(carried, "/root/.ssh/authorized_keys2")
	}
	return carried, nil
}
