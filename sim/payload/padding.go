package payload

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// Padded is a as it would be served with n zero bytes after it, so that a
// small stand-in weighs what the real artifact does (the kexec tarball and
// the ISO are about 1 GiB): downloads, their space checks and the RAM disk
// they fill meet a realistic size. gzip and tar skip trailing zeros, and an
// ISO 9660 image is read through its descriptors, so both still unpack.
func (a Artifact) Padded(n int64) (Artifact, error) {
	if n < 0 {
		return a, errors.New("payload: negative padding")
	}
	if n == 0 {
		return a, nil
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return a, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return a, fmt.Errorf("payload: digest %s: %w", a.Name, err)
	}
	// After the padding it may have already.
	if _, err := io.CopyN(h, zeros{}, a.Padding+n); err != nil {
		return a, err
	}
	a.Padding += n
	a.Size += n
	a.SHA256 = hex.EncodeToString(h.Sum(nil))
	return a, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// paddedFile reads a file and then pad zero bytes, seekably, for
// http.ServeContent's ranges.
type paddedFile struct {
	f         *os.File
	size, pad int64
	off       int64
}

func (p *paddedFile) Read(b []byte) (int, error) {
	if p.off >= p.size+p.pad {
		return 0, io.EOF
	}
	if p.off < p.size {
		if rest := p.size - p.off; int64(len(b)) > rest {
			b = b[:rest]
		}
		n, err := p.f.ReadAt(b, p.off)
		p.off += int64(n)
		if err == io.EOF && n > 0 {
			err = nil
		}
		return n, err
	}
	if rest := p.size + p.pad - p.off; int64(len(b)) > rest {
		b = b[:rest]
	}
	clear(b)
	p.off += int64(len(b))
	return len(b), nil
}

func (p *paddedFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size + p.pad
	default:
		return 0, errors.New("payload: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("payload: negative position")
	}
	p.off = offset
	return offset, nil
}
