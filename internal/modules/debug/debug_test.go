package debug

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

func TestDebug(t *testing.T) {
	h := moduletest.NewLocalHost(t)
	h.VarsMap = map[string]any{
		"name":  "ks1",
		"disks": []any{map[string]any{"path": "/dev/sda"}, map[string]any{"path": "/dev/nvme0n1"}},
		"reg":   modules.Output{"rc": 0, "stdout": "hi"},
	}
	h.FactsVal = &facts.Facts{OS: facts.OSRelease{ID: "debian"}, Disks: []facts.Disk{{Path: "/dev/sdb", SizeBytes: 1 << 30}}}
	tests := []struct {
		name        string
		args        string
		wantMessage string
		wantOutput  modules.Output
	}{
		{name: "default", args: "", wantMessage: "Hello world!", wantOutput: modules.Output{"msg": "Hello world!"}},
		{name: "string msg", args: "msg: ready", wantMessage: "ready", wantOutput: modules.Output{"msg": "ready"}},
		{name: "structured msg", args: "msg: {a: [1, 2]}", wantMessage: "{\n  \"a\": [\n    1,\n    2\n  ]\n}",
			wantOutput: modules.Output{"msg": map[string]any{"a": []any{1, 2}}}},
		{name: "var", args: "var: name", wantMessage: "name: ks1", wantOutput: modules.Output{"name": "ks1"}},
		{name: "dotted index", args: "var: disks.1.path", wantMessage: "disks.1.path: /dev/nvme0n1", wantOutput: modules.Output{"disks.1.path": "/dev/nvme0n1"}},
		{name: "brackets", args: `var: disks[0]["path"]`, wantMessage: `disks[0]["path"]: /dev/sda`, wantOutput: modules.Output{`disks[0]["path"]`: "/dev/sda"}},
		{name: "registered output", args: "var: reg.stdout", wantMessage: "reg.stdout: hi", wantOutput: modules.Output{"reg.stdout": "hi"}},
		{name: "facts", args: "var: facts.os.id", wantMessage: "facts.os.id: debian", wantOutput: modules.Output{"facts.os.id": "debian"}},
		{name: "facts list", args: "var: facts.disks.0.size_bytes", wantMessage: "facts.disks.0.size_bytes: 1073741824", wantOutput: modules.Output{"facts.disks.0.size_bytes": float64(1 << 30)}},
		{name: "undefined", args: "var: nope.deeper", wantMessage: "nope.deeper: " + Undefined, wantOutput: modules.Output{"nope.deeper": Undefined}},
		{name: "index out of range", args: "var: disks.5", wantMessage: "disks.5: " + Undefined, wantOutput: modules.Output{"disks.5": Undefined}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := moduletest.New(t, Spec, tt.args).Check(context.Background(), h.ReadOnly())
			if err != nil {
				t.Fatal(err)
			}
			if p.Changed() {
				t.Errorf("debug plans changes: %v", p.Changes)
			}
			if p.Message != tt.wantMessage {
				t.Errorf("message = %q, want %q", p.Message, tt.wantMessage)
			}
			if !reflect.DeepEqual(p.Output, tt.wantOutput) {
				t.Errorf("output = %#v, want %#v", p.Output, tt.wantOutput)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for args, wantErr := range map[string]string{
		"msg: a\nvar: b": "exclusive",
		"var: a[0":       "unclosed [",
		"var: a[]":       "empty []",
		"verbosity: 2":   "unknown key \"verbosity\"",
	} {
		_, err := Spec.New(moduletest.Decoder(args))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: err = %v, want %q", args, err, wantErr)
		}
	}
}

func TestLookupUndefinedNamesThePath(t *testing.T) {
	_, err := Lookup(map[string]any{"a": map[string]any{"b": 1}}, "a.c.d")
	if !errors.Is(err, errUndefined) || !strings.HasPrefix(err.Error(), "a.c:") {
		t.Errorf("err = %v", err)
	}
}
