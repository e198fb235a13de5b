package fetchiso

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

	"github.com/nixbook/nixbook/modules"
	"github.com/nixbook/nixbook/transport"
)

// Download is a resumable download of one file on the host, verified by its
// sha256 before it takes its final name: the data goes to Dest.part first,
// so a half-written file is never mistaken for the real one, and an
// interrupted run resumes where it stopped.
type Download struct {
	URL    string
	SHA256 string // lower-case hex; empty: not verified
	Dest   string
	Tool   string // "curl" or "wget", as FindTool resolved it
}

// Part is where the data goes until it is verified.
func (d Download) Part() string { return d.Dest + ".part" }

// FileState is what the host holds of a download.
type FileState struct {
	Exists     bool   // Dest is there
	Size       int64  // of Dest
	SHA256     string // of Dest, when a checksum is asked for
	PartExists bool
	PartSize   int64
}

// Complete reports whether Dest holds the file: present, and with the
// expected checksum when there is one.
func (d Download) Complete(s FileState) bool {
	if !s.Exists || s.Size == 0 {
		return false
	}
	return d.SHA256 == "" || s.SHA256 == d.SHA256
}

// Inspect looks at Dest and Dest.part, hashing Dest when a checksum is
// expected.
func (d Download) Inspect(ctx context.Context, h modules.ReadOnlyHost) (FileState, error) {
	var s FileState
	stats, err := StatFiles(ctx, h, d.Dest, d.Part())
	if err != nil {
		return s, err
	}
	if st, ok := stats[d.Dest]; ok {
		if st.Type != "regular file" {
			return s, fmt.Errorf("%s is a %s, not a file", d.Dest, st.Type)
		}
		s.Exists, s.Size = true, st.Size
	}
	if st, ok := stats[d.Part()]; ok && st.Type == "regular file" {
		s.PartExists, s.PartSize = true, st.Size
	}
	if s.Exists && d.SHA256 != "" {
		if s.SHA256, err = SHA256(ctx, h, d.Dest); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Steps are the commands of a download, in the order Run runs them.
type Steps struct {
	d                   Download
	mkdir, head, fetch  transport.Cmd
	verify, rename, del transport.Cmd
}

// Plan records the download's commands in c and returns them for Run, so
// that what the plan shows is what runs. The summary says what is known of
// the file already.
func (d Download) Plan(c *modules.Change, s FileState) *Steps {
	st := &Steps{d: d}
	st.mkdir = c.Cmd("mkdir", "-p", "--", path.Dir(d.Dest))
	switch d.Tool {
	case "wget":
		st.head = c.Cmd("wget", "-q", "-S", "--spider", "--timeout=30", "--", d.URL)
		st.fetch = c.Cmd("wget", "-c", "--tries=5", "--progress=dot:giga", "-O", d.Part(), "--", d.URL)
	default:
		st.head = c.Cmd("curl", "-fsSIL", "--max-time", "30", "--", d.URL)
		st.fetch = c.Cmd("curl", "-fL", "--retry", "5", "-C", "-", "-o", d.Part(), "--", d.URL)
	}
	if d.SHA256 != "" {
		st.verify = c.Cmd("sha256sum", "--", d.Part())
	}
	st.rename = c.Cmd("mv", "-f", "--", d.Part(), d.Dest)
	// Only when the checksum is wrong: not part of the plan's happy path.
	st.del = transport.Cmd{Args: []string{"rm", "-f", "--", d.Part()}}
	if s.PartExists && s.PartSize > 0 {
		c.Summary += fmt.Sprintf(" (resuming: %s already in %s)", FormatBytes(s.PartSize), d.Part())
	} else if s.Exists && d.SHA256 != "" {
		c.Summary += fmt.Sprintf(" (%s has sha256 %s, want %s)", d.Dest, s.SHA256, d.SHA256)
	}
	return st
}

// Run downloads: it checks the free space against the size the server
// announces, fetches (resuming), verifies and renames. Progress goes to the
// host's log. A wrong checksum deletes the partial file, so that the next
// run starts afresh, and fails with both sums.
func (st *Steps) Run(ctx context.Context, h modules.Host) (string, error) {
	d := st.d
	if _, err := h.Run(ctx, st.mkdir); err != nil {
		return "", err
	}
	if err := st.checkSpace(ctx, h); err != nil {
		return "", err
	}
	h.Log("downloading %s to %s", d.URL, d.Part())
	progress := NewProgressLog(h.Log, 0)
	fetch := st.fetch
	fetch.Stderr = progress
	_, err := h.Run(ctx, fetch)
	progress.Flush()
	if err != nil {
		return "", fmt.Errorf("download %s: %w", d.URL, err)
	}
	var sum string
	if d.SHA256 != "" {
		if sum, err = runSHA256(ctx, h, st.verify); err != nil {
			return "", err
		}
		if sum != d.SHA256 {
			if _, rerr := h.Run(ctx, st.del); rerr != nil {
				h.Log("could not delete %s: %v", d.Part(), rerr)
			}
			return "", fmt.Errorf("checksum mismatch for %s: got sha256 %s, want %s; deleted %s so the next run downloads it afresh (check url and sha256)",
				d.URL, sum, d.SHA256, d.Part())
		}
	}
	if _, err := h.Run(ctx, st.rename); err != nil {
		return "", err
	}
	return sum, nil
}

// checkSpace compares what is left to download with the space available
// where it goes. A server that does not announce a size is not an error:
// the download itself will tell.
func (st *Steps) checkSpace(ctx context.Context, h modules.Host) error {
	d := st.d
	res, err := h.Run(ctx, st.head)
	if err != nil {
		h.Log("no size announced for %s (%v): skipping the free space check", d.URL, err)
		return nil
	}
	headers := res.Stdout
	if d.Tool == "wget" {
		headers = res.Stderr
	}
	total, ok := ContentLength(headers)
	if !ok {
		h.Log("no size announced for %s: skipping the free space check", d.URL)
		return nil
	}
	var have int64
	if stats, err := StatFiles(ctx, h, d.Part()); err == nil {
		have = stats[d.Part()].Size
	}
	dir := path.Dir(d.Dest)
	free, err := FreeSpace(ctx, h, dir)
	if err != nil {
		return err
	}
	need := total - have
	if need > free.Bytes {
		return fmt.Errorf("%s is %s (%s left to download); %s has %s available: choose a dest on a larger file system, such as a disk partition mounted for the download",
			path.Base(d.Dest), FormatBytes(total), FormatBytes(need), dir, FormatBytes(free.Bytes))
	}
	h.Log("%s: %s to download, %s available in %s", path.Base(d.Dest), FormatBytes(need), FormatBytes(free.Bytes), dir)
	return nil
}

var contentLength = regexp.MustCompile(`(?im)^\s*content-length:\s*([0-9]+)\s*$`)

// ContentLength is the size in the last response of a header dump (the one
// after any redirects).
func ContentLength(headers []byte) (int64, bool) {
	m := contentLength.FindAllSubmatch(headers, -1)
	if len(m) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(m[len(m)-1][1]), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

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

func runSHA256(ctx context.Context, h modules.Host, cmd transport.Cmd) (string, error) {
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
