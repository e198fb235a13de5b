package tmpl

import (
	"strings"
	"testing"
)

// The expectations are Python 3.11's str % args.
func TestFormatFilter(t *testing.T) {
	e := New()
	tests := []struct{ expr, want string }{
		{"'%s-%d' | format('a', 3)", "a-3"},
		{"'%5.2f|%-4d|%x|%o|%e|%r|%05d|%+d|%%' | format(3.14159, 7, 255, 8, 12345.678, 'x', 42, 5)", " 3.14|7   |ff|10|1.234568e+04|'x'|00042|+5|%"},
		{"'%(a)s=%(b)d' | format(a='k', b=2)", "k=2"},
		{"'%g %g %g' | format(0.0001, 1e20, 123456789.0)", "0.0001 1e+20 1.23457e+08"},
		{"'%c%c' | format(65, 'b')", "Ab"},
		{"'%#x %#o' | format(255, 8)", "0xff 0o10"},
		{"'%10s|%-3s|' | format('hi', 'a')", "        hi|a  |"},
		{"'%.2s' | format('hello')", "he"},
		{"'%s %s %s' | format(True, None, 2.5)", "True None 2.5"},
		{"'%d %d %i' | format(True, 3.9, 2)", "1 3 2"},
		{"'%*d|%.*f' | format(4, 7, 1, 2.25)", "   7|2.2"},
		{"'no conversions' | format", "no conversions"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := e.Eval(tt.expr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Eval(%q) = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestFormatFilterErrors(t *testing.T) {
	e := New()
	tests := []struct{ expr, want string }{
		{"'%s %s' | format('a')", "format: not enough arguments for format string"},
		{"'%s' | format('a', 'b')", "format: not all arguments converted during string formatting"},
		{"'%d' | format('a')", "format: %d format: a real number is required, not str"},
		{"'%x' | format(1.5)", "format: %x format: an integer is required, not float"},
		{"'%z' | format(1)", "format: unsupported format character 'z' (0x7a) at index 1"},
		{"'%' | format(1)", "format: incomplete format"},
		{"'%(a)s' | format(b=1)", `format: format requires a mapping with key "a"`},
		{"'%*d' | format(999999999, 1)", "template limit reached"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := e.Eval(tt.expr, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Eval(%q) error = %v, want it to contain %q", tt.expr, err, tt.want)
			}
		})
	}
}
