package shellquote

import (
	"os/exec"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"plain-word_1.2/x=y:z,+@%", "plain-word_1.2/x=y:z,+@%"},
		{"two words", "'two words'"},
		{"it's", `'it'\''s'`},
		{"$(reboot)", "'$(reboot)'"},
		{"a\nb", "'a\nb'"},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := Join([]string{"echo", "a b", ""}); got != "echo 'a b' ''" {
		t.Errorf("Join = %s", got)
	}
}

// FuzzQuote checks with a real shell that a quoted word comes back whole.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a b", "it's", "$(x)`y`", "\\", "*", "a\x00b"} {
		f.Add(s)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		f.Skip("no sh")
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range s {
			if r == 0 {
				return // no argv word can hold a NUL
			}
		}
		out, err := exec.Command(sh, "-c", "printf %s "+Quote(s)).Output()
		if err != nil {
			t.Fatalf("sh -c printf %s: %v", Quote(s), err)
		}
		if string(out) != s {
			t.Fatalf("round trip of %q gave %q", s, out)
		}
	})
}
