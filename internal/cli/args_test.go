package cli

import (
	"slices"
	"testing"
)

func TestVerbosity(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"-v"}, []string{"-v"}},
		{[]string{"-vv", "x"}, []string{"-v", "-v", "x"}},
		{[]string{"-vvv"}, []string{"-v", "-v", "-v"}},
		{[]string{"-vx", "--verbose"}, []string{"-vx", "--verbose"}},
		{[]string{"--", "-vv"}, []string{"--", "-vv"}},
		{[]string{"-"}, []string{"-"}},
	} {
		if got := verbosity(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("verbosity(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
