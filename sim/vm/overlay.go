package vm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
)

// File is a file a boot lays over the image's initramfs: its host key,
// root's authorized keys, its os-release.
type File struct {
	Path string // absolute, in the guest
	Mode uint32 // permission bits; 0 means 0644
	Data string
}

// WriteInitrd writes base followed by a cpio archive of files to dst. The
// kernel unpacks concatenated archives in order, so files replace the
// base's; their directories are made as needed (0755).
func WriteInitrd(dst, base string, files []File) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	defer out.Close()
	in, err := os.Open(base)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	defer in.Close()
	n, err := io.Copy(out, in)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	// The next archive starts on a 4-byte boundary.
	if pad := (4 - n%4) % 4; pad > 0 {
		if _, err := out.Write(make([]byte, pad)); err != nil {
			return fmt.Errorf("vm: %w", err)
		}
	}
	if _, err := out.Write(Cpio(files)); err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	return out.Close()
}

// Cpio is a newc archive holding files and their parent directories.
func Cpio(files []File) []byte {
	var buf bytes.Buffer
	dirs := map[string]bool{}
	var dirList []string
	for _, f := range files {
		for d := path.Dir(f.Path); d != "/" && d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			dirList = append(dirList, d)
		}
	}
	sort.Strings(dirList) // parents first
	ino := 1
	entry := func(name string, mode uint32, data []byte) {
		name = name[1:] // relative, as cpio archives for the kernel are
		fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		ino++
		buf.WriteString(name)
		buf.WriteByte(0)
		pad4(&buf)
		buf.Write(data)
		pad4(&buf)
	}
	for _, d := range dirList {
		entry(d, 0o040755, nil)
	}
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		entry(f.Path, 0o100000|mode, []byte(f.Data))
	}
	fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0)
	buf.WriteString("TRAILER!!!\x00")
	pad4(&buf)
	return buf.Bytes()
}

func pad4(b *bytes.Buffer) {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}
