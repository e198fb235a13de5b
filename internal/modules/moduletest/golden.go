package moduletest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
)

// FormatPlan renders a plan as stable text for golden files: each change
// with its exact command lines and diff, then the flags, message and output.
func FormatPlan(p *modules.Plan) string {
	if p == nil {
		return "no plan\n"
	}
	var b strings.Builder
	if !p.Changed() {
		b.WriteString("no changes\n")
	}
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "change: %s\n", c.Summary)
		for _, cmd := range c.Commands {
			fmt.Fprintf(&b, "  $ %s\n", cmd)
		}
		if c.Sensitive {
			b.WriteString("  (diff hidden)\n")
		}
		if c.Before != "" || c.After != "" {
			fmt.Fprintf(&b, "  before: %q\n  after:  %q\n", c.Before, c.After)
		}
	}
	if p.Reboots {
		b.WriteString("reboots: true\n")
	}
	if p.Message != "" {
		fmt.Fprintf(&b, "message: %s\n", p.Message)
	}
	if len(p.Output) > 0 {
		keys := make([]string, 0, len(p.Output))
		for k := range p.Output {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("output:\n")
		for _, k := range keys {
			v, err := json.Marshal(p.Output[k])
			if err != nil {
				v = []byte(fmt.Sprintf("%#v", p.Output[k]))
			}
			fmt.Fprintf(&b, "  %s: %s\n", k, v)
		}
	}
	return b.String()
}

// Golden compares got with the file at path, or rewrites the file when
// update is set (tests pass their own -update flag).
func Golden(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
