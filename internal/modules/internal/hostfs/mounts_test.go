package hostfs

import (
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
)

// TestParseMountsOfThisMachine reads what this machine's findmnt prints
// (a read-only listing) and checks it against the kernel's own table.
// Tests running beside it mount and unmount: the table is read before and
// after findmnt, and findmnt asked again until the two agree.
func TestParseMountsOfThisMachine(t *testing.T) {
	readTable := func() string {
		info, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		return string(info)
	}
	var out []byte
	var table string
	for attempt := 1; ; attempt++ {
		before := readTable()
		var err error
		out, err = exec.Command(MountsArgv()[0], MountsArgv()[1:]...).Output()
		if err != nil {
			t.Skipf("findmnt: %v", err)
		}
		if table = readTable(); table == before {
			break
		}
		if attempt == 20 {
			t.Skip("the mount table changed during each of 20 readings: other tests are mounting")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mounts := ParseMounts(out)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(mounts) != len(lines) {
		t.Fatalf("ParseMounts found %d mounts, mountinfo lists %d", len(mounts), len(lines))
	}
	for i, line := range lines {
		f := strings.Fields(line) // id parent maj:min root target ...
		if mounts[i].MajMin != f[2] || mounts[i].FSRoot != facts.UnescapeOctal(f[3]) {
			t.Errorf("mount %d: got %+v, mountinfo says %q", i, mounts[i], line)
		}
	}
}

func TestParseMountsOfNewerFindmnt(t *testing.T) {
	// util-linux 2.39 and later (the NixOS installer's) name MAJ:MIN so.
	got := ParseMounts([]byte(`TARGET="/mnt/boot" SOURCE="/dev/sda1" FSTYPE="ext4" FSROOT="/" OPTIONS="rw,relatime" PROPAGATION="shared" MAJ_MIN="8:1"` + "\n"))
	want := []MountState{{Mounted: true, Target: "/mnt/boot", Source: "/dev/sda1", FSType: "ext4", FSRoot: "/", Options: []string{"rw", "relatime"}, Propagation: "shared", MajMin: "8:1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseMounts = %+v, want %+v", got, want)
	}
}

// The last mount at a target is the visible one.
func TestMountAt(t *testing.T) {
	mounts := []MountState{
		{Mounted: true, Target: "/mnt", Source: "/dev/sda2", FSType: "ext4"},
		{Mounted: true, Target: "/mnt/boot", Source: "/dev/sda1", FSType: "vfat"},
		{Mounted: true, Target: "/mnt", Source: "rpool/root", FSType: "zfs"},
	}
	if got := MountAt(mounts, "/mnt/"); got.Source != "rpool/root" {
		t.Errorf("MountAt /mnt/ = %+v, want rpool/root over /dev/sda2", got)
	}
	if got := MountAt(mounts, "/mnt/home"); got.Mounted {
		t.Errorf("MountAt /mnt/home = %+v, want nothing", got)
	}
}

// TestMountsArgvIsFresh: a caller that edits the argv it got (appending an
// option, say) must not change what Mounts and other callers ask.
func TestMountsArgvIsFresh(t *testing.T) {
	argv := MountsArgv()
	argv[0] = "true"
	if got := MountsArgv()[0]; got != "findmnt" {
		t.Fatalf("MountsArgv()[0] = %q after a caller edited its copy, want findmnt", got)
	}
}
