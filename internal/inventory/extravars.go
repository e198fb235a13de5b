package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/yamlx"
)

var variableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseExtraVars merges -e arguments, later ones winning key by key. Each
// argument is one of:
//
//	@vars.yml, @vars.json   a file holding a mapping (read with readFile)
//	{"disks":["sda"]}       a JSON (or YAML flow) mapping
//	a=1 msg='two words'     key=value pairs; values are strings, quoted as in a shell
//
// readFile is os.ReadFile when nil.
func ParseExtraVars(args []string, readFile func(string) ([]byte, error)) (map[string]any, error) {
	if readFile == nil {
		readFile = yamlx.ReadFile
	}
	vars := map[string]any{}
	for _, arg := range args {
		parsed, err := parseExtraVarsArg(arg, readFile)
		if err != nil {
			return nil, fmt.Errorf("extra vars %q: %w", arg, err)
		}
		for k, v := range parsed {
			vars[k] = v
		}
	}
	return vars, nil
}

func parseExtraVarsArg(arg string, readFile func(string) ([]byte, error)) (map[string]any, error) {
	trimmed := strings.TrimSpace(arg)
	switch {
	case trimmed == "":
		return nil, nil
	case strings.HasPrefix(trimmed, "@"):
		path := trimmed[1:]
		if path == "" {
			return nil, errors.New("@ without a file name")
		}
		data, err := readFile(path)
		if err != nil {
			return nil, err
		}
		if filepath.Ext(path) == ".json" {
			return parseJSONMapping(data, path)
		}
		return parseYAMLMapping(data, path)
	case strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "["):
		vars, jsonErr := parseJSONMapping([]byte(trimmed), "")
		if jsonErr == nil {
			return vars, nil
		}
		// Like Ansible, accept YAML flow mappings too ({a: 1}).
		if vars, err := parseYAMLMapping([]byte(trimmed), "argument"); err == nil {
			return vars, nil
		}
		return nil, jsonErr
	}
	words, err := splitShellWords(arg, false)
	if err != nil {
		return nil, err
	}
	vars := map[string]any{}
	for _, w := range words {
		name, value, ok := strings.Cut(w, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", w)
		}
		if !variableName.MatchString(name) {
			return nil, fmt.Errorf("%q is not a valid variable name", name)
		}
		vars[name] = value
	}
	return vars, nil
}

// parseJSONMapping decodes a JSON object; whole numbers become ints, as YAML
// gives them.
func parseJSONMapping(data []byte, path string) (map[string]any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(path, data, dec, err)
	}
	if dec.More() {
		return nil, jsonError(path, data, dec, errors.New("text after the JSON value"))
	}
	m, ok := normalizeJSON(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a mapping, got %s", jsonKind(v))
	}
	return m, nil
}

func jsonError(path string, data []byte, dec *json.Decoder, err error) error {
	var syntax *json.SyntaxError
	offset := dec.InputOffset()
	if errors.As(err, &syntax) {
		offset = syntax.Offset
	}
	if path == "" {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	line := 1 + bytes.Count(data[:min(int(offset), len(data))], []byte("\n"))
	return &Error{File: path, Line: line, Msg: err.Error()}
}

func normalizeJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil && int64(int(i)) == i {
			return int(i)
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, item := range v {
			v[k] = normalizeJSON(item)
		}
	case []any:
		for i, item := range v {
			v[i] = normalizeJSON(item)
		}
	}
	return v
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", v)
}

func parseYAMLMapping(data []byte, path string) (map[string]any, error) {
	root, err := parseDocument(path, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: path, Line: root.Line, Msg: "want a mapping, got " + describe(root)}
	}
	var m map[string]any
	if err := root.Decode(&m); err != nil {
		return nil, yamlError(path, err)
	}
	return m, nil
}

// splitShellWords splits on blanks, honouring single quotes, double quotes
// (where \ escapes " \ $ and `) and backslashes, as a POSIX shell would.
// With comments, a # outside quotes ends the line, as Python's shlex.split
// with comments=True has it.
func splitShellWords(s string, comments bool) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if comments && c == '#' {
			break
		}
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			word.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				word.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
			}
			word.WriteByte(s[i])
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
