package ssh

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kevinburke/ssh_config"

	"github.com/nixbook/nixbook/internal/transport"
)

const testConfig = `
Host web-*
    User deploy
    Port 2200
    IdentityFile ~/.ssh/web_%r
    IdentityFile /keys/%h

Host alias
    HostName %h.example.org
    ProxyJump ops@bastion:2022

Host inner
    HostName 10.0.0.5
    ProxyJump ssh://first:23,second

Host second
    HostName 192.0.2.2
    User jumper

Host direct
    ProxyJump none

Host proxied
    HostName proxied.example.org
    ProxyCommand nc %h %p

Host trusted
    HostKeyAlias web
    UserKnownHostsFile ~/.ssh/kh_%h /etc/kh
    GlobalKnownHostsFile none
    StrictHostKeyChecking yes
`

// sources are the two ways a config is read: ssh -G when OpenSSH's client
// is installed, the library otherwise. They must agree.
func sources(t *testing.T, config string) map[string]configSource {
	t.Helper()
	cfg, err := ssh_config.Decode(strings.NewReader(config))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	srcs := map[string]configSource{"library": libSource{cfg: cfg}}
	if g := newSSHGSource("", path, true, "/home/me", libSource{cfg: cfg}); g != nil {
		srcs["ssh -G"] = g
	} else {
		t.Log("no ssh client: ssh -G not tested")
	}
	return srcs
}

func TestResolve(t *testing.T) {
	for name, src := range sources(t, testConfig) {
		t.Run(name, func(t *testing.T) { testResolve(t, src) })
	}
}

