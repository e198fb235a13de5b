package modules

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Decoder decodes a task's arguments strictly: unknown keys and wrong types
// are errors naming file and line.
type Decoder interface {
	Decode(v any) error
}

// Spec describes a module type: its YAML key, its documentation and how to
// build it. Args is a zero value of the argument struct; `nixbook doc` reads
// its field tags (yaml, doc, default), so the documentation cannot drift from
// what the decoder accepts.
type Spec struct {
	Name    string
	Summary string
	Args    any
	// FreeForm names the argument that a bare value fills in, as in
	// `command: echo hi`; empty when the module takes only a mapping.
	FreeForm string
	Example  string
	// Offline says the module can do its work while the host does not answer
	// SSH, because it acts through an API (rescue reboots a server through
	// OVH's). A play whose first task is such a module goes ahead on a host it
	// cannot reach yet; the module's Probe and Run then fail as unreachable.
	Offline bool
	// Local says the module never touches the host (debug, assert, fail):
	// it runs on a host SSH cannot reach, and does not count as the play's
	// first task for Offline.
	Local bool
	// Scope says the module evaluates the whole scope of variables
	// (templates, expressions): only then does its host view offer them
	// (see Scope). Any other inventory variable a module reads is
	// declared in its Args with a var tag.
	Scope bool
	// New decodes and validates the arguments and returns the module.
	New func(args Decoder) (Module, error)
}

// Registry maps module names to specs.
type Registry struct {
	specs map[string]Spec
}

// NewRegistry builds a registry from specs; a duplicate name panics, as it is
// a programming error.
func NewRegistry(specs ...Spec) *Registry {
	r := &Registry{specs: make(map[string]Spec, len(specs))}
	for _, s := range specs {
		if _, dup := r.specs[s.Name]; dup {
			panic("modules: duplicate module " + s.Name)
		}
		r.specs[s.Name] = s
	}
	return r
}

// Lookup returns the spec for name.
func (r *Registry) Lookup(name string) (Spec, bool) {
	s, ok := r.specs[name]
	return s, ok
}

// Names lists the modules in alphabetical order.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.specs))
	for n := range r.specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Arg is one argument of a module, as its Args struct's tags declare it:
// yaml (the name, and inline for embedded groups of arguments), doc,
// default, required and var. Decoding, defaults, `nixbook doc` and
// validation all read this one schema, so they cannot disagree.
type Arg struct {
	Name, Type, Default, Doc string
	Required                 bool
	// Vars are the inventory variables the argument defaults from, the
	// first a host defines winning (var:"ssh_keys,rescue_ssh_key"). An
	// Arg with Vars and no Name (yaml:"-") is no argument: an inventory
	// input the module declares, filled from the host's variables only.
	Vars []string
	// Index locates the field in the Args struct, through inline embeds
	// (reflect.Value.FieldByIndex).
	Index []int
}

// Doc lists the arguments of a spec.
func (s Spec) Doc() []Arg {
	if s.Args == nil {
		return nil
	}
	return Schema(reflect.TypeOf(s.Args))
}

// schemas caches Schema: a type's tags do not change.
var schemas sync.Map // reflect.Type -> []Arg

// Schema lists the arguments of an Args struct type, computed once per type.
func Schema(t reflect.Type) []Arg {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if cached, ok := schemas.Load(t); ok {
		return cached.([]Arg)
	}
	args := schemaOf(t, nil)
	schemas.Store(t, args)
	return args
}

func schemaOf(t reflect.Type, at []int) []Arg {
	var out []Arg
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		var vars []string
		if v := f.Tag.Get("var"); v != "" {
			vars = strings.Split(v, ",")
		}
		if !f.IsExported() || (name == "-" && vars == nil) {
			continue
		}
		index := append(append([]int(nil), at...), i)
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			out = append(out, schemaOf(f.Type, index)...)
			continue
		}
		switch name {
		case "":
			name = strings.ToLower(f.Name)
		case "-":
			name = ""
		}
		_, required := f.Tag.Lookup("required")
		out = append(out, Arg{
			Name:     name,
			Type:     TypeName(f.Type),
			Default:  f.Tag.Get("default"),
			Doc:      f.Tag.Get("doc"),
			Required: required,
			Vars:     vars,
			Index:    index,
		})
	}
	return out
}

// TypeName is a short, YAML-flavoured name for a Go type.
func TypeName(t reflect.Type) string {
	if n, ok := reflect.New(t).Interface().(interface{ TypeName() string }); ok {
		return n.TypeName()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return TypeName(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float64:
		return "float"
	case reflect.Slice:
		return "list of " + TypeName(t.Elem())
	case reflect.Map:
		return "map of " + TypeName(t.Elem())
	case reflect.Struct:
		if t.String() == "time.Duration" {
			return "duration"
		}
		return "mapping"
	case reflect.Interface:
		return "any"
	}
	if t.String() == "time.Duration" {
		return "duration"
	}
	return fmt.Sprint(t)
}
