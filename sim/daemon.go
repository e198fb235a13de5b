package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nixbook/nixbook/sim/internal/hostnet"
	"github.com/nixbook/nixbook/sim/simstate"
)

// ControlSocket is where the daemon of the fleet in dir listens.
func ControlSocket(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return filepath.Join("/run/nixbook-sim", hostnet.FleetID(abs), "fleet.sock"), nil
}

// FleetStatus is what `nixbook-sim status` shows.
type FleetStatus struct {
	Dir       string   `json:"dir"`
	PID       int      `json:"pid"`
	Ready     bool     `json:"ready"`
	Error     string   `json:"error,omitempty"`
	Subnet    string   `json:"subnet"`
	Subnet6   string   `json:"subnet6"`
	Bridge    string   `json:"bridge"`
	API       string   `json:"api"`
	Payload   string   `json:"payload,omitempty"`
	Inventory string   `json:"inventory"`
	OVHConf   string   `json:"ovh_conf"`
	ClientKey string   `json:"client_key"`
	Hosts     []Status `json:"hosts"`
}

// ServeOptions are what the daemon adds to a fleet's Config.
type ServeOptions struct {
	// ReadyTimeout bounds the wait for every host to answer SSH.
	ReadyTimeout time.Duration
	// Files are files made for the fleet before the daemon ran (its log),
	// removed with it.
	Files []string
	// OwnDir says the fleet's directory was made for it: removed when empty.
	OwnDir bool
}

// Serve runs a fleet as a daemon: it brings it up, answers the control
// socket (status, reboot, down) and takes the fleet down when ctx ends or a
// client asks.
func Serve(ctx context.Context, cfg Config, opts ServeOptions) error {
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 5 * time.Minute
	}
	f, err := Up(ctx, cfg)
	if err != nil {
		return err
	}
	defer f.Down(context.Background())
	for _, file := range opts.Files {
		if err := f.state.Add(simstate.Files, file); err != nil {
			return err
		}
	}
	if opts.OwnDir {
		if err := f.state.Add(simstate.Dirs, f.dir); err != nil {
			return err
		}
	}
	if err := f.state.AddProc(os.Getpid(), daemonWhat); err != nil {
		return err
	}
	sock, err := ControlSocket(f.dir)
	if err != nil {
		return err
	}
	_ = os.Remove(sock)
	if err := f.state.Add(simstate.Files, sock); err != nil {
		return err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	// Down removes the socket with the rest of the record; a close after
	// that must not remove the socket of the next fleet in the directory.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	d := &daemon{f: f, down: make(chan struct{}), finished: make(chan struct{})}
	srv := &http.Server{Handler: d.handler()}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	go func() {
		wctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
		defer cancel()
		err := f.WaitSSH(wctx, f.ExpectedUp()...)
		d.mu.Lock()
		d.ready = err == nil
		if err != nil {
			d.err = err.Error()
		}
		d.mu.Unlock()
		if err == nil {
			f.logf("fleet ready: %d hosts", len(f.hosts))
		}
	}()
	select {
	case <-ctx.Done():
	case <-d.down:
	}
	f.logf("taking the fleet down")
	err = f.Down(context.Background())
	d.downErr = err
	close(d.finished)
	// Let the clients waiting on /down have their answer.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return err
}

// daemonWhat names the daemon's process in the fleet's record.
const daemonWhat = "nixbook-sim serve"

// ExpectedUp names the hosts whose current boot brought them onto the
// network: those that should answer SSH (not off, not a failed disk boot).
func (f *Fleet) ExpectedUp() []string {
	var names []string
	for _, h := range f.hosts {
		h.mu.Lock()
		if h.up && h.online {
			names = append(names, h.spec.Name)
		}
		h.mu.Unlock()
	}
	return names
}

// FleetStatus reports the fleet and every host.
func (f *Fleet) FleetStatus(ctx context.Context) FleetStatus {
	st := FleetStatus{
		Dir: f.dir, PID: os.Getpid(), Subnet: f.plan.Subnet.String(), Subnet6: f.plan.Prefix6.String(),
		Bridge: f.plan.Bridge, API: f.creds.Endpoint, Inventory: f.InventoryPath(), OVHConf: f.OVHConfPath(),
		ClientKey: f.clientKeyFile, Hosts: f.Status(ctx),
	}
	f.mu.Lock()
	st.Payload = f.payloadURL
	f.mu.Unlock()
	return st
}

