package ovh

import (
	"fmt"
	"strings"
)

// VarMonitoring set to off turns OVH's monitoring of the server off while
// nixbook reinstalls it: the rescue's netboot PUT carries monitoring:
// false, and setting the netboot back to the disk turns it on again.
// Without it, the reboots of a reinstall page OVH's technicians, who may
// intervene on a server that is only rebooting.
const VarMonitoring = "ovh_monitoring"

// MonitoringOff reads VarMonitoring: true for off (or false, no), false when
// unset or on.
func MonitoringOff(vars map[string]any) (bool, error) {
	v, ok := vars[VarMonitoring]
	if !ok || v == nil {
		return false, nil
	}
	if b, ok := v.(bool); ok {
		return !b, nil
	}
	switch strings.ToLower(strings.TrimSpace(fmt.Sprint(v))) {
	case "", "on", "true", "yes":
		return false, nil
	case "off", "false", "no":
		return true, nil
	}
	return false, fmt.Errorf("%s: want on or off, got %q", VarMonitoring, v)
}

// MonitoringWarning is what a dry run says of a server whose monitoring is
// on.
func MonitoringWarning(service string) string {
	return fmt.Sprintf("OVH monitors %s: the reboots of a reinstall may page OVH's technicians, who may intervene on the server; set %s: off to turn monitoring off during the reinstall (it is turned on again with the netboot back to the disk)", service, VarMonitoring)
}
