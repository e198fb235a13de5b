package apt

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/retry"
)

// clock is a fake retry.Clock: sleeping only moves it on.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }
func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	return ctx.Err()
}

const (
	down = `Err:1 http://deb.debian.org/debian bookworm InRelease
  Could not connect to deb.debian.org:80 (151.101.2.132), connection timed out
E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Could not connect to deb.debian.org:80
E: Some index files failed to download. They have been ignored, or old ones used instead.`
	fetchFailed = `E: Failed to fetch http://security.debian.org/debian-security/pool/updates/main/o/openssh/openssh-server_9.2p1-2+deb12u3_amd64.deb  Connection failed`
	unknown     = `E: Unable to locate package no-such-package`
)

func TestInstall(t *testing.T) {
	warnings = io.Discard
	defer func() { warnings = os.Stderr }()
	exit := errors.New("exit status 100")
	tests := []struct {
		name string
		// replies are what the successive apt-get calls answer: output,
		// and whether they fail; the last one repeats.
		replies   []string
		wantCalls []string // "install" or "update", in order
		wantErr   []string // substrings of the error; none: success
	}{
		{name: "known packages", replies: []string{"ok"}, wantCalls: []string{"install"}},
		{name: "lists refreshed once", replies: []string{"!" + unknown, "ok", "ok"},
			wantCalls: []string{"install", "update", "install"}},
		{name: "mirror flaky, then back", replies: []string{"!" + unknown, "!" + down, "!" + down, "ok", "ok"},
			wantCalls: []string{"install", "update", "update", "update", "install"}},
		{name: "download of a package fails once", replies: []string{"!" + fetchFailed, "ok", "!" + fetchFailed, "ok", "ok"},
			wantCalls: []string{"install", "update", "install", "update", "install"}},
		{name: "no such package", replies: []string{"!" + unknown, "ok", "!" + unknown},
			wantCalls: []string{"install", "update", "install"},
			wantErr:   []string{"Unable to locate package no-such-package"}},
		{name: "mirror down", replies: []string{"!" + unknown, "!" + down},
			wantCalls: append([]string{"install"}, repeat("update", 14)...),
			wantErr:   []string{"gave up after 14 attempts", "failing mirror: deb.debian.org", "the mirror looks down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			fake := func(ctx context.Context, args ...string) ([]byte, error) {
				verb := "install"
				for _, a := range args {
					if a == "update" {
						verb = "update"
					}
				}
				if verb == "install" && args[len(args)-1] != "openssh-server" {
					t.Errorf("install args %q", args)
				}
				calls = append(calls, verb)
				r := tt.replies[min(len(calls), len(tt.replies))-1]
				if out, failed := strings.CutPrefix(r, "!"); failed {
					return []byte(out), exit
				}
				return []byte(r), nil
			}
			err := install(context.Background(), retry.Default, &clock{now: time.Unix(1e9, 0)}, fake, []string{"openssh-server"})
			if strings.Join(calls, " ") != strings.Join(tt.wantCalls, " ") {
				t.Errorf("calls %q, want %q", calls, tt.wantCalls)
			}
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
			}
		})
	}
}

func TestMirrorNote(t *testing.T) {
	for out, want := range map[string]string{
		down:                      "; failing mirror: deb.debian.org",
		fetchFailed:               "; failing mirror: security.debian.org",
		down + "\n" + fetchFailed: "; failing mirror: deb.debian.org, security.debian.org",
		unknown:                   "",
	} {
		if got := mirrorNote([]byte(out)); got != want {
			t.Errorf("mirrorNote(%q) = %q, want %q", out, got, want)
		}
	}
}

func repeat(s string, n int) []string {
	r := make([]string, n)
	for i := range r {
		r[i] = s
	}
	return r
}
