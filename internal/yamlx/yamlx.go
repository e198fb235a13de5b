// Package yamlx decodes yaml.v3 nodes strictly: unknown keys and mistyped
// values are errors that name the file, the line and the key, such as
//
//	play.yml:7: mode: want an integer, got "abc"
//	play.yml:9: unknown key "regster" (did you mean register?)
package yamlx

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is one problem at one place in a YAML file.
type Error struct {
	File string
	Line int
	Key  string // the path of the offending value ("mode", "env.HOME", "tags[1]"); may be empty
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		} else {
			b.WriteString("line " + strconv.Itoa(e.Line))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf builds an Error at node n.
func Errorf(file string, n *yaml.Node, key, format string, args ...any) *Error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses data as one YAML document and returns its root node (nil for
// an empty document). Syntax errors read "file:line: message".
func Parse(file string, data []byte) (*yaml.Node, error) {
	if len(data) > MaxFileBytes {
		return nil, &Error{File: file, Msg: fmt.Sprintf("larger than %d MiB, more than nixbook reads", MaxFileBytes>>20)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, err)
	}
	// A second document would be silently dropped: a play lost, say.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: file, Line: next.Line, Msg: "a second YAML document (after ---): nixbook reads one document per file"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	if err := duplicateKeys(file, doc.Content[0]); err != nil {
		return nil, err
	}
	return doc.Content[0], nil
}

// duplicateKeys reports repeated mapping keys, which yaml.v3 only notices
// when decoding into a Go map or struct.
func duplicateKeys(file string, n *yaml.Node) error {
	var errs []error
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			first := map[string]int{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if k.Kind == yaml.ScalarNode && k.ShortTag() != "!!merge" {
					if line, dup := first[k.Value]; dup {
						errs = append(errs, &Error{File: file, Line: k.Line, Msg: fmt.Sprintf("mapping key %q already defined at line %d", k.Value, line)})
					} else {
						first[k.Value] = k.Line
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return errors.Join(errs...)
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(file string, err error) error {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: m[2]}
	}
	if !strings.HasPrefix(msg, "yaml: unmarshal errors") && strings.HasPrefix(msg, "yaml: ") {
		// yaml.v3 leaves the line out when it is the first one.
		return &Error{File: file, Line: 1, Msg: strings.TrimPrefix(msg, "yaml: ")}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return typeErrors(file, "", te)
	}
	return &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// Decode decodes n into v (a pointer) strictly. First the node is walked
// beside v's type: a mapping key that matches no field is an error, as is a
// value of the wrong shape or type, a struct field tagged `required` whose
// key is missing, or an error from a yaml.Unmarshaler. Then, when all is
// well, n.Decode(v) fills v. All problems found are returned, joined.
func Decode(file string, n *yaml.Node, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("yamlx: decode into %T: want a non-nil pointer", v)
	}
	if n != nil && n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	if n == nil {
		return nil
	}
	c := &checker{file: file}
	t := rv.Type().Elem()
	if isNull(n) && structType(t) != nil {
		// An empty argument list still misses its required keys.
		c.checkRequired(n, structType(t), "", nil)
	}
	c.check(n, t, "")
	if len(c.errs) > 0 {
		return errors.Join(c.errs...)
	}
	if err := n.Decode(v); err != nil {
		return c.convert(n, err)
	}
	return nil
}

type checker struct {
	file string
	errs []error
}

func (c *checker) add(n *yaml.Node, key, format string, args ...any) {
	c.errs = append(c.errs, Errorf(c.file, n, key, format, args...))
}

var (
	unmarshalerType         = reflect.TypeFor[yaml.Unmarshaler]()
	obsoleteUnmarshalerType = reflect.TypeFor[interface {
		UnmarshalYAML(func(any) error) error
	}]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	nodeType            = reflect.TypeFor[yaml.Node]()
	durationType        = reflect.TypeFor[time.Duration]()
)

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// structType returns the struct t is or points to, or nil.
func structType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct && t != nodeType && !implements(t, unmarshalerType) && !implements(t, obsoleteUnmarshalerType) {
		return t
	}
	return nil
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if t == nodeType || (t.Kind() == reflect.Pointer && t.Elem() == nodeType) {
		return // the caller wants the node itself
	}
	if implements(t, unmarshalerType) || implements(t, obsoleteUnmarshalerType) {
		c.trial(n, t, path)
		return
	}
	if isNull(n) {
		return // null leaves the zero value, as yaml.v3 does
	}
	switch t.Kind() {
	case reflect.Pointer:
		c.check(n, t.Elem(), path)
	case reflect.Interface:
		// any shape is fine
	case reflect.Struct:
		if implements(t, textUnmarshalerType) {
			c.trial(n, t, path)
			return
		}
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "want a mapping, got %s", Describe(n))
			return
		}
		c.checkStruct(n, t, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "want a mapping, got %s", Describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.ShortTag() == "!!merge" {
				for _, m := range mergedMappings(v) {
					c.check(m, t, path)
				}
				continue
			}
			c.check(k, t.Key(), path)
			c.check(v, t.Elem(), Join(path, k.Value))
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && n.Kind == yaml.ScalarNode {
			c.trial(n, t, path) // []byte from !!binary or a string
			return
		}
		if n.Kind != yaml.SequenceNode {
			c.add(n, path, "want a list, got %s", Describe(n))
			return
		}
		for i, item := range n.Content {
			c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "want %s, got %s", want(t), Describe(n))
			return
		}
		if isInt(t) && n.ShortTag() == "!!float" {
			// yaml.v3 would truncate 1.5 to 1.
			c.add(n, path, "want %s, got %s", want(t), Describe(n))
			return
		}
		if t == durationType && n.ShortTag() == "!!int" {
			// yaml.v3 would read 30 as 30 nanoseconds.
			c.add(n, path, "want %s, got %s (a number needs a unit)", want(t), Describe(n))
			return
		}
		c.trial(n, t, path)
	}
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// field is a struct field reachable by a mapping key.
type field struct {
	typ      reflect.Type
	required bool
}

// fields lists the keys a struct accepts, following `,inline` structs; an
// inline map, if any, accepts every other key.
func fields(t reflect.Type) (map[string]field, []string, reflect.Type) {
	known := map[string]field{}
	var order []string
	var inlineMap reflect.Type
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			if hasOpt(opts, "inline") {
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				switch ft.Kind() {
				case reflect.Struct:
					walk(ft)
				case reflect.Map:
					inlineMap = ft
				}
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			_, req := f.Tag.Lookup("required")
			if _, dup := known[name]; !dup {
				order = append(order, name)
			}
			known[name] = field{typ: f.Type, required: req}
		}
	}
	walk(t)
	return known, order, inlineMap
}

