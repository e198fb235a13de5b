package ssh

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"

	"github.com/nixbook/nixbook/hostkeys"
	"github.com/nixbook/nixbook/transport"
)

// endpoint is one SSH server on the way to a host, fully resolved.
type endpoint struct {
	name     string // known_hosts key: the inventory name, or the jump host as written
	host     string // what to dial
	port     int
	user     string
	keyFiles []string // must load: given by the inventory
	optional []string // may be missing: from ssh config or the usual defaults

	// The user's own OpenSSH trust, read only.
	hostKeyAlias string
	knownHosts   []string // UserKnownHostsFile, then GlobalKnownHostsFile
	strict       bool     // StrictHostKeyChecking yes
}

// userTrust is what the user's OpenSSH known_hosts files say about e.
func (e endpoint) userTrust() *hostkeys.UserTrust {
	if len(e.knownHosts) == 0 {
		return nil
	}
	return &hostkeys.UserTrust{Files: e.knownHosts, Host: hostkeys.LookupName(e.host, e.hostKeyAlias, e.port), Strict: e.strict}
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// route is the jump hosts, in order, then the target.
type route struct {
	hops   []endpoint
	target endpoint
}

// loadSSHConfig parses the ssh config file; a missing file is no config.
func loadSSHConfig(path string) (*ssh_config.Config, error) {
	if path == "none" {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("parsing ssh config %s: %w", path, err)
	}
	return cfg, nil
}

// resolver turns targets into routes. Inventory values win over the ssh
// config, which wins over the defaults.
type resolver struct {
	cfg         *ssh_config.Config
	defaultUser string
	home        string
	localUser   string
}

func newResolver(cfg *ssh_config.Config, defaultUser string) resolver {
	home, _ := os.UserHomeDir()
	local := "root"
	if u, err := user.Current(); err == nil {
		local = u.Username
	}
	return resolver{cfg: cfg, defaultUser: defaultUser, home: home, localUser: local}
}

func (r resolver) get(alias, key string) string {
	if r.cfg == nil {
		return ""
	}
	v, err := r.cfg.Get(alias, key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(v)
}

func (r resolver) getAll(alias, key string) []string {
	if r.cfg == nil {
		return nil
	}
	v, _ := r.cfg.GetAll(alias, key)
	return v
}

func (r resolver) resolve(t transport.Target) (route, error) {
	alias := t.Address
	if alias == "" {
		alias = t.Name
	}
	if alias == "" {
		return route{}, errors.New("target has neither a name nor an address")
	}
	name := t.Name
	if name == "" {
		name = alias
	}
	target, err := r.endpoint(name, alias, t.User, t.Port)
	if err != nil {
		return route{}, err
	}
	target.keyFiles = t.KeyFiles
	if len(t.KeyFiles) > 0 {
		target.optional = nil
	}
	rt := route{target: target}
	jump := r.get(alias, "ProxyJump")
	if jump == "" || strings.EqualFold(jump, "none") {
		return rt, nil
	}
	for _, spec := range strings.Split(jump, ",") {
		u, host, port, err := parseJump(strings.TrimSpace(spec))
		if err != nil {
			return route{}, fmt.Errorf("ProxyJump for %s: %w", alias, err)
		}
		hop, err := r.endpoint(host, host, u, port)
		if err != nil {
			return route{}, err
		}
		// The inventory's keys usually open the jump host too.
		hop.optional = append(hop.optional, t.KeyFiles...)
		rt.hops = append(rt.hops, hop)
	}
	return rt, nil
}

func (r resolver) endpoint(name, alias, user string, port int) (endpoint, error) {
	e := endpoint{name: name, host: alias, port: port, user: user}
	if hn := r.get(alias, "HostName"); hn != "" {
		e.host = expand(hn, map[byte]string{'h': alias})
	}
	if e.port == 0 {
		if p := r.get(alias, "Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return endpoint{}, fmt.Errorf("ssh config: bad Port %q for %s", p, alias)
			}
			e.port = n
		}
	}
	if e.port == 0 {
		e.port = 22
	}
	if e.user == "" {
		e.user = r.get(alias, "User")
	}
	if e.user == "" {
		e.user = r.defaultUser
	}
	tokens := map[byte]string{'h': e.host, 'r': e.user, 'u': r.localUser, 'd': r.home, 'p': strconv.Itoa(e.port)}
	e.hostKeyAlias = r.get(alias, "HostKeyAlias")
	for _, kw := range []string{"UserKnownHostsFile", "GlobalKnownHostsFile"} {
		files := strings.Fields(r.get(alias, kw))
		if len(files) == 0 {
			files = defaultKnownHosts(kw, r.home)
		}
		for _, f := range files {
			if !strings.EqualFold(f, "none") {
				e.knownHosts = append(e.knownHosts, r.expandPath(expand(f, tokens)))
			}
		}
	}
	e.strict = isYes(r.get(alias, "StrictHostKeyChecking"))
	for _, f := range r.getAll(alias, "IdentityFile") {
		e.optional = append(e.optional, r.expandPath(expand(f, tokens)))
	}
	if len(e.optional) == 0 && r.home != "" {
		for _, f := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			e.optional = append(e.optional, filepath.Join(r.home, ".ssh", f))
		}
	}
	return e, nil
}

// defaultKnownHosts are OpenSSH's known_hosts files when the config names
// none.
func defaultKnownHosts(keyword, home string) []string {
	if keyword == "GlobalKnownHostsFile" {
		return []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	if home == "" {
		return nil
	}
	return []string{filepath.Join(home, ".ssh", "known_hosts"), filepath.Join(home, ".ssh", "known_hosts2")}
}

// isYes reads an ssh_config flag as OpenSSH does: yes and true are set.
func isYes(v string) bool {
	return strings.EqualFold(v, "yes") || strings.EqualFold(v, "true")
}

func (r resolver) expandPath(p string) string {
	if p == "~" {
		return r.home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(r.home, p[2:])
	}
	return p
}

// expand replaces ssh_config %-tokens.
func expand(s string, tokens map[byte]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
		} else if v, ok := tokens[s[i]]; ok {
			b.WriteString(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// parseJump reads one ProxyJump hop: [user@]host[:port] or
// ssh://[user@]host[:port].
func parseJump(spec string) (user, host string, port int, err error) {
	if spec == "" {
		return "", "", 0, errors.New("empty hop")
	}
	if strings.HasPrefix(spec, "ssh://") {
		u, err := url.Parse(spec)
		if err != nil {
			return "", "", 0, err
		}
		if u.Port() != "" {
			if port, err = strconv.Atoi(u.Port()); err != nil {
				return "", "", 0, fmt.Errorf("bad port in %q", spec)
			}
		}
		return u.User.Username(), u.Hostname(), port, nil
	}
	if i := strings.LastIndexByte(spec, '@'); i >= 0 {
		user, spec = spec[:i], spec[i+1:]
	}
	host = spec
	if h, p, err := net.SplitHostPort(spec); err == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil {
			return "", "", 0, fmt.Errorf("bad port in %q", spec)
		}
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("no host in %q", spec)
	}
	return user, host, port, nil
}
