package runner

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/tmpl"
)

func TestRenderConnections(t *testing.T) {
	for _, c := range []struct {
		name  string
		vars  map[string]any
		extra map[string]any
		want  inventory.Host
		err   string
	}{
		{name: "address", vars: map[string]any{"ip": "192.0.2.9", "ansible_host": "{{ ip }}"}, want: inventory.Host{Address: "192.0.2.9"}},
		{name: "port and user", vars: map[string]any{"p": 2222, "port": "{{ p }}", "ansible_user": "{{ inventory_hostname_short }}"}, want: inventory.Host{Port: 2222, User: "web1"}},
		{name: "extra vars win", vars: map[string]any{"ip": "192.0.2.9", "host": "{{ ip }}"}, extra: map[string]any{"ip": "192.0.2.10"}, want: inventory.Host{Address: "192.0.2.10"}},
		{name: "keys beside the inventory", vars: map[string]any{"k": "id_web", "ssh_key": []any{"{{ k }}", "/abs/key"}}, want: inventory.Host{KeyFiles: []string{"/inv/id_web", "/abs/key"}}},
		{name: "from another host", vars: map[string]any{"ansible_host": "{{ hostvars['db1']['ip'] }}"}, want: inventory.Host{Address: "192.0.2.2"}},
		{name: "bad port", vars: map[string]any{"ansible_port": "{{ 'x' }}"}, err: `ansible_port: renders "x"`},
		{name: "undefined", vars: map[string]any{"ansible_host": "{{ nope }}"}, err: "host web1.example.net: ansible_host:"},
		{name: "literal untouched", vars: map[string]any{"ansible_host": "10.0.0.1"}, want: inventory.Host{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &inventory.Host{Name: "web1.example.net", Groups: []string{"all"}, Vars: c.vars, Source: "/inv/hosts.yml:3"}
			db := &inventory.Host{Name: "db1", Groups: []string{"all"}, Vars: map[string]any{"ip": "192.0.2.2"}}
			inv := &inventory.Inventory{Hosts: []*inventory.Host{h, db}, Groups: map[string]*inventory.Group{"all": {Name: "all", Hosts: []string{"web1.example.net", "db1"}}}}
			err := RenderConnections(context.Background(), tmpl.New(), inv, c.extra)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := inventory.Host{Address: h.Address, Port: h.Port, User: h.User, KeyFiles: h.KeyFiles}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