func hasOpt(opts, opt string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// KnownKeys lists the mapping keys the struct type t (or a pointer to it)
// accepts, in field order.
func KnownKeys(t reflect.Type) []string {
	st := structType(t)
	if st == nil {
		return nil
	}
	_, order, _ := fields(st)
	return order
}

func (c *checker) checkStruct(n *yaml.Node, t reflect.Type, path string) {
	seen := map[string]bool{}
	c.checkPairs(n, t, path, seen)
	c.checkRequired(n, t, path, seen)
}

// checkPairs checks the keys and values of mapping n against struct t,
// recording the keys it saw.
func (c *checker) checkPairs(n *yaml.Node, t reflect.Type, path string, seen map[string]bool) {
	known, order, inlineMap := fields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			for _, m := range mergedMappings(v) {
				if m.Kind != yaml.MappingNode {
					c.add(m, path, "a merge (<<) wants a mapping, got %s", Describe(m))
					continue
				}
				c.checkPairs(m, t, path, seen)
			}
			continue
		}
		seen[k.Value] = true
		f, ok := known[k.Value]
		switch {
		case ok:
			c.check(v, f.typ, Join(path, k.Value))
		case inlineMap != nil:
			c.check(v, inlineMap.Elem(), Join(path, k.Value))
		default:
			c.add(k, path, "%s", UnknownKey(k.Value, order))
		}
	}
}

