package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim/hostinit"
	"github.com/nixbook/nixbook/sim/internal/swaps"
)

// TestMain lets the test binary serve as the hosts' helper (their init,
// reboot, kexec and udevadm).
func TestMain(m *testing.M) {
	if code, ok := hostinit.Dispatch(os.Args); ok {
		os.Exit(code)
	}
	if dir := os.Getenv(crashDirEnv); dir != "" {
		os.Exit(upAndHang(dir))
	}
	if dev := os.Getenv(swaponEnv); dev != "" {
		os.Exit(callSwapon(dev))
	}
	os.Exit(m.Run())
}

// swaponEnv makes the test binary (inside a host, where it is the helper)
// call swapon(2) on that path itself, past every swapon program.
const swaponEnv = "NIXBOOK_SIM_TEST_SWAPON"

func callSwapon(dev string) int {
	p, err := unix.BytePtrFromString(dev)
	if err != nil {
		return 2
	}
	if _, _, errno := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0); errno != 0 {
		fmt.Println(swaps.Strerror(errno))
		return 1
	}
	return 0
}

// crashDirEnv makes the test binary bring a fleet up in that directory and
// hang until it is killed: a fleet process that dies without Down.
const crashDirEnv = "NIXBOOK_SIM_TEST_CRASH_DIR"

func upAndHang(dir string) int {
	f, err := Up(context.Background(), Config{Dir: dir, Hosts: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(f.ID())
	select {}
}

func requireRoot(t testing.TB) {
	t.Helper()
	heavytest.Root(t, "a simulated fleet: network namespaces, loop devices, a bridge")
	for _, tool := range []string{"ip", "nsenter", "losetup", "blkid", "/usr/sbin/sshd"} {
		if _, err := lookPath(tool); err != nil {
			t.Skipf("the simulated fleet needs %s: %v", tool, err)
		}
	}
}

// startFleet brings a fleet up in a fresh directory and always takes it down.
func startFleet(t testing.TB, cfg Config) *Fleet {
	t.Helper()
	requireRoot(t)
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.BootDelay == 0 {
		cfg.BootDelay = 200 * time.Millisecond
	}
	logf := cfg.Logf
	cfg.Logf = func(format string, args ...any) {
		t.Logf(format, args...)
		if logf != nil {
			logf(format, args...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if up := f.ExpectedUp(); len(up) > 0 {
		if err := f.WaitSSH(ctx, up...); err != nil {
			t.Fatalf("wait for SSH: %v", err)
		}
	}
	return f
}

// dial logs in as root on a host with the fleet's client key and returns
// the host key it presented.
func dial(t testing.TB, f *Fleet, host string) (*ssh.Client, ssh.PublicKey) {
	t.Helper()
	h, ok := f.Host(host)
	if !ok {
		t.Fatalf("no host %s", host)
	}
	c, key, err := dialHost(h.Addr().String(), f.ClientKeyFile())
	if err != nil {
		t.Fatalf("ssh %s: %v", host, err)
	}
	return c, key
}

func dialHost(addr, keyFile string) (*ssh.Client, ssh.PublicKey, error) {
	return dialAddr(net.JoinHostPort(addr, "22"), keyFile)
}

// dialAddr logs in as root at host:port with a key.
func dialAddr(hostPort, keyFile string) (*ssh.Client, ssh.PublicKey, error) {
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, nil, err
	}
	var hostKey ssh.PublicKey
	c, err := ssh.Dial("tcp", hostPort, &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			hostKey = key
			return nil
		},
		Timeout: 5 * time.Second,
	})
	return c, hostKey, err
}

// run runs a shell command on a host and returns its stdout; a failure
// fails the test.
func run(t testing.TB, c *ssh.Client, cmd string) string {
	t.Helper()
	out, err := runErr(c, cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

func runErr(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Run(cmd); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// eventually retries check until it passes or the timeout ends.
func eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, errors.Join(err, fmt.Errorf("still failing after %s", timeout)))
}

// sshWithin waits at most d for host to answer SSH; the error says why it
// does not (its mode and the simulator's reason).
func sshWithin(f *Fleet, host string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return f.WaitSSH(ctx, host)
}

func TestRescueHostAnswersSSHWithClientKey(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1})
	c, key := dial(t, f, "ks1")
	defer c.Close()
	if got, want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), f.byName["ks1"].HostKey(); !strings.HasPrefix(want, got) {
		t.Errorf("host key = %s, the fleet says %s", got, want)
	}
	tests := []struct {
		cmd, want string
	}{
		{"hostname", "rescue12-customer-eu\n"},
		{"id -u", "0\n"},
		{". /etc/os-release && echo $ID $VERSION_ID", "debian 12\n"},
		{"cat /proc/sys/kernel/random/boot_id", f.byName["ks1"].BootID() + "\n"},
		{"echo $$", ""}, // just runs
		{"ip -4 -o addr show dev eth0 | awk '{print $4}'", f.byName["ks1"].IPv4().String() + "\n"},
		{"ip -6 -o addr show dev eth0 scope global | awk '{print $4}'", f.byName["ks1"].IPv6().String() + "\n"},
		{"ip -4 route show default | awk '{print $3}'", f.Gateway4().String() + "\n"},
		{"ip -6 route show default | awk '{print $3}'", f.Gateway6().String() + "\n"},
		{"ip -6 route show " + f.Gateway6().String() + " | awk '{print $2, $3}'", "dev eth0\n"},
		{"readlink /usr/sbin/reboot", hostinit.HelperPath + "\n"},
		{"ls /root/.ssh", "authorized_keys\n"},
	}
	for _, tt := range tests {
		got := run(t, c, tt.cmd)
		if tt.want != "" && got != tt.want {
			t.Errorf("%s = %q, want %q", tt.cmd, got, tt.want)
		}
	}
	// The host's processes live in their own PID namespace.
	if out := run(t, c, "ps -e -o pid= -o comm= | awk '$1==1{print $2}'"); !strings.Contains(out, "nixbook") && !strings.Contains(out, "sim.test") {
		t.Errorf("PID 1 is %q, want the simulator's init", out)
	}
}

func lookPath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		_, err := os.Stat(name)
		return name, err
	}
	return exec.LookPath(name)
}

func writeFileMode(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }

func diskKeyLine(k ssh.PublicKey) []byte { return ssh.MarshalAuthorizedKey(k) }
