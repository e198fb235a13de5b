// Package devcgroup confines a simulated host's processes to its own
// devices with the cgroup v1 devices controller.
package devcgroup

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Root is the cgroup v1 devices controller.
const Root = "/sys/fs/cgroup/devices"

// charDevices are the character devices a host may use: null, zero, full,
// random, urandom, tty, console, ptmx, its pseudo-terminals, loop-control.
func charDevices() []string {
	return []string{"c 1:3", "c 1:5", "c 1:7", "c 1:8", "c 1:9", "c 5:0", "c 5:1", "c 5:2", "c 136:*", "c 10:237"}
}

// Cgroup confines a host's processes to its own devices: even a mknod of
// the machine's disk inside the host would give a node nobody can open.
type Cgroup struct {
	dir     string
	allowed map[string]bool // "b 7:3"
}

// New makes the host's devices cgroup; nil without the cgroup v1
// devices controller (the host's /dev then only hides the other devices).
func New(name string) (*Cgroup, error) {
	if _, err := os.Stat(filepath.Join(Root, "devices.deny")); err != nil {
		return nil, nil
	}
	dir := filepath.Join(Root, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("devices cgroup: %w", err)
	}
	c := &Cgroup{dir: dir, allowed: map[string]bool{}}
	if err := c.write("devices.deny", "a"); err != nil {
		return nil, err
	}
	for _, d := range charDevices() {
		if err := c.write("devices.allow", d+" rwm"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cgroup) write(file, line string) error {
	if err := os.WriteFile(filepath.Join(c.dir, file), []byte(line), 0o644); err != nil {
		return fmt.Errorf("devices cgroup %s: %w", file, err)
	}
	return nil
}

// Add moves a process (and so its future children) into the cgroup.
func (c *Cgroup) Add(pid int) error {
	if c == nil {
		return nil
	}
	return c.write("cgroup.procs", strconv.Itoa(pid))
}

// AllowOnly lets the host use exactly these block devices ("b 7:3").
func (c *Cgroup) AllowOnly(blocks map[string]bool) error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, b := range slices.Sorted(maps.Keys(c.allowed)) {
		if !blocks[b] {
			if err := c.write("devices.deny", b+" rwm"); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(c.allowed, b)
		}
	}
	for _, b := range slices.Sorted(maps.Keys(blocks)) {
		if !c.allowed[b] {
			if err := c.write("devices.allow", b+" rwm"); err != nil {
				errs = append(errs, err)
				continue
			}
			c.allowed[b] = true
		}
	}
	return errors.Join(errs...)
}
