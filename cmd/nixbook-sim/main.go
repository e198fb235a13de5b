// Command nixbook-sim runs a simulated fleet of OVH/Kimsufi dedicated
// servers on this machine, to rehearse nixbook playbooks on:
//
//	nixbook-sim up 3 --dir ./fleet        # writes ./fleet/fleet.yml
//	nixbook-sim status --dir ./fleet
//	nixbook-sim reboot ks1 --into rescue --dir ./fleet
//	nixbook-sim down --dir ./fleet
//
// It needs root: every server is a set of Linux namespaces with its own
// loop-backed disks and a real OpenSSH server.
package main

import (
	"os"

	"github.com/nixbook/nixbook/sim/hostinit"
	"github.com/nixbook/nixbook/sim/simcli"
)

func main() {
	// The same binary is the hosts' init and their reboot, kexec, udevadm.
	if code, ok := hostinit.Dispatch(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(simcli.Main(os.Args, os.Stdout, os.Stderr))
}
