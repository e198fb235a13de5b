// Package hostkeys keeps nixbook's own known_hosts file: host keys are
// trusted on first use, recorded under the inventory name (not the IP), and a
// changed key is refused unless the host is known to run a new system.
package hostkeys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gofrs/flock"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/nixbook/nixbook/internal/shellquote"
)

// DefaultPath is $XDG_STATE_HOME/nixbook/known_hosts, else
// ~/.local/state/nixbook/known_hosts.
func DefaultPath() string {
	if dir := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "nixbook", "known_hosts")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(".nixbook", "known_hosts")
	}
	return filepath.Join(home, ".local", "state", "nixbook", "known_hosts")
}

// Store is a known_hosts file in OpenSSH format shared by every goroutine
// and every nixbook process that uses the same path.
type Store struct {
	path string
	// mu serialises changes inside this process; the file lock does the same
	// across processes.
	mu sync.Mutex
}

// New returns a store over the file at path. The file and its directory are
// created on the first change.
func New(path string) *Store { return &Store{path: path} }

// Path is the known_hosts file the store reads and writes.
func (s *Store) Path() string { return s.path }

// CheckOptions say how one connection treats its host key.
type CheckOptions struct {
	// NewSystem lets a changed key replace the recorded one: the host has
	// just been reinstalled or booted into a rescue system.
	NewSystem bool
	// Log receives a line when a key is recorded or replaced.
	Log func(string)
	// User is the user's own OpenSSH known_hosts files, consulted while
	// the store has no key for the host; nil consults none.
	User *UserTrust
}

// ChangedError is a host that presented a key other than the recorded one.
// It is never worth retrying: a person has to decide.
type ChangedError struct {
	Name    string // inventory name
	Port    int
	Path    string            // the known_hosts file
	Known   []gossh.PublicKey // keys recorded for the host
	Offered gossh.PublicKey   // key the host presented
	// Where is set when the key that differs is the user's own: the file
	// and line of ~/.ssh/known_hosts (or UserKnownHostsFile) that holds it,
	// under the name UserHost.
	Where    string
	UserHost string
}

func (e *ChangedError) Error() string {
	if e.Where != "" {
		return fmt.Sprintf("REMOTE HOST IDENTIFICATION HAS CHANGED for %s: %s holds %s, the host offered %s; "+
			"if %s was reinstalled, remove the old key with: ssh-keygen -R %s -f %s",
			hostLabel(e.Name, e.Port), e.Where, describe(e.Known[0]), describe(e.Offered),
			e.Name, shellquote.Quote(e.UserHost), shellquote.Quote(e.Path))
	}
	known := make([]string, len(e.Known))
	for i, k := range e.Known {
		known[i] = describe(k)
	}
	return fmt.Sprintf("host key of %s changed: recorded %s, offered %s (in %s); "+
		"if %s was reinstalled, forget the old key with: nixbook known-hosts forget %s",
		hostLabel(e.Name, e.Port), strings.Join(known, ", "), describe(e.Offered), e.Path,
		e.Name, shellquote.Quote(e.Name))
}

// Entry is one line of the known_hosts file.
type Entry struct {
	Host        string // host field as written, e.g. "h1" or "[h1]:2222"
	Marker      string // "@cert-authority", "@revoked" or empty
	Type        string // key type, e.g. "ssh-ed25519"
	Fingerprint string // SHA256:...
}

// Callback checks host keys for the inventory host name on port, whatever
// address was dialled.
func (s *Store) Callback(name string, port int, opts CheckOptions) gossh.HostKeyCallback {
	return func(_ string, _ net.Addr, key gossh.PublicKey) error {
		return s.Check(name, port, key, opts)
	}
}

