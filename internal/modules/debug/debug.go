// Package debug shows a message or a variable. It never changes anything.
package debug

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

const defaultMsg = "Hello world!"

// Args are the arguments of `debug`.
type Args struct {
	Msg any    `yaml:"msg" default:"Hello world!" doc:"the message to show: a string or any value"`
	Var string `yaml:"var" doc:"a variable to show, by name or dotted path (facts.os.id, disks.0.path); exclusive with msg"`
}

// Spec is the `debug` module.
var Spec = modules.Spec{
	Local:    true,
	Scope:    true, // var: names any variable in scope
	Name:     "debug",
	Summary:  "Show a message or a variable's value.",
	Args:     Args{},
	FreeForm: "msg",
	Example: `- name: Show where the host boots from
  debug:
    msg: "{{ inventory_hostname }} boots with {{ facts.firmware }}"

- name: Show the first disk
  debug:
    var: facts.disks.0
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		if a.Var != "" && a.Msg != defaultMsg {
			return nil, errors.New("msg and var are exclusive: give one")
		}
		if a.Var != "" {
			if _, err := parsePath(a.Var); err != nil {
				return nil, err
			}
		}
		return &module{args: a}, nil
	}),
}

// Undefined is what debug shows for a variable that does not exist, as
// Ansible does.
const Undefined = "VARIABLE IS NOT DEFINED!"

type module struct{ args Args }

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	if m.args.Var == "" {
		return &modules.Plan{Message: format(m.args.Msg), Output: modules.Output{"msg": m.args.Msg}}, nil
	}
	v, err := Lookup(modkit.Vars(h), m.args.Var)
	if err != nil {
		v = Undefined
	}
	return &modules.Plan{
		Message: m.args.Var + ": " + format(v),
		Output:  modules.Output{m.args.Var: v},
	}, nil
}

// Apply is never reached: the plan changes nothing.
func (m *module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	return p.Output, nil
}

func format(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Lookup finds a dotted path such as `facts.disks.0.path` or
// `facts.disks[0]["path"]` in vars. Structs are walked by their JSON names.
func Lookup(vars map[string]any, path string) (any, error) {
	keys, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	var cur any = vars
	for i, k := range keys {
		next, ok := step(cur, k)
		if !ok {
			// Values such as facts are structs: walk their JSON form.
			if g, gerr := modkit.Generic(cur); gerr == nil {
				next, ok = step(g, k)
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s: %w", strings.Join(keys[:i+1], "."), errUndefined)
		}
		cur = next
	}
	return cur, nil
}

var errUndefined = errors.New("undefined")

func step(v any, key string) (any, bool) {
	switch c := v.(type) {
	case map[string]any:
		x, ok := c[key]
		return x, ok
	case modules.Output:
		x, ok := c[key]
		return x, ok
	case []any:
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || i >= len(c) {
			return nil, false
		}
		return c[i], true
	}
	return nil, false
}

// parsePath splits `a.b[0]['c']` into a, b, 0, c.
func parsePath(path string) ([]string, error) {
	var keys []string
	rest := path
	for rest != "" {
		switch {
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("var %q: unclosed [", path)
			}
			k := strings.Trim(rest[1:end], `'"`)
			if k == "" {
				return nil, fmt.Errorf("var %q: empty []", path)
			}
			keys = append(keys, k)
			rest = rest[end+1:]
		case rest[0] == '.':
			rest = rest[1:]
		default:
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			keys = append(keys, rest[:end])
			rest = rest[end:]
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("var %q: empty", path)
	}
	return keys, nil
}
