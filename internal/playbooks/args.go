package playbooks

import (
	"errors"
	"reflect"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/yamlx"
)

// ArgsDecoder returns the strict decoder a module's New receives for args,
// a task's argument node (rendered or not). For a free-form module a bare
// value or list stands for its FreeForm argument, so `command: ls -l`
// decodes as `command: {cmd: ls -l}`. Errors read "file:line: key: message".
//
// At run time, render Task.NormalizedArgs() rather than Task.Args: then
// `debug: "{{ some_mapping }}"` stays a msg even though it renders to a
// mapping.
func ArgsDecoder(file string, spec modules.Spec, args *yaml.Node) modules.Decoder {
	return argsDecoder{file: file, node: freeForm(spec, args)}
}

// NormalizedArgs returns the task's arguments as a mapping where the module
// is free-form and the task gave a bare value, as in `command: ls -l`
// (yielding {cmd: ls -l}); otherwise Args itself. Task.Args is not changed.
func (t *Task) NormalizedArgs() *yaml.Node {
	return freeForm(t.Spec, t.Args)
}

type argsDecoder struct {
	file string
	node *yaml.Node
}

func (d argsDecoder) Decode(v any) error {
	return yamlx.Decode(d.file, d.node, v)
}

// freeForm wraps a scalar or a sequence into {spec.FreeForm: args}.
func freeForm(spec modules.Spec, args *yaml.Node) *yaml.Node {
	args = deref(args)
	if spec.FreeForm == "" || args == nil || isNull(args) {
		return args
	}
	if args.Kind != yaml.ScalarNode && args.Kind != yaml.SequenceNode {
		return args
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: spec.FreeForm, Line: args.Line, Column: args.Column}
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: args.Line, Column: args.Column, Content: []*yaml.Node{key, args}}
}

// checkArgs validates a task's arguments at load time: their shape always,
// with every templated value standing in as null, and, when nothing in them
// is templated, everything the module's New checks too.
func (l *loader) checkArgs(t *Task, moduleKey *yaml.Node) {
	spec := t.Spec
	args := deref(t.Args)
	l.checkTemplates(l.file, args, "")
	if spec.Args == nil {
		if !isNull(args) && !(args.Kind == yaml.MappingNode && len(args.Content) == 0) {
			l.errorf(args, "", "module %q takes no arguments, got %s", t.Module, yamlx.Describe(args))
			return
		}
	} else if wrapped := freeForm(spec, args); !isTemplated(wrapped) {
		argsType := reflect.TypeOf(spec.Args)
		for argsType.Kind() == reflect.Pointer {
			argsType = argsType.Elem()
		}
		if err := yamlx.Decode(l.file, placeholders(wrapped), reflect.New(argsType).Interface()); err != nil {
			l.add(err)
			return
		}
	}
	if spec.New == nil || hasTemplate(args) {
		return
	}
	if _, err := spec.New(ArgsDecoder(l.file, spec, args)); err != nil {
		var ye *yamlx.Error
		if errors.As(err, &ye) {
			l.add(err)
		} else {
			l.errorf(moduleKey, "", "%s: %v", t.Module, err)
		}
	}
}

// isTemplated reports whether the whole node is one template string, as in
// `copy: "{{ copy_args }}"`; its shape is only known once rendered.
func isTemplated(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && tmpl.IsTemplate(n.Value)
}

// hasTemplate reports whether any string in the tree is a template.
func hasTemplate(n *yaml.Node) bool {
	n = deref(n)
	if isTemplated(n) {
		return true
	}
	for _, c := range n.Content {
		if hasTemplate(c) {
			return true
		}
	}
	return false
}

// placeholders copies a tree, replacing each templated string by a null
// that keeps its position: any type accepts it, so only keys and
// untemplated values are checked.
func placeholders(n *yaml.Node) *yaml.Node {
	n = deref(n)
	if isTemplated(n) {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "", Line: n.Line, Column: n.Column}
	}
	c := *n
	if n.Content != nil {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				c.Content[i] = child // keys stay as written
				continue
			}
			c.Content[i] = placeholders(child)
		}
	}
	return &c
}
