package payload

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestPaddedArtifactIsServedWithItsZeros(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kexec.tar.gz")
	body := []byte("the installer")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	// Padded twice: the second padding goes after the first.
	a, err := Artifact{Name: "kexec.tar.gz", Path: path, Size: int64(len(body))}.Padded(3000)
	if err == nil {
		a, err = a.Padded(2000)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, body...), make([]byte, 5000)...)
	sum := sha256.Sum256(want)
	if a.Size != int64(len(want)) || a.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("padded artifact: size %d, sha256 %s; want %d, %x", a.Size, a.SHA256, len(want), sum)
	}
	srv := httptest.NewServer(serveFile(a))
	defer srv.Close()
	for _, tt := range []struct {
		rng  string
		want []byte
	}{
		{"", want},
		{"bytes=4-20", want[4:21]},   // across the file's end into the zeros
		{"bytes=1000-", want[1000:]}, // a resumed download, in the zeros
		{"bytes=-3", want[len(want)-3:]},
	} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if tt.rng != "" {
			req.Header.Set("Range", tt.rng)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !bytes.Equal(got, tt.want) || res.ContentLength != int64(len(tt.want)) {
			t.Errorf("range %q: %d bytes (Content-Length %d), want %d", tt.rng, len(got), res.ContentLength, len(tt.want))
		}
	}
}
