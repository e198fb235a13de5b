package zfs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/transport"
)

// prober runs the read-only commands Check needs.
type prober struct{ h modules.ReadOnlyHost }

func (p prober) probe(ctx context.Context, args ...string) (transport.Result, error) {
	res, err := p.h.Probe(ctx, transport.Cmd{Args: args})
	if err != nil {
		return res, fmt.Errorf("probe %s: %w", args[0], err)
	}
	return res, nil
}

// exitCode returns the exit code of a command that ran, or false when the
// probe failed otherwise (unreachable host, refused command).
func exitCode(err error) (int, bool) {
	var exit *transport.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode, true
	}
	return 0, false
}

// importedPools lists the pools imported now. A host without ZFS is an
// error that says so.
func (p prober) importedPools(ctx context.Context) ([]string, error) {
	res, err := p.h.Probe(ctx, transport.Cmd{Args: []string{"zpool", "list", "-H", "-o", "name"}})
	if err != nil {
		if code, ran := exitCode(err); ran && code == 127 {
			return nil, modules.NotYet(errors.New("zpool not found: ZFS needs a system that ships it (the NixOS installer does; the OVH rescue does not)"))
		}
		if msg := strings.TrimSpace(string(res.Stderr)); strings.Contains(msg, "/dev/zfs") || strings.Contains(msg, "modules are not loaded") {
			return nil, fmt.Errorf("the ZFS kernel module is not loaded (%s): run modprobe zfs first (a command task), or boot a system with ZFS", strings.Join(strings.Fields(msg), " "))
		}
		return nil, fmt.Errorf("list pools: %w", err)
	}
	var names []string
	for _, l := range lines(res.Stdout) {
		if l != "no pools available" {
			names = append(names, strings.TrimSpace(l))
		}
	}
	return names, nil
}

// importable lists the pools `zpool import` offers, searching dir when set.
func (p prober) importable(ctx context.Context, dir string) ([]importable, error) {
	args := []string{"zpool", "import"}
	if dir != "" {
		args = append(args, "-d", dir)
	}
	res, err := p.h.Probe(ctx, transport.Cmd{Args: args})
	if err != nil {
		// It exits 1 when there is nothing to import.
		if code, ran := exitCode(err); ran && code == 1 && strings.Contains(string(res.Stderr), "no pools available") {
			return nil, nil
		}
		return nil, fmt.Errorf("list importable pools: %w", err)
	}
	return parseImport(string(res.Stdout)), nil
}

// datasets lists the filesystems and volumes of pool.
func (p prober) datasets(ctx context.Context, pool string) ([]string, error) {
	res, err := p.probe(ctx, "zfs", "list", "-H", "-o", "name", "-r", "-t", "filesystem,volume", pool)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range lines(res.Stdout) {
		names = append(names, strings.TrimSpace(l))
	}
	return names, nil
}

// signature returns what blkid finds on dev, empty when nothing; several
// conflicting signatures come back as AMBIVALENT.
func (p prober) signature(ctx context.Context, dev string) (map[string]string, error) {
	res, err := p.h.Probe(ctx, transport.Cmd{Args: []string{"blkid", "-p", "-o", "export", "--", dev}})
	if err != nil {
		code, ran := exitCode(err)
		switch {
		case ran && code == 2:
			return map[string]string{}, nil // nothing found
		case ran && strings.Contains(string(res.Stderr), "ambivalent"):
			return map[string]string{"AMBIVALENT": dev}, nil
		}
		return nil, fmt.Errorf("probe %s: %w", dev, err)
	}
	return parseExport(string(res.Stdout)), nil
}

// mounts lists the host's mounts; hostfs.MountAt picks one target's.
func (p prober) mounts(ctx context.Context) ([]hostfs.MountState, error) {
	ms, err := hostfs.Mounts(ctx, p.h)
	if err != nil {
		return nil, fmt.Errorf("probe mounts: %w", err)
	}
	return ms, nil
}

// resolve maps paths to their canonical device paths (symlinks resolved).
func (p prober) resolve(ctx context.Context, paths []string) (map[string]string, error) {
	var uniq []string
	seen := map[string]bool{}
	for _, d := range paths {
		if !seen[d] {
			seen[d] = true
			uniq = append(uniq, d)
		}
	}
	res, err := p.probe(ctx, append([]string{"readlink", "-m", "--"}, uniq...)...)
	if err != nil {
		return nil, err
	}
	ls := lines(res.Stdout)
	if len(ls) != len(uniq) {
		return nil, fmt.Errorf("resolve device paths: %d answers for %d paths", len(ls), len(uniq))
	}
	out := make(map[string]string, len(uniq))
	for i, d := range uniq {
		out[d] = ls[i]
	}
	return out, nil
}

// exists reports whether path exists on the host.
func (p prober) exists(ctx context.Context, path string) bool {
	_, err := p.h.Probe(ctx, transport.Cmd{Args: []string{"test", "-e", path}})
	return err == nil
}

var hostIDRE = regexp.MustCompile(`^[0-9a-f]{8}$`)

// hostID is the host's ZFS host id, "" when unknown: an installed system
// that keeps it imports the pool without forcing.
func (p prober) hostID(ctx context.Context) string {
	res, err := p.h.Probe(ctx, transport.Cmd{Args: []string{"hostid"}})
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(string(res.Stdout))
	if !hostIDRE.MatchString(id) {
		return ""
	}
	return id
}