type daemon struct {
	f        *Fleet
	down     chan struct{} // closed by the first /down
	downOnce sync.Once
	finished chan struct{} // closed once the fleet is down, downErr set
	downErr  error
	mu       sync.Mutex
	ready    bool
	err      string
}

// downReply answers /down once the fleet is down.
type downReply struct {
	PID   int    `json:"pid"`
	Error string `json:"error,omitempty"`
}

func (d *daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st := d.f.FleetStatus(r.Context())
		d.mu.Lock()
		st.Ready, st.Error = d.ready, d.err
		d.mu.Unlock()
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /reboot", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Host, Into string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		mode, err := ParseMode(req.Into)
		if err == nil {
			err = d.f.Reboot(r.Context(), req.Host, mode)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{})
	})
	// /down answers when the fleet is down, everything removed: the
	// daemon removes its record before the directories holding it.
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, r *http.Request) {
		d.downOnce.Do(func() { close(d.down) })
		select {
		case <-d.finished:
		case <-r.Context().Done():
			return
		}
		reply := downReply{PID: os.Getpid()}
		if d.downErr != nil {
			reply.Error = d.downErr.Error()
		}
		writeJSON(w, http.StatusOK, reply)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Client talks to the daemon of a fleet directory.
type Client struct {
	Dir string
}

// ErrNoDaemon means no fleet daemon answers for the directory.
var ErrNoDaemon = errors.New("no fleet is running in this directory")

func (c Client) do(ctx context.Context, method, path string, body, out any) error {
	sock, err := ControlSocket(c.Dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(sock); err != nil {
		return ErrNoDaemon
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://fleet"+path, rd)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return ErrNoDaemon
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return errors.New(e.Error)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Status asks the daemon for the fleet's status.
func (c Client) Status(ctx context.Context) (*FleetStatus, error) {
	var st FleetStatus
	if err := c.do(ctx, http.MethodGet, "/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Reboot asks the daemon to reboot a host into a mode.
func (c Client) Reboot(ctx context.Context, host string, into Mode) error {
	return c.do(ctx, http.MethodPost, "/reboot", map[string]string{"host": host, "into": string(into)}, nil)
}

// Down asks the daemon to take the fleet down and waits until it has, and
// its process is gone; then it removes whatever a daemon that died on the
// way left. It is safe to run twice.
func (c Client) Down(ctx context.Context) error {
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return err
	}
	daemon, hasDaemon := daemonProc(abs)
	var resp downReply
	err = c.do(ctx, http.MethodPost, "/down", nil, &resp)
	var daemonErr error
	switch {
	case errors.Is(err, ErrNoDaemon):
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("the fleet daemon does not stop: %w", err)
	case err != nil:
		// The daemon died on the way (its answer never came): what it left
		// is in its record.
		daemonErr = err
	case resp.Error != "":
		daemonErr = errors.New(resp.Error)
	}
	// Nothing of the fleet may run once down returns: not even the daemon
	// on its way out (a Serve in this process has returned already).
	for hasDaemon && daemon.PID != os.Getpid() && daemon.Alive() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the fleet daemon %d does not stop: %w", daemon.PID, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := Cleanup(ctx, abs); err != nil {
		return errors.Join(daemonErr, err)
	}
	// Whatever went wrong in the daemon, nothing of the fleet is left.
	return nil
}

// daemonProc is the daemon's process as the fleet's record has it.
func daemonProc(dir string) (simstate.Proc, bool) {
	if !exists(filepath.Join(dir, simstate.FileName)) {
		return simstate.Proc{}, false
	}
	s, err := simstate.Open(dir)
	if err != nil {
		return simstate.Proc{}, false
	}
	for _, p := range s.Record().Procs {
		if p.What == daemonWhat {
			return p, true
		}
	}
	return simstate.Proc{}, false
}
