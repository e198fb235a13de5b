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
	}
	f.mu.Lock()
	for _, kv := range f.payloadVars {
		vars = append(vars, kv[0], kv[1])
	}
	f.mu.Unlock()
	hosts := yamlMap()
	for _, h := range f.hosts {
		var disks, ids []string
		for _, d := range h.disks {
			disks = append(disks, d.Path())
			ids = append(ids, d.ByIDPath())
		}
		hosts.Content = append(hosts.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: h.spec.Name},
			yamlMap(
				"host", h.v4.Addr().String(),
				"port", 22,
				"user", "root",
				"ssh_key", f.clientKeyFile,
				"ovh_service", h.service,
				"disks", disks,
				"disk_ids", ids,
				"ipv4", h.v4.String(),
				"ipv4_gateway", f.plan.gw4.String(),
				"ipv6", h.v6.String(),
				"ipv6_gateway", f.plan.gw6.String(),
				"mac", h.spec.MAC,
			))
	}
	doc := yamlMap("all", yamlMap(
		"vars", yamlMap(vars...),
		"children", yamlMap(Group, yamlMap("hosts", hosts)),
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
