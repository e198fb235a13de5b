package assert

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

// fakeEvaluator understands `path == value` over nested maps, and `boom`.
type fakeEvaluator struct{ seen *[]string }

func (f fakeEvaluator) Truth(expr string, vars map[string]any) (bool, error) {
	*f.seen = append(*f.seen, expr)
	if expr == "boom" {
		return false, errors.New("syntax error")
	}
	path, want, ok := strings.Cut(expr, " == ")
	if !ok {
		return false, fmt.Errorf("fake evaluator cannot read %q", expr)
	}
	var v any = vars
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return fmt.Sprint(v) == want, nil
}

func TestAssert(t *testing.T) {
	tests := []struct {
		name        string
		args        string
		wantErr     string
		wantSeen    []string
		wantMessage string
		wantOutput  modules.Output
	}{
		{
			name:        "all true",
			args:        "that: [name == ks1, facts.firmware == uefi]",
			wantSeen:    []string{"name == ks1", "facts.firmware == uefi"},
			wantMessage: "All assertions passed",
			wantOutput:  modules.Output{"msg": "All assertions passed"},
		},
		{
			name:        "single string",
			args:        "that: name == ks1\nsuccess_msg: fits",
			wantSeen:    []string{"name == ks1"},
			wantMessage: "fits",
			wantOutput:  modules.Output{"msg": "fits"},
		},
		{
			name:       "quiet",
			args:       "that: name == ks1\nquiet: true",
			wantSeen:   []string{"name == ks1"},
			wantOutput: modules.Output{"msg": "All assertions passed"},
		},
		{
			name:        "first false stops",
			args:        "that: [name == ks1, facts.firmware == bios, name == ks2]",
			wantSeen:    []string{"name == ks1", "facts.firmware == bios"},
			wantErr:     "assertion failed: facts.firmware == bios",
			wantMessage: "assertion failed: facts.firmware == bios",
			wantOutput:  modules.Output{"msg": "assertion failed: facts.firmware == bios", "assertion": "facts.firmware == bios", "evaluated_to": false},
		},
		{
			name:        "fail_msg",
			args:        "that: name == ks2\nfail_msg: wrong host",
			wantSeen:    []string{"name == ks2"},
			wantErr:     "wrong host (assertion failed: name == ks2)",
			wantMessage: "wrong host (assertion failed: name == ks2)",
			wantOutput:  modules.Output{"msg": "wrong host (assertion failed: name == ks2)", "assertion": "name == ks2", "evaluated_to": false},
		},
		{
			name:     "msg is fail_msg",
			args:     "that: name == ks2\nmsg: wrong host",
			wantSeen: []string{"name == ks2"},
			wantErr:  "wrong host (assertion failed: name == ks2)",
		},
		{
			name:     "evaluation error",
			args:     "that: [boom]",
			wantSeen: []string{"boom"},
			wantErr:  "assertion boom: syntax error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			h := moduletest.NewLocalHost(t)
			h.VarsMap = map[string]any{"name": "ks1"}
			h.FactsVal = &facts.Facts{Firmware: "uefi"}
			m := moduletest.New(t, NewSpec(fakeEvaluator{&seen}), tt.args)
			p, err := m.Check(context.Background(), h.ReadOnly())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if !reflect.DeepEqual(seen, tt.wantSeen) {
				t.Errorf("evaluated %q, want %q", seen, tt.wantSeen)
			}
			if tt.wantOutput == nil {
				return
			}
			if p.Changed() {
				t.Errorf("assert plans changes: %v", p.Changes)
			}
			if p.Message != tt.wantMessage {
				t.Errorf("message = %q, want %q", p.Message, tt.wantMessage)
			}
			if !reflect.DeepEqual(p.Output, tt.wantOutput) {
				t.Errorf("output = %#v, want %#v", p.Output, tt.wantOutput)
			}
			var ae *Error
			if tt.wantErr != "" && !errors.As(err, &ae) {
				t.Errorf("err is %T, want *Error", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	var seen []string
	spec := NewSpec(fakeEvaluator{&seen})
	for args, wantErr := range map[string]string{
		"fail_msg: x":                  `missing required key "that"`,
		"that: []":                     `"that" is required and must not be empty`,
		"that: ['']":                   "empty condition",
		"that: a\nmsg: x\nfail_msg: y": "same argument",
		"that: a\nthat_too: b":         "unknown key \"that_too\"",
		"that: {a: b}":                 "want a string or a list",
	} {
		_, err := spec.New(moduletest.Decoder(args))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: err = %v, want %q", args, err, wantErr)
		}
	}
	if _, err := NewSpec(nil).New(moduletest.Decoder("that: a")); err == nil {
		t.Error("a spec without an evaluator built a module")
	}
}
