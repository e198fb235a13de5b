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
	var le *LimitError
	if errors.As(err, &le) {
		return le
	}
	msg := err.Error()
	if u, ok := asUndefined(msg); ok {
		return u
	}
	// gonja turns every error a filter or function returns into text (its
	// ErrInvalidCall is any error), so ours are recognised by their words;
	// the last one is the innermost, as in a recursion.
	if i := strings.LastIndex(msg, limitPrefix); i >= 0 {
		return &LimitError{Msg: msg[i+len(limitPrefix):]}
	}
	if i := strings.LastIndex(msg, arithmeticPrefix); i >= 0 {
		return errors.New(msg[i:])
	}
	cause := rootCause(err)
	// The filters the guard inserts show in gonja's text; the part after
	// the last filter it names is what went wrong.
	const wrapped = "unable to evaluate filter &{"
	if m := cause.Error(); strings.Contains(m, wrapped) {
		m = m[strings.LastIndex(m, wrapped):]
		if i := strings.Index(m, "}: "); i >= 0 {
			return fmt.Errorf("template error: %s", m[i+3:])
		}
	}
	return fmt.Errorf("template error: %w", cause)
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
		return fmt.Errorf("parse error in %s %q: %s (near %q)", what, shorten(src), strings.TrimSuffix(syntax.Message, "."), syntax.Raw)
	}
	var le *LimitError
	if errors.As(err, &le) {
		return fmt.Errorf("parse error in %s %q: %w", what, shorten(src), le)
	}
	msg := rootCause(err).Error()
	return fmt.Errorf("parse error in %s %q: %s", what, shorten(src), strings.TrimSpace(msg))
}

// shorten keeps an error about a long template readable.
func shorten(src string) string {
	const max = 200
	if len(src) <= max {
		return src
	}
	return strings.ToValidUTF8(src[:max], "") + "…"
}
