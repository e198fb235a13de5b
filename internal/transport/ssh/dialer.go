// Package ssh is the SSH transport: one multiplexed connection per host,
// host keys checked against nixbook's own known_hosts store and the user's
// OpenSSH known_hosts, each host resolved as `ssh -G` resolves it (the
// ssh_config library when OpenSSH's client is missing), ProxyJump and
// ProxyCommand, user certificates, dial and handshake bounded by the
// context, keepalives that notice a dead host.
package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/transport"
)

// ErrAuth marks a server that refused every key offered. It comes wrapped
// together with transport.ErrUnreachable.
var ErrAuth = errors.New("authentication failed")

// DialerOptions configure a Dialer. The zero value works: default store,
// ~/.ssh/config, 15 s connect timeout, 15 s keepalives, user root.
type DialerOptions struct {
	// Store checks and records host keys; nil means hostkeys.DefaultPath().
	Store *hostkeys.Store
	// SSHConfigPath is the ssh config to read; "" means ~/.ssh/config (and
	// /etc/ssh/ssh_config, as ssh reads it) and "none" reads none.
	SSHConfigPath string
	// SSHBinary is OpenSSH's client, asked with `ssh -G` how to reach each
	// host; "" looks for ssh in $PATH, "none" uses the ssh_config library
	// (Host blocks and Include, no Match) as it does when ssh is missing.
	SSHBinary string
	// ConnectTimeout bounds the TCP connect and, separately, the SSH
	// handshake of each hop; 0 means 15 s.
	ConnectTimeout time.Duration
	// KeepAlive is the interval between keepalive requests; 0 means 15 s,
	// negative turns them off.
	KeepAlive time.Duration
	// KeepAliveMax unanswered keepalives close the connection; 0 means 3.
	KeepAliveMax int
	// DefaultUser is the login when neither the inventory nor the ssh config
	// name one; "" means root.
	DefaultUser string
	// UseAgent offers the keys of the agent at $SSH_AUTH_SOCK.
	UseAgent bool
	// Passphrase asks for the passphrase of a key file, once per file; nil
	// (no terminal) makes a protected key the agent does not hold an error
	// that says so.
	Passphrase func(keyFile string) ([]byte, error)
}

// Dialer opens SSH connections. It is safe for concurrent use.
type Dialer struct {
	opts  DialerOptions
	store *hostkeys.Store

	explicitConfig bool // SSHConfigPath was given

	configOnce sync.Once
	source     configSource
	configErr  error

	agentOnce sync.Once
	agentConn net.Conn
	agent     agent.ExtendedAgent

	signersMu  sync.Mutex
	signers    map[string]gossh.Signer
	signerErrs map[string]error
}

var _ transport.Dialer = (*Dialer)(nil)

// NewDialer returns a dialer; Close releases the agent connection.
func NewDialer(opts DialerOptions) *Dialer {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 15 * time.Second
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.KeepAliveMax <= 0 {
		opts.KeepAliveMax = 3
	}
	if opts.DefaultUser == "" {
		opts.DefaultUser = "root"
	}
	explicit := opts.SSHConfigPath != ""
	if opts.SSHConfigPath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			opts.SSHConfigPath = filepath.Join(home, ".ssh", "config")
		} else {
			opts.SSHConfigPath = "none"
		}
	}
	store := opts.Store
	if store == nil {
		store = hostkeys.New(hostkeys.DefaultPath())
	}
	return &Dialer{opts: opts, store: store, explicitConfig: explicit, signers: map[string]gossh.Signer{}, signerErrs: map[string]error{}}
}

// Close closes the agent connection. Open Conns stay usable.
func (d *Dialer) Close() error {
	d.agentOnce.Do(func() {}) // waits for a dial that is opening it, and keeps later ones from doing so
	if d.agentConn != nil {
		return d.agentConn.Close()
	}
	return nil
}

// Dial connects to t, through its ProxyJump hosts if any, and returns a
// *Conn. Unreachable hosts, refused keys and lost handshakes wrap
// transport.ErrUnreachable; a changed host key is a *hostkeys.ChangedError
// and is not.
func (d *Dialer) Dial(ctx context.Context, t transport.Target, opts transport.DialOptions) (transport.Conn, error) {
	return d.DialSSH(ctx, t, opts)
}

// DialHost is the host name or address Dial connects to for t, after
// ~/.ssh/config's HostName. Through ProxyJump hosts it is the last hop's
// destination.
func (d *Dialer) DialHost(t transport.Target) (string, error) {
	rt, err := d.route(context.Background(), t, "")
	if err != nil {
		return "", err
	}
	return rt.target.host, nil
}

