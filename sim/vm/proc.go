package vm

import (
	"syscall"

	"github.com/nixbook/nixbook/internal/proctree"
)

// signalTree sends sig to pid and every process under it: a build script's
// debootstrap, apt-get and the compilers DKMS runs. The script stays in the
// test's process group, so that Ctrl-C at a terminal still reaches it all.
func signalTree(pid int, sig syscall.Signal) {
	for _, p := range proctree.Tree(pid) {
		_ = syscall.Kill(p, sig)
	}
}
