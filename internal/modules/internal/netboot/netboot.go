// Package netboot is what modules that drive an OVH server's netboot share:
// the service a host means and the proof that it is this host, the
// inventory values they declare (Inventory), and the step that points its
// netboot at its disk. The API itself comes from the host view (OVH,
// OVHWriter), which the runner makes.
package netboot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/ovh"
)

// Harddisk is the netboot type of a server's boot from its own disks.
const Harddisk = "harddisk"

// Service is the service name a task means: its service argument, which
// defaults from the host's ovh_service variable (see ServiceDoc).
func Service(arg string) (string, error) {
	if s := strings.TrimSpace(arg); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("no OVH service name: set the task's service argument or the host's %s variable (the server's name in the OVH manager, such as ns1234.ip-203-0-113.eu)", ovh.VarService)
}

// Inventory is what modules that drive a server's netboot read of the
// host's inventory beside their arguments and the API's credentials; they
// embed it in their Args, inline, so that it is declared.
type Inventory struct {
	Monitoring        string `yaml:"-" var:"ovh_monitoring" doc:"off turns OVH's monitoring of the server off while it boots the rescue, on again with its disk's netboot"`
	EFIBootloaderPath string `yaml:"-" var:"ovh_efi_bootloader_path" doc:"the loader a UEFI server's disk boots; default: \\EFI\\BOOT\\BOOTX64.EFI"`
}

// Check reports a malformed value.
func (i Inventory) Check() error {
	_, err := i.monitoringOff()
	return err
}

func (i Inventory) monitoringOff() (bool, error) {
	return ovh.MonitoringOff(map[string]any{ovh.VarMonitoring: i.Monitoring})
}

// currentBoot finds the server's netboot among boots, else asks the API;
// nil when it cannot be known. It only serves --diff, so a failure is no
// error.
func currentBoot(ctx context.Context, client *ovh.Reader, service string, srv *ovh.Server, boots []ovh.Boot) *ovh.Boot {
	if srv.BootID == nil {
		return nil
	}
	for i := range boots {
		if boots[i].ID == *srv.BootID {
			return &boots[i]
		}
	}
	b, err := client.GetBoot(ctx, service, *srv.BootID)
	if err != nil {
		return nil
	}
	return b
}

// describeBoot says what the server boots now, for a plan's --diff.
func describeBoot(srv *ovh.Server, boot *ovh.Boot) string {
	var b strings.Builder
	switch {
	case boot != nil:
		fmt.Fprintf(&b, "netboot: %s\n", boot)
	case srv.BootID != nil:
		fmt.Fprintf(&b, "netboot: id %d\n", *srv.BootID)
	case srv.BootScript != nil:
		b.WriteString("netboot: a custom iPXE script\n")
	default:
		b.WriteString("netboot: none\n")
	}
	if srv.RescueSSHKey != nil && *srv.RescueSSHKey != "" {
		fmt.Fprintf(&b, "rescueSshKey: %s\n", ovh.ShowKey(*srv.RescueSSHKey))
	}
	return b.String()
}

// Step is one netboot change a plan makes.
type Step struct {
	Target  ovh.Boot
	Request *ovh.Request // nil: already set
	Before  string       // the netboot now, for --diff
	// MonitoringOn: the request also turns OVH's monitoring on again, as
	// the inventory had it off for the reinstall.
	MonitoringOn bool
	// EFIBootloaderPath, when set, is the loader the request points the
	// UEFI server's disk boot to.
	EFIBootloaderPath string
}

// VerifyHost proves through the API that the credentials are valid and
// grant the calls that boot the rescue and back (see ovh.CheckCredential,
// read once per account and run), and that service is h (see ovh.Verify).
// It warns of a server OVH monitors.
func VerifyHost(ctx context.Context, endpoint string, h modules.ReadOnlyHost, service string, inv Inventory) error {
	api, err := h.OVH(endpoint)
	if err != nil {
		return err
	}
	defer LogCost(h, "preflight", api, api.Calls())
	expires, err := api.CheckCredential(ctx, ovh.RescueRights(service))
	if err != nil {
		return err
	}
	if !expires.IsZero() && time.Until(expires) < keyMargin {
		h.Log("warning: the OVH consumer key expires at %s, perhaps before a reinstall ends; make one valid longer", expires.Format(time.RFC3339))
	}
	claim := ClaimOf(h, service, inv)
	srv, err := api.Verify(ctx, claim)
	if err != nil {
		return err
	}
	if srv.Monitoring && !claim.MonitoringOff {
		h.Log("warning: %s", ovh.MonitoringWarning(service))
	}
	return nil
}

// keyMargin is how long a consumer key must stay valid for a reinstall
// not to be cut short: the rescue, the install and two reboots.
const keyMargin = 2 * time.Hour

// LogCost reports in the host's log what a step cost in API calls.
func LogCost(h modules.ReadOnlyHost, step string, client *ovh.Reader, before ovh.Calls) {
	h.Log("ovh: %s of %s: %s", step, h.Name(), client.Calls().Since(before))
}

