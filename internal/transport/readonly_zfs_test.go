package transport

import "testing"

func TestIsMutatingZFS(t *testing.T) {
	tests := []struct {
		argv []string
		want bool
	}{
		{[]string{"zpool", "list", "-H", "-o", "name"}, false},
		{[]string{"/sbin/zpool", "get", "-H", "-p", "-o", "property,value", "ashift,altroot", "rpool"}, false},
		{[]string{"zpool", "status", "-P", "rpool"}, false},
		{[]string{"zpool", "status", "-c", "upath", "rpool"}, true},
		{[]string{"zpool", "status", "-Pc", "upath"}, true},
		{[]string{"zpool", "list", "-vc", "x"}, true},
		{[]string{"zpool", "import"}, false},
		{[]string{"zpool", "import", "-d", "/dev/disk/by-id"}, false},
		{[]string{"zpool", "import", "-D", "-d", "/dev"}, false},
		{[]string{"zpool", "import", "-d"}, true},
		{[]string{"zpool", "import", "rpool"}, true},
		{[]string{"zpool", "import", "-N", "-d", "/dev/disk/by-id", "rpool"}, true},
		{[]string{"zpool", "import", "-a"}, true},
		{[]string{"zpool", "import", "-d", "/dev", "1234567890"}, true},
		{[]string{"zpool", "create", "rpool", "/dev/sda2"}, true},
		{[]string{"zpool", "export", "rpool"}, true},
		{[]string{"zpool", "labelclear", "-f", "/dev/sda2"}, true},
		{[]string{"zpool"}, true},
		{[]string{"zfs", "list", "-H", "-r", "rpool"}, false},
		{[]string{"zfs", "get", "-H", "-o", "value", "type", "rpool/home"}, false},
		{[]string{"zfs", "create", "-o", "mountpoint=legacy", "rpool/home"}, true},
		{[]string{"zfs", "set", "compression=lz4", "rpool"}, true},
		{[]string{"zfs", "destroy", "rpool/home"}, true},
		{[]string{"zfs"}, true},
	}
	for _, tt := range tests {
		if got := IsMutating(tt.argv); got != tt.want {
			t.Errorf("IsMutating(%q) = %v, want %v", tt.argv, got, tt.want)
		}
	}
}