// mergedMappings lists what a merge key (<<) brings in: one node or a list
// of them, aliases resolved.
func mergedMappings(v *yaml.Node) []*yaml.Node {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	merged := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		merged = v.Content
	}
	out := make([]*yaml.Node, len(merged))
	for i, m := range merged {
		for m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		out[i] = m
	}
	return out
}

func (c *checker) checkRequired(n *yaml.Node, t reflect.Type, path string, seen map[string]bool) {
	known, order, _ := fields(t)
	var missing []string
	for _, name := range order {
		if known[name].required && !seen[name] {
			missing = append(missing, name)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		c.add(n, path, "missing required key %q", missing[0])
	default:
		c.add(n, path, "missing required keys %s", quoteList(missing))
	}
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// trial decodes n alone into a fresh value of type t to see whether it fits.
func (c *checker) trial(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var te *yaml.TypeError
	custom := implements(t, unmarshalerType) || implements(t, obsoleteUnmarshalerType) || implements(t, textUnmarshalerType)
	if errors.As(err, &te) && !custom && n.Kind == yaml.ScalarNode {
		c.add(n, path, "want %s, got %s", want(t), Describe(n))
		return
	}
	if errors.As(err, &te) {
		for _, msg := range te.Errors {
			c.errs = append(c.errs, c.typeError(n, path, msg))
		}
		return
	}
	c.add(n, path, "%s", cleanMessage(err.Error()))
}

var lineRef = regexp.MustCompile(`^line (\d+): `)

// cleanMessage drops yaml.v3's prefixes and the "line N: " that
// UnmarshalYAML methods often add; the Error carries the line.
func cleanMessage(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	return lineRef.ReplaceAllString(msg, "")
}

// typeError turns one yaml.v3 TypeError line ("line 7: cannot unmarshal
// !!str `abc` into int") into an Error.
func (c *checker) typeError(n *yaml.Node, path, msg string) error {
	line := n.Line
	if m := lineRef.FindStringSubmatch(strings.TrimSpace(msg)); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return &Error{File: c.file, Line: line, Key: path, Msg: readable(cleanMessage(msg))}
}

var (
	cannotUnmarshal   = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (.+)$")
	cannotUnmarshalIn = regexp.MustCompile(`^cannot unmarshal !!(seq|map) into (.+)$`)
)

func readable(msg string) string {
	if m := cannotUnmarshalIn.FindStringSubmatch(msg); m != nil {
		got := "a list"
		if m[1] == "map" {
			got = "a mapping"
		}
		return fmt.Sprintf("want %s, got %s", goTypeWant(m[2]), got)
	}
	m := cannotUnmarshal.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	got := m[2]
	if m[1] == "str" {
		got = strconv.Quote(got)
	}
	return fmt.Sprintf("want %s, got %s", goTypeWant(m[3]), got)
}

func goTypeWant(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "a boolean"
	case goType == "string":
		return "a string"
	case goType == "time.Duration":
		return "a duration such as 30s"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping"
	}
	return goType
}

func (c *checker) convert(n *yaml.Node, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return typeErrors(c.file, "", te)
	}
	return &Error{File: c.file, Line: n.Line, Msg: cleanMessage(err.Error())}
}

func typeErrors(file, path string, te *yaml.TypeError) error {
	c := &checker{file: file}
	var errs []error
	for _, msg := range te.Errors {
		errs = append(errs, c.typeError(&yaml.Node{}, path, msg))
	}
	return errors.Join(errs...)
}

// want describes what a value of type t looks like in YAML.
func want(t reflect.Type) string {
	if n, ok := reflect.New(t).Interface().(interface{ TypeName() string }); ok {
		return "a " + n.TypeName()
	}
	if t == durationType {
		return "a duration such as 30s"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// Describe names what a node holds, for "got …" in messages: a quoted
// string, a bare number or boolean, "null", "a list" or "a mapping".
func Describe(n *yaml.Node) string {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return Describe(n.Content[0])
		}
		return "nothing"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!str", "!!binary", "!!timestamp":
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// Join appends a mapping key to a path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	if key == "" {
		return path
	}
	return path + "." + key
}
