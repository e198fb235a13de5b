package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlLineError matches the "yaml: line N: msg" form of yaml.v3 syntax errors.
var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a yaml.v3 error into an *Error that names the file.
func yamlError(path string, err error) error {
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) && len(typeErr.Errors) > 0 {
		err = errors.New("yaml: " + typeErr.Errors[0])
	}
	if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: path, Line: line, Msg: m[2]}
	}
	return &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

// maxLocateLines bounds the files whose syntax errors are located by
// reparsing; larger files keep the line yaml.v3 reports.
const maxLocateLines = 50000

// syntaxError reports a YAML syntax error at the line where it occurs.
// yaml.v3 often reports the line before the problem, or none at all, so the
// line is found by bisecting for the shortest prefix of the file that fails
// with the same message (once a prefix holds the problem, longer ones fail
// the same way).
func syntaxError(path string, data []byte, err error) error {
	reported, ok := yamlError(path, err).(*Error)
	if !ok {
		return err
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxLocateLines {
		return reported
	}
	failsAt := func(n int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(bytes.Join(lines[:n], nil)))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return false
			}
			e, ok := yamlError(path, err).(*Error)
			return ok && e.Msg == reported.Msg
		}
	}
	if !failsAt(len(lines)) {
		return reported
	}
	lo, hi := 1, len(lines)
	for lo < hi {
		mid := (lo + hi) / 2
		if failsAt(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return &Error{File: path, Line: lo, Msg: reported.Msg}
}

// parseDocument parses the single YAML document in data and returns its root
// node, or nil when the file holds no document or only null.
func parseDocument(path string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(path, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: path, Line: next.Line, Msg: "more than one YAML document"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(path, data, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	if err := checkDuplicateKeys(path, root); err != nil {
		return nil, err
	}
	return root, nil
}

// checkDuplicateKeys reports the first mapping key defined twice, with both
// lines, anywhere below n. Anchored nodes are checked where they are defined.
func checkDuplicateKeys(path string, n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode && k.ShortTag() != "!!merge" {
				id := k.ShortTag() + "\x00" + k.Value
				if first, ok := seen[id]; ok {
					return &Error{File: path, Line: k.Line, Msg: fmt.Sprintf("duplicate key %q (first at line %d)", k.Value, first)}
				}
				seen[id] = k.Line
			}
			if err := checkDuplicateKeys(path, n.Content[i+1]); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if err := checkDuplicateKeys(path, item); err != nil {
				return err
			}
		}
	}
	return nil
}

// deref follows YAML aliases to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// isMergeKey reports whether k is the YAML merge key `<<`.
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil || isNull(n):
		return "null"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.ShortTag() == "!!str":
		return strconv.Quote(n.Value)
	default:
		return n.Value
	}
}

// stringScalar returns the value of a string scalar.
func stringScalar(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", false
	}
	return n.Value, true
}

// nameScalar returns the text of a scalar used as a name (a group or host
// key): strings and numbers, not null.
func nameScalar(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || isNull(n) || n.ShortTag() == "!!merge" {
		return "", false
	}
	return n.Value, true
}

// intScalar returns the value of an integer scalar, or of a string that holds
// one (inventories often quote ports).
func intScalar(n *yaml.Node) (int, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int":
		var v int
		if err := n.Decode(&v); err != nil {
			return 0, false
		}
		return v, true
	case "!!str":
		v, err := strconv.Atoi(n.Value)
		return v, err == nil
	}
	return 0, false
}