// route resolves t as `ssh -G` does, or through the ssh config read once
// per Dialer when OpenSSH's client is missing; at, when set, is dialed
// instead of the host name found for t.
func (d *Dialer) route(ctx context.Context, t transport.Target, at string) (route, error) {
	d.configOnce.Do(func() {
		cfg, err := loadSSHConfig(d.opts.SSHConfigPath)
		home, _ := os.UserHomeDir()
		g := newSSHGSource(d.opts.SSHBinary, d.opts.SSHConfigPath, d.explicitConfig, home, libSource{cfg: cfg})
		switch {
		case g != nil:
			// ssh judges the config; the library, which knows no Match,
			// may fail on what ssh reads.
			d.source = g
		case err != nil:
			d.configErr = err
		default:
			d.source = libSource{cfg: cfg}
		}
	})
	if d.configErr != nil {
		return route{}, d.configErr
	}
	return newResolver(d.source, d.opts.DefaultUser).resolve(ctx, t, at)
}

// DialSSH is Dial returning the concrete type.
func (d *Dialer) DialSSH(ctx context.Context, t transport.Target, opts transport.DialOptions) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The config is looked up for t itself, also when opts.Address dials
	// the host elsewhere: its Host block still applies.
	rt, err := d.route(ctx, t, opts.Address)
	if err != nil {
		return nil, err
	}
	var hops []*gossh.Client
	closeHops := func() {
		for i := len(hops) - 1; i >= 0; i-- {
			hops[i].Close()
		}
	}
	var via *gossh.Client
	for _, hop := range rt.hops {
		c, err := d.connect(ctx, via, hop, hostkeys.CheckOptions{Log: opts.Log, User: hop.userTrust()})
		if err != nil {
			closeHops()
			return nil, fmt.Errorf("jump host %s: %w", hop.name, err)
		}
		hops = append(hops, c)
		via = c
	}
	client, err := d.connect(ctx, via, rt.target, hostkeys.CheckOptions{NewSystem: opts.NewSystem, Log: opts.Log, User: rt.target.userTrust()})
	if err != nil {
		closeHops()
		return nil, err
	}
	return newConn(rt.target.name, client, hops, d.opts), nil
}

// connect dials e directly or through via and does the SSH handshake.
func (d *Dialer) connect(ctx context.Context, via *gossh.Client, e endpoint, check hostkeys.CheckOptions) (*gossh.Client, error) {
	auth, err := d.authFor(e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.name, err)
	}
	algos := d.store.Algorithms(e.name, e.port)
	if algos == nil && !check.NewSystem {
		algos = userAlgorithms(check.User)
	}
	client, err := d.handshake(ctx, via, e, auth, algos, check)
	if err != nil && algos != nil && strings.Contains(err.Error(), "no common algorithm for host key") {
		// The host no longer has a key of any recorded type: look at what
		// it offers now, so the store can report (or replace) the change.
		client, err = d.handshake(ctx, via, e, auth, nil, check)
	}
	return client, err
}

