package runner_test

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport/local"
)

func TestRunOnceAndCheckMode(t *testing.T) {
	var checks, applies atomic.Int32
	var sneak atomic.Value
	reg := recorderRegistry(&checks, &applies, &sneak)
	tests := []struct {
		name    string
		task    string
		opts    runner.Options
		applies int32
		want    string // sorted statuses of the three hosts
	}{
		{"run_once applies on one host", "{name: t, record: {change: true}, run_once: true, register: r}", runner.Options{}, 1, "changed changed changed"},
		{"run_once per serial batch", "{name: t, record: {change: true}, run_once: true}", runner.Options{Serial: []playbooks.Batch{{Count: 2}}}, 2, "changed changed changed"},
		{"check_mode: true plans in a real run", "{name: t, record: {change: true}, check_mode: true}", runner.Options{}, 0, "would change would change would change"},
		{"check_mode: false stays a dry run", "{name: t, record: {change: true}, check_mode: false}", runner.Options{Check: true}, 0, "would change would change would change"},
		{"check_mode: false runs as usual", "{name: t, record: {change: true}, check_mode: false}", runner.Options{}, 3, "changed changed changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applies.Store(0)
			pb, err := playbooks.LoadBytes("play.yml", []byte("- hosts: all\n  gather_facts: false\n  tasks:\n    - "+tt.task+"\n"), "", reg)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var got []string
			r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(), Options: tt.opts, Events: func(e runner.Event) {
				if e.Type == runner.EventResult {
					mu.Lock()
					got = append(got, string(e.Status))
					mu.Unlock()
				}
			}}
			if _, err := r.Run(context.Background(), pb, localInventory(3), ""); err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			if s := strings.Join(got, " "); s != tt.want || applies.Load() != tt.applies {
				t.Errorf("statuses %q, %d applies; want %q, %d", s, applies.Load(), tt.want, tt.applies)
			}
		})
	}
}
