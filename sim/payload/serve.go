package payload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Serve publishes the artifacts at baseURL/<name>, with Range support for
// resumed downloads, and their checksums at baseURL/<name>.sha256 in
// sha256sum's format. It stops when ctx ends or stop is called.
func Serve(ctx context.Context, p *Payload, addr string) (baseURL string, stop func() error, err error) {
	if p == nil {
		return "", nil, errors.New("payload: serve: no payload")
	}
	mux := http.NewServeMux()
	index := ""
	for _, a := range []Artifact{p.ISO, p.Kexec} {
		mux.HandleFunc("GET /"+a.Name, serveFile(a))
		mux.HandleFunc("GET /"+a.Name+".sha256", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "%s  %s\n", a.SHA256, a.Name)
		})
		index += fmt.Sprintf("%s  %d  %s\n", a.SHA256, a.Size, a.Name)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, index)
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("payload: serve: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var once sync.Once
	var stopErr error
	done := make(chan struct{})
	stop = func() error {
		once.Do(func() {
			close(done)
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stopErr = srv.Shutdown(shutdownCtx)
			if stopErr != nil {
				stopErr = errors.Join(stopErr, srv.Close())
			}
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				stopErr = errors.Join(stopErr, err)
			}
		})
		return stopErr
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = stop()
		case <-done:
		}
	}()
	return "http://" + ln.Addr().String(), stop, nil
}

func serveFile(a Artifact) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(a.Path)
		if err != nil {
			http.Error(w, "artifact unavailable", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, "artifact unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"`+a.SHA256+`"`)
		http.ServeContent(w, r, a.Name, st.ModTime(), &paddedFile{f: f, size: st.Size(), pad: a.Padding})
	}
}
