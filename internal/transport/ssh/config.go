package ssh

import (
	"context"
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
	"time"

	"github.com/kevinburke/ssh_config"

	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/transport"
)

// endpoint is one SSH server on the way to a host, fully resolved.
type endpoint struct {
	name string // known_hosts key: the inventory name, or the jump host as written
	host string // the host name to dial, and to find in the user's known_hosts
	// at, when set, is dialed instead of host: the host at another of its
	// addresses (transport.DialOptions.Address). Its keys are still looked
	// up as host's.
	at       string
	port     int
	user     string
	keyFiles []string // must load: given by the inventory
	optional []string // may be missing: from ssh config or the usual defaults

	// The user's own OpenSSH trust, read only.
	hostKeyAlias string
	knownHosts   []string // UserKnownHostsFile, then GlobalKnownHostsFile
	strict       bool     // StrictHostKeyChecking yes

	certFiles      []string      // CertificateFile
	identitiesOnly bool          // IdentitiesOnly yes
	defaultKeys    bool          // optional holds OpenSSH's default key files, not the config's
	proxyCommand   string        // run locally; its stdin and stdout are the connection
	timeout        time.Duration // ConnectTimeout; 0: the dialer's
}

// userTrust is what the user's OpenSSH known_hosts files say about e.
func (e endpoint) userTrust() *hostkeys.UserTrust {
	if len(e.knownHosts) == 0 {
		return nil
	}
	return &hostkeys.UserTrust{Files: e.knownHosts, Host: hostkeys.LookupName(e.host, e.hostKeyAlias, e.port), Strict: e.strict}
}

func (e endpoint) addr() string {
	host := e.host
	if e.at != "" {
		host = e.at
	}
	return net.JoinHostPort(host, strconv.Itoa(e.port))
}

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

// hostOptions is what nixbook uses of one host's ssh configuration, from
// `ssh -G` or, without OpenSSH's client, the ssh_config library. Paths and
// tokens are as written; endpoint expands them.
type hostOptions struct {
	hostName         string
	user             string        // "": the config names none
	port             int           // 0: the config names none
	identityFiles    []string      // nil: OpenSSH's defaults
	certificateFiles []string      // besides each identity's -cert.pub
	identitiesOnly   bool          // offer the agent's keys only for identity files
	proxyJump        string        // "": none
	proxyCommand     string        // "": none
	hostKeyAlias     string        // "": none
	userKnownHosts   []string      // nil: ~/.ssh/known_hosts, ~/.ssh/known_hosts2
	globalKnownHosts []string      // nil: /etc/ssh/ssh_known_hosts, ssh_known_hosts2
	strict           bool          // StrictHostKeyChecking yes
	connectTimeout   time.Duration // 0: nixbook's
}

// configSource answers for one alias; user and port, when set, are the
// inventory's: they win over the config and steer its Match blocks.
type configSource interface {
	options(ctx context.Context, alias, user string, port int) (hostOptions, error)
}

// libSource reads the config with the ssh_config library: Host blocks and
// Include, no Match.
type libSource struct{ cfg *ssh_config.Config }

func (l libSource) get(alias, key string) string {
	if l.cfg == nil {
		return ""
	}
	v, err := l.cfg.Get(alias, key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(v)
}

func (l libSource) options(_ context.Context, alias, _ string, _ int) (hostOptions, error) {
	o := hostOptions{
		hostName:       l.get(alias, "HostName"),
		user:           l.get(alias, "User"),
		identitiesOnly: isYes(l.get(alias, "IdentitiesOnly")),
		proxyJump:      l.get(alias, "ProxyJump"),
		proxyCommand:   l.get(alias, "ProxyCommand"),
		hostKeyAlias:   l.get(alias, "HostKeyAlias"),
		strict:         isYes(l.get(alias, "StrictHostKeyChecking")),
	}
	if o.hostName == "" {
		o.hostName = alias
	}
	o.hostName = expand(o.hostName, map[byte]string{'h': alias})
	if p := l.get(alias, "Port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return hostOptions{}, fmt.Errorf("ssh config: bad Port %q for %s", p, alias)
		}
		o.port = n
	}
	if l.cfg != nil {
		o.identityFiles, _ = l.cfg.GetAll(alias, "IdentityFile")
		o.certificateFiles, _ = l.cfg.GetAll(alias, "CertificateFile")
	}
	if v := strings.Fields(l.get(alias, "UserKnownHostsFile")); len(v) > 0 {
		o.userKnownHosts = v
	}
	if v := strings.Fields(l.get(alias, "GlobalKnownHostsFile")); len(v) > 0 {
		o.globalKnownHosts = v
	}
	if v := l.get(alias, "ConnectTimeout"); v != "" && !strings.EqualFold(v, "none") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return hostOptions{}, fmt.Errorf("ssh config: bad ConnectTimeout %q for %s", v, alias)
		}
		o.connectTimeout = time.Duration(n) * time.Second
	}
	if strings.EqualFold(o.proxyJump, "none") {
		o.proxyJump = ""
	}
	if strings.EqualFold(o.proxyCommand, "none") {
		o.proxyCommand = ""
	}
	return o, nil
}

