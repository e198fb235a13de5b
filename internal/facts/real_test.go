package facts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/shellquote"
)

// runLocal runs argv on this machine and returns its standard output.
func runLocal(ctx context.Context, argv []string, env ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv[:min(len(argv), 4)], " "), err, stderr.String())
	}
	return out, nil
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestScriptOnThisHost runs the real script with /bin/sh here (it only
// reads) and checks the parsed facts against the kernel's own files.
func TestScriptOnThisHost(t *testing.T) {
	ctx := context.Background()
	var f *Facts
	fastest := time.Hour
	for range 5 {
		start := time.Now()
		var err error
		f, err = Gather(ctx, func(ctx context.Context, argv []string) ([]byte, error) {
			return runLocal(ctx, append([]string{"/bin/sh"}, argv[1:]...))
		})
		if err != nil {
			t.Fatal(err)
		}
		fastest = min(fastest, time.Since(start))
	}
	t.Logf("script run and parse: fastest of 5 took %v", fastest)
	if fastest > 500*time.Millisecond {
		t.Errorf("gathering took %v; it should stay well under 100 ms", fastest)
	}

	if want := readTrimmed(t, "/proc/sys/kernel/random/boot_id"); f.BootID != want {
		t.Errorf("boot_id = %q; want %q", f.BootID, want)
	}
	uname, err := exec.Command("uname", "-r").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(uname)); f.Kernel != want {
		t.Errorf("kernel = %q; want %q", f.Kernel, want)
	}
	if want := readTrimmed(t, "/proc/sys/kernel/hostname"); f.Hostname != want {
		t.Errorf("hostname = %q; want %q", f.Hostname, want)
	}
	if f.MemoryMB <= 0 || f.CPUs <= 0 {
		t.Errorf("memory %d MB, %d CPUs; want both > 0", f.MemoryMB, f.CPUs)
	}
	wantFirmware := "bios"
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		wantFirmware = "uefi"
	}
	if f.Firmware != wantFirmware {
		t.Errorf("firmware = %q; want %q", f.Firmware, wantFirmware)
	}

	// Every interface with a device (the virtual ones come and go as other
	// tests run), with the MAC sysfs reports.
	links, err := filepath.Glob("/sys/class/net/*")
	if err != nil {
		t.Fatal(err)
	}
	var wantIfaces []string
	for _, l := range links {
		name := filepath.Base(l)
		if st, err := os.Stat(l); err != nil || !st.IsDir() || name == "lo" {
			continue
		}
		if _, err := os.Stat(l + "/device"); err != nil {
			continue
		}
		wantIfaces = append(wantIfaces, name)
		in := f.Interface(name)
		if in == nil {
			t.Errorf("interface %s missing", name)
			continue
		}
		if mac := readTrimmed(t, l+"/address"); in.MAC != mac {
			t.Errorf("%s mac = %q; want %q", name, in.MAC, mac)
		}
	}
	if got := len(settled(f).Interfaces); got != len(wantIfaces) {
		t.Errorf("interfaces with a device = %d; want %d (%v)", got, len(wantIfaces), wantIfaces)
	}

	// Every block device backed by hardware, with its sysfs size.
	blocks, err := filepath.Glob("/sys/block/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if _, err := os.Stat(b + "/device"); err != nil {
			continue
		}
		sectors, _ := strconv.ParseInt(readTrimmed(t, b+"/size"), 10, 64)
		name := filepath.Base(b)
		if sectors == 0 || strings.HasPrefix(name, "sr") {
			continue
		}
		d, ok := f.Disk(name)
		if !ok {
			t.Errorf("disk %s missing from %+v", name, f.Disks)
			continue
		}
		if d.SizeBytes != sectors*512 {
			t.Errorf("%s size = %d; want %d", name, d.SizeBytes, sectors*512)
		}
	}
	for _, d := range f.Disks {
		if loopPath.MatchString(d.Path) || strings.Contains(d.Path, "zram") {
			t.Errorf("disk list holds %s", d.Path)
		}
	}

	// Other shells a target may call sh, and the command line the transport
	// sends (the login shell parses it), must all see the same host.
	line := shellquote.Join([]string{"sh", "-c", Script()})
	others := map[string][]string{"transport-quoted line": {"/bin/sh", "-c", line}}
	if bb, err := exec.LookPath("busybox"); err == nil {
		others["busybox sh"] = []string{bb, "sh", "-c", Script()}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		others["bash --posix"] = []string{bash, "--posix", "-c", Script()}
		others["transport-quoted line in bash"] = []string{bash, "-c", line}
	}
	for name, argv := range others {
		out, err := runLocal(ctx, argv)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g, err := Parse(out)
		if err != nil {
			t.Fatalf("parse %s run: %v", name, err)
		}
		if !reflect.DeepEqual(settled(g), settled(f)) {
			t.Errorf("%s run differs:\n%+v\nwant\n%+v", name, g, f)
		}
	}
}

