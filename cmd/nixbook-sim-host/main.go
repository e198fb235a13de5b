// Command nixbook-sim-host is the part of a simulated fleet that runs inside
// its hosts (their init, reboot, kexec, udevadm), as a small binary that
// tests build without the rest of the fleet.
package main

import (
	"fmt"
	"os"

	"github.com/nixbook/nixbook/sim/hostinit"
)

func main() {
	code, ok := hostinit.Dispatch(os.Args)
	if !ok {
		fmt.Fprintln(os.Stderr, "nixbook-sim-host runs inside the hosts of a simulated fleet; see nixbook-sim")
		code = 2
	}
	os.Exit(code)
}
