// Package rescue is the `rescue` module: it boots an OVH, Kimsufi or So you
// Start server into OVH's Linux rescue system through the API (netboot and
// rescue SSH key, hard reboot, task), waits until the rescue answers SSH
// with a new boot id and its new host key, or sets the netboot back to the
// hard disk.
package rescue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nixbook/nixbook/internal/clock"
	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/modules/internal/netboot"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/transport"
)

// VarRescueSSHKey is the host variable ssh_key defaults to.
const VarRescueSSHKey = "rescue_ssh_key"

// Boot targets.
const (
	BootRescue   = "rescue"
	BootHarddisk = netboot.Harddisk
)

// Args are the arguments of `rescue`.
type Args struct {
	Service     string          `yaml:"service" var:"ovh_service" doc:"the server's OVH service name, such as ns1234.ip-203-0-113.eu; default: the host's ovh_service variable"`
	Endpoint    string          `yaml:"endpoint" doc:"the API: ovh-eu, ovh-ca, ovh-us, kimsufi-eu, kimsufi-ca, soyoustart-eu, soyoustart-ca or a URL; default: the host's ovh_endpoint variable, else OVH_ENDPOINT or ovh.conf, else ovh-eu. Credentials come from the host's ovh_application_key, ovh_application_secret and ovh_consumer_key, else OVH_* variables or ovh.conf"`
	SSHKey      string          `yaml:"ssh_key" var:"rescue_ssh_key" doc:"the public key the rescue lets root in with (rescueSshKey); default: the host's rescue_ssh_key variable"`
	Boot        string          `yaml:"boot" default:"rescue" doc:"rescue: reboot into the rescue system; harddisk: set the netboot back to the disk for the next reboot, without rebooting"`
	Timeout     modkit.Duration `yaml:"timeout" default:"15m" doc:"how long the rescue may take to answer SSH once the reboot task is done"`
	TaskTimeout modkit.Duration `yaml:"task_timeout" default:"30m" doc:"how long OVH's reboot task may take, its answers failing included (each spell of 404 or 5xx answers is waited out for 5 minutes)"`

	netboot.Inventory `yaml:",inline"`
}

