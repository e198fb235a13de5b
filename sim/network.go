package sim

import "github.com/nixbook/nixbook/sim/internal/hostnet"

// Default address ranges of a fleet (documentation ranges).
const (
	DefaultSubnet  = hostnet.DefaultSubnet
	DefaultSubnet6 = hostnet.DefaultSubnet6
)

// MaxHosts is how many hosts a /24 holds besides the gateway at .254.
const MaxHosts = hostnet.MaxHosts
