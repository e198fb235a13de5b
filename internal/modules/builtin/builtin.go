// Package builtin lists every module nixbook ships, in one place.
package builtin

import (
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/assert"
	"github.com/nixbook/nixbook/internal/modules/chroot"
	"github.com/nixbook/nixbook/internal/modules/command"
	"github.com/nixbook/nixbook/internal/modules/copy"
	"github.com/nixbook/nixbook/internal/modules/debug"
	"github.com/nixbook/nixbook/internal/modules/factsmod"
	"github.com/nixbook/nixbook/internal/modules/fail"
	"github.com/nixbook/nixbook/internal/modules/fetchiso"
	"github.com/nixbook/nixbook/internal/modules/install"
	"github.com/nixbook/nixbook/internal/modules/kexec"
	"github.com/nixbook/nixbook/internal/modules/nixosconfig"
	"github.com/nixbook/nixbook/internal/modules/partition"
	"github.com/nixbook/nixbook/internal/modules/reboot"
	"github.com/nixbook/nixbook/internal/modules/rescue"
	"github.com/nixbook/nixbook/internal/modules/template"
	"github.com/nixbook/nixbook/internal/modules/unsquash"
	"github.com/nixbook/nixbook/internal/modules/waitssh"
	"github.com/nixbook/nixbook/internal/modules/zfs"
)

// Registry returns the built-in modules. template renders files with r and
// assert evaluates conditions with e; tmpl.New() provides both.
func Registry(r template.Renderer, e assert.Evaluator) *modules.Registry {
	return modules.NewRegistry(
		command.Spec,
		command.ShellSpec,
		copy.Spec,
		template.NewSpec(r),
		debug.Spec,
		assert.NewSpec(e),
		fail.Spec,
		factsmod.Spec,
		waitssh.Spec,
		reboot.Spec,
		partition.Spec,
		nixosconfig.Spec,
		rescue.Spec,
		fetchiso.Spec,
		unsquash.Spec,
		chroot.Spec,
		install.Spec,
		kexec.Spec,
		zfs.Spec,
	)
}
