// Package apt installs Debian packages the tests and the simulated fleet need
// on a fresh machine.
package apt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/retry"
)

// Install installs Debian packages, refreshing the package lists first if
// they do not know a package yet. It waits for a dpkg lock another install
// holds instead of failing, and tries again with back-off for up to 20
// minutes when the mirror fails; when it gives up, the error names the
// mirror.
func Install(ctx context.Context, pkgs ...string) error {
	return install(ctx, retry.Default, nil, runAPT, pkgs)
}

// warnings hears of failures that are retried.
var warnings io.Writer = os.Stderr

// runner runs apt-get with args and returns its combined output.
type runner func(ctx context.Context, args ...string) ([]byte, error)

func runAPT(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return cmd.CombinedOutput()
}

// common are apt-get's options for every call: wait for another install's
// lock, and retry each download a few times itself.
var common = []string{"-o", "DPkg::Lock::Timeout=300", "-o", "Acquire::Retries=3", "-q"}

func install(ctx context.Context, p retry.Policy, clock retry.Clock, apt runner, pkgs []string) error {
	installArgs := append(append([]string{}, common...), append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...)
	what := "apt-get install " + strings.Join(pkgs, " ")
	var out []byte
	err := retry.Do(ctx, p, clock, func(attempt int) error {
		var err error
		if attempt == 1 {
			// The lists may know the packages already: no download of them.
			if out, err = apt(ctx, installArgs...); err == nil {
				return nil
			}
		}
		if out, err = apt(ctx, append(append([]string{}, common...), "update")...); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		if out, err = apt(ctx, installArgs...); err == nil {
			return nil
		}
		// Fresh lists without the package: no retry helps.
		if notFound.Match(out) {
			return retry.Permanent(fmt.Errorf("%s: %w", what, err))
		}
		return fmt.Errorf("%s: %w", what, err)
	}, func(attempt int, err error, wait time.Duration) {
		fmt.Fprintf(warnings, "apt: %v (attempt %d%s); again in %s\n", err, attempt, mirrorNote(out), wait)
	})
	if err == nil {
		return nil
	}
	var gaveUp *retry.GaveUpError
	if errors.As(err, &gaveUp) {
		return fmt.Errorf("%s: gave up after %v%s; the mirror looks down: %s", what, gaveUp, mirrorNote(out), tail(out))
	}
	return fmt.Errorf("%w: %s", err, tail(out))
}

var (
	notFound = regexp.MustCompile(`(?m)^E: (Unable to locate package|Package '[^']*' has no installation candidate)`)
	// failedURL finds the servers of failed downloads in apt's output:
	// "Err:1 http://deb.debian.org/debian bookworm InRelease",
	// "E: Failed to fetch http://...".
	failedURL = regexp.MustCompile(`(?:Err:\d+|Failed to fetch)\s+(?:[a-z0-9+]+:)?(?:https?|ftp)://([^/\s]+)`)
)

// mirrorNote names the servers apt failed to download from, if any.
func mirrorNote(out []byte) string {
	seen := map[string]bool{}
	for _, m := range failedURL.FindAllSubmatch(out, -1) {
		seen[string(m[1])] = true
	}
	if len(seen) == 0 {
		return ""
	}
	hosts := make([]string, 0, len(seen))
	for h := range seen {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	return "; failing mirror: " + strings.Join(hosts, ", ")
}

// tail is the end of apt's output, where its errors are.
func tail(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