func testResolve(t *testing.T, src configSource) {
	r := resolver{src: src, defaultUser: "root", home: "/home/me", localUser: "me"}
	defaults := []string{"/home/me/.ssh/id_ed25519", "/home/me/.ssh/id_ecdsa", "/home/me/.ssh/id_rsa"}
	tests := []struct {
		name   string
		target transport.Target
		at     string // DialOptions.Address
		want   route
	}{
		{
			name:   "plain name, defaults",
			target: transport.Target{Name: "db1"},
			want:   route{target: endpoint{name: "db1", host: "db1", port: 22, user: "root", optional: defaults}},
		},
		{
			name:   "address dialled, name kept for host keys",
			target: transport.Target{Name: "db1", Address: "192.0.2.7"},
			want:   route{target: endpoint{name: "db1", host: "192.0.2.7", port: 22, user: "root", optional: defaults}},
		},
		{
			name:   "config user, port and identity files with tokens",
			target: transport.Target{Name: "web-1"},
			want: route{target: endpoint{name: "web-1", host: "web-1", port: 2200, user: "deploy",
				optional: []string{"/home/me/.ssh/web_deploy", "/keys/web-1"}}},
		},
		{
			name:   "inventory values win",
			target: transport.Target{Name: "web-1", Port: 22, User: "root", KeyFiles: []string{"/inv/key"}},
			want:   route{target: endpoint{name: "web-1", host: "web-1", port: 22, user: "root", keyFiles: []string{"/inv/key"}}},
		},
		{
			name:   "host name and one jump",
			target: transport.Target{Name: "alias", KeyFiles: []string{"/inv/key"}},
			want: route{
				hops:   []endpoint{{name: "bastion", host: "bastion", port: 2022, user: "ops", optional: append(append([]string{}, defaults...), "/inv/key")}},
				target: endpoint{name: "alias", host: "alias.example.org", port: 22, user: "root", keyFiles: []string{"/inv/key"}},
			},
		},
		{
			name:   "two jumps, each resolved through the config",
			target: transport.Target{Name: "inner"},
			want: route{
				hops: []endpoint{
					{name: "first", host: "first", port: 23, user: "root", optional: defaults},
					{name: "second", host: "192.0.2.2", port: 22, user: "jumper", optional: defaults},
				},
				target: endpoint{name: "inner", host: "10.0.0.5", port: 22, user: "root", optional: defaults},
			},
		},
		{
			name:   "ProxyJump none",
			target: transport.Target{Name: "direct"},
			want:   route{target: endpoint{name: "direct", host: "direct", port: 22, user: "root", optional: defaults}},
		},
		{
			name:   "another address: the host's own block, its name for keys",
			target: transport.Target{Name: "ks1", Address: "web-1"},
			at:     "2001:db8::7",
			want: route{target: endpoint{name: "ks1", host: "web-1", at: "2001:db8::7", port: 2200, user: "deploy",
				optional: []string{"/home/me/.ssh/web_deploy", "/keys/web-1"}}},
		},
		{
			name:   "another address through a jump host",
			target: transport.Target{Name: "inner"},
			at:     "10.0.0.6",
			want: route{
				hops: []endpoint{
					{name: "first", host: "first", port: 23, user: "root", optional: defaults},
					{name: "second", host: "192.0.2.2", port: 22, user: "jumper", optional: defaults},
				},
				target: endpoint{name: "inner", host: "10.0.0.5", at: "10.0.0.6", port: 22, user: "root", optional: defaults},
			},
		},
		{
			name:   "another address through a ProxyCommand",
			target: transport.Target{Name: "proxied"},
			at:     "2001:db8::7",
			want: route{target: endpoint{name: "proxied", host: "proxied.example.org", at: "2001:db8::7", port: 22, user: "root", optional: defaults,
				proxyCommand: "nc 2001:db8::7 22"}},
		},
		{
			name:   "the user's known_hosts, alias and strictness",
			target: transport.Target{Name: "trusted"},
			want: route{target: endpoint{name: "trusted", host: "trusted", port: 22, user: "root", optional: defaults,
				hostKeyAlias: "web", knownHosts: []string{"/home/me/.ssh/kh_trusted", "/etc/kh"}, strict: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.resolve(context.Background(), tt.target, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			kh := []string{"/home/me/.ssh/known_hosts", "/home/me/.ssh/known_hosts2", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
			for _, e := range append(got.hops, got.target) {
				if tt.want.target.knownHosts == nil && !reflect.DeepEqual(e.knownHosts, kh) {
					t.Errorf("%s: known hosts files %q, want %q", e.name, e.knownHosts, kh)
				}
			}
			// OpenSSH's default keys are tried, never asked a passphrase for.
			for _, e := range append([]*endpoint{&got.target}, ptrs(got.hops)...) {
				isDefault := len(e.optional) >= len(defaults) && reflect.DeepEqual(e.optional[:len(defaults)], defaults)
				if len(e.optional) > 0 && e.defaultKeys != isDefault {
					t.Errorf("%s: defaultKeys %v with optional keys %q", e.name, e.defaultKeys, e.optional)
				}
				e.defaultKeys = false
			}
			if tt.want.target.knownHosts == nil {
				for i := range got.hops {
					got.hops[i].knownHosts = nil
				}
				got.target.knownHosts = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func ptrs(es []endpoint) []*endpoint {
	out := make([]*endpoint, len(es))
	for i := range es {
		out[i] = &es[i]
	}
	return out
}

func TestResolveErrors(t *testing.T) {
	for name, src := range sources(t, "Host badport\n    Port eighty\nHost badjump\n    ProxyJump user@:22\n") {
		r := resolver{src: src, defaultUser: "root"}
		for _, target := range []transport.Target{{}, {Name: "badport"}, {Name: "badjump"}} {
			if _, err := r.resolve(context.Background(), target, ""); err == nil {
				t.Errorf("%s: %+v: no error", name, target)
			}
		}
	}
}

func TestParseJump(t *testing.T) {
	tests := []struct {
		spec, user, host string
		port             int
	}{
		{"bastion", "", "bastion", 0},
		{"ops@bastion", "ops", "bastion", 0},
		{"ops@bastion:2022", "ops", "bastion", 2022},
		{"[2001:db8::1]:2022", "", "2001:db8::1", 2022},
		{"ssh://ops@bastion:2022", "ops", "bastion", 2022},
		{"ssh://bastion", "", "bastion", 0},
	}
	for _, tt := range tests {
		u, h, p, err := parseJump(tt.spec)
		if err != nil || u != tt.user || h != tt.host || p != tt.port {
			t.Errorf("parseJump(%q) = %q %q %d %v", tt.spec, u, h, p, err)
		}
	}
}

func TestLoadSSHConfig(t *testing.T) {
	dir := t.TempDir()
	if cfg, err := loadSSHConfig(filepath.Join(dir, "missing")); cfg != nil || err != nil {
		t.Fatalf("missing file: %v, %v", cfg, err)
	}
	if cfg, err := loadSSHConfig("none"); cfg != nil || err != nil {
		t.Fatalf("none: %v, %v", cfg, err)
	}
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("Host a\n  Port 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadSSHConfig(good)
	if err != nil || cfg == nil {
		t.Fatalf("good: %v", err)
	}
	if p, _ := cfg.Get("a", "Port"); p != "2" {
		t.Fatalf("Port = %q", p)
	}
}
