package sim

import (
	"bytes"
	"fmt"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// File names the fleet writes in its directory.
const (
	InventoryName = "fleet.yml"
	OVHConfName   = "ovh.conf"
)

// Group is the inventory group every host of the fleet is in.
const Group = "kimsufi"

// yamlMap builds an ordered YAML mapping from key, value pairs.
func yamlMap(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		var v yaml.Node
		switch val := kv[i+1].(type) {
		case *yaml.Node:
			v = *val
		default:
			if err := v.Encode(val); err != nil {
				panic(err) // only plain values are passed
			}
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: kv[i].(string)}, &v)
	}
	return n
}

// Inventory renders the fleet as an Ansible-shaped inventory for nixbook:
// connection settings per host, the OVH API endpoint and keys, the rescue
// key, the payload's URLs and what the OVH manager shows of each server.
func (f *Fleet) Inventory() ([]byte, error) {
	vars := []any{
		"ovh_endpoint", f.creds.Endpoint,
		"ovh_application_key", f.creds.ApplicationKey,
		"ovh_application_secret", f.creds.ApplicationSecret,
		"ovh_consumer_key", f.creds.ConsumerKey,
		"rescue_ssh_key", f.ClientPublicKey(),
		// The emulated tasks take seconds, not OVH's minutes.
		"ovh_task_poll", "1s",
	}
	f.mu.Lock()
	for _, kv := range f.payloadVars {
		vars = append(vars, kv[0], kv[1])
	}
	f.mu.Unlock()
	var smallest int64
	for _, h := range f.hosts {
		if s := h.smallestDisk(); smallest == 0 || s < smallest {
			smallest = s
		}
	}
	groupSizes := isoSizesFor(smallest)
	hosts := yamlMap()
	for _, h := range f.hosts {
		// The disks by id, as the stock inventory names them: a kernel
		// name may move to another disk between boots, an id does not.
		var disks, names []string
		for _, d := range h.disks {
			disks = append(disks, d.ByIDPath())
			names = append(names, d.Path())
		}
		addr := h.sshAddr()
		host := yamlMap(
			"host", addr.Addr().String(),
			"port", int(addr.Port()),
			"user", "root",
			"ssh_key", f.clientKeyFile,
			"ovh_service", h.service,
			"disks", disks,
			"disk_names", names,
			"ipv4", h.v4.String(),
			"ipv4_gateway", f.plan.GW4.String(),
		)
		if h.vm == nil {
			// A vm host's network is QEMU's, which carries IPv4 only.
			host.Content = append(host.Content, yamlMap("ipv6", h.v6.String(), "ipv6_gateway", f.plan.GW6.String()).Content...)
		}
		host.Content = append(host.Content, yamlMap("mac", h.spec.MAC).Content...)
		if h.vm != nil && f.vms != nil {
			for _, kv := range f.vms.kexecVars {
				host.Content = append(host.Content, yamlMap(kv[0], kv[1]).Content...)
			}
		}
		if own := isoSizesFor(h.smallestDisk()); own != groupSizes {
			sizes := own.vars()
			sizes[0].HeadComment = fmt.Sprintf("install-iso.yml's sizes for this host's disks (smallest %s)", mibText(h.smallestDisk()>>20))
			host.Content = append(host.Content, sizes...)
		}
		hosts.Content = append(hosts.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: h.spec.Name}, host)
	}
	group := yamlMap("vars", &yaml.Node{Kind: yaml.MappingNode, Content: groupSizes.vars()}, "hosts", hosts)
	group.Content[0].HeadComment = fmt.Sprintf("install-iso.yml partitions each disk with system_size, swap_size and\n"+
		"rescue_size (30GiB, 2GiB and 8GiB unless set), which need more than\n"+
		"these simulated disks hold: here they are scaled to the smallest disk\n"+
		"(%s). A host whose disks differ has its own below.", mibText(smallest>>20))
	doc := yamlMap("all", yamlMap(
		"vars", yamlMap(vars...),
		"children", yamlMap(Group, group),
	))
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	head := fmt.Sprintf("# A simulated fleet of %d servers; `nixbook-sim down --dir %s` removes it.\n", len(f.hosts), f.dir)
	return append([]byte(head), out...), nil
}

// isoSizes are the partition sizes install-iso.yml takes from the
// inventory, in MiB.
type isoSizes struct{ system, swap, rescue int64 }

// isoSizesFor scales install-iso.yml's default sizes (system 30 GiB, swap
// 2 GiB, rescue 8 GiB: 40 GiB before /home) down to a disk that cannot
// hold them: 3/8 of it for the system, 1/16 for swap, 1/4 for the rescue
// partition, which leaves 5/16 for /home. An 8 GiB disk gets 3 GiB,
// 512 MiB and 2 GiB.
func isoSizesFor(disk int64) isoSizes {
	mib := disk >> 20
	return isoSizes{system: min(30<<10, mib*3/8), swap: min(2<<10, mib/16), rescue: min(8<<10, mib/4)}
}

// vars are the sizes as inventory variables, written as the playbook's
// defaults are (3GiB, 512MiB).
func (s isoSizes) vars() []*yaml.Node {
	return yamlMap("system_size", mibText(s.system), "swap_size", mibText(s.swap), "rescue_size", mibText(s.rescue)).Content
}

// mibText writes a size in MiB as the playbooks do: 3GiB, 512MiB.
func mibText(mib int64) string {
	if mib%1024 == 0 && mib > 0 {
		return fmt.Sprintf("%dGiB", mib/1024)
	}
	return fmt.Sprintf("%dMiB", mib)
}

// smallestDisk is the size of the host's smallest disk.
func (h *Host) smallestDisk() int64 {
	var s int64
	for _, d := range h.disks {
		if s == 0 || d.Size < s {
			s = d.Size
		}
	}
	return s
}

// OVHConf renders go-ovh's configuration file for the fleet's API.
func (f *Fleet) OVHConf() []byte {
	c := f.creds
	return []byte(fmt.Sprintf("[default]\nendpoint=%s\n\n[%s]\napplication_key=%s\napplication_secret=%s\nconsumer_key=%s\n",
		c.Endpoint, c.Endpoint, c.ApplicationKey, c.ApplicationSecret, c.ConsumerKey))
}

// InventoryPath is DIR/fleet.yml.
func (f *Fleet) InventoryPath() string { return filepath.Join(f.dir, InventoryName) }

// OVHConfPath is DIR/ovh.conf.
func (f *Fleet) OVHConfPath() string { return filepath.Join(f.dir, OVHConfName) }

func (f *Fleet) writeInventory() error {
	inv, err := f.Inventory()
	if err != nil {
		return err
	}
	if err := f.writeFile(f.InventoryPath(), inv, 0o600); err != nil {
		return err
	}
	return f.writeFile(f.OVHConfPath(), f.OVHConf(), 0o600)
}
