package partition

import (
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

// A disk named by its kernel path is the disk that had the path when the
// reinstall began, whatever this system calls it; a disk that is gone is an
// error, never a guess.
func TestFollowDisks(t *testing.T) {
	const idA, idB = "/dev/disk/by-id/ata-A", "/dev/disk/by-id/ata-B"
	swapped := []fakeDisk{{path: "/dev/sda", byID: []string{idB}}, {path: "/dev/sdb", byID: []string{idA}}}
	same := []fakeDisk{{path: "/dev/sda", byID: []string{idA}}, {path: "/dev/sdb", byID: []string{idB}}}
	tests := []struct {
		name    string
		disks   []fakeDisk
		atStart map[string]string
		memory  map[string]string
		given   []string
		want    string
		err     string
	}{
		{name: "same names", disks: same, atStart: map[string]string{"/dev/sda": idA, "/dev/sdb": idB}, given: []string{"/dev/sda"}, want: "/dev/sda"},
		{name: "swapped since the run began", disks: swapped, atStart: map[string]string{"/dev/sda": idA, "/dev/sdb": idB}, given: []string{"/dev/sda"}, want: "/dev/sdb"},
		{name: "both swapped", disks: swapped, atStart: map[string]string{"/dev/sda": idA, "/dev/sdb": idB}, given: []string{"/dev/sda", "/dev/sdb"}, want: "/dev/sdb /dev/sda"},
		{name: "remembered from the run that began the reinstall", disks: swapped,
			atStart: map[string]string{"/dev/sda": idB, "/dev/sdb": idA},
			memory:  map[string]string{modules.MemoryDiskNames: "/dev/sda=" + idA + " /dev/sdb=" + idB},
			given:   []string{"/dev/sda"}, want: "/dev/sdb"},
		{name: "by-id is taken as it is", disks: swapped, atStart: map[string]string{"/dev/sda": idA}, given: []string{idA}, want: idA},
		{name: "nothing known", disks: swapped, given: []string{"/dev/sda"}, want: "/dev/sda"},
		{name: "the disk is gone", disks: []fakeDisk{{path: "/dev/sda", byID: []string{idB}}}, atStart: map[string]string{"/dev/sda": idA},
			given: []string{"/dev/sda"}, err: "/dev/sda was /dev/disk/by-id/ata-A when the reinstall began, and no disk of this system is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &fakeHost{name: "ks1", disks: tt.disks, atStart: tt.atStart, Memory: moduletest.Memory{M: tt.memory}}
			got, notes, err := followDisks(h, tt.given)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("got %v, want %s", got, tt.want)
			}
			if moved := strings.Join(got, " ") != strings.Join(tt.given, " "); moved != (len(notes) > 0) {
				t.Errorf("notes %q for a move of %v", notes, moved)
			}
		})
	}
}
