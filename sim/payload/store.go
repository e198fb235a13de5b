package payload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// storeDir is where the store lives on the simulated machines, as on NixOS.
const storeDir = "/nix/store"

// nixBase32 is Nix's base-32 alphabet (no e, o, t, u).
const nixBase32 = "0123456789abcdfghijklmnpqrsvwxyz"

// storeHash makes a 32-character store hash the way Nix prints them, from
// a digest of what the path holds: the same content gets the same path,
// changed content a new one.
func storeHash(name string, digest []byte) string {
	sum := sha256.Sum256(append([]byte(name+"\x00"), digest...))
	hash := sum[:20]
	out := make([]byte, 0, 32)
	for n := 31; n >= 0; n-- {
		b := n * 5
		i, j := b/8, uint(b%8)
		c := hash[i] >> j
		if i+1 < len(hash) {
			c |= hash[i+1] << (8 - j)
		}
		out = append(out, nixBase32[c&0x1f])
	}
	return string(out)
}

// store assembles store paths in a staging directory.
type store struct {
	dir string // staging directory holding <hash>-<name> entries
	tmp int
}

// add builds a store path with fill, which writes into a scratch
// directory, names it after its content and returns its /nix/store path.
func (s *store) add(name string, fill func(dir string) error) (string, error) {
	s.tmp++
	scratch := filepath.Join(s.dir, fmt.Sprintf(".tmp-%d", s.tmp))
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return "", err
	}
	if err := fill(scratch); err != nil {
		return "", fmt.Errorf("store path %s: %w", name, err)
	}
	digest, err := treeDigest(scratch)
	if err != nil {
		return "", fmt.Errorf("store path %s: %w", name, err)
	}
	base := storeHash(name, digest) + "-" + name
	final := filepath.Join(s.dir, base)
	if err := os.Rename(scratch, final); err != nil {
		return "", err
	}
	out := storeDir + "/" + base
	if err := substituteSelf(final, out); err != nil {
		return "", fmt.Errorf("store path %s: %w", name, err)
	}
	return out, nil
}

// substituteSelf replaces @out@ with the path's own name once it is known,
// as Nix does for self-references; the name was computed with @out@ in.
func substituteSelf(root, out string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(data, []byte("@out@")) {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(path, bytes.ReplaceAll(data, []byte("@out@"), []byte(out)), info.Mode().Perm())
	})
}

// addFile makes a store path that is a single file, like nix.conf.
func (s *store) addFile(name string, content []byte, mode fs.FileMode) (string, error) {
	base := storeHash(name, content) + "-" + name
	if err := os.WriteFile(filepath.Join(s.dir, base), content, mode); err != nil {
		return "", err
	}
	return storeDir + "/" + base, nil
}

// treeDigest hashes names, modes, link targets and contents, not times.
func treeDigest(root string) ([]byte, error) {
	h := sha256.New()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%o\x00", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00", target)
		case info.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	return h.Sum(nil), err
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileDigest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

var lddLine = regexp.MustCompile(`(?m)^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$`)

// sharedLibraries lists the libraries a dynamic executable loads, the
// loader first, as ldd resolves them on this machine.
func sharedLibraries(ctx context.Context, binary string) (loader string, libs []string, err error) {
	out, err := exec.CommandContext(ctx, "ldd", binary).Output()
	if err != nil {
		return "", nil, fmt.Errorf("ldd %s: %w", binary, err)
	}
	for _, m := range lddLine.FindAllStringSubmatch(string(out), -1) {
		path := m[1]
		if strings.Contains(filepath.Base(path), "ld-linux") {
			loader = path
			continue
		}
		libs = append(libs, path)
	}
	if loader == "" {
		return "", nil, fmt.Errorf("ldd %s: no dynamic loader", binary)
	}
	sort.Strings(libs)
	return loader, libs, nil
}

// busyboxApplets lists the applets a busybox binary was built with.
func busyboxApplets(ctx context.Context, busybox string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if a := strings.TrimSpace(sc.Text()); a != "" && !strings.ContainsAny(a, "/[") {
			applets = append(applets, a)
		}
	}
	sort.Strings(applets)
	return applets, sc.Err()
}

// debianVersion is the upstream version of an installed Debian package
// (9.2p1 for 1:9.2p1-2+deb12u10), or "unknown".
func debianVersion(ctx context.Context, pkg string) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil || len(out) == 0 {
		return "unknown"
	}
	v := string(out)
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	return v
}

func hexDigest(b []byte) string { return hex.EncodeToString(b) }