func (d *Dialer) handshake(ctx context.Context, via *gossh.Client, e endpoint, auth []gossh.AuthMethod, algos []string, check hostkeys.CheckOptions) (*gossh.Client, error) {
	addr := e.addr()
	timeout := d.opts.ConnectTimeout
	if e.timeout > 0 {
		timeout = e.timeout
	}
	var nc net.Conn
	var err error
	if e.proxyCommand != "" && via == nil {
		nc, err = dialCommand(ctx, e.proxyCommand)
	} else if via == nil {
		nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		nc, err = nd.DialContext(ctx, "tcp", addr)
	} else {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		nc, err = via.DialContext(dctx, "tcp", addr)
		cancel()
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("connecting to %s (%s): %w", e.name, addr, ctxErr)
		}
		return nil, fmt.Errorf("connecting to %s (%s): %w: %w", e.name, addr, transport.ErrUnreachable, err)
	}

	if algos == nil {
		algos = hostkeys.DefaultAlgorithms()
	}
	// The callback runs on x/crypto's handshake goroutine, which may still be
	// busy when a timeout ends the handshake.
	var hostKeyErr atomic.Pointer[error]
	cb := d.store.Callback(e.name, e.port, check)
	cfg := &gossh.ClientConfig{
		User: e.user,
		Auth: auth,
		HostKeyCallback: func(h string, remote net.Addr, key gossh.PublicKey) error {
			err := cb(h, remote, key)
			hostKeyErr.Store(&err)
			return err
		},
		HostKeyAlgorithms: algos,
		ClientVersion:     "SSH-2.0-nixbook",
	}

	// x/crypto's handshake takes no context and no deadline: closing the
	// connection is what ends it early.
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		nc.Close()
	})
	stopCtx := context.AfterFunc(ctx, func() { nc.Close() })
	c, chans, reqs, err := gossh.NewClientConn(nc, addr, cfg)
	timerStopped, ctxStopped := timer.Stop(), stopCtx()
	if err == nil && (!timerStopped || !ctxStopped) {
		c.Close() // the deadline or the context won the race
		err = errors.New("connection closed")
	}
	if err == nil {
		return gossh.NewClient(c, chans, reqs), nil
	}
	nc.Close()

	var keyErr error
	if p := hostKeyErr.Load(); p != nil {
		keyErr = *p
	}
	var changed *hostkeys.ChangedError
	switch {
	case errors.As(keyErr, &changed):
		return nil, changed
	case keyErr != nil:
		return nil, fmt.Errorf("%s: %w", e.name, keyErr)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("ssh handshake with %s (%s): %w", e.name, addr, ctx.Err())
	case timedOut.Load():
		return nil, fmt.Errorf("ssh handshake with %s (%s): no answer within %s: %w", e.name, addr, timeout, transport.ErrUnreachable)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return nil, fmt.Errorf("ssh login to %s as %s: %w: %w: %w", e.name, e.user, ErrAuth, transport.ErrUnreachable, err)
	default:
		return nil, fmt.Errorf("ssh handshake with %s (%s): %w: %w", e.name, addr, transport.ErrUnreachable, err)
	}
}

// userAlgorithms is the host key preference for a host nixbook's store does
// not know, as OpenSSH orders it: certificates first when the user's files
// name an authority for the host, then the types of the keys they hold, so
// that the server shows a key the files can judge. It is nil when the files
// say nothing of the host.
func userAlgorithms(u *hostkeys.UserTrust) []string {
	var algos []string
	if u.Authorities() {
		algos = append(algos,
			gossh.CertAlgoED25519v01,
			gossh.CertAlgoECDSA256v01, gossh.CertAlgoECDSA384v01, gossh.CertAlgoECDSA521v01,
			gossh.CertAlgoRSASHA512v01, gossh.CertAlgoRSASHA256v01)
	}
	types := u.KeyTypes()
	if len(algos) == 0 && len(types) == 0 {
		return nil
	}
	defaults := hostkeys.DefaultAlgorithms()
	for _, a := range defaults {
		for _, t := range types {
			if a == t || t == gossh.KeyAlgoRSA && strings.HasPrefix(a, "rsa-sha2-") {
				algos = append(algos, a)
			}
		}
	}
	for _, a := range defaults {
		if !slices.Contains(algos, a) {
			algos = append(algos, a)
		}
	}
	return algos
}