// ClaimOf is what the inventory says of h as the OVH service: the address
// nixbook dials must be the server's.
func ClaimOf(h modules.ReadOnlyHost, service string, inv Inventory) ovh.Claim {
	r := h.Reach()
	off, _ := inv.monitoringOff() // Requires reported a bad value
	firmware := ""
	if f := h.Facts(); f != nil {
		firmware = f.Firmware
	}
	return ovh.Claim{Host: h.Name(), Source: r.Source, Dial: r.Dial, Service: service, MonitoringOff: off,
		EFIBootloaderPath: ovh.EFIPath(firmware, map[string]any{ovh.VarEFIBootloaderPath: inv.EFIBootloaderPath})}
}

// Located is a server the API proved to be the host, and the netboot to
// point it to.
type Located struct {
	Server *ovh.Server
	Target ovh.Boot
	// Before says what the server boots now, for a plan's --diff.
	Before string
}

// Locate proves that the service is the host the claim means, then picks
// with pick, among the netboots of type kind of the server's range, the
// one to point it to.
func Locate(ctx context.Context, client *ovh.Reader, claim ovh.Claim, kind string, pick func([]ovh.Boot) (ovh.Boot, error)) (Located, error) {
	srv, err := client.Verify(ctx, claim)
	if err != nil {
		return Located{}, err
	}
	boots, err := client.RangeBoots(ctx, srv, kind)
	if err != nil {
		return Located{}, err
	}
	target, err := pick(boots)
	if err != nil {
		return Located{}, fmt.Errorf("%s: %w", claim.Service, err)
	}
	return Located{Server: srv, Target: target, Before: describeBoot(srv, currentBoot(ctx, client, claim.Service, srv, boots))}, nil
}

// HarddiskStep proves that the service is the host the claim means, then
// finds the server's boot from the disk and the call that sets it, if it is
// not set already.
func HarddiskStep(ctx context.Context, client *ovh.Reader, claim ovh.Claim) (*Step, error) {
	service := claim.Service
	loc, err := Locate(ctx, client, claim, Harddisk, ovh.PickHarddisk)
	if err != nil {
		return nil, err
	}
	srv, hd := loc.Server, loc.Target
	step := &Step{Target: hd, Before: loc.Before}
	step.MonitoringOn = claim.MonitoringOff && !srv.Monitoring
	// A UEFI server runs the loader efiBootloaderPath names; the one OVH's
	// install left there is gone once NixOS is installed.
	if p := claim.EFIBootloaderPath; p != "" && (srv.EFIBootloaderPath == nil || !ovh.SameEFIPath(*srv.EFIBootloaderPath, p)) {
		step.EFIBootloaderPath = p
	}
	if srv.BootID == nil || *srv.BootID != hd.ID || step.MonitoringOn || step.EFIBootloaderPath != "" {
		r := ovh.SetBootRequest(service, hd.ID, "")
		if step.MonitoringOn {
			r.Body["monitoring"] = true
		}
		if step.EFIBootloaderPath != "" {
			r.Body["efiBootloaderPath"] = step.EFIBootloaderPath
		}
		step.Request = &r
	}
	return step, nil
}

// Change is the plan's account of the step.
func (s *Step) Change(service string) modules.Change {
	c := modules.Change{
		Summary:  fmt.Sprintf("set the netboot of %s to %s", service, s.Target),
		Commands: []string{s.Request.String()},
		Before:   s.Before,
		After:    fmt.Sprintf("netboot: %s\n", s.Target),
	}
	if s.EFIBootloaderPath != "" {
		c.Summary += " booting the UEFI loader " + s.EFIBootloaderPath
		c.After += "efiBootloaderPath: " + s.EFIBootloaderPath + "\n"
	}
	return c
}

// Apply makes a step's call and checks that the API took it.
func Apply(ctx context.Context, client *ovh.Writer, service string, s *Step) error {
	if s.Request == nil {
		return nil
	}
	if err := ConfirmTarget(ctx, &client.Reader, service, &s.Target, s.Request, ovh.PickHarddisk); err != nil {
		return err
	}
	if err := client.Do(ctx, *s.Request, nil); err != nil {
		return err
	}
	srv, err := client.GetServer(ctx, service)
	if err != nil {
		return err
	}
	if srv.BootID == nil || *srv.BootID != s.Target.ID {
		return fmt.Errorf("ovh: %s: the netboot is still %s after setting it to %s", service, strings.TrimSpace(describeBoot(srv, nil)), s.Target)
	}
	if p := s.EFIBootloaderPath; p != "" && (srv.EFIBootloaderPath == nil || !ovh.SameEFIPath(*srv.EFIBootloaderPath, p)) {
		return fmt.Errorf("ovh: %s: efiBootloaderPath is not %s after setting it", service, p)
	}
	return nil
}

// ConfirmTarget checks the boot a plan chose from its range's catalog
// against the server's own netboots before the call that sets it, and
// picks again among them if the server lacks it.
func ConfirmTarget(ctx context.Context, client *ovh.Reader, service string, target *ovh.Boot, set *ovh.Request, pick func([]ovh.Boot) (ovh.Boot, error)) error {
	own, err := client.OwnBoot(ctx, service, *target, pick)
	if err != nil {
		return err
	}
	if own.ID != target.ID {
		*target = own
		set.Body["bootId"] = own.ID
	}
	return nil
}
