package partition

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
)

// pollInterval is how often Apply looks for a partition node.
const pollInterval = 100 * time.Millisecond

func (m *module) Apply(ctx context.Context, h modules.Host, pl *modules.Plan) (modules.Output, error) {
	p, err := modkit.PlanData[*plan](pl)
	if err != nil {
		return nil, err
	}
	if len(p.steps) != len(pl.Changes) {
		return nil, errors.New("plan data does not match its changes")
	}
	for i, steps := range p.steps {
		h.Log("%s", pl.Changes[i].Summary)
		for _, s := range steps {
			if err := runStep(ctx, h, s, nodeWait); err != nil {
				return nil, fmt.Errorf("%s: %w", pl.Changes[i].Summary, err)
			}
		}
	}
	if err := rememberTables(ctx, h, p.adopt); err != nil {
		return nil, err
	}
	if err := rememberDiskNames(h); err != nil {
		return nil, err
	}
	if p.written {
		// The tasks after this one (zfs, nixos_config) look for the new
		// partitions in facts.
		if err := h.RefreshFacts(ctx); err != nil {
			return nil, fmt.Errorf("gather facts after partitioning: %w", err)
		}
	}
	return pl.Output, nil
}

// rememberTables adds the ids of the tables just made to those of the
// reinstall in progress, so that a rerun after a failure resumes on them
// rather than taking them for an earlier system.
func rememberTables(ctx context.Context, h modules.Host, disks []string) error {
	if len(disks) == 0 {
		return nil
	}
	mine, err := reinstallTables(h)
	if err != nil {
		return err
	}
	for _, d := range disks {
		res, err := h.Run(ctx, transport.Cmd{Args: []string{"blkid", "-p", "-o", "value", "-s", "PTUUID", d}})
		id := strings.ToLower(strings.TrimSpace(string(res.Stdout)))
		if err != nil || id == "" {
			return fmt.Errorf("read the id of the new partition table of %s: %v", d, err)
		}
		mine[id] = true
	}
	return h.Remember(modules.MemoryReinstall, strings.Join(slices.Sorted(maps.Keys(mine)), " "))
}

// rememberDiskNames keeps what the kernel names meant when the reinstall
// began, once, for its reruns.
func rememberDiskNames(h modules.Host) error {
	if text, err := h.Recall(modules.MemoryDiskNames); err != nil || text != "" {
		return err
	}
	pins := h.Facts().DisksAtStart
	if len(pins) == 0 {
		return nil
	}
	var kv []string
	for _, p := range slices.Sorted(maps.Keys(pins)) {
		kv = append(kv, p+"="+pins[p])
	}
	return h.Remember(modules.MemoryDiskNames, strings.Join(kv, " "))
}

// runStep runs one step; a waiting step is tried again for up to wait.
func runStep(ctx context.Context, h modules.Host, s step, wait time.Duration) error {
	if s.upload != nil {
		return h.Upload(ctx, s.upload.path, bytes.NewReader(s.upload.data), s.upload.mode)
	}
	if s.unlessFS != "" {
		dev := s.cmd.Args[len(s.cmd.Args)-1]
		res, err := h.Run(ctx, transport.Cmd{Args: []string{"blkid", "-p", "-o", "value", "-s", "TYPE", dev}})
		var exit *transport.ExitError
		if err != nil && !(errors.As(err, &exit) && res.ExitCode == 2) {
			return err
		}
		switch have := strings.TrimSpace(string(res.Stdout)); {
		case have == s.unlessFS:
			return nil
		case have != "" && !s.wipe:
			return fmt.Errorf("%s holds %s where the layout puts %s; set wipe: true to erase it", dev, have, s.unlessFS)
		}
	}
	if !s.wait {
		_, err := h.Run(ctx, s.cmd)
		var exit *transport.ExitError
		if s.optional && errors.As(err, &exit) && exit.ExitCode == 127 {
			h.Log("%s is not installed; going on", s.cmd.Args[0])
			return nil
		}
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		_, err := h.Run(ctx, s.cmd)
		var exit *transport.ExitError
		if err == nil || !errors.As(err, &exit) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s of partitioning", s.cmd.Args[len(s.cmd.Args)-1], wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}