// Check accepts key for name:port if it is recorded, records it if the host
// is unknown, and otherwise returns a *ChangedError, unless opts.NewSystem
// asks to replace the recorded keys.
//
// While the store has no key for the host, opts.User, the user's own
// known_hosts files, decide as OpenSSH would: a key they hold is accepted
// (and recorded), another key is refused as a *ChangedError, and under
// StrictHostKeyChecking yes a host they do not know is refused. A dial of a
// new system skips them: its key is new by design. @revoked lines refuse a
// key always, and a host certificate is accepted only from an authority
// they name for the host.
func (s *Store) Check(name string, port int, key gossh.PublicKey, opts CheckOptions) error {
	var user userKeys
	if opts.User != nil {
		var err error
		if user, err = opts.User.load(); err != nil {
			return err
		}
		if err := user.revokedIn(opts.User.Host, key); err != nil {
			return err
		}
		if cert, ok := key.(*gossh.Certificate); ok {
			return user.checkCert(opts.User, cert)
		}
	}
	if _, ok := key.(*gossh.Certificate); ok {
		return fmt.Errorf("%s offered a host certificate and no @cert-authority names it", hostLabel(name, port))
	}
	known, ok, err := s.lookup(name, port, key)
	if err != nil || ok {
		return err
	}
	vouched := ""
	if len(known) == 0 && opts.User != nil && !opts.NewSystem {
		if vouched, err = checkUser(name, port, key, opts.User, user); err != nil {
			return err
		}
	}
	if len(known) > 0 && !opts.NewSystem {
		return &ChangedError{Name: name, Port: port, Path: s.path, Known: known, Offered: key}
	}

	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	// Another goroutine or process may have written the key meanwhile.
	known, ok, err = s.lookup(name, port, key)
	if err != nil || ok {
		return err
	}
	data, err := s.read()
	if err != nil {
		return err
	}
	host := knownhosts.Normalize(hostPort(name, port))
	if len(known) == 0 {
		data = appendLine(data, knownhosts.Line([]string{host}, key))
		if err := s.write(data); err != nil {
			return err
		}
		if vouched != "" {
			logf(opts.Log, "%s: recorded host key %s, the one %s holds", hostLabel(name, port), describe(key), vouched)
		} else {
			logf(opts.Log, "%s: recorded new host key %s", hostLabel(name, port), describe(key))
		}
		return nil
	}
	if !opts.NewSystem {
		return &ChangedError{Name: name, Port: port, Path: s.path, Known: known, Offered: key}
	}
	data, _ = removeLines(data, func(hosts []string) bool { return matchesAny(hosts, []string{host}) })
	data = appendLine(data, knownhosts.Line([]string{host}, key))
	if err := s.write(data); err != nil {
		return err
	}
	old := make([]string, len(known))
	for i, k := range known {
		old[i] = describe(k)
	}
	logf(opts.Log, "%s: new system, host key replaced: old %s, new %s",
		hostLabel(name, port), strings.Join(old, ", "), describe(key))
	return nil
}

// checkUser judges a key for a host the store does not know by the user's
// own files; it returns the file and line that holds the key, if one does.
func checkUser(name string, port int, key gossh.PublicKey, u *UserTrust, uk userKeys) (string, error) {
	for _, l := range uk.keys {
		if bytes.Equal(l.key.Marshal(), key.Marshal()) {
			return l.where, nil
		}
	}
	if len(uk.keys) > 0 {
		known := make([]gossh.PublicKey, len(uk.keys))
		for i, l := range uk.keys {
			known[i] = l.key
		}
		w := uk.keys[0]
		return "", &ChangedError{Name: name, Port: port, Path: w.file, Known: known, Offered: key, Where: w.where, UserHost: u.Host}
	}
	if u.Strict {
		return "", &StrictError{Host: u.Host, Files: u.Files, Offered: key}
	}
	return "", nil
}

// Algorithms lists the host key algorithms to offer name:port: only the key
// types recorded for it, ed25519 first, so the server cannot pick a type the
// file has no line for. It is nil when the host is unknown.
func (s *Store) Algorithms(name string, port int) []string {
	known, _, err := s.lookup(name, port, probeKey{})
	if err != nil || len(known) == 0 {
		return nil
	}
	var algos []string
	for _, pref := range DefaultAlgorithms() {
		for _, k := range known {
			if slices.Contains(algorithmsFor(k.Type()), pref) && !slices.Contains(algos, pref) {
				algos = append(algos, pref)
			}
		}
	}
	// Types nixbook has no preference for (security keys, say) go last.
	for _, k := range known {
		for _, a := range algorithmsFor(k.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// DefaultAlgorithms is the host key preference for a host seen for the first
// time: ed25519 first, as OpenSSH does, rather than x/crypto's ECDSA first.
func DefaultAlgorithms() []string {
	return []string{
		gossh.KeyAlgoED25519,
		gossh.KeyAlgoECDSA256, gossh.KeyAlgoECDSA384, gossh.KeyAlgoECDSA521,
		gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256,
		gossh.KeyAlgoRSA,
	}
}

func algorithmsFor(keyType string) []string {
	if keyType == gossh.KeyAlgoRSA {
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// List returns every key line of the file, in order.
func (s *Store) List() ([]Entry, error) {
	data, err := s.read()
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for i, line := range splitLines(data) {
		marker, hosts, key, _, _, err := gossh.ParseKnownHosts(line)
		if errors.Is(err, io.EOF) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", s.path, i+1, err)
		}
		entries = append(entries, Entry{
			Host:        strings.Join(hosts, ","),
			Marker:      marker,
			Type:        key.Type(),
			Fingerprint: gossh.FingerprintSHA256(key),
		})
	}
	return entries, nil
}

// Forget removes every line recorded for name, on any port, hashed lines
// included. A name written as host:port forgets that port only.
func (s *Store) Forget(name string) (removed int, err error) {
	unlock, err := s.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	data, err := s.read()
	if err != nil {
		return 0, err
	}
	match := forgetMatcher(name, data)
	data, removed = removeLines(data, match)
	if removed == 0 {
		return 0, nil
	}
	return removed, s.write(data)
}

func forgetMatcher(name string, data []byte) func(hosts []string) bool {
	if h, p, err := net.SplitHostPort(name); err == nil && h != "" {
		exact := knownhosts.Normalize(net.JoinHostPort(h, p))
		return func(hosts []string) bool { return matchesAny(hosts, []string{exact}) }
	}
	// Hashed lines hide their port, so try every port the file mentions.
	candidates := []string{name}
	ports := map[string]bool{}
	for _, line := range splitLines(data) {
		_, hosts, _, _, _, err := gossh.ParseKnownHosts(line)
		if err != nil {
			continue
		}
		for _, h := range hosts {
			if _, p, err := net.SplitHostPort(h); err == nil && !ports[p] {
				ports[p] = true
				candidates = append(candidates, knownhosts.Normalize(net.JoinHostPort(name, p)))
			}
		}
	}
	return func(hosts []string) bool {
		for _, h := range hosts {
			if h == name || strings.HasPrefix(h, "["+name+"]:") {
				return true
			}
		}
		return matchesAny(hosts, candidates)
	}
}

// lookup reports the keys recorded for name:port and whether key is one of
// them (or is vouched for by a certificate authority line).
func (s *Store) lookup(name string, port int, key gossh.PublicKey) (known []gossh.PublicKey, ok bool, err error) {
	if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	cb, err := knownhosts.New(s.path)
	if err != nil {
		return nil, false, fmt.Errorf("reading known hosts: %w", err)
	}
	err = cb(hostPort(name, port), &net.TCPAddr{IP: net.IPv4zero}, key)
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil, true, nil
	case errors.As(err, &keyErr):
		for _, w := range keyErr.Want {
			known = append(known, w.Key)
		}
		return known, false, nil
	case errors.As(err, &revoked):
		return nil, false, fmt.Errorf("host key of %s is revoked in %s:%d", hostLabel(name, port), revoked.Revoked.Filename, revoked.Revoked.Line)
	default:
		return nil, false, fmt.Errorf("checking host key of %s: %w", hostLabel(name, port), err)
	}
}

func (s *Store) read() ([]byte, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading known hosts: %w", err)
	}
	return data, nil
}

// lock takes the in-process mutex and the file lock beside the file.
func (s *Store) lock() (unlock func(), err error) {
	s.mu.Lock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("creating known hosts directory: %w", err)
	}
	fl := flock.New(s.path+".lock", flock.SetPermissions(0o600))
	if err := fl.Lock(); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("locking known hosts: %w", err)
	}
	return func() {
		_ = fl.Unlock()
		s.mu.Unlock()
	}, nil
}

