package tmpl

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/parser"
)

// UndefinedError reports a variable, attribute or item a template used
// without it being defined.
type UndefinedError struct {
	Name string // "foo", "facts.os.id", "result['rc']"
	Hint string // an explanation given to `mandatory`, if any
}

func (e *UndefinedError) Error() string {
	msg := fmt.Sprintf("undefined variable %q", e.Name)
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

// gonja reports undefined names only as text; these are its wordings in
// v2.9.1 (exec/evaluator.go, exec/value.go) and our own.
var undefinedPatterns = []*regexp.Regexp{
	regexp.MustCompile(`undefined variable "([^"]+)"(?:: (.*))?`),
	regexp.MustCompile(`Unable to evaluate name "([^"]+)"`),
	regexp.MustCompile(`[Uu]nable to evaluate (\S+): attribute '[^']*' not found`),
	regexp.MustCompile(`[Uu]nable to evaluate (\S+): item .* not found`),
	regexp.MustCompile(`[Uu]nable to evaluate (\S+): Can't use [Gg]et(?:attr|item) on None`),
}

// asUndefined recognises an undefined-variable failure in an error message.
func asUndefined(msg string) (*UndefinedError, bool) {
	for i, re := range undefinedPatterns {
		m := re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		u := &UndefinedError{Name: m[1]}
		if i == 0 && len(m) > 2 {
			u.Hint = m[2]
		}
		return u, true
	}
	return nil, false
}

// isUndefined reports whether a gonja value is an undefined-variable error.
func isUndefined(v *exec.Value) bool {
	if !v.IsError() {
		return false
	}
	_, ok := asUndefined(v.Error())
	return ok
}

// rootCause follows wrapped errors, including errors held in gonja values,
// to the innermost one.
func rootCause(err error) error {
	for {
		if v, ok := err.(*exec.Value); ok {
			inner, ok := v.Interface().(error)
			if !ok {
				return err
			}
			err = inner
			continue
		}
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func renderError(err error) error {
	if u, ok := asUndefined(err.Error()); ok {
		return u
	}
	return fmt.Errorf("template error: %w", rootCause(err))
}

func evalError(v *exec.Value) error {
	err, _ := v.Interface().(error)
	if err == nil {
		err = errors.New(v.Error())
	}
	return renderError(err)
}

// parseError says what failed to parse: what is "template" or "expression".
func parseError(what, src string, err error) error {
	var syntax *parser.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Errorf("parse error in %s %q: %s (near %q)", what, src, strings.TrimSuffix(syntax.Message, "."), syntax.Raw)
	}
	msg := rootCause(err).Error()
	return fmt.Errorf("parse error in %s %q: %s", what, src, strings.TrimSpace(msg))
}
