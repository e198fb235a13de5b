// Package report turns runner events into what people and programs read: an
// Ansible-like text output with a live line per busy host on terminals, or
// one JSON object per line.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fatih/color"

	"github.com/nixbook/nixbook/internal/runner"
)

// JSON writes one JSON object per event.
func JSON(w io.Writer) func(runner.Event) {
	enc := json.NewEncoder(w)
	return func(e runner.Event) { enc.Encode(e) }
}

// Human writes Ansible-like lines.
type Human struct {
	w       io.Writer
	live    bool // redraw a status line per busy host (terminals only)
	verbose int
	check   bool
	byHost  bool

	// groups holds each host's result lines until the recap when byHost.
	groups     map[string][]string
	groupOrder []string

	mu        sync.Mutex
	busy      map[string]*hostStatus
	drawn     int // live lines currently on screen
	lastDraw  time.Time
	width     int
	ok, chg   *color.Color
	fail, unr *color.Color
	skip, hdr *color.Color
	dim, unk  *color.Color
}

type hostStatus struct {
	task, line string
	since      time.Time
}

// Verbosity levels, as -v, -vv and -vvv set them.
const (
	VerboseOutput    = 1 // remote output of tasks as it arrives
	VerboseDurations = 2 // and every result's duration, however short
	VerboseFacts     = 3 // and the facts script's output
)

// factsTask is the name the runner gives fact gathering.
const factsTask = "gather facts"

// HumanOptions configure the text output.
type HumanOptions struct {
	Color   bool
	Live    bool // a live line per busy host; only on a terminal
	Verbose int
	Check   bool
	Width   int
	// ByHost prints each host's results together, after the play, rather
	// than interleaved as they come.
	ByHost bool
}

// NewHuman returns a text reporter writing to w.
func NewHuman(w io.Writer, o HumanOptions) *Human {
	mk := func(attrs ...color.Attribute) *color.Color {
		c := color.New(attrs...)
		if o.Color {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
		return c
	}
	if o.Width <= 0 {
		o.Width = 100
	}
	return &Human{
		w: w, live: o.Live, verbose: o.Verbose, check: o.Check, width: o.Width, byHost: o.ByHost,
		busy: map[string]*hostStatus{}, groups: map[string][]string{},
		ok: mk(color.FgGreen), chg: mk(color.FgYellow), fail: mk(color.FgRed, color.Bold),
		unr: mk(color.FgRed), skip: mk(color.FgCyan), hdr: mk(color.Bold), dim: mk(color.Faint), unk: mk(color.FgMagenta),
	}
}

// Tick keeps the live lines' clocks moving while hosts are silent (a
// reboot, a long download); it returns when ctx ends.
func (h *Human) Tick(ctx context.Context) {
	if !h.live {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.mu.Lock()
			if len(h.busy) > 0 {
				h.redraw()
			}
			h.mu.Unlock()
		}
	}
}

// Event handles one runner event.
func (h *Human) Event(e runner.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch e.Type {
	case runner.EventOutput:
		if st := h.busy[e.Host]; st != nil {
			st.line = e.Line
		}
		if h.verbose > 0 && (e.Task != factsTask || h.verbose >= VerboseFacts) {
			h.print(h.dim.Sprintf("  %s | %s", e.Host, e.Line))
			return
		}
		if h.live && time.Since(h.lastDraw) > 100*time.Millisecond {
			h.redraw()
		}
		return
	case runner.EventTaskStart:
		h.busy[e.Host] = &hostStatus{task: e.Task, since: e.Time}
		if h.live {
			h.redraw()
		}
		return
	case runner.EventPlayStart:
		h.flushGroups()
		// Groups follow the inventory's order, not the order hosts finish.
		h.groupOrder = append([]string(nil), e.Hosts...)
		for _, host := range e.Hosts {
			h.groups[host] = nil
		}
		name := e.Play
		if name == "" {
			name = strings.Join(e.Hosts, ",")
		}
		mode := ""
		if h.check {
			mode = " (check mode: nothing will be changed)"
		}
		h.print(h.hdr.Sprint(banner("PLAY ["+name+"]"+mode, h.width)))
	case runner.EventBatchStart:
		h.print(h.dim.Sprintf("batch: %s", strings.Join(e.Hosts, ", ")))
	case runner.EventNotice:
		if e.Host == "" {
			h.print(h.dim.Sprint(e.Msg))
			break
		}
		h.print(h.dim.Sprintf("[%s] %s", e.Host, e.Msg))
	case runner.EventResult:
		if e.Item == nil {
			delete(h.busy, e.Host)
		}
		h.result(e)
	case runner.EventPlayAbort:
		h.print(h.fail.Sprintf("PLAY ABORTED: %s", e.Msg))
	case runner.EventInterrupt:
		h.print(h.fail.Sprint(e.Msg))
	case runner.EventRecap:
		h.busy = map[string]*hostStatus{}
		h.flushGroups()
		h.recap(e.Recap)
	}
	if h.live {
		h.redraw()
	}
}