// authFor offers, in one publickey method, the endpoint's key files (each
// with its certificate, if any) and then the agent's keys: x/crypto tries a
// method name only once, so keys split over several methods would never all
// be offered. Under IdentitiesOnly the agent offers only the identity
// files' keys, as OpenSSH does.
func (d *Dialer) authFor(e endpoint) ([]gossh.AuthMethod, error) {
	ag := d.agentClient()
	var agentKeys []gossh.PublicKey
	if ag != nil {
		if keys, err := ag.List(); err == nil {
			for _, k := range keys {
				agentKeys = append(agentKeys, k)
			}
		}
	}
	var signers []gossh.Signer
	var identities []gossh.PublicKey // the files' public keys, for IdentitiesOnly and certificates
	add := func(f string, required, ask bool) error {
		s, pub, err := d.signer(f, agentKeys, ask)
		if pub != nil {
			identities = append(identities, pub)
		}
		switch {
		case errors.Is(err, errInAgent):
			return nil
		case err != nil && required:
			return fmt.Errorf("loading ssh key: %w", err)
		case err != nil:
			return nil
		}
		if c := readCert(f + "-cert.pub"); c != nil && bytes.Equal(c.Key.Marshal(), s.PublicKey().Marshal()) {
			if cs, err := gossh.NewCertSigner(c, s); err == nil {
				signers = append(signers, cs)
			}
		}
		signers = append(signers, s)
		return nil
	}
	for _, f := range e.keyFiles {
		if err := add(f, true, true); err != nil {
			return nil, err
		}
	}
	for _, f := range e.optional {
		if err := add(f, false, !e.defaultKeys); err != nil {
			return nil, err
		}
	}
	var certs []*gossh.Certificate
	for _, f := range e.certFiles {
		c := readCert(f)
		if c == nil {
			continue
		}
		certs = append(certs, c)
		identities = append(identities, c.Key)
		for _, s := range signers {
			if bytes.Equal(c.Key.Marshal(), s.PublicKey().Marshal()) {
				if cs, err := gossh.NewCertSigner(c, s); err == nil {
					signers = append([]gossh.Signer{cs}, signers...)
				}
			}
		}
	}
	if len(signers) == 0 && ag == nil {
		return nil, errors.New("no ssh key to offer: set ssh_key in the inventory, IdentityFile in ~/.ssh/config, or use an ssh agent")
	}
	return []gossh.AuthMethod{gossh.PublicKeysCallback(func() ([]gossh.Signer, error) {
		all := signers
		if ag == nil {
			return all, nil
		}
		more, err := ag.Signers()
		if err != nil {
			return all, nil
		}
		all = append([]gossh.Signer(nil), signers...)
		for _, s := range more {
			if e.identitiesOnly && !containsKey(identities, s.PublicKey()) {
				continue
			}
			for _, c := range certs {
				if bytes.Equal(c.Key.Marshal(), s.PublicKey().Marshal()) {
					if cs, err := gossh.NewCertSigner(c, s); err == nil {
						all = append(all, cs)
					}
				}
			}
			all = append(all, s)
		}
		return all, nil
	})}, nil
}

// errInAgent is a passphrase-protected key the agent holds: the agent
// signs for it.
var errInAgent = errors.New("key held by the agent")

// signer loads a private key once per Dialer. A key protected by a
// passphrase is left to the agent when the agent holds it, else the
// passphrase is asked for (when ask and DialerOptions.Passphrase allow),
// else it is an error that says what to do. pub is the key's public half
// when known, even when the key could not be loaded.
func (d *Dialer) signer(path string, agentKeys []gossh.PublicKey, ask bool) (s gossh.Signer, pub gossh.PublicKey, err error) {
	d.signersMu.Lock()
	defer d.signersMu.Unlock()
	if s, ok := d.signers[path]; ok {
		return s, s.PublicKey(), nil
	}
	if err, ok := d.signerErrs[path]; ok {
		return nil, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	s, err = gossh.ParsePrivateKey(data)
	var missing *gossh.PassphraseMissingError
	if errors.As(err, &missing) {
		pub = missing.PublicKey
		if pub == nil {
			pub = readPublicKey(path + ".pub")
		}
		if pub != nil && containsKey(agentKeys, pub) {
			return nil, pub, errInAgent
		}
		s, err = d.unlock(path, data, ask)
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
		d.signerErrs[path] = err
		return nil, pub, err
	}
	d.signers[path] = s
	return s, s.PublicKey(), nil
}

// unlock asks for a key's passphrase.
func (d *Dialer) unlock(path string, data []byte, ask bool) (gossh.Signer, error) {
	if !ask || d.opts.Passphrase == nil {
		return nil, fmt.Errorf("the key is protected by a passphrase and there is no terminal to ask for it: add it to your ssh agent (ssh-add %s)", path)
	}
	pass, err := d.opts.Passphrase(path)
	if err != nil {
		return nil, fmt.Errorf("asking for the passphrase: %w", err)
	}
	s, err := gossh.ParsePrivateKeyWithPassphrase(data, pass)
	if err != nil {
		return nil, fmt.Errorf("wrong passphrase: %w", err)
	}
	return s, nil
}

func readCert(path string) *gossh.Certificate {
	k := readPublicKey(path)
	c, _ := k.(*gossh.Certificate)
	return c
}

func readPublicKey(path string) gossh.PublicKey {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey(data)
	if err != nil {
		return nil
	}
	return k
}

func containsKey(keys []gossh.PublicKey, k gossh.PublicKey) bool {
	for _, x := range keys {
		if bytes.Equal(x.Marshal(), k.Marshal()) {
			return true
		}
	}
	return false
}

// agentClient dials $SSH_AUTH_SOCK once per Dialer.
func (d *Dialer) agentClient() agent.ExtendedAgent {
	if !d.opts.UseAgent {
		return nil
	}
	d.agentOnce.Do(func() {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return
		}
		d.agentConn, d.agent = c, agent.NewClient(c)
	})
	return d.agent
}
