package hostfs_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs/hostfstest"
)

// FuzzParseMounts checks that what hostfstest.FindmntOutput writes reads
// back the same, whatever bytes a path holds.
func FuzzParseMounts(f *testing.F) {
	f.Add("/mnt/my iso", "/dev/loop0", "iso9660", "ro,nodev", "7:0")
	f.Add("/a\"b\\c`$d", "rpool/root", "zfs", "rw", "0:50")
	f.Fuzz(func(t *testing.T, target, source, fstype, options, majMin string) {
		if target == "" || strings.Contains(options, ",,") {
			t.Skip()
		}
		in := []hostfs.MountState{{Mounted: true, Target: target, Source: source, FSType: fstype, FSRoot: "/", Options: strings.Split(options, ","), MajMin: majMin}}
		got := hostfs.ParseMounts(hostfstest.FindmntOutput(in))
		if !reflect.DeepEqual(got, in) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
		}
		hostfs.ParseMounts([]byte(target + source)) // never panics
	})
}
