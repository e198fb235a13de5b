package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/diff"
)

// Diff returns a line diff of a and b: unchanged lines prefixed with a space,
// removed with "-", added with "+". Unchanged runs away from a change are
// folded into "@@ N unchanged lines @@", so a one-line change in a long file
// stays readable.
//
// The diff is Go's own anchored diff (the go command's, kept in
// github.com/rogpeppe/go-internal/diff): time O(n log n) and memory linear
// in the size of the files, whatever they hold.
func Diff(a, b string) []string {
	if a == b {
		return nil
	}
	unified := string(diff.Diff("a", []byte(a), "b", []byte(b)))
	lines := strings.Split(strings.TrimSuffix(unified, "\n"), "\n")
	var out []string
	// done counts the old lines shown or folded so far; the diff, --- and
	// +++ header lines are skipped.
	done := 0
	for _, l := range lines[min(3, len(lines)):] {
		if !strings.HasPrefix(l, "@@ ") {
			out = append(out, l)
			continue
		}
		start, count, err := hunkOld(l)
		if err != nil {
			// Not a header this code knows: show it as is.
			out = append(out, l)
			continue
		}
		if start > done {
			out = append(out, folded(start-done))
		}
		done = start + count
	}
	if total := countLines(a); total > done {
		out = append(out, folded(total-done))
	}
	return out
}

func folded(n int) string { return "@@ " + strconv.Itoa(n) + " unchanged lines @@" }

// hunkOld reads the old side of a unified hunk header "@@ -s,n +t,m @@" as
// the 0-based index of its first line and its number of lines.
func hunkOld(header string) (start, count int, err error) {
	var s, n, t, m int
	if _, err := fmt.Sscanf(header, "@@ -%d,%d +%d,%d @@", &s, &n, &t, &m); err != nil {
		return 0, 0, err
	}
	if n == 0 {
		// An empty side names the line before it.
		return s, 0, nil
	}
	return s - 1, n, nil
}

// countLines counts lines as the diff does: a last line without a newline
// counts.
func countLines(s string) int {
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}
