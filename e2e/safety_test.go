package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// A host whose ovh_service names another server of the account (a
// copy-paste typo) never gets that server rebooted, and a server OVH
// flagged is never driven: both are refused before any write through the
// API, in --check and for real, naming the host, the service, both
// addresses and the inventory line.
func TestWrongServerIsNeverDriven(t *testing.T) {
	f := start(t, 2, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		// Not in the rescue: reaching it takes the API.
		"ks1": {Mode: "installer"},
		"ks2": {Mode: "installer", OVHState: "hacked"},
	}}))
	ks1, ks2 := f.Host("ks1"), f.Host("ks2")
	boot1, boot2 := f.BootID("ks1"), f.BootID("ks2")
	sums := f.diskSums()

	typo := regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf(
		"ks1: refusing to drive OVH service %s: it is not this host (nixbook dials %s; OVH gives %s the address %s and the blocks %s/32",
		ks2.Service, ks1.Addr, ks2.Service, ks2.Addr, ks2.Addr)) + `.*; check ovh_service or the host's address at .*fleet\.yml:\d+`)
	for _, playbook := range []string{"install.yml", "install-iso.yml"} {
		for _, args := range [][]string{{"--check"}, nil} {
			r := f.nixbook(t, playbook, append([]string{"-l", "ks1", "-e", "ovh_service=" + ks2.Service}, args...)...)
			if r.code != 2 || !typo.MatchString(r.out) {
				t.Errorf("%s %v with ks2's service for ks1: exit %d, want the refusal %q:\n%s", playbook, args, r.code, typo, r.out)
			}
		}
	}

	for _, args := range [][]string{{"--check"}, nil} {
		r := f.nixbook(t, "install.yml", append([]string{"-l", "ks2"}, args...)...)
		want := fmt.Sprintf(`ks2: refusing to drive OVH service %s: its state is "hacked", not "ok"`, ks2.Service)
		if r.code != 2 || !strings.Contains(r.out, want) {
			t.Errorf("hacked server %v: exit %d, want %q:\n%s", args, r.code, want, r.out)
		}
	}

	for _, h := range []simtest.Host{ks1, ks2} {
		for _, c := range f.Emulator.Calls(h.Service) {
			if c.Method != "GET" {
				t.Errorf("the API received %s %s", c.Method, c.Path)
			}
		}
	}
	if f.BootID("ks1") != boot1 || f.BootID("ks2") != boot2 {
		t.Error("a refused server was rebooted")
	}
	if fmt.Sprint(f.diskSums()) != fmt.Sprint(sums) {
		t.Error("a refused server's disks changed")
	}
}
