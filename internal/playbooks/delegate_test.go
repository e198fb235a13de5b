package playbooks

import (
	"strings"
	"testing"
)

func TestDelegateTo(t *testing.T) {
	tests := []struct {
		name, task, want string // want: DelegateTo, or the error
	}{
		{"localhost", "command: ls\n      delegate_to: localhost", "localhost"},
		{"loopback address", "command: ls\n      delegate_to: 127.0.0.1", "localhost"},
		{"another host", "command: ls\n      delegate_to: ks2", `play.yml:5: delegate_to: only localhost is supported (the task runs on the controller), got "ks2"`},
		{"template", "command: ls\n      delegate_to: \"{{ x }}\"", `play.yml:5: delegate_to: only localhost is supported`},
		{"install module", "reboot: {}\n      delegate_to: localhost", `play.yml:5: delegate_to: module "reboot" cannot run on the controller`},
		{"with chroot", "command: ls\n      chroot: /mnt\n      delegate_to: localhost", `play.yml:6: delegate_to and chroot cannot be used together`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "- hosts: all\n  tasks:\n    - name: x\n      " + tt.task + "\n"
			pb, err := LoadBytes("play.yml", []byte(src), "", testRegistry())
			if strings.HasPrefix(tt.want, "play.yml") {
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
					t.Fatalf("error:\n%v\nwant:\n%s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := pb.Plays[0].Tasks[0].DelegateTo; got != tt.want {
				t.Errorf("DelegateTo = %q, want %q", got, tt.want)
			}
		})
	}
}
