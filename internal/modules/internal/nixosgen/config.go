package nixosgen

import (
	"bytes"
	"path"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/facts"
)

// Layout is what is mounted under the new system's root, as the host's
// /proc/self/mounts shows it.
type Layout struct {
	mounts []mount
	// RootMounted says whether a file system is mounted at the root itself.
	RootMounted bool
}

// ReadLayout reads the mounts under root from the text of /proc/self/mounts.
func ReadLayout(procMounts, root string) Layout {
	mounts, rootMounted := layoutMounts(procMounts, root)
	return Layout{mounts: mounts, RootMounted: rootMounted}
}

// ConfigurationFile is the file of a Config that configures the system.
const ConfigurationFile = "configuration.nix"

// Config is a resolved configuration of one server: its files and what
// nixos_config reports of it.
type Config struct {
	sys   *system
	Files []HostFile // configuration.nix and NetworkFile
	Notes []string   // worth showing the user
}

// Configure resolves a's configuration for the host name with facts f over
// layout l, refusing what would lock the user out or what the layout lacks,
// and renders its files.
func Configure(a Args, name string, f *facts.Facts, l Layout) (*Config, error) {
	sys, err := resolve(a, inputs{name: name, facts: f, mounts: l.mounts, rootMounted: l.RootMounted})
	if err != nil {
		return nil, err
	}
	return &Config{sys: sys, Notes: sys.notes, Files: []HostFile{
		{Name: ConfigurationFile, Content: []byte(renderConfiguration(sys))},
		{Name: NetworkFile, Content: []byte(renderNetwork(sys))},
	}}, nil
}

// file is the content of the configuration's file of that name.
func (c *Config) file(name string) []byte {
	for _, f := range c.Files {
		if f.Name == name {
			return f.Content
		}
	}
	return nil
}

// Authorizes says whether login, a public key, is among the configuration's
// keys for root; true when login is not a key (nothing to compare with).
func (c *Config) Authorizes(login string) bool {
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(login))
	if err != nil {
		return true
	}
	for _, k := range c.sys.sshKeys {
		if got, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err == nil && bytes.Equal(got.Marshal(), want.Marshal()) {
			return true
		}
	}
	return false
}

// Output is what nixos_config reports of the configuration; dir is where
// its files go.
func (c *Config) Output(dir string) map[string]any {
	s := c.sys
	out := map[string]any{
		"hostname":     s.hostName,
		"host_id":      s.hostID,
		"interface":    s.nic.name,
		"nic_naming":   s.nic.naming,
		"ipv4":         s.ipv4.String(),
		"ipv4_gateway": s.gw4.String(),
		"nameservers":  s.nameservers,
		"zfs":          s.boot.zfs,
		"files":        []string{path.Join(dir, ConfigurationFile), path.Join(dir, NetworkFile)},
	}
	if s.hasIPv6() {
		out["ipv6"] = s.ipv6.String()
		out["ipv6_gateway"] = s.gw6.String()
	}
	if s.boot.uefi {
		out["firmware"] = "uefi"
		out["efi_mounts"] = s.boot.efiMounts
	} else {
		out["firmware"] = "bios"
		out["grub_devices"] = s.boot.devices
	}
	return out
}

// HardwarePath is where nixos-generate-config writes the hardware
// configuration of the system under root.
func HardwarePath(root string) string { return hardwarePath(root) }

// StaleHardware says why hw, the text of a hardware configuration, no
// longer describes layout l ("" when it does): missing lists which of the
// devices it names do not exist on the host.
func StaleHardware(hw string, l Layout, missing func(devices []string) []string) string {
	return staleHardware(hardwareFileSystems(hw), l.mounts, missing)
}
