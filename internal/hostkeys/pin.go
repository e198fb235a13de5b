package hostkeys

import (
	"bytes"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Pin records key as the only key of name:port, before the host presents
// it: the key nixbook generated for a system about to boot. It returns the
// keys it replaces (the running system's), so that a wait for the new
// system can tell the old one still answering from a wrong key.
func (s *Store) Pin(name string, port int, key gossh.PublicKey, log func(string)) (replaced []gossh.PublicKey, err error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	known, ok, err := s.lookup(name, port, key)
	if err != nil {
		return nil, err
	}
	for _, k := range known {
		if !bytes.Equal(k.Marshal(), key.Marshal()) {
			replaced = append(replaced, k)
		}
	}
	if ok && len(replaced) == 0 {
		return nil, nil
	}
	data, err := s.read()
	if err != nil {
		return nil, err
	}
	host := knownhosts.Normalize(hostPort(name, port))
	data, _ = removeLines(data, func(hosts []string) bool { return matchesAny(hosts, []string{host}) })
	data = appendLine(data, knownhosts.Line([]string{host}, key))
	if err := s.write(data); err != nil {
		return nil, err
	}
	logf(log, "%s: pinned the host key nixbook generated for the new system: %s", hostLabel(name, port), describe(key))
	return replaced, nil
}
