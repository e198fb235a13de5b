package hostinit

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// swapSyscalls are the swapon(2) and swapoff(2) numbers per audit
// architecture a process of this machine may call with.
func swapSyscalls() map[uint32][2]uint32 {
	switch runtime.GOARCH {
	case "amd64":
		// 32-bit programs run too, with i386 numbers.
		return map[uint32][2]uint32{
			unix.AUDIT_ARCH_X86_64: {unix.SYS_SWAPON, unix.SYS_SWAPOFF},
			unix.AUDIT_ARCH_I386:   {87, 115},
		}
	case "arm64":
		return map[uint32][2]uint32{unix.AUDIT_ARCH_AARCH64: {unix.SYS_SWAPON, unix.SYS_SWAPOFF}}
	}
	return nil
}

// denySwapSyscalls makes swapon(2) and swapoff(2) fail with EPERM in this
// process and everything it starts. The machine's kernel has one swap list
// for all hosts: a swap a host turned on for real would be every host's and
// the machine's, and would pin the host's loop device past the fleet's end.
// The simulator's swapon and swapoff stand in for the programs; this stops
// any other (busybox, a static util-linux) from reaching the kernel.
func denySwapSyscalls() error {
	arches := swapSyscalls()
	if arches == nil {
		return nil
	}
	const (
		offNR   = 0 // offsetof(struct seccomp_data, nr)
		offArch = 4 // offsetof(struct seccomp_data, arch)
	)
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	deny := stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	allow := stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW)
	var prog []unix.SockFilter
	for arch, nrs := range arches {
		// arch matches: load nr, deny either call, else allow; no match:
		// skip the block to the next architecture.
		prog = append(prog,
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
			jeq(arch, 0, 5),
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNR),
			jeq(nrs[0], 2, 0),
			jeq(nrs[1], 1, 0),
			allow,
			deny,
		)
	}
	prog = append(prog, allow)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// TSYNC: every thread of this process, so whichever one forks the
	// host's processes passes the filter on.
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("deny swapon(2) to the host: seccomp: %w", errno)
	}
	return nil
}