// write replaces the file atomically: readers see the old or the new file,
// never a half-written one.
func (s *Store) write(data []byte) error {
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, ".known_hosts.tmp-*")
	if err != nil {
		return fmt.Errorf("writing known hosts: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		return fmt.Errorf("writing known hosts: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable
		d.Close()
	}
	return nil
}

// removeLines drops plain key lines (not @cert-authority or @revoked) whose
// host field match accepts.
func removeLines(data []byte, match func(hosts []string) bool) ([]byte, int) {
	var out bytes.Buffer
	removed := 0
	for _, line := range splitLines(data) {
		marker, hosts, _, _, _, err := gossh.ParseKnownHosts(line)
		if err == nil && marker == "" && match(hosts) {
			removed++
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes(), removed
}

// matchesAny reports whether a host field names one of the normalised
// addresses, literally or as an OpenSSH hashed host.
func matchesAny(hosts, addrs []string) bool {
	for _, h := range hosts {
		if strings.HasPrefix(h, "|1|") {
			salt, hash, ok := decodeHashed(h)
			if !ok {
				continue
			}
			for _, a := range addrs {
				mac := hmac.New(sha1.New, salt)
				mac.Write([]byte(a))
				if hmac.Equal(mac.Sum(nil), hash) {
					return true
				}
			}
			continue
		}
		if slices.Contains(addrs, knownhosts.Normalize(h)) {
			return true
		}
	}
	return false
}

func decodeHashed(h string) (salt, hash []byte, ok bool) {
	parts := strings.Split(h, "|")
	if len(parts) != 4 || parts[1] != "1" {
		return nil, nil, false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	hash, err2 := base64.StdEncoding.DecodeString(parts[3])
	return salt, hash, err1 == nil && err2 == nil
}

func splitLines(data []byte) [][]byte {
	lines := bytes.Split(data, []byte("\n"))
	if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
		lines = lines[:n-1]
	}
	return lines
}

func appendLine(data []byte, line string) []byte {
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	return append(append(data, line...), '\n')
}

func hostPort(name string, port int) string {
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(name, strconv.Itoa(port))
}

func hostLabel(name string, port int) string {
	if port == 0 || port == 22 {
		return name
	}
	return fmt.Sprintf("%s (port %d)", name, port)
}

func describe(k gossh.PublicKey) string {
	if k == nil {
		return "no key"
	}
	return k.Type() + " " + gossh.FingerprintSHA256(k)
}

func logf(log func(string), format string, args ...any) {
	if log != nil {
		log(fmt.Sprintf(format, args...))
	}
}

// probeKey matches no line, so checking it lists the keys recorded for a
// host without accepting anything.
type probeKey struct{}

func (probeKey) Type() string    { return "nixbook-probe" }
func (probeKey) Marshal() []byte { return []byte("nixbook-probe") }
func (probeKey) Verify([]byte, *gossh.Signature) error {
	return errors.New("probe key verifies nothing")
}
