package kexec

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/sim/simtest"
)

// TestContract holds kexec to the module contract on simulated servers in
// the rescue: Check downloads nothing and leaves the server on its boot,
// two Checks agree, and Apply runs what the plan lists, comes back on the
// installer, where a Check plans nothing more.
func TestContract(t *testing.T) {
	f := simtest.Start(t, 3)
	vars := f.Sim().PayloadVars()
	var next atomic.Int32
	moduletest.Contract(t, Spec, func(t *testing.T) moduletest.Subject {
		name := fmt.Sprintf("ks%d", next.Add(1))
		h := f.ModuleHost(t, name)
		return moduletest.Subject{
			Args: fmt.Sprintf("url: %s\nsha256: %s\ntimeout: 1m\n", vars["kexec_url"], vars["kexec_sha256"]),
			Host: h,
			State: func(t *testing.T) string {
				files := transport.Cmd{Args: []string{"ls", "-a", "/root"}}
				res, err := h.Probe(t.Context(), files)
				if err != nil {
					t.Fatalf("%s: %v", files.Line(), err)
				}
				return fmt.Sprintf("mode %s, boot %s, /root holds %q", f.Mode(name), f.BootID(name), res.Stdout)
			},
		}
	})
}
