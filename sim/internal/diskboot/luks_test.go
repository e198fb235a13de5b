package diskboot

import (
	"strings"
	"testing"
)

// What the installed configuration says decides whether its initrd opens
// the volume its root lies in.
func TestLUKSReasons(t *testing.T) {
	v := &luksVolume{part: "sda3", names: []string{"/dev/sda3", "/dev/disk/by-uuid/1593e1c8"}, openers: []string{"/rpool.key"}}
	devices := func(entry map[string]any) map[string]any {
		return map[string]any{"boot": map[string]any{"initrd": map[string]any{"luks": map[string]any{"devices": map[string]any{"rpool": entry}}}}}
	}
	tests := []struct {
		name string
		raw  map[string]any
		want string // "" when the initrd opens it
	}{
		{name: "by UUID, with the key the initrd holds", raw: devices(map[string]any{"device": "/dev/disk/by-uuid/1593e1c8", "keyFile": "/rpool.key"})},
		{name: "by kernel name", raw: devices(map[string]any{"device": "/dev/sda3", "keyFile": "/rpool.key"})},
		{name: "no keyFile: a passphrase at the console", raw: devices(map[string]any{"device": "/dev/sda3"}), want: "has no keyFile"},
		{name: "a keyFile that does not open it", raw: devices(map[string]any{"device": "/dev/sda3", "keyFile": "/other.key"}), want: "keyFile /other.key is no key of the initrd"},
		{name: "another device", raw: devices(map[string]any{"device": "/dev/sdb3", "keyFile": "/rpool.key"}), want: "no boot.initrd.luks.devices entry names it"},
		{name: "no LUKS at all", raw: map[string]any{}, want: "no boot.initrd.luks.devices entry names it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(luksReasons(tt.raw, v), "\n")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("reasons %q, want %q", got, tt.want)
			}
		})
	}
}
