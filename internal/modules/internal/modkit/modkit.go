// Package modkit holds what several built-in modules share: argument decoding
// driven by the same struct tags `nixbook doc` reads, argument types, and the
// variables a module sees.
package modkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules"
)

// Decode fills args (a pointer to an argument struct) from its defaults,
// decodes d over it and checks that every required argument is set. Both
// come from the module's schema (modules.Schema), which `nixbook doc` shows,
// so the documentation cannot drift from the behaviour.
func Decode(d modules.Decoder, args any) error {
	v := reflect.ValueOf(args)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("modkit: decode into %T: want a pointer to a struct", args)
	}
	schema := modules.Schema(v.Type())
	for _, a := range schema {
		if a.Default == "" {
			continue
		}
		// Decoding the default as YAML gives every type, custom ones
		// included, the same parsing as a value written in a playbook.
		if err := yaml.Unmarshal([]byte(a.Default), v.Elem().FieldByIndex(a.Index).Addr().Interface()); err != nil {
			return fmt.Errorf("modkit: default %q of %s: %w", a.Default, a.Name, err)
		}
	}
	// The host's variables come over the defaults and under the task's
	// arguments, which are decoded last; an argument the task leaves
	// empty ("{{ x | default('') }}") falls back to them too, but not a
	// false or 0 it gives: those are values.
	src, hasVars := d.(modules.VarSource)
	if hasVars {
		if err := fromVars(src, v.Elem(), schema, false); err != nil {
			return err
		}
	}
	if d != nil {
		if err := d.Decode(args); err != nil {
			return err
		}
	}
	if hasVars {
		if err := fromVars(src, v.Elem(), schema, true); err != nil {
			return err
		}
	}
	var empty []string
	for _, a := range schema {
		if a.Required && isEmpty(v.Elem().FieldByIndex(a.Index)) {
			empty = append(empty, a.Name)
		}
	}
	switch len(empty) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%q is required and must not be empty", empty[0])
	}
	return fmt.Errorf("%q are required and must not be empty", empty)
}

// fromVars fills each argument that declares inventory variables with the
// first of them the host defines; with onlyEmpty, only those left without
// a value (see unset).
func fromVars(src modules.VarSource, args reflect.Value, schema []modules.Arg, onlyEmpty bool) error {
	for _, a := range schema {
		if len(a.Vars) == 0 {
			continue
		}
		field := args.FieldByIndex(a.Index)
		if onlyEmpty && !unset(field) {
			continue
		}
		for _, name := range a.Vars {
			val, ok := src.Var(name)
			if !ok || val == nil {
				continue
			}
			if err := setFrom(field, val); err != nil {
				return fmt.Errorf("the host's %s variable: %w", name, err)
			}
			break
		}
	}
	return nil
}

// setFrom stores a variable's value in field: as it is for an `any`
// field, else through YAML, as if the task had written it (an INI
// inventory's "2222" is a number to an int argument).
func setFrom(field reflect.Value, val any) error {
	if field.Kind() == reflect.Interface {
		field.Set(reflect.ValueOf(val))
		return nil
	}
	if s, ok := val.(string); ok {
		if field.Kind() == reflect.String {
			field.SetString(s)
			return nil
		}
		return yaml.Unmarshal([]byte(s), field.Addr().Interface())
	}
	text, err := yaml.Marshal(val)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(text, field.Addr().Interface())
}

// unset says whether an argument holds no value after the task's were
// decoded: an empty text, list or map, or nothing. A false, a 0 or another
// zero value the task may have written is kept; one it did not write
// holds the variable's value already, from before the decoding.
func unset(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Pointer:
		return isEmpty(v)
	}
	return false
}

// isEmpty treats an empty list or map as missing, like an unset value.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	}
	return v.IsZero()
}

// Vars returns the variables a module that declares Scope sees, with the
// host's facts under `facts` when the runner has not put them there
// already, as templates expect them.
func Vars(h modules.ReadOnlyHost) map[string]any {
	vars := modules.Scope(h)
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
