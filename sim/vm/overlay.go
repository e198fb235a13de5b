package vm

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// File is a file a boot lays over the image's initramfs: its host key,
// root's authorized keys, its os-release.
type File struct {
	Path string // absolute, in the guest
	Mode uint32 // permission bits; 0 means 0644 (0755 for a directory)
	Data string
	Link string // a symbolic link to Link
	Dir  bool   // a directory
}

// WriteInitrd writes base followed by a cpio archive of files to dst. The
// kernel unpacks concatenated archives in order, so files replace the
// base's; their directories are made as needed (0755).
func WriteInitrd(dst, base string, files []File) error {
	return Concat(dst, []string{base}, Cpio(files))
}

// Concat writes the archives at paths, then extra, to dst, each starting
// on a 4-byte boundary as the kernel wants.
func Concat(dst string, paths []string, extra []byte) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	defer out.Close()
	for _, p := range paths {
		if err := appendFile(out, p); err != nil {
			return fmt.Errorf("vm: %w", err)
		}
	}
	if _, err := out.Write(extra); err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	return out.Close()
}

func appendFile(out *os.File, path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	n, err := io.Copy(out, in)
	if err != nil {
		return err
	}
	if pad := (4 - n%4) % 4; pad > 0 {
		_, err = out.Write(make([]byte, pad))
	}
	return err
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
		switch {
		case f.Link != "":
			entry(f.Path, 0o120777, []byte(f.Link))
		case f.Dir:
			if mode == 0 {
				mode = 0o755
			}
			entry(f.Path, 0o040000|mode, nil)
		default:
			if mode == 0 {
				mode = 0o644
			}
			entry(f.Path, 0o100000|mode, []byte(f.Data))
		}
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

// Tree is the files, links and directories under src, as Files under dst
// in the guest: a directory tree to lay over an initramfs.
func Tree(src, dst string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		guest := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := uint32(info.Mode().Perm())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			files = append(files, File{Path: guest, Link: target})
		case d.IsDir():
			files = append(files, File{Path: guest, Dir: true, Mode: perm})
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files = append(files, File{Path: guest, Mode: perm, Data: string(data)})
		}
		return nil
	})
	return files, err
}
