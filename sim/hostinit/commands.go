package hostinit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Dispatch runs the helper when args call for it: the host's init when
// args[1] is InitArg, or one of the simulator's own commands by the base name
// of args[0]. ok is false for any other invocation.
func Dispatch(args []string) (code int, ok bool) {
	if len(args) > 1 && args[1] == InitArg {
		return runInit(os.Stdin, os.Stdout, os.Stderr), true
	}
	if len(args) > 3 && args[1] == ReaperArg {
		return runReaper(os.Stdin, args[2], args[3], os.Stderr), true
	}
	if len(args) == 0 || !isCommand(filepath.Base(args[0])) {
		return 0, false
	}
	return runCommand(ControlPath, args, os.Stdout, os.Stderr), true
}

func isCommand(name string) bool {
	for _, c := range Commands() {
		if c == name {
			return true
		}
	}
	return false
}

// runCommand hands argv to the controller and prints its reply. The controller
// holds the logic, so the helper stays the same whatever the command.
func runCommand(socket string, args []string, stdout, stderr io.Writer) int {
	req := Request{Argv: append([]string{filepath.Base(args[0])}, args[1:]...)}
	req.Dir, _ = os.Getwd()
	reply, err := Call(context.Background(), socket, req)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", req.Argv[0], err)
		return 1
	}
	io.WriteString(stdout, reply.Stdout)
	io.WriteString(stderr, reply.Stderr)
	return reply.Code
}

// Call sends a command to the controller listening on socket.
func Call(ctx context.Context, socket string, req Request) (Reply, error) {
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		},
		Timeout: 2 * time.Minute,
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://host/run", bytes.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return Reply{}, fmt.Errorf("ask the simulator: %w", err)
	}
	defer resp.Body.Close()
	var reply Reply
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return Reply{}, fmt.Errorf("read the simulator's reply: %w", err)
	}
	return reply, nil
}

// Handler serves the requests of a host's in-host commands with run.
func Handler(run func(ctx context.Context, req Request) Reply) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Request
		if r.Method != http.MethodPost || r.URL.Path != "/run" {
			http.NotFound(w, r)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Argv) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(run(r.Context(), req))
	})
}
