package ovh

import (
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// rescueKeyTypes are the key types OVH's rescue takes as rescueSshKey.
var rescueKeyTypes = map[string]bool{
	ssh.KeyAlgoRSA:      true,
	ssh.KeyAlgoED25519:  true,
	ssh.KeyAlgoECDSA256: true,
	ssh.KeyAlgoECDSA384: true,
	ssh.KeyAlgoECDSA521: true,
}

// RescueKey checks an authorized_keys line for use as rescueSshKey and
// returns it as one clean line: one RSA, ECDSA or Ed25519 public key, with
// its comment, without options.
func RescueKey(line string) (string, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("no SSH public key")
	}
	if strings.ContainsAny(line, "\r\n") {
		return "", fmt.Errorf("want one SSH public key on one line, got several lines")
	}
	pub, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		// The parser's own message is about base64 offsets; the line says more.
		shown := line
		if len(shown) > 40 {
			shown = shown[:40] + "…"
		}
		return "", fmt.Errorf("not an SSH public key: %q", shown)
	}
	if len(options) > 0 || len(rest) > 0 {
		return "", fmt.Errorf("want a bare public key without authorized_keys options")
	}
	if !rescueKeyTypes[pub.Type()] {
		return "", fmt.Errorf("OVH's rescue takes RSA, ECDSA or Ed25519 keys, not %s", pub.Type())
	}
	out := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment != "" {
		out += " " + comment
	}
	return out, nil
}

// Fingerprint is a public key's SHA256 fingerprint, as ssh-keygen -l shows it.
func Fingerprint(line string) (string, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "", err
	}
	return ssh.FingerprintSHA256(pub), nil
}
