package playbooks_test

import (
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules/builtin"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// omitted stands for the runner's omit marker, which drops an argument.
const omitted = "omit-marker"

// TestStockRelease renders the stock playbooks' nixos_config and install
// arguments: nixos_release names both the channel and the stateVersion,
// and state_version and nixos_channel override each part.
func TestStockRelease(t *testing.T) {
	engine := tmpl.New()
	reg := builtin.Registry(engine, engine)
	t.Chdir(t.TempDir())
	tests := []struct {
		name          string
		vars          map[string]any
		state, rel    string
		channel       string // "" when the task leaves it to the release
		channelAbsent bool
	}{
		{name: "defaults", vars: map[string]any{}, state: "26.05", rel: "26.05", channelAbsent: true},
		{name: "release", vars: map[string]any{"nixos_release": "25.11"}, state: "25.11", rel: "25.11", channelAbsent: true},
		{name: "old state kept", vars: map[string]any{"nixos_release": "26.05", "state_version": "24.05"}, state: "24.05", rel: "26.05", channelAbsent: true},
		{name: "channel override", vars: map[string]any{"nixos_channel": "https://example.org/c"}, state: "26.05", rel: "26.05", channel: "https://example.org/c"},
	}
	for _, name := range []string{"install.yml", "install-iso.yml"} {
		pb, err := playbooks.Open(name, reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			var state, rel, channel string
			channelSeen := false
			for _, task := range pb.Plays[0].Tasks {
				if task.Module != "nixos_config" && task.Module != "install" || task.Args == nil {
					continue
				}
				args := map[string]*yaml.Node{}
				for i := 0; i+1 < len(task.Args.Content); i += 2 {
					args[task.Args.Content[i].Value] = task.Args.Content[i+1]
				}
				render := func(key string) (string, bool) {
					n, ok := args[key]
					if !ok {
						return "", false
					}
					vars := map[string]any{"omit": omitted}
					for k, v := range tt.vars {
						vars[k] = v
					}
					out, err := engine.RenderNode(n, vars)
					if err != nil {
						t.Fatalf("%s %s: %s: %v", name, tt.name, key, err)
					}
					if out == nil || out.Value == omitted {
						return "", false
					}
					return out.Value, true
				}
				if v, ok := render("state_version"); ok {
					state = v
				}
				if v, ok := render("release"); ok {
					rel = v
				}
				if v, ok := render("channel"); ok && v != "" {
					channel, channelSeen = v, true
				}
			}
			if state != tt.state || rel != tt.rel || channel != tt.channel || channelSeen == tt.channelAbsent {
				t.Errorf("%s %s: state_version %q, release %q, channel %q; want %q, %q, %q", name, tt.name, state, rel, channel, tt.state, tt.rel, tt.channel)
			}
		}
	}
}
