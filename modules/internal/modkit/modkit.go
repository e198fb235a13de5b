// Package modkit holds what several built-in modules share: argument decoding
// driven by the same struct tags `nixbook doc` reads, argument types, and the
// variables a module sees.
package modkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/modules"
)

// Decode fills args (a pointer to an argument struct) from its `default`
// tags, decodes d over it and checks that every field tagged `required` is
// set. Defaults and required fields thus come from the tags `nixbook doc`
// shows, so the documentation cannot drift from the behaviour.
func Decode(d modules.Decoder, args any) error {
	v := reflect.ValueOf(args)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("modkit: decode into %T: want a pointer to a struct", args)
	}
	if err := setDefaults(v.Elem()); err != nil {
		return err
	}
	if d != nil {
		if err := d.Decode(args); err != nil {
			return err
		}
	}
	return checkRequired(v.Elem())
}

func setDefaults(v reflect.Value) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if isInline(f) {
			if err := setDefaults(v.Field(i)); err != nil {
				return err
			}
			continue
		}
		def, ok := f.Tag.Lookup("default")
		if !ok {
			continue
		}
		// Decoding the tag as YAML gives every type, custom ones included,
		// the same parsing as a value written in a playbook.
		if err := yaml.Unmarshal([]byte(def), v.Field(i).Addr().Interface()); err != nil {
			return fmt.Errorf("modkit: default %q of %s: %w", def, argName(f), err)
		}
	}
	return nil
}

func checkRequired(v reflect.Value) error {
	t := v.Type()
	var missing []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if isInline(f) {
			if err := checkRequired(v.Field(i)); err != nil {
				return err
			}
			continue
		}
		if _, req := f.Tag.Lookup("required"); req && isEmpty(v.Field(i)) {
			missing = append(missing, argName(f))
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%q is required and must not be empty", missing[0])
	}
	return fmt.Errorf("%q are required and must not be empty", missing)
}

// isEmpty treats an empty list or map as missing, like an unset value.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	}
	return v.IsZero()
}

func isInline(f reflect.StructField) bool {
	_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct
}

func argName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// Vars returns the host's variables with its facts under `facts` when the
// runner has not put them there already, as templates expect them.
func Vars(h modules.ReadOnlyHost) map[string]any {
	vars := h.Vars()
	if _, ok := vars["facts"]; ok {
		return vars
	}
	out := make(map[string]any, len(vars)+1)
	for k, v := range vars {
		out[k] = v
	}
	if f := h.Facts(); f != nil {
		if g, err := Generic(f); err == nil {
			out["facts"] = g
		}
	}
	return out
}

// Generic converts v to plain maps, lists and scalars through its JSON form,
// so that structs such as facts can be walked by key.
func Generic(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// New makes a Spec's New from a constructor of typed arguments: they are
// decoded strictly, defaults set and required fields checked before build
// sees them.
func New[A any](build func(A) (modules.Module, error)) func(modules.Decoder) (modules.Module, error) {
	return func(d modules.Decoder) (modules.Module, error) {
		var a A
		if err := Decode(d, &a); err != nil {
			return nil, err
		}
		m, err := build(a)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}

// PlanData is a module's own part of a plan (Plan.Data), as its Check made
// it; Apply gets it back through here.
func PlanData[T any](p *modules.Plan) (T, error) {
	t, ok := p.Data.(T)
	if !ok {
		var zero T
		return zero, errors.New("apply called with a plan this module did not make")
	}
	return t, nil
}