func (h *Human) result(e runner.Event) {
	var c *color.Color
	switch e.Status {
	case runner.StatusOK:
		c = h.ok
	case runner.StatusChanged, runner.StatusWouldChange:
		c = h.chg
	case runner.StatusSkipped:
		c = h.skip
	case runner.StatusUnknown:
		c = h.unk
	case runner.StatusIgnored:
		c = h.chg
	default:
		c = h.fail
	}
	line := fmt.Sprintf("%s: [%s] %s", e.Status, e.Host, e.Task)
	if e.Item != nil {
		line += fmt.Sprintf(" (item=%v)", e.Item)
	}
	switch {
	case e.Duration >= time.Second:
		line += fmt.Sprintf(" (%s)", e.Duration.Round(100*time.Millisecond))
	case h.verbose >= VerboseDurations && e.Duration > 0:
		line += fmt.Sprintf(" (%s)", e.Duration.Round(time.Millisecond))
	}
	var b strings.Builder
	b.WriteString(c.Sprint(line))
	if e.Msg != "" {
		msg := e.Msg
		if e.Status == runner.StatusOK || e.Status == runner.StatusChanged {
			b.WriteString(": ")
			b.WriteString(msg)
		} else {
			b.WriteString(": ")
			b.WriteString(c.Sprint(msg))
		}
	}
	if e.Reboots {
		b.WriteString(h.chg.Sprint(" [reboots the host]"))
	}
	// Every detail line names its host: a fleet's plans interleave.
	detail := h.dim.Sprintf("    %s |", e.Host)
	for _, ch := range e.Changes {
		if ch.Summary != "" {
			fmt.Fprintf(&b, "\n%s %s", detail, ch.Summary)
		}
		for _, cmd := range ch.Commands {
			fmt.Fprintf(&b, "\n%s   $ %s", detail, cmd)
		}
		if ch.Before != ch.After && (ch.Before != "" || ch.After != "") {
			for _, l := range Diff(ch.Before, ch.After) {
				switch {
				case strings.HasPrefix(l, "+"):
					l = h.ok.Sprint(l)
				case strings.HasPrefix(l, "-"):
					l = h.fail.Sprint(l)
				}
				fmt.Fprintf(&b, "\n%s   %s", detail, l)
			}
		}
	}
	for _, cmd := range e.Unplanned {
		fmt.Fprintf(&b, "\n%s   %s", detail, h.fail.Sprint("unplanned: $ "+cmd))
	}
	if h.byHost {
		if _, seen := h.groups[e.Host]; !seen {
			h.groupOrder = append(h.groupOrder, e.Host)
		}
		h.groups[e.Host] = append(h.groups[e.Host], b.String())
		return
	}
	h.print(b.String())
}

// flushGroups prints the results held back by ByHost, host by host.
func (h *Human) flushGroups() {
	for _, host := range h.groupOrder {
		if len(h.groups[host]) == 0 {
			continue
		}
		h.print(h.hdr.Sprint(banner("HOST ["+host+"]", h.width)))
		for _, block := range h.groups[host] {
			h.print(block)
		}
	}
	h.groups, h.groupOrder = map[string][]string{}, nil
}

