package runner

import "testing"

func TestScreenSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text\twith a tab", "plain text\twith a tab"},
		{"\x1b]0;owned\x07\x1b[2Jtitle", "title"},
		{"\x1b[31mred\x1b[0m", "red"},
		{"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"progress 10%\rprogress 20%", "progress 10%progress 20%"},
		{"bell\x07 and null\x00", "bell and null"},
		{"\x1bPdevice control\x1b\\after", "after"},
		{"\x1b(Bcharset", "charset"},
		{"c1 csi \u009b2J done", "c1 csi  done"},
		{"unterminated \x1b]0;title", "unterminated "},
		{"trailing escape \x1b", "trailing escape "},
		{"bad utf-8 \xff ok", "bad utf-8 \ufffd ok"},
		{"héllo wörld ✓", "héllo wörld ✓"},
	}
	for _, tt := range tests {
		if got := screenSafe(tt.in); got != tt.want {
			t.Errorf("screenSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEscapeControl(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain\ttext", "plain\ttext"},
		{"\x1b[2Jx\x07", `\x1b[2Jx\x07`},
		{"cr\r", `cr\x0d`},
	}
	for _, tt := range tests {
		if got := escapeControl(tt.in); got != tt.want {
			t.Errorf("escapeControl(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzScreenSafe(f *testing.F) {
	for _, s := range []string{"\x1b]0;x\x07", "\x1b[", "\u009b", "\xff\x1b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := screenSafe(s)
		for _, r := range out {
			if unsafeRune(r) && r != '\ufffd' {
				t.Fatalf("screenSafe(%q) = %q keeps %U", s, out, r)
			}
		}
	})
}
