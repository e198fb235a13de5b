package sim

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// holdVolume keeps the loop device of the booted system's root mapped
// until the host stops (releaseVolumes).
func (h *Host) holdVolume(loop *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.volumes = append(h.volumes, loop)
}

// releaseVolumes lets the kernel clear the loop devices of the host's
// opened volumes, once its mounts are gone with its processes.
func (h *Host) releaseVolumes() {
	h.mu.Lock()
	loops := h.volumes
	h.volumes = nil
	h.mu.Unlock()
	for _, l := range loops {
		l.Close()
	}
}

// volumeRules are the device rules of the host's opened volumes, which
// its init mounts its root from.
func (h *Host) volumeRules(rules map[string]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.volumes {
		var st unix.Stat_t
		if err := unix.Fstat(int(l.Fd()), &st); err == nil {
			rules[fmt.Sprintf("b %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))] = true
		}
	}
}
