package tmpl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// filterFormat is Jinja's format as Ansible runs it: Python's
// printf-style formatting, value % args, or value % kwargs for
// %(name)s conversions.
func filterFormat(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) > 0 && len(params.KwArgs) > 0 {
		return fail("format: can't handle positional and keyword arguments at the same time")
	}
	out, err := pyFormat(in.String(), params.Args, params.KwArgs)
	if err != nil {
		return fail("format: %w", err)
	}
	return exec.AsValue(out)
}

// pyStr is Python's str() of a value.
func pyStr(v *exec.Value) string {
	switch {
	case v.IsNil():
		return "None"
	case v.IsBool():
		if v.Bool() {
			return "True"
		}
		return "False"
	}
	return v.String()
}

// pyFormat is Python's str % args for the conversions playbooks use.
func pyFormat(f string, args []*exec.Value, named map[string]*exec.Value) (string, error) {
	var out strings.Builder
	next := 0
	take := func() (*exec.Value, error) {
		if next >= len(args) {
			return nil, fmt.Errorf("not enough arguments for format string")
		}
		next++
		return args[next-1], nil
	}
	usedNamed := false
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			out.WriteByte(f[i])
			continue
		}
		i++
		var arg *exec.Value
		if i < len(f) && f[i] == '(' {
			end := strings.IndexByte(f[i:], ')')
			if end < 0 {
				return "", fmt.Errorf("incomplete format key")
			}
			v, ok := named[f[i+1:i+end]]
			if !ok {
				return "", fmt.Errorf("format requires a mapping with key %q", f[i+1:i+end])
			}
			arg, usedNamed = v, true
			i += end + 1
		}
		flags := ""
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			flags += string(f[i])
			i++
		}
		number := func() (int, bool, error) {
			if i < len(f) && f[i] == '*' {
				i++
				v, err := take()
				if err != nil {
					return 0, false, err
				}
				if !v.IsInteger() {
					return 0, false, fmt.Errorf("* wants int")
				}
				return v.Integer(), true, nil
			}
			j := i
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
			}
			if j == i {
				return 0, false, nil
			}
			n, err := strconv.Atoi(f[j:i])
			return n, true, err
		}
		width, hasWidth, err := number()
		if err != nil {
			return "", err
		}
		if width < 0 {
			flags, width = flags+"-", -width
		}
		prec, hasPrec := 0, false
		if i < len(f) && f[i] == '.' {
			i++
			if prec, _, err = number(); err != nil {
				return "", err
			}
			hasPrec = true
		}
		if width > MaxStringBytes || prec > MaxStringBytes {
			return "", limitError("a width of %d (limit %d)", max(width, prec), MaxStringBytes)
		}
		for i < len(f) && strings.IndexByte("hlL", f[i]) >= 0 {
			i++
		}
		if i >= len(f) {
			return "", fmt.Errorf("incomplete format")
		}
		conv := f[i]
		if conv == '%' {
			out.WriteByte('%')
			continue
		}
		if arg == nil {
			if arg, err = take(); err != nil {
				return "", err
			}
		}
		spec := "%" + flags
		if hasWidth {
			spec += strconv.Itoa(width)
		}
		if hasPrec {
			spec += "." + strconv.Itoa(prec)
		}
		var s string
		switch conv {
		case 's', 'r', 'a':
			text := pyStr(arg)
			if conv != 's' && arg.IsString() {
				text = "'" + strings.ReplaceAll(text, "'", "\\'") + "'"
			}
			if hasPrec && prec < len([]rune(text)) {
				text = string([]rune(text)[:prec])
			}
			s = fmt.Sprintf(strings.ReplaceAll("%"+flags, "0", "")+widthOf(hasWidth, width)+"s", text)
		case 'd', 'i', 'u':
			if !arg.IsNumber() && !arg.IsBool() {
				return "", fmt.Errorf("%%%c format: a real number is required, not %s", conv, pyType(arg))
			}
			s = fmt.Sprintf(spec+"d", intOf(arg))
		case 'x', 'X', 'o':
			if !arg.IsInteger() && !arg.IsBool() {
				return "", fmt.Errorf("%%%c format: an integer is required, not %s", conv, pyType(arg))
			}
			verb := string(conv)
			if conv == 'o' && strings.Contains(flags, "#") {
				verb = "O"
				spec = strings.ReplaceAll(spec, "#", "")
			}
			s = fmt.Sprintf(spec+verb, intOf(arg))
		case 'e', 'E', 'f', 'F', 'g', 'G':
			if !arg.IsNumber() && !arg.IsBool() {
				return "", fmt.Errorf("must be real number, not %s", pyType(arg))
			}
			if !hasPrec {
				spec += ".6"
			}
			s = fmt.Sprintf(spec+string(conv), arg.Float())
		case 'c':
			switch {
			case arg.IsInteger():
				s = string(rune(arg.Integer()))
			case arg.IsString() && len([]rune(arg.String())) == 1:
				s = arg.String()
			default:
				return "", fmt.Errorf("%%c requires int or char")
			}
			s = fmt.Sprintf(strings.ReplaceAll("%"+flags, "0", "")+widthOf(hasWidth, width)+"s", s)
		default:
			return "", fmt.Errorf("unsupported format character %q (0x%x) at index %d", conv, conv, i)
		}
		out.WriteString(s)
		if out.Len() > MaxStringBytes {
			return "", limitError("a string of more than %d bytes", MaxStringBytes)
		}
	}
	if next < len(args) && !usedNamed {
		return "", fmt.Errorf("not all arguments converted during string formatting")
	}
	return out.String(), nil
}

func widthOf(has bool, w int) string {
	if !has {
		return ""
	}
	return strconv.Itoa(w)
}

func intOf(v *exec.Value) int {
	if v.IsBool() {
		if v.Bool() {
			return 1
		}
		return 0
	}
	if v.IsFloat() {
		return int(v.Float())
	}
	return v.Integer()
}

// pyType names a value's Python type for error messages.
func pyType(v *exec.Value) string {
	switch {
	case v.IsNil():
		return "NoneType"
	case v.IsString():
		return "str"
	case v.IsFloat():
		return "float"
	case v.IsList():
		return "list"
	case v.IsDict():
		return "dict"
	}
	return "int"
}