// Spec is the `rescue` module.
var Spec = modules.Spec{
	Offline: true,
	Name:    "rescue",
	Summary: "Boot an OVH server into its Linux rescue system through the API, or set its netboot back to the disk.",
	Args:    Args{},
	Example: `- name: Boot the rescue system
  rescue:
    service: "{{ ovh_service }}"
    endpoint: "{{ ovh_endpoint }}"
    ssh_key: "{{ rescue_ssh_key }}"
    timeout: 15m
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		return newModule(a)
	}),
}

func newModule(a Args) (*module, error) {
	a.Service, a.Endpoint, a.SSHKey = strings.TrimSpace(a.Service), strings.TrimSpace(a.Endpoint), strings.TrimSpace(a.SSHKey)
	switch a.Boot {
	case BootRescue, BootHarddisk:
	default:
		return nil, fmt.Errorf("boot: want rescue or harddisk, got %q", a.Boot)
	}
	if a.Timeout <= 0 || a.TaskTimeout <= 0 {
		return nil, errors.New("timeout and task_timeout must be positive")
	}
	if a.Endpoint != "" {
		if _, err := ovh.EndpointURL(a.Endpoint); err != nil {
			return nil, err
		}
	}
	if a.SSHKey != "" {
		if _, err := ovh.RescueKey(a.SSHKey); err != nil {
			return nil, fmt.Errorf("ssh_key: %w", err)
		}
	}
	return &module{args: a}, nil
}

type module struct {
	args  Args
	clock clock.Clock // zero: real time
}

// plan is what Check hands to Apply.
type plan struct {
	service string
	target  ovh.Boot
	set     *ovh.Request // nil: the netboot is already right
	reboot  *ovh.Request // nil: no reboot (boot: harddisk)
	bootID  transport.Cmd
}

// Requires reports, before any host is touched, the inventory values the
// task reads that are missing: the service, the API credentials and, to
// boot the rescue, the key it lets root in with.
func (m *module) Requires(api modules.APICheck) error {
	var errs []error
	if _, err := netboot.Service(m.args.Service); err != nil {
		errs = append(errs, err)
	}
	if err := api(m.args.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if m.args.Boot == BootRescue {
		if _, err := m.rescueKey(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.args.Inventory.Check(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (m *module) endpoint() string {
	return m.args.Endpoint // empty: ovh.Resolve reads ovh_endpoint and the rest
}

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	service, err := netboot.Service(m.args.Service)
	if err != nil {
		return nil, err
	}
	if m.args.Boot == BootHarddisk {
		return m.checkHarddisk(ctx, h, service)
	}
	running, err := RunningRescue(ctx, h)
	if err != nil {
		return nil, err
	}
	if running != "" {
		return &modules.Plan{
			Message: fmt.Sprintf("already runs the rescue system (%s)", running),
			Output:  modules.Output{"rescue": true},
		}, nil
	}
	key, err := m.rescueKey()
	if err != nil {
		return nil, err
	}
	client, err := h.OVH(m.endpoint())
	if err != nil {
		return nil, err
	}
	defer netboot.LogCost(h, "check", client, client.Calls())
	claim := netboot.ClaimOf(h, service, m.args.Inventory)
	loc, err := netboot.Locate(ctx, client, claim, BootRescue, ovh.PickRescue)
	if err != nil {
		return nil, err
	}
	srv, target := loc.Server, loc.Target
	p := &plan{service: service, target: target}
	fp, _ := ovh.Fingerprint(key)
	c := modules.Change{
		Summary: fmt.Sprintf("set the netboot of %s to %s with rescueSshKey %s, reboot it through the API and wait up to %s for SSH with a new boot id",
			service, target, fp, m.args.Timeout),
		Before: loc.Before,
		After:  fmt.Sprintf("netboot: %s\nrescueSshKey: %s\n", target, ovh.ShowKey(key)),
	}
	p.bootID = c.Cmd("cat", boot.IDPath)
	monitoringOff := claim.MonitoringOff && srv.Monitoring
	if alreadySet(srv, target.ID, key) && !monitoringOff {
		c.Summary = fmt.Sprintf("reboot %s into %s (its netboot and rescueSshKey are already set) and wait up to %s for SSH with a new boot id",
			service, target, m.args.Timeout)
	} else {
		set := ovh.SetBootRequest(service, target.ID, key)
		if monitoringOff {
			// In the same PUT: one call less, and the monitoring is off
			// before the reboot is asked.
			set.Body["monitoring"] = false
			c.Summary += "; OVH's monitoring is turned off until the netboot is set back to the disk (" + ovh.VarMonitoring + ": off)"
		}
		p.set = &set
		c.Commands = append(c.Commands, set.String())
	}
	if srv.Monitoring && !claim.MonitoringOff {
		c.Summary += "; warning: OVH's monitoring is on, the reboot may page its technicians (" + ovh.VarMonitoring + ": off turns it off meanwhile)"
	}
	if monitoringOff {
		c.Before += "monitoring: true\n"
		c.After += "monitoring: false\n"
	}
	reboot := ovh.RebootRequest(service)
	p.reboot = &reboot
	c.Commands = append(c.Commands,
		reboot.String(),
		fmt.Sprintf("GET %s until the task is done (up to %s)", ovh.ServerPath(service, "task", "<taskId>"), m.args.TaskTimeout),
		fmt.Sprintf("reconnect until SSH answers with a new boot id, accepting the rescue's new host key (up to %s)", m.args.Timeout),
	)
	return &modules.Plan{Changes: []modules.Change{c}, Reboots: true, Data: p}, nil
}

func (m *module) rescueKey() (string, error) {
	key := m.args.SSHKey
	if strings.TrimSpace(key) == "" {
		return "", fmt.Errorf("no rescue SSH key: set the task's ssh_key or the host's %s variable to the public key nixbook logs in with (without it OVH's rescue only takes a password sent by email)", VarRescueSSHKey)
	}
	clean, err := ovh.RescueKey(key)
	if err != nil {
		return "", fmt.Errorf("ssh_key: %w", err)
	}
	return clean, nil
}

func alreadySet(srv *ovh.Server, bootID int64, key string) bool {
	if srv.BootID == nil || *srv.BootID != bootID || srv.RescueSSHKey == nil {
		return false
	}
	return strings.Join(strings.Fields(*srv.RescueSSHKey), " ") == strings.Join(strings.Fields(key), " ")
}

func (m *module) checkHarddisk(ctx context.Context, h modules.ReadOnlyHost, service string) (*modules.Plan, error) {
	client, err := h.OVH(m.endpoint())
	if err != nil {
		return nil, err
	}
	defer netboot.LogCost(h, "check", client, client.Calls())
	step, err := netboot.HarddiskStep(ctx, client, netboot.ClaimOf(h, service, m.args.Inventory))
	if err != nil {
		return nil, err
	}
	if step.Request == nil {
		return &modules.Plan{Message: fmt.Sprintf("the netboot of %s is already %s", service, step.Target)}, nil
	}
	c := step.Change(service)
	c.Summary += " for its next reboot"
	if step.MonitoringOn {
		c.Summary += " and turn OVH's monitoring on again"
	}
	return &modules.Plan{Changes: []modules.Change{c}, Data: &plan{service: service, target: step.Target, set: step.Request}}, nil
}

// Preflight proves, before the play changes anything, that the service is
// this host: a typo in ovh_service must not reboot someone else's server.
// A host that already runs the rescue needs no API call here.
func (m *module) Preflight(ctx context.Context, h modules.ReadOnlyHost) error {
	if m.args.Boot == BootRescue && h.Facts().Rescue {
		return nil
	}
	service, err := netboot.Service(m.args.Service)
	if err != nil {
		return err
	}
	return netboot.VerifyHost(ctx, m.endpoint(), h, service, m.args.Inventory)
}

func (m *module) Apply(ctx context.Context, h modules.Host, pl *modules.Plan) (modules.Output, error) {
	p, err := modkit.PlanData[*plan](pl)
	if err != nil {
		return nil, err
	}
	client, err := h.OVHWriter(m.endpoint())
	if err != nil {
		return nil, err
	}
	defer netboot.LogCost(h, "apply", &client.Reader, client.Calls())
	if p.reboot == nil {
		err := netboot.Apply(ctx, client, p.service, &netboot.Step{Target: p.target, Request: p.set})
		if err != nil {
			return nil, err
		}
		h.Log("netboot of %s set to %s", p.service, p.target)
		return modules.Output{"boot": p.target.Kernel, "boot_id": p.target.ID}, nil
	}
	begin := m.clock.Now()
	oldBoot := h.Facts().BootID
	if res, err := h.Run(ctx, p.bootID); err != nil {
		// The API reboots the server whether SSH works or not: the boot id
		// gathered with the facts stands in.
		h.Log("could not read the boot id before the reboot (%v); using the one in the facts, %q", err, oldBoot)
	} else {
		oldBoot = strings.TrimSpace(string(res.Stdout))
	}
	if p.set != nil {
		if err := netboot.ConfirmTarget(ctx, &client.Reader, p.service, &p.target, p.set, ovh.PickRescue); err != nil {
			return nil, err
		}
		if err := client.Do(ctx, *p.set, nil); err != nil {
			return nil, err
		}
		h.Log("netboot of %s set to %s", p.service, p.target)
	}
	wait := client.Wait()
	wait.Progress = func(t ovh.Task) { h.Log("reboot task %d: %s", t.ID, t.Status) }
	task, err := client.Reboot(ctx, p.service, wait)
	if err != nil {
		return nil, err
	}
	h.Log("reboot task %d of %s: %s", task.ID, p.service, task.Status)
	tctx, cancel := context.WithTimeout(ctx, m.args.TaskTimeout.D())
	_, err = client.WaitTask(tctx, p.service, task.ID, wait)
	cancel()
	if err != nil {
		return nil, err
	}
	newBoot, err := boot.WaitSystem(ctx, h, boot.SystemOptions{
		OldBootID: oldBoot,
		Timeout:   m.args.Timeout.D(),
		Clock:     m.clock,
		Want:      "the rescue system",
		Is:        func(f *facts.Facts) bool { return f.Rescue },
	})
	if err != nil {
		return nil, fmt.Errorf("after the reboot into %s (task %d done): %w", p.target, task.ID, err)
	}
	f := h.Facts()
	h.Log("%s runs the rescue system %s on boot %s", h.Name(), f.Hostname, newBoot)
	return modules.Output{
		"rescue":  true,
		"boot":    p.target.Kernel,
		"boot_id": p.target.ID,
		"task_id": task.ID,
		"elapsed": int(m.clock.Now().Sub(begin).Seconds()),
	}, nil
}

// RunningRescue reports the rescue's hostname when the host runs OVH's
// rescue system now, "" otherwise. Facts, when there are any, describe the
// system the host runs now: the runner drops those of a boot the host may
// have left since (a kexec that never came back). Without facts the host's
// names are read, in one command.
func RunningRescue(ctx context.Context, h modules.ReadOnlyHost) (string, error) {
	if f := h.Facts(); f.Hostname != "" || f.OS.ID != "" {
		if f.Rescue {
			return f.Hostname, nil
		}
		return "", nil
	}
	hostname, osr, err := readSystem(ctx, h)
	switch {
	case errors.Is(err, transport.ErrUnreachable):
		// SSH does not reach the host (down, hung, or a key nixbook
		// refuses): only the API can bring it into the rescue.
		h.Log("%s is not reachable over SSH; the rescue goes through the API", h.Name())
		return "", nil
	case err != nil:
		return "", err
	}
	if facts.IsRescue(hostname, osr) {
		return hostname, nil
	}
	return "", nil
}

// The files readSystem reads.
const (
	hostnameFile  = "/etc/hostname"
	osReleaseFile = "/etc/os-release"
)

// readSystem reads the host's name and /etc/os-release in one command; a
// file that is missing reads as empty.
func readSystem(ctx context.Context, h modules.ReadOnlyHost) (string, facts.OSRelease, error) {
	res, err := h.Probe(ctx, systemCmd())
	var exit *transport.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode == 1) {
		// head exits 1 when a file is missing, having printed the others.
		return "", facts.OSRelease{}, fmt.Errorf("read %s and %s: %w", hostnameFile, osReleaseFile, err)
	}
	files := splitHead(string(res.Stdout))
	return strings.TrimSpace(files[hostnameFile]), facts.ParseOSRelease(files[osReleaseFile]), nil
}

// systemCmd is readSystem's command: each file after a "==> path <=="
// line, as head prints more than one.
func systemCmd() transport.Cmd {
	return transport.Cmd{Args: []string{"head", "-v", "-c", "65536", "--", hostnameFile, osReleaseFile}}
}

// splitHead cuts what systemCmd printed into each file's content, by path.
func splitHead(out string) map[string]string {
	files := map[string]string{}
	var name string
	for _, line := range strings.SplitAfter(out, "\n") {
		trimmed := strings.TrimSuffix(line, "\n")
		if p, ok := strings.CutPrefix(trimmed, "==> "); ok && strings.HasSuffix(p, " <==") {
			name = strings.TrimSuffix(p, " <==")
			continue
		}
		if name != "" {
			files[name] += line
		}
	}
	return files
}
