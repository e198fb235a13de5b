package hostfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// FileStat is what stat says of one path.
type FileStat struct {
	Size int64
	Type string // as stat %F prints it: "regular file", "directory", ...
}

// StatFiles stats paths without following links; missing ones are left out
// of the map.
func StatFiles(ctx context.Context, h modules.ReadOnlyHost, paths ...string) (map[string]FileStat, error) {
	args := append([]string{"stat", "-c", "%s\t%F\t%n", "--"}, paths...)
	res, err := h.Probe(ctx, transport.Cmd{Args: args})
	var exit *transport.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode == 1) {
		return nil, fmt.Errorf("stat %s: %w", strings.Join(paths, " "), err)
	}
	out := map[string]FileStat{}
	sc := bufio.NewScanner(bytes.NewReader(res.Stdout))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 3)
		if len(f) != 3 {
			continue
		}
		n, perr := strconv.ParseInt(f[0], 10, 64)
		if perr != nil {
			return nil, fmt.Errorf("stat %s: size %q: %w", f[2], f[0], perr)
		}
		out[f[2]] = FileStat{Size: n, Type: f[1]}
	}
	if err != nil && len(out) == 0 && !strings.Contains(string(res.Stderr), "No such file") {
		return nil, fmt.Errorf("stat %s: %w", strings.Join(paths, " "), err)
	}
	return out, nil
}

// SHA256 hashes a file on the host with sha256sum.
func SHA256(ctx context.Context, h modules.ReadOnlyHost, file string) (string, error) {
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"sha256sum", "--", file}})
	if err != nil {
		return "", fmt.Errorf("sha256sum %s: %w", file, err)
	}
	return parseSHA256(file, res.Stdout)
}

// RunSHA256 runs cmd, a planned sha256sum of one file, and returns the sum.
func RunSHA256(ctx context.Context, h modules.Host, cmd transport.Cmd) (string, error) {
	res, err := h.Run(ctx, cmd)
	if err != nil {
		return "", err
	}
	return parseSHA256(cmd.Args[len(cmd.Args)-1], res.Stdout)
}

func parseSHA256(file string, out []byte) (string, error) {
	f := strings.Fields(string(out))
	if len(f) == 0 || !validSHA256(f[0]) {
		return "", fmt.Errorf("sha256sum %s: unexpected output %q", file, out)
	}
	return strings.ToLower(f[0]), nil
}

// Space is the room left on the file system holding a path.
type Space struct {
	Bytes  int64 // available to unprivileged users, as df shows it
	Inodes int64 // free inodes; 0 on file systems without a fixed number
}

// FreeSpace reports the space available on the file system of dir, or of
// its nearest existing parent (dir may be made later).
func FreeSpace(ctx context.Context, h modules.ReadOnlyHost, dir string) (Space, error) {
	p := path.Clean(dir)
	for {
		res, err := h.Probe(ctx, transport.Cmd{Args: []string{"stat", "-f", "-c", "%a %S %d", "--", p}})
		if err == nil {
			f := strings.Fields(string(res.Stdout))
			if len(f) != 3 {
				return Space{}, fmt.Errorf("stat -f %s: unexpected output %q", p, res.Stdout)
			}
			blocks, e1 := strconv.ParseInt(f[0], 10, 64)
			bsize, e2 := strconv.ParseInt(f[1], 10, 64)
			inodes, e3 := strconv.ParseInt(f[2], 10, 64)
			if err := errors.Join(e1, e2, e3); err != nil {
				return Space{}, fmt.Errorf("stat -f %s: %w", p, err)
			}
			return Space{Bytes: blocks * bsize, Inodes: inodes}, nil
		}
		var exit *transport.ExitError
		if !errors.As(err, &exit) || p == "/" {
			return Space{}, fmt.Errorf("free space of %s: %w", dir, err)
		}
		p = path.Dir(p)
	}
}

// FormatBytes prints a size in binary units, as df -h does.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// LookPath reports where the host finds each program on its PATH, leaving
// out those it does not have. It asks `which`, which the Debian rescue and
// NixOS both ship and which changes nothing.
func LookPath(ctx context.Context, h modules.ReadOnlyHost, programs ...string) (map[string]string, error) {
	res, err := h.Probe(ctx, transport.Cmd{Args: append([]string{"which"}, programs...)})
	var exit *transport.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode == 1) {
		return nil, fmt.Errorf("look for %s: %w", strings.Join(programs, ", "), err)
	}
	found := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(res.Stdout))
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" {
			continue
		}
		base := p[strings.LastIndexByte(p, '/')+1:]
		for _, prog := range programs {
			if base == prog {
				if _, dup := found[prog]; !dup {
					found[prog] = p
				}
			}
		}
	}
	return found, nil
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func validSHA256(s string) bool { return sha256Pattern.MatchString(s) }

// NormalizeSHA256 checks a sha256 argument and returns it in lower case;
// a "sha256:" prefix, as some release pages print it, is accepted.
func NormalizeSHA256(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "sha256:")
	if !validSHA256(s) {
		return "", fmt.Errorf("sha256 %q: want 64 hexadecimal digits", s)
	}
	return strings.ToLower(s), nil
}