func (h *Human) recap(hosts []runner.HostRecap) {
	h.print("")
	h.print(h.hdr.Sprint(banner("PLAY RECAP", h.width)))
	width := 0
	for _, r := range hosts {
		width = max(width, len(r.Host))
	}
	for _, r := range hosts {
		c := h.ok
		switch {
		case r.Failed > 0:
			c = h.fail
		case r.Unreachable > 0:
			c = h.unr
		case r.Changed > 0:
			c = h.chg
		}
		// Ansible's columns (lib/ansible/plugins/callback/default.py,
		// v2_playbook_on_stats); a dry run says would_change= and unknown=.
		line := fmt.Sprintf("%s : ok=%-3d changed=%-3d unreachable=%-3d failed=%-3d skipped=%-3d rescued=%-3d ignored=%d",
			c.Sprintf("%-*s", width, r.Host), r.OK, r.Changed, r.Unreachable, r.Failed, r.Skipped, r.Rescued, r.Ignored)
		if h.check {
			line = fmt.Sprintf("%s : ok=%-3d would_change=%-3d unknown=%-3d unreachable=%-3d failed=%-3d skipped=%-3d rescued=%-3d ignored=%d",
				c.Sprintf("%-*s", width, r.Host), r.OK, r.Changed, r.Unknown, r.Unreachable, r.Failed, r.Skipped, r.Rescued, r.Ignored)
		}
		h.print(line)
	}
	h.print(Summary(hosts, h.check))
}

// Summary is the closing line of a run: "3 hosts: 18 would change, 6
// unknown until applied, 0 failed" for a dry run.
func Summary(hosts []runner.HostRecap, check bool) string {
	var total runner.HostRecap
	for _, r := range hosts {
		total.Changed += r.Changed
		total.Unknown += r.Unknown
		total.Failed += r.Failed
		total.Unreachable += r.Unreachable
	}
	noun := "hosts"
	if len(hosts) == 1 {
		noun = "host"
	}
	var parts []string
	if check {
		parts = append(parts, fmt.Sprintf("%d would change", total.Changed), fmt.Sprintf("%d unknown until applied", total.Unknown))
	} else {
		parts = append(parts, fmt.Sprintf("%d changed", total.Changed))
	}
	parts = append(parts, fmt.Sprintf("%d failed", total.Failed))
	if total.Unreachable > 0 {
		parts = append(parts, fmt.Sprintf("%d unreachable", total.Unreachable))
	}
	return fmt.Sprintf("%d %s: %s", len(hosts), noun, strings.Join(parts, ", "))
}

// print writes a permanent line above the live area.
func (h *Human) print(s string) {
	h.clearLive()
	fmt.Fprintln(h.w, s)
}

func (h *Human) clearLive() {
	if h.drawn > 0 {
		fmt.Fprintf(h.w, "\x1b[%dA\x1b[J", h.drawn)
		h.drawn = 0
	}
}

// redraw repaints one line per busy host below the permanent output.
func (h *Human) redraw() {
	h.clearLive()
	names := make([]string, 0, len(h.busy))
	for n := range h.busy {
		names = append(names, n)
	}
	sort.Strings(names)
	const maxLines = 20
	for i, n := range names {
		if i == maxLines {
			fmt.Fprintf(h.w, "  … and %d more hosts busy\n", len(names)-maxLines)
			h.drawn++
			break
		}
		st := h.busy[n]
		line := fmt.Sprintf("  %s [%s] %s %s", n, st.task, time.Since(st.since).Round(time.Second), st.line)
		if len(line) > h.width {
			line = line[:h.width]
		}
		fmt.Fprintln(h.w, h.dim.Sprint(line))
		h.drawn++
	}
	h.lastDraw = time.Now()
}

func banner(title string, width int) string {
	n := width - len(title) - 1
	if n < 3 {
		n = 3
	}
	return title + " " + strings.Repeat("*", n)
}
