package vm

import "testing"

func TestHashChangesWithScripts(t *testing.T) {
	a := hashOf([]byte("x"), []byte("y"))
	if a == hashOf([]byte("xy")) || a == hashOf([]byte("x"), []byte("z")) || a != hashOf([]byte("x"), []byte("y")) {
		t.Error("hash does not follow the scripts")
	}
	if imageDir("/c") == rootfsDir("/c") {
		t.Error("image and root share a cache entry")
	}
}