// resolver turns targets into routes. Inventory values win over the ssh
// config, which wins over the defaults.
type resolver struct {
	src         configSource
	defaultUser string
	home        string
	localUser   string
}

func newResolver(src configSource, defaultUser string) resolver {
	home, _ := os.UserHomeDir()
	return resolver{src: src, defaultUser: defaultUser, home: home, localUser: localUserName()}
}

func localUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// resolve finds t's route as its ssh config says; at, when set, is dialed
// instead of the host name the config gives t (see endpoint.at).
func (r resolver) resolve(ctx context.Context, t transport.Target, at string) (route, error) {
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
	target, o, err := r.endpoint(ctx, name, alias, t.User, t.Port, at)
	if err != nil {
		return route{}, err
	}
	target.keyFiles = t.KeyFiles
	if len(t.KeyFiles) > 0 {
		target.optional = nil
	}
	rt := route{target: target}
	jump := o.proxyJump
	if jump == "" || target.proxyCommand != "" {
		return rt, nil
	}
	for _, spec := range strings.Split(jump, ",") {
		u, host, port, err := parseJump(strings.TrimSpace(spec))
		if err != nil {
			return route{}, fmt.Errorf("ProxyJump for %s: %w", alias, err)
		}
		hop, _, err := r.endpoint(ctx, host, host, u, port, "")
		if err != nil {
			return route{}, err
		}
		// The inventory's keys usually open the jump host too.
		hop.optional = append(hop.optional, t.KeyFiles...)
		rt.hops = append(rt.hops, hop)
	}
	return rt, nil
}

func (r resolver) endpoint(ctx context.Context, name, alias, user string, port int, at string) (endpoint, hostOptions, error) {
	o, err := r.src.options(ctx, alias, user, port)
	if err != nil {
		return endpoint{}, hostOptions{}, err
	}
	e := endpoint{name: name, host: o.hostName, at: at, port: port, user: user,
		hostKeyAlias: o.hostKeyAlias, strict: o.strict, identitiesOnly: o.identitiesOnly, timeout: o.connectTimeout}
	if e.host == "" {
		e.host = alias
	}
	if e.port == 0 {
		e.port = o.port
	}
	if e.port == 0 {
		e.port = 22
	}
	if e.user == "" {
		e.user = o.user
	}
	if e.user == "" {
		e.user = r.defaultUser
	}
	tokens := map[byte]string{'h': e.host, 'r': e.user, 'u': r.localUser, 'd': r.home, 'p': strconv.Itoa(e.port), 'n': alias}
	for _, f := range o.identityFiles {
		if !strings.EqualFold(f, "none") {
			e.optional = append(e.optional, r.expandPath(expand(f, tokens)))
		}
	}
	if o.identityFiles == nil && r.home != "" {
		e.defaultKeys = true
		for _, f := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			e.optional = append(e.optional, filepath.Join(r.home, ".ssh", f))
		}
	}
	for _, f := range o.certificateFiles {
		e.certFiles = append(e.certFiles, r.expandPath(expand(f, tokens)))
	}
	for _, kf := range []struct {
		keyword string
		files   []string
	}{{"UserKnownHostsFile", o.userKnownHosts}, {"GlobalKnownHostsFile", o.globalKnownHosts}} {
		files := kf.files
		if files == nil {
			files = defaultKnownHosts(kf.keyword, r.home)
		}
		for _, f := range files {
			if !strings.EqualFold(f, "none") {
				e.knownHosts = append(e.knownHosts, r.expandPath(expand(f, tokens)))
			}
		}
	}
	if o.proxyCommand != "" {
		if at != "" {
			// The command connects: it goes where this dial goes.
			tokens['h'] = at
		}
		e.proxyCommand = expand(o.proxyCommand, tokens)
	}
	return e, o, nil
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
