package transport

import "testing"

func TestIsMutatingUnsquashfs(t *testing.T) {
	tests := []struct {
		argv []string
		want bool
	}{
		{[]string{"unsquashfs", "-lls", "/iso/nix-store.squashfs"}, false},
		{[]string{"unsquashfs", "-s", "/iso/nix-store.squashfs"}, false},
		{[]string{"/usr/bin/unsquashfs", "-ll", "-UTC", "img", "nix/store"}, false},
		{[]string{"unsquashfs", "img"}, true},
		{[]string{"unsquashfs", "-lls"}, true},
		{[]string{"unsquashfs", "-f", "-d", "/mnt/x", "img"}, true},
		{[]string{"unsquashfs", "-lls", "-d", "/mnt/x", "img"}, true},
		{[]string{"unsquashfs", "-lls", "-f", "img"}, true},
		{[]string{"unsquashfs", "-no-progress", "img"}, true},
		{[]string{"mksquashfs", "-lls", "img"}, true},
		{[]string{"tar", "-tzf", "x.tgz"}, true},
	}
	for _, tt := range tests {
		if got := IsMutating(tt.argv); got != tt.want {
			t.Errorf("IsMutating(%q) = %v, want %v", tt.argv, got, tt.want)
		}
	}
}
