package runner

import (
	"reflect"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
)

func TestRegister(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  taskResult
		want map[string]any
	}{
		{"ok, with the module's output", taskResult{status: StatusOK, output: modules.Output{"stdout": "hi"}, attempts: 1},
			map[string]any{"stdout": "hi", "changed": false, "failed": false, "attempts": 1}},
		{"changed", taskResult{status: StatusChanged, attempts: 2}, map[string]any{"changed": true, "failed": false, "attempts": 2}},
		{"a dry run's change", taskResult{status: StatusWouldChange}, map[string]any{"changed": true, "failed": false}},
		{"failed", taskResult{status: StatusFailed, msg: "boom", output: modules.Output{"rc": 1}},
			map[string]any{"rc": 1, "changed": false, "failed": true, "msg": "boom"}},
		{"skipped", taskResult{status: StatusSkipped, skipReason: "conditional result was false"},
			map[string]any{"changed": false, "skipped": true, "skip_reason": "conditional result was false"}},
		{"unknown until applied", taskResult{status: StatusUnknown, skipReason: "unknown until applied: x"},
			map[string]any{"changed": false, "skipped": true, "skip_reason": "unknown until applied: x"}},
		{"a loop", taskResult{status: StatusChanged, items: []loopItem{
			{result: taskResult{status: StatusChanged, attempts: 1}, name: "item", value: 1},
			{result: taskResult{status: StatusSkipped, skipReason: "no"}, name: "item", value: 2},
		}}, map[string]any{"changed": true, "failed": false, "skipped": false, "results": []any{
			map[string]any{"changed": true, "failed": false, "attempts": 1, "item": 1},
			map[string]any{"changed": false, "skipped": true, "skip_reason": "no", "item": 2},
		}}},
	} {
		if got := tc.res.Register(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, got, tc.want)
		}
	}
}
