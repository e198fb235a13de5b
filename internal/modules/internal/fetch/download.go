// Package fetch downloads a file on the host, resumably, and verifies its
// sha256 before it takes its final name; the fetchiso and kexec modules
// share it.
package fetch

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strconv"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/transport"
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
	// Unpacked, when set, is the space the file needs beside itself once
	// downloaded, from its size: what unpacking it takes in the same file
	// system. The free space check counts it.
	Unpacked func(size int64) int64
}

// SpaceError is a download that would not fit where it goes.
type SpaceError struct {
	File     string // the file's name
	Size     int64  // announced by the server
	Need     int64  // left to download, plus Unpacked
	Unpacked int64  // of Need, what unpacking it takes
	Dir      string
	Free     int64
}

func (e *SpaceError) Error() string {
	if e.Unpacked > 0 {
		return fmt.Sprintf("%s is %s and unpacks to %s more; %s has %s available (%s needed): choose a dest on a larger file system, such as a disk partition mounted for the download",
			e.File, hostfs.FormatBytes(e.Size), hostfs.FormatBytes(e.Unpacked), e.Dir, hostfs.FormatBytes(e.Free), hostfs.FormatBytes(e.Need))
	}
	return fmt.Sprintf("%s is %s (%s left to download); %s has %s available: choose a dest on a larger file system, such as a disk partition mounted for the download",
		e.File, hostfs.FormatBytes(e.Size), hostfs.FormatBytes(e.Need), e.Dir, hostfs.FormatBytes(e.Free))
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
	stats, err := hostfs.StatFiles(ctx, h, d.Dest, d.Part())
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
		if s.SHA256, err = hostfs.SHA256(ctx, h, d.Dest); err != nil {
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
		c.Summary += fmt.Sprintf(" (resuming: %s already in %s)", hostfs.FormatBytes(s.PartSize), d.Part())
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
		if sum, err = hostfs.RunSHA256(ctx, h, st.verify); err != nil {
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
	if stats, err := hostfs.StatFiles(ctx, h, d.Part()); err == nil {
		have = stats[d.Part()].Size
	}
	dir := path.Dir(d.Dest)
	free, err := hostfs.FreeSpace(ctx, h, dir)
	if err != nil {
		return err
	}
	need := total - have
	var unpacked int64
	if d.Unpacked != nil {
		unpacked = d.Unpacked(total)
		need += unpacked
	}
	if need > free.Bytes {
		return &SpaceError{File: path.Base(d.Dest), Size: total, Need: need, Unpacked: unpacked, Dir: dir, Free: free.Bytes}
	}
	h.Log("%s: %s to download, %s available in %s", path.Base(d.Dest), hostfs.FormatBytes(need), hostfs.FormatBytes(free.Bytes), dir)
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
