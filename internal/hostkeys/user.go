package hostkeys

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// UserTrust is the user's own OpenSSH known_hosts files (UserKnownHostsFile,
// then GlobalKnownHostsFile), read and never written. nixbook consults them
// while its own store has no key for a host, so that a host the user already
// trusts is held to the key OpenSSH would accept; @revoked lines are
// honoured always.
type UserTrust struct {
	// Files are read in order; missing ones are skipped.
	Files []string
	// Host is the name OpenSSH looks the key up by: HostKeyAlias as
	// written, else the HostName dialled, as "[name]:port" off port 22.
	Host string
	// Strict is StrictHostKeyChecking yes: a host known to neither the
	// user's files nor nixbook's store is refused.
	Strict bool
}

// LookupName is the name OpenSSH's known_hosts lookup uses for a host:
// the HostKeyAlias when set (with no port, as OpenSSH does), else the host
// name, bracketed with the port when the port is not 22.
func LookupName(hostName, alias string, port int) string {
	if alias != "" {
		return strings.ToLower(alias)
	}
	hostName = strings.ToLower(hostName)
	if port == 0 || port == 22 {
		return hostName
	}
	return "[" + hostName + "]:" + strconv.Itoa(port)
}

// userLine is one key line of a user file that names the host.
type userLine struct {
	file  string
	where string // file:line
	key   gossh.PublicKey
}

// userKeys is what the user's files say about one host.
type userKeys struct {
	keys        []userLine
	authorities []userLine
	revoked     []userLine // for any host
}

// load reads the files. Lines OpenSSH could not parse are skipped, as
// OpenSSH skips them.
func (u *UserTrust) load() (userKeys, error) {
	var uk userKeys
	for _, f := range u.Files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) && isSystemFile(f) {
			continue
		}
		if err != nil {
			return userKeys{}, fmt.Errorf("reading %s: %w", f, err)
		}
		for i, line := range splitLines(data) {
			marker, hosts, key, _, _, err := gossh.ParseKnownHosts(line)
			if err != nil || key == nil {
				continue
			}
			l := userLine{file: f, where: f + ":" + strconv.Itoa(i+1), key: key}
			switch {
			case marker == "revoked":
				uk.revoked = append(uk.revoked, l)
			case !matchHost(hosts, u.Host):
			case marker == "cert-authority":
				uk.authorities = append(uk.authorities, l)
			default:
				uk.keys = append(uk.keys, l)
			}
		}
	}
	return uk, nil
}

func isSystemFile(f string) bool { return strings.HasPrefix(f, "/etc/") }

// RevokedError is a key a @revoked line of the user's files names.
type RevokedError struct {
	Host  string
	Where string // file:line
	Key   gossh.PublicKey
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("host key of %s is revoked in %s: %s", e.Host, e.Where, describe(e.Key))
}

// StrictError is a host neither the user's files nor nixbook's store know,
// refused because the user's ssh config sets StrictHostKeyChecking yes.
type StrictError struct {
	Host    string
	Files   []string
	Offered gossh.PublicKey
}

func (e *StrictError) Error() string {
	return fmt.Sprintf("host key verification failed: no key for %s in %s or nixbook's known_hosts, and StrictHostKeyChecking is yes (offered %s)",
		e.Host, strings.Join(e.Files, ", "), describe(e.Offered))
}

// revokedIn reports a key (or a certificate's key or authority) that a
// @revoked line names.
func (uk userKeys) revokedIn(host string, key gossh.PublicKey) error {
	check := []gossh.PublicKey{key}
	if c, ok := key.(*gossh.Certificate); ok {
		check = []gossh.PublicKey{c.Key, c.SignatureKey}
	}
	for _, k := range check {
		for _, r := range uk.revoked {
			if bytes.Equal(r.key.Marshal(), k.Marshal()) {
				return &RevokedError{Host: host, Where: r.where, Key: k}
			}
		}
	}
	return nil
}

// checkCert accepts a host certificate signed by an authority the user's
// files name for the host, valid now and for the host name.
func (uk userKeys) checkCert(u *UserTrust, cert *gossh.Certificate) error {
	isCA := func(auth gossh.PublicKey, _ string) bool {
		for _, a := range uk.authorities {
			if bytes.Equal(a.key.Marshal(), auth.Marshal()) {
				return true
			}
		}
		return false
	}
	cc := gossh.CertChecker{IsHostAuthority: isCA}
	principal := u.Host
	if h, _, err := net.SplitHostPort(principal); err == nil {
		principal = strings.Trim(h, "[]")
	}
	if err := cc.CheckHostKey(net.JoinHostPort(principal, "22"), nil, cert); err != nil {
		return fmt.Errorf("host certificate of %s: %w", u.Host, err)
	}
	return nil
}

// Authorities reports whether the user's files name a certificate
// authority for the host, so that host certificates are worth asking for.
func (u *UserTrust) Authorities() bool {
	if u == nil {
		return false
	}
	uk, err := u.load()
	return err == nil && len(uk.authorities) > 0
}

// KeyTypes are the types of the keys the user's files hold for the host,
// so that the server is asked for a key the files can judge.
func (u *UserTrust) KeyTypes() []string {
	if u == nil {
		return nil
	}
	uk, err := u.load()
	if err != nil {
		return nil
	}
	var types []string
	for _, l := range uk.keys {
		if !slices.Contains(types, l.key.Type()) {
			types = append(types, l.key.Type())
		}
	}
	return types
}

// matchHost applies OpenSSH's host pattern rules to one known_hosts host
// field: a hashed entry matches its exact name; patterns may use * and ?;
// a matching negated pattern (!pat) rejects the host whatever else matches.
func matchHost(patterns []string, host string) bool {
	matched := false
	for _, p := range patterns {
		if strings.HasPrefix(p, "|1|") {
			if matchesAny([]string{p}, []string{host}) {
				matched = true
			}
			continue
		}
		neg := strings.HasPrefix(p, "!")
		p = strings.ToLower(strings.TrimPrefix(p, "!"))
		ok := p == host
		if !ok && strings.ContainsAny(p, "*?") {
			ok = globMatch(p, host)
		}
		if ok && neg {
			return false
		}
		matched = matched || ok
	}
	return matched
}

// globMatch is OpenSSH's match_pattern: only * and ? are special.
func globMatch(pattern, s string) bool {
	// path.Match also knows [] and \, which OpenSSH does not: escape them.
	var b strings.Builder
	for _, r := range pattern {
		if r == '[' || r == ']' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	// path.Match's * stops at '/', which a host name has not.
	ok, err := path.Match(b.String(), s)
	return err == nil && ok
}
