package hostnet

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/nixbook/nixbook/sim/internal/devtree"
)

// pciName is a predictable name from a PCI path: enp<bus>s<slot>.
var pciName = regexp.MustCompile(`^enp([0-9]+)s([0-9]+)`)

// PCISlot is the PCI address a NIC with the predictable name predicted
// would have: enp3s0 sits at 0000:03:00.0; an onboard eno1 or a NIC
// without a predictable name ("") at Intel's usual onboard slot.
func PCISlot(predicted string) string {
	if m := pciName.FindStringSubmatch(predicted); m != nil {
		bus, _ := strconv.Atoi(m[1])
		slot, _ := strconv.Atoi(m[2])
		return fmt.Sprintf("0000:%02x:%02x.0", bus, slot)
	}
	return "0000:00:19.0"
}

// FillClassNet gives the host's /sys/class/net (a tmpfs its init mounted)
// its links as the kernel shows them, and its NIC the `device` link of a
// real NIC, which a veth has not: facts read the driver through it and ask
// udev's net_id for the predictable names only of a NIC that has one.
// Every attribute of the NIC is the kernel's own (address, operstate,
// flags, ...), through links into /sys/devices/virtual/net. The NIC sits
// at pciSlot (see PCISlot), driven by driverName.
func FillClassNet(pid int, nic, pciSlot, driverName string) error {
	root := fmt.Sprintf("/proc/%d/root/sys", pid)
	if err := devtree.RootBuilt(pid); err != nil {
		return err
	}
	class := filepath.Join(root, "class/net")
	links, err := os.ReadDir(filepath.Join(root, "devices/virtual/net"))
	if err != nil {
		return fmt.Errorf("the host's network links: %w", err)
	}
	for _, l := range links {
		if l.Name() != nic {
			if err := os.Symlink("../../devices/virtual/net/"+l.Name(), filepath.Join(class, l.Name())); err != nil && !os.IsExist(err) {
				return err
			}
			continue
		}
		dir := filepath.Join(class, nic)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		attrs, err := os.ReadDir(filepath.Join(root, "devices/virtual/net", nic))
		if err != nil {
			return err
		}
		for _, a := range attrs {
			if err := os.Symlink("../../../devices/virtual/net/"+nic+"/"+a.Name(), filepath.Join(dir, a.Name())); err != nil && !os.IsExist(err) {
				return err
			}
		}
		// The PCI device and its driver, where facts' readlink finds the
		// driver's name last.
		dev := filepath.Join(class, ".pci", "devices", pciSlot)
		driver := filepath.Join(class, ".pci", "drivers", driverName)
		for _, d := range []string{dev, driver} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		for name, data := range map[string]string{"vendor": "0x8086\n", "class": "0x020000\n"} {
			if err := os.WriteFile(filepath.Join(dev, name), []byte(data), 0o444); err != nil {
				return err
			}
		}
		if err := os.Symlink("../../drivers/"+driverName, filepath.Join(dev, "driver")); err != nil && !os.IsExist(err) {
			return err
		}
		if err := os.Symlink("../.pci/devices/"+pciSlot, filepath.Join(dir, "device")); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}
