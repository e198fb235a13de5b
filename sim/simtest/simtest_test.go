package simtest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim"
)

func runOn(t *testing.T, h Host, cmd string) string {
	t.Helper()
	pem, err := os.ReadFile(h.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort(h.Addr, "22"), &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, stderr bytes.Buffer
	s.Stdout, s.Stderr = &out, &stderr
	if err := s.Run(cmd); err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("%s: stderr %q", cmd, stderr.String())
	}
	return out.String()
}

func TestStartGivesAFleetAndTakesItDown(t *testing.T) {
	heavytest.Root(t, "a simulated fleet")
	var dir, bridge string
	t.Run("fleet", func(t *testing.T) {
		f := Start(t, 2, WithoutPayload())
		dir, bridge = f.Dir, f.Sim().Bridge()
		if len(f.Hosts) != 2 || f.Emulator == nil {
			t.Fatalf("fleet: %+v", f)
		}
		if data, err := os.ReadFile(f.FleetYAML); err != nil || !strings.Contains(string(data), f.Hosts[1].Addr) {
			t.Errorf("fleet.yml: %v\n%s", err, data)
		}
		ks1 := f.Host("ks1")
		if got := runOn(t, ks1, "hostname"); got != "rescue12-customer-eu\n" {
			t.Errorf("hostname = %q", got)
		}
		if f.Mode("ks1") != sim.ModeRescue || f.BootID("ks1") == "" {
			t.Errorf("mode %s, boot id %q", f.Mode("ks1"), f.BootID("ks1"))
		}

		before := f.DiskSHA256("ks1")
		runOn(t, ks1, "dd if=/dev/sda of=/dev/null bs=1M count=4 status=none; blkid /dev/sda || true")
		if after := f.DiskSHA256("ks1"); after["sda"] != before["sda"] {
			t.Errorf("reading the disk changed its checksum")
		}
		runOn(t, ks1, "printf x | dd of=/dev/sda bs=1 seek=4096 status=none")
		if after := f.DiskSHA256("ks1"); after["sda"] == before["sda"] {
			t.Errorf("a one-byte write left the checksum as it was")
		}
		if f.DiskSHA256("ks2")["sda"] != before["sda"] {
			t.Errorf("ks2's disk changed")
		}
	})
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the fleet's directory %s is still there", dir)
	}
	if out, _ := exec.Command("ip", "-o", "link").Output(); strings.Contains(string(out), bridge) {
		t.Errorf("the fleet's bridge %s is still there", bridge)
	}
}
