package runner

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/playbooks"
)

// runPlay runs one play batch by batch; it returns why the run must stop, or "".
func (r *run) runPlay(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, tasks []*playbooks.Task, hosts []*inventory.Host) string {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	title := play.Name
	if title == "" {
		title = play.Hosts
	}
	r.emit(Event{Type: EventPlayStart, Play: title, Hosts: names})
	serial := play.Serial
	if len(r.Serial) > 0 {
		serial = r.Serial
	}
	ps := &playState{}
	for _, batch := range Batches(hosts, serial) {
		if ctx.Err() != nil {
			return ""
		}
		if len(batch) < len(hosts) {
			bn := make([]string, len(batch))
			for i, h := range batch {
				bn[i] = h.Name
			}
			r.emit(Event{Type: EventBatchStart, Play: play.Name, Hosts: bn})
		}
		forks := r.Forks
		if forks <= 0 || forks > MaxForks {
			forks = min(max(len(batch), 1), MaxForks)
		}
		order := make([]string, len(batch))
		for i, h := range batch {
			order[i] = h.Name
		}
		ps.newBatch(order)
		var g errgroup.Group // not WithContext: one host's failure never cancels another
		g.SetLimit(forks)
		var failed atomic.Int32
		for _, ih := range batch {
			h := r.hosts[ih.Name]
			g.Go(func() error {
				if !r.runHost(ctx, pb, play, tasks, h, ps) {
					failed.Add(1)
				}
				if ctx.Err() == nil {
					h.playsDone.Add(1)
				}
				h.log.release() // reopened if a later play logs

				return nil
			})
		}
		g.Wait()
		if ps.fatal.Load() {
			return "any_errors_fatal: a host failed in play " + quote(play.Name)
		}
		if play.MaxFailPercent != nil && len(batch) > 0 {
			pct := float64(failed.Load()) * 100 / float64(len(batch))
			if pct > float64(*play.MaxFailPercent) {
				return fmt.Sprintf("max_fail_percentage %d%% exceeded: %d of %d hosts failed in a batch of play %s",
					*play.MaxFailPercent, failed.Load(), len(batch), quote(play.Name))
			}
		}
	}
	return ""
}

// Batches splits hosts by a serial spec: the last entry repeats until every
// host has a batch. Percentages round down, but a batch has at least one host.
func Batches[T any](hosts []T, serial []playbooks.Batch) [][]T {
	if len(serial) == 0 {
		if len(hosts) == 0 {
			return nil
		}
		return [][]T{hosts}
	}
	var out [][]T
	for i := 0; len(hosts) > 0; i++ {
		b := serial[min(i, len(serial)-1)]
		n := b.Count
		if b.Percent > 0 {
			n = int(math.Floor(float64(len(hosts)+countDone(out)) * float64(b.Percent) / 100))
		}
		n = max(n, 1)
		n = min(n, len(hosts))
		out = append(out, hosts[:n])
		hosts = hosts[n:]
	}
	return out
}

func countDone[T any](batches [][]T) int {
	n := 0
	for _, b := range batches {
		n += len(b)
	}
	return n
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
