package nixosconfig

import (
	"context"

	"github.com/nixbook/nixbook/internal/modules/internal/nixosgen"
)

// What `nixbook generate` renders: a host's folder for a flake, from the
// same generator as the module's configuration.
type (
	// HostFile is one file of a host's folder.
	HostFile = nixosgen.HostFile
	// Host is what the folder is rendered from.
	Host = nixosgen.Host
	// InventoryArg is an argument and the variables it is passed from.
	InventoryArg = nixosgen.InventoryArg
)

// GenerateHost renders the folder a flake imports as hosts/<name>.
func GenerateHost(ctx context.Context, h Host) ([]HostFile, []string, error) {
	return nixosgen.GenerateHost(ctx, h)
}

// InventoryArgs are the arguments a host's folder is rendered from, as the
// stock playbooks pass them.
func InventoryArgs() []InventoryArg { return nixosgen.InventoryArgs() }
