package zfsvm

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// signalTree sends sig to pid and every process under it: a build script's
// debootstrap, apt-get and the compilers DKMS runs. The script stays in the
// test's process group, so that Ctrl-C at a terminal still reaches it all.
func signalTree(pid int, sig syscall.Signal) {
	children := map[int][]int{}
	for p, parent := range parents() {
		children[parent] = append(children[parent], p)
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	for _, p := range tree {
		_ = syscall.Kill(p, sig)
	}
}

// parents maps every process to its parent, from /proc.
func parents() map[int]int {
	m := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: split after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			m[pid] = ppid
		}
	}
	return m
}
