package sshdtest

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	mrand "math/rand/v2"
)

// Proxy forwards TCP connections to a target and counts them. Freeze makes
// it hold every byte without closing anything, like a host that vanished
// from the network.
type Proxy struct {
	Addr string // loopback IP
	Port int

	target   string
	listener net.Listener
	accepted atomic.Int64

	mu     sync.Mutex
	frozen chan struct{} // non-nil while frozen; closed by Thaw
	conns  map[net.Conn]bool
}

// NewProxy listens on a fresh loopback address and forwards to target
// (host:port). It is closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(pickAddr(mrand.IntN(250)), "0"))
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().(*net.TCPAddr)
	p := &Proxy{Addr: a.IP.String(), Port: a.Port, target: target, listener: l, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// HostPort is Addr:Port.
func (p *Proxy) HostPort() string { return net.JoinHostPort(p.Addr, strconv.Itoa(p.Port)) }

// Accepted is the number of connections accepted so far.
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

// Freeze stops forwarding in both directions; connections stay open.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen == nil {
		p.frozen = make(chan struct{})
	}
}

// Thaw resumes forwarding.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
}

// DropConns closes every open connection, as a reboot looks from outside.
func (p *Proxy) DropConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops listening and drops every connection.
func (p *Proxy) Close() {
	p.listener.Close()
	p.Thaw()
	p.DropConns()
}

func (p *Proxy) serve() {
	for {
		c, err := p.listener.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, up)
	defer p.untrack(c, up)
	done := make(chan struct{}, 2)
	pump := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.waitThawed()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pump(up, c)
	go pump(c, up)
	<-done
	<-done
}

func (p *Proxy) waitThawed() {
	p.mu.Lock()
	ch := p.frozen
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (p *Proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = true
	}
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

// Blackhole listens on a loopback address, accepts connections and never
// says a word, like a host stuck half-way through booting. It returns the
// address and port.
func Blackhole(t testing.TB) (addr string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(pickAddr(mrand.IntN(250)), "0"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	a := l.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// ClosedPort returns a loopback address and port nothing listens on.
func ClosedPort(t testing.TB) (addr string, port int) {
	t.Helper()
	addr = pickAddr(mrand.IntN(250))
	port, err := freePort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return addr, port
}

// WriteInventory writes dir/inventory.yml listing servers under `all`, with
// the user and client key of the first server as group variables, and
// returns its path.
func WriteInventory(t testing.TB, dir string, servers []*Server) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("all:\n")
	if len(servers) > 0 {
		fmt.Fprintf(&b, "  vars:\n    user: %s\n    ssh_key: %s\n", strconv.Quote(servers[0].User), strconv.Quote(servers[0].KeyFile))
	}
	b.WriteString("  hosts:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "    %s:\n      host: %s\n      port: %d\n", s.Name, s.Addr, s.Port)
		if len(servers) > 0 && s.KeyFile != servers[0].KeyFile {
			fmt.Fprintf(&b, "      ssh_key: %s\n", strconv.Quote(s.KeyFile))
		}
	}
	path := filepath.Join(dir, "inventory.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
