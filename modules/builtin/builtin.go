// Package builtin lists every module nixbook ships, in one place.
package builtin

import (
	"github.com/nixbook/nixbook/modules"
	"github.com/nixbook/nixbook/modules/assert"
	"github.com/nixbook/nixbook/modules/chroot"
	"github.com/nixbook/nixbook/modules/command"
	"github.com/nixbook/nixbook/modules/copy"
	"github.com/nixbook/nixbook/modules/debug"
	"github.com/nixbook/nixbook/modules/factsmod"
	"github.com/nixbook/nixbook/modules/fail"
	"github.com/nixbook/nixbook/modules/fetchiso"
	"github.com/nixbook/nixbook/modules/install"
	"github.com/nixbook/nixbook/modules/kexec"
	"github.com/nixbook/nixbook/modules/nixosconfig"
	"github.com/nixbook/nixbook/modules/partition"
	"github.com/nixbook/nixbook/modules/reboot"
	"github.com/nixbook/nixbook/modules/rescue"
	"github.com/nixbook/nixbook/modules/template"
	"github.com/nixbook/nixbook/modules/unsquash"
	"github.com/nixbook/nixbook/modules/waitssh"
	"github.com/nixbook/nixbook/modules/zfs"
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
