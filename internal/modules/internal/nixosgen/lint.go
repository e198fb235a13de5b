package nixosgen

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// lockouts are settings in `extra` that would leave nobody able to log in
// over SSH once the server boots: the module writes sshd and root's keys
// itself, and refuses text that takes them away again. It reads the text,
// not its meaning, so it catches the plain ways of writing them.
var lockouts = []struct {
	re  *regexp.Regexp
	why string
}{
	{
		regexp.MustCompile(`openssh\s*\.\s*enable\s*=\s*(?:lib\s*\.\s*)?(?:mkForce|mkOverride\s+\d+|mkDefault)?\s*\(?\s*false\b`),
		"it sets services.openssh.enable to false: no SSH server would run",
	},
	{
		regexp.MustCompile(`openssh\s*=\s*(?:lib\s*\.\s*mkForce\s*)?\{[^{}]*\benable\s*=\s*(?:lib\s*\.\s*)?(?:mkForce|mkOverride\s+\d+|mkDefault)?\s*\(?\s*false\b`),
		"it sets services.openssh.enable to false: no SSH server would run",
	},
	{
		regexp.MustCompile(`authorizedKeys\s*\.\s*keys\s*=\s*(?:lib\s*\.\s*)?mkForce\s*\(?\s*\[\s*\]`),
		"it forces root's authorized keys to an empty list: root could not log in",
	},
	{
		regexp.MustCompile(`(?i)permitRootLogin\s*=\s*(?:lib\s*\.\s*)?(?:mkForce\s*)?\(?\s*"no"`),
		`it sets PermitRootLogin to "no": root could not log in, and root is the only account with a key`,
	},
}

var (
	nixLineComment  = regexp.MustCompile(`#[^\n]*`)
	nixBlockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
)

// lintLockout refuses extra text that would lock everyone out.
func lintLockout(extra string) error {
	if strings.TrimSpace(extra) == "" {
		return nil
	}
	text := nixBlockComment.ReplaceAllString(extra, " ")
	text = nixLineComment.ReplaceAllString(text, "")
	var errs []error
	seen := map[string]bool{}
	for _, l := range lockouts {
		if loc := l.re.FindStringIndex(text); loc != nil && !seen[l.why] {
			seen[l.why] = true
			errs = append(errs, fmt.Errorf("extra: %s (%q); nixbook refuses a configuration that locks you out", l.why, strings.Join(strings.Fields(text[loc[0]:loc[1]]), " ")))
		}
	}
	return errors.Join(errs...)
}