// settled drops what other tests on this machine create and remove while the
// runs go on (interfaces without a device: bridges, veths, ifb; mounts other
// than the root), so runs differ only when the script is wrong.
func settled(f *Facts) Facts {
	c := *f
	c.Mounts = nil
	for _, m := range f.Mounts {
		if m.Mountpoint == "/" {
			c.Mounts = append(c.Mounts, m)
		}
	}
	c.Interfaces = nil
	for _, i := range f.Interfaces {
		if i.Driver != "" {
			c.Interfaces = append(c.Interfaces, i)
		}
	}
	return c
}

// hiddenTools lists the files that provide name on this host, resolved, so
// they can be covered up in a private mount namespace.
func hiddenTools(names ...string) []string {
	dirs := filepath.SplitList(os.Getenv("PATH"))
	dirs = append(dirs, "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin", "/run/current-system/sw/bin")
	var out []string
	for _, d := range dirs {
		for _, n := range names {
			p, err := filepath.EvalSymlinks(filepath.Join(d, n))
			if err != nil {
				continue
			}
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// TestScriptInNetworkNamespace builds an OVH-shaped network in a namespace
// of its own (IPv4 /24 with the .254 gateway, IPv6 /64 whose gateway lies
// outside it, reached by an on-link host route) and runs the script there,
// once with ip/lsblk/udevadm and once with them covered up so the /proc and
// /sys fallbacks do the work.
func TestScriptInNetworkNamespace(t *testing.T) {
	heavytest.Root(t, "a network namespace")
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("skipped: ip(8) is not installed, so `ip netns` is unavailable")
	}
	ctx := context.Background()
	ns := fmt.Sprintf("nbfacts-%d-%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
	if out, err := exec.Command(ipBin, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("skipped: `ip netns add` is unavailable here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ipBin, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	const (
		mac  = "02:00:cb:00:71:0a"
		gw6  = "2001:db8:1:ff:ff:ff:ff:ff"
		nic  = "nbf0"
		peer = "nbf1"
	)
	for _, args := range [][]string{
		{"link", "add", nic, "type", "veth", "peer", "name", peer},
		{"link", "set", nic, "address", mac},
		{"link", "set", "lo", "up"},
		{"link", "set", nic, "up"},
		{"link", "set", peer, "up"},
		// With a lifetime, as a DHCP client adds its lease: ip shows it dynamic.
		{"addr", "add", "203.0.113.10/24", "dev", nic, "valid_lft", "86400", "preferred_lft", "86400"},
		{"-6", "addr", "add", "2001:db8:1:2::10/64", "dev", nic, "nodad"},
		{"route", "add", "default", "via", "203.0.113.254"},
		{"-6", "route", "add", gw6, "dev", nic},
		{"-6", "route", "add", "default", "via", gw6},
	} {
		if out, err := exec.Command(ipBin, append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
		}
	}

	var withTools *Facts
	tests := []struct {
		name      string
		hide      bool
		wantInOut []string
	}{
		{"with ip lsblk and udevadm", false, []string{"==> ip-addr", "==> ip-route6"}},
		{"fallbacks without them", true, []string{"==> proc-net-route", "==> proc-fib-trie", "==> proc-if-inet6", "==> proc-ipv6-route", "==> sysblock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := []string{ipBin, "netns", "exec", ns, "/bin/sh", "-c", Script()}
			var env []string
			if tt.hide {
				unshare, err := exec.LookPath("unshare")
				if err != nil {
					t.Skip("skipped: unshare(1) is needed to cover up tools in a private mount namespace")
				}
				// Bind /dev/null over each tool in a private mount
				// namespace: the host's files stay untouched.
				hide := hiddenTools("ip", "lsblk", "udevadm")
				argv = append([]string{ipBin, "netns", "exec", ns, unshare, "--mount", "--propagation", "private",
					"/bin/sh", "-c", `for f; do mount --bind /dev/null "$f" || exit 1; done; exec /bin/sh -c "$FACTS_SCRIPT"`, "sh"},
					hide...)
				env = []string{"FACTS_SCRIPT=" + Script()}
			}
			out, err := runLocal(ctx, argv, env...)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.wantInOut {
				if !bytes.Contains(out, []byte(s+"\n")) {
					t.Errorf("output lacks %q; the wrong path ran:\n%s", s, out)
				}
			}
			f, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Interfaces) != 2 {
				t.Errorf("interfaces = %+v; want %s and %s only", f.Interfaces, nic, peer)
			}
			in := f.Interface(nic)
			if in == nil {
				t.Fatalf("no %s in %+v", nic, f.Interfaces)
			}
			if in.MAC != mac || !in.Up {
				t.Errorf("%s mac %q up %v; want %q up", nic, in.MAC, in.Up, mac)
			}
			if !slices.Equal(in.IPv4, []string{"203.0.113.10/24"}) || !slices.Equal(in.IPv6, []string{"2001:db8:1:2::10/64"}) {
				t.Errorf("%s addresses = %v %v; want 203.0.113.10/24 and 2001:db8:1:2::10/64 (link-local left out)", nic, in.IPv4, in.IPv6)
			}
			wantLeases := []string{"203.0.113.10/24"}
			if tt.hide {
				wantLeases = []string{} // /proc does not tell
			}
			if !slices.Equal(in.IPv4Dynamic, wantLeases) {
				t.Errorf("%s dynamic IPv4 = %v; want %v", nic, in.IPv4Dynamic, wantLeases)
			}
			if p := f.Interface(peer); p == nil || len(p.IPv4)+len(p.IPv6) != 0 {
				t.Errorf("%s = %+v; want it listed without global addresses", peer, p)
			}
			if f.Gateway4 != "203.0.113.254" || f.Gateway4Interface != nic {
				t.Errorf("gateway4 = %q on %q; want 203.0.113.254 on %s", f.Gateway4, f.Gateway4Interface, nic)
			}
			if f.Gateway6 != gw6 || f.Gateway6Interface != nic {
				t.Errorf("gateway6 = %q on %q; want %s on %s", f.Gateway6, f.Gateway6Interface, gw6, nic)
			}
			if p := f.PrimaryInterface(); p == nil || p.Name != nic {
				t.Errorf("primary interface = %+v; want %s", p, nic)
			}
			if !tt.hide {
				withTools = f
				return
			}
			if withTools == nil {
				t.Skip("the run with tools failed; nothing to compare the fallbacks with")
			}
			// Block devices are not namespaced: the sysfs fallback must find
			// what lsblk found.
			type ds struct {
				path string
				size int64
				np   int
			}
			var got, want []ds
			for _, d := range f.Disks {
				got = append(got, ds{d.Path, d.SizeBytes, len(d.Partitions)})
			}
			for _, d := range withTools.Disks {
				want = append(want, ds{d.Path, d.SizeBytes, len(d.Partitions)})
			}
			if !slices.Equal(got, want) {
				t.Errorf("disks from sysfs = %v; lsblk found %v", got, want)
			}
		})
	}
}
