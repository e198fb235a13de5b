// Package ssh is the SSH transport: one multiplexed connection per host,
// host keys checked against nixbook's own known_hosts store, ~/.ssh/config
// honoured (HostName, User, Port, IdentityFile, ProxyJump), dial and
// handshake bounded by the context, keepalives that notice a dead host.
package ssh

import (
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

	"github.com/kevinburke/ssh_config"
	"github.com/melbahja/goph"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/nixbook/nixbook/hostkeys"
	"github.com/nixbook/nixbook/transport"
)

// ErrAuth marks a server that refused every key offered. It comes wrapped
// together with transport.ErrUnreachable.
var ErrAuth = errors.New("authentication failed")

// DialerOptions configure a Dialer. The zero value works: default store,
// ~/.ssh/config, 15 s connect timeout, 15 s keepalives, user root.
type DialerOptions struct {
	// Store checks and records host keys; nil means hostkeys.DefaultPath().
	Store *hostkeys.Store
	// SSHConfigPath is the ssh config to read; "" means ~/.ssh/config and
	// "none" reads none.
	SSHConfigPath string
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
}

// Dialer opens SSH connections. It is safe for concurrent use.
type Dialer struct {
	opts  DialerOptions
	store *hostkeys.Store

	configOnce sync.Once
	config     *ssh_config.Config
	configErr  error

	agentOnce sync.Once
	agentConn net.Conn
	agent     agent.ExtendedAgent

	signersMu sync.Mutex
	signers   map[string]gossh.Signer
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
	return &Dialer{opts: opts, store: store, signers: map[string]gossh.Signer{}}
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
	rt, err := d.route(t)
	if err != nil {
		return "", err
	}
	return rt.target.host, nil
}

// route resolves t through ~/.ssh/config, read once per Dialer.
func (d *Dialer) route(t transport.Target) (route, error) {
	d.configOnce.Do(func() { d.config, d.configErr = loadSSHConfig(d.opts.SSHConfigPath) })
	if d.configErr != nil {
		return route{}, d.configErr
	}
	return newResolver(d.config, d.opts.DefaultUser).resolve(t)
}

// DialSSH is Dial returning the concrete type.
func (d *Dialer) DialSSH(ctx context.Context, t transport.Target, opts transport.DialOptions) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rt, err := d.route(t)
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
	var nc net.Conn
	var err error
	if via == nil {
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

// authFor offers, in one publickey method, the endpoint's key files and
// then the agent's keys: x/crypto tries a method name only once, so keys
// split over several methods would never all be offered.
func (d *Dialer) authFor(e endpoint) ([]gossh.AuthMethod, error) {
	ag := d.agentClient()
	var signers []gossh.Signer
	for _, f := range e.keyFiles {
		s, err := d.signer(f)
		var missing *gossh.PassphraseMissingError
		if errors.As(err, &missing) && ag != nil {
			continue // the agent may hold it
		}
		if err != nil {
			return nil, fmt.Errorf("loading ssh key: %w", err)
		}
		signers = append(signers, s)
	}
	for _, f := range e.optional {
		if s, err := d.signer(f); err == nil {
			signers = append(signers, s)
		}
	}
	if len(signers) == 0 && ag == nil {
		return nil, errors.New("no ssh key to offer: set ssh_key in the inventory, IdentityFile in ~/.ssh/config, or use an ssh agent")
	}
	return []gossh.AuthMethod{gossh.PublicKeysCallback(func() ([]gossh.Signer, error) {
		all := signers
		if ag != nil {
			if more, err := ag.Signers(); err == nil {
				all = append(append([]gossh.Signer(nil), signers...), more...)
			}
		}
		return all, nil
	})}, nil
}

func (d *Dialer) signer(path string) (gossh.Signer, error) {
	d.signersMu.Lock()
	defer d.signersMu.Unlock()
	if s, ok := d.signers[path]; ok {
		return s, nil
	}
	s, err := goph.GetSigner(path, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.signers[path] = s
	return s, nil
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
