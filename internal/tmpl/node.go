package tmpl

import (
	"context"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// NodeError is a rendering failure inside a YAML tree, located at the node
// that holds the template.
type NodeError struct {
	Line, Column int
	Path         string // "dest", "env.HOME", "argv[2]"; empty at the root
	Err          error
}

func (e *NodeError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("line %d: %s: %v", e.Line, e.Path, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// RenderNode renders every templated string scalar of a yaml.v3 tree and
// returns a new tree; n is not modified. Every new node keeps the line and
// column of the node it came from, so decode errors still point into the
// playbook. A scalar that is exactly one `{{ expression }}` becomes a node of
// the expression's native type (a sequence, a mapping, an int, a bool...).
// Mapping keys are not rendered. Aliases are expanded.
func (e *Engine) RenderNode(n *yaml.Node, vars map[string]any) (*yaml.Node, error) {
	return e.RenderNodeContext(context.Background(), n, vars)
}

// RenderNodeContext is RenderNode stopping when ctx is done. The whole
// tree shares one evaluation's limits.
func (e *Engine) RenderNodeContext(ctx context.Context, n *yaml.Node, vars map[string]any) (*yaml.Node, error) {
	return e.renderNode(n, vars, "", newBudget(ctx))
}

func (e *Engine) renderNode(n *yaml.Node, vars map[string]any, path string, b *budget) (*yaml.Node, error) {
	if n == nil {
		return nil, nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		out, err := e.renderNode(n.Alias, vars, path, b)
		if err != nil {
			return nil, err
		}
		out.Anchor = ""
		setPosition(out, n.Line, n.Column)
		return out, nil
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" || !IsTemplate(n.Value) {
			c := *n
			return &c, nil
		}
		v, err := e.renderString(n.Value, vars, b)
		if err != nil {
			return nil, &NodeError{Line: n.Line, Column: n.Column, Path: path, Err: err}
		}
		out, err := valueNode(v, n)
		if err != nil {
			return nil, &NodeError{Line: n.Line, Column: n.Column, Path: path, Err: err}
		}
		return out, nil
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		var childPath string
		switch {
		case n.Kind == yaml.MappingNode && i%2 == 0:
			c.Content[i] = copyNode(child)
			continue
		case n.Kind == yaml.MappingNode:
			childPath = joinPath(path, n.Content[i-1].Value)
		case n.Kind == yaml.SequenceNode:
			childPath = fmt.Sprintf("%s[%d]", path, i)
		default:
			childPath = path
		}
		r, err := e.renderNode(child, vars, childPath, b)
		if err != nil {
			return nil, err
		}
		c.Content[i] = r
	}
	return &c, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// valueNode builds the node for a rendered value at the place of orig.
func valueNode(v any, orig *yaml.Node) (*yaml.Node, error) {
	if s, ok := v.(string); ok {
		return stringNode(s, orig), nil
	}
	out := &yaml.Node{}
	if err := out.Encode(v); err != nil {
		return nil, fmt.Errorf("cannot express %T in YAML: %w", v, err)
	}
	setPosition(out, orig.Line, orig.Column)
	return out, nil
}

// stringNode keeps rendered text a string, except text that reads as a
// number or a boolean: that is left for the decoder to resolve, so
// `port: "{{ base }}0"` still fills an int argument, while a string
// argument still receives the text as written.
func stringNode(s string, orig *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.ScalarNode, Value: s, Line: orig.Line, Column: orig.Column}
	switch out.ShortTag() {
	case "!!int", "!!float", "!!bool":
		if !strings.ContainsAny(s, "\n") {
			return out
		}
	}
	out.Tag = "!!str"
	return out
}

func setPosition(n *yaml.Node, line, column int) {
	n.Line, n.Column = line, column
	for _, c := range n.Content {
		setPosition(c, line, column)
	}
}

func copyNode(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	if n.Content != nil {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			c.Content[i] = copyNode(child)
		}
	}
	return &c
}
