package ssh

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// sshGSource asks OpenSSH's client what it would do: `ssh -G` evaluates
// Host and Match blocks, Include, tokens and defaults exactly as ssh does.
type sshGSource struct {
	bin string
	// configArg is ssh's -F value; "" lets ssh read ~/.ssh/config and
	// /etc/ssh/ssh_config as it always does.
	configArg string
	// home is nixbook's home ($HOME); pwHome is the one ssh expands ~ to
	// (the password database's). They differ under a test's or a
	// sandbox's HOME, where nixbook's files win.
	home, pwHome string
	localUser    string
	// lib answers what ssh -G cannot tell: whether a User equal to the
	// local login name was written or is ssh's default.
	lib libSource

	mu    sync.Mutex
	cache map[string]hostOptions
	// One ssh -G per host, and few at a time: a fleet of hosts must not
	// spend the file descriptors its connections and logs need.
	flight singleflight.Group
	slots  chan struct{}
}

// newSSHGSource returns nil when OpenSSH's client is not installed.
func newSSHGSource(bin, configPath string, explicit bool, home string, lib libSource) *sshGSource {
	if bin == "none" {
		return nil
	}
	if bin == "" {
		bin = "ssh"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil
	}
	s := &sshGSource{bin: path, home: home, pwHome: home, localUser: localUserName(), lib: lib, cache: map[string]hostOptions{}, slots: make(chan struct{}, 4)}
	if u, err := user.Current(); err == nil {
		s.pwHome = u.HomeDir
	}
	// ssh reads ~/.ssh/config from the password database's home; nixbook
	// reads $HOME's, so it names the file when the two differ.
	if explicit || filepath.Clean(s.pwHome) != filepath.Clean(home) {
		s.configArg = configPath
		if _, err := os.Stat(configPath); err != nil {
			s.configArg = "none"
		}
	}
	return s
}

// opensshDefaultIdentities is what ssh -G lists when the config names no
// IdentityFile.
func opensshDefaultIdentities() []string {
	return []string{
		"~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
		"~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa",
	}
}

func (s *sshGSource) options(ctx context.Context, alias, login string, port int) (hostOptions, error) {
	key := alias + "\x00" + login + "\x00" + strconv.Itoa(port)
	s.mu.Lock()
	o, ok := s.cache[key]
	s.mu.Unlock()
	if ok {
		return o, nil
	}
	v, err, _ := s.flight.Do(key, func() (any, error) {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-s.slots }()
		o, err := s.run(ctx, alias, login, port)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.cache[key] = o
		s.mu.Unlock()
		return o, nil
	})
	if err != nil {
		return hostOptions{}, err
	}
	return v.(hostOptions), nil
}

func (s *sshGSource) run(ctx context.Context, alias, login string, port int) (hostOptions, error) {
	args := []string{"-G"}
	if s.configArg != "" {
		args = append(args, "-F", s.configArg)
	}
	if login != "" {
		args = append(args, "-l", login)
	}
	if port != 0 {
		args = append(args, "-p", strconv.Itoa(port))
	}
	args = append(args, "--", alias)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(strings.ReplaceAll(stderr.String(), "Pseudo-terminal will not be allocated because stdin is not a terminal.", ""))
		return hostOptions{}, fmt.Errorf("resolving %s with ssh -G: %w: %s", alias, err, msg)
	}
	return s.parse(alias, login, stdout.Bytes())
}

// parse reads ssh -G's output: one "keyword value" line per option.
func (s *sshGSource) parse(alias, login string, out []byte) (hostOptions, error) {
	var o hostOptions
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		kw, v, _ := strings.Cut(sc.Text(), " ")
		switch kw {
		case "hostname":
			o.hostName = v
		case "user":
			o.user = v
		case "port":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 65535 {
				return hostOptions{}, fmt.Errorf("ssh -G %s: bad port %q", alias, v)
			}
			o.port = n
		case "identityfile":
			o.identityFiles = append(o.identityFiles, v)
		case "certificatefile":
			o.certificateFiles = append(o.certificateFiles, v)
		case "identitiesonly":
			o.identitiesOnly = isYes(v)
		case "proxyjump":
			o.proxyJump = v
		case "proxycommand":
			o.proxyCommand = v
		case "hostkeyalias":
			o.hostKeyAlias = v
		case "userknownhostsfile":
			o.userKnownHosts = s.rehome(strings.Fields(v))
		case "globalknownhostsfile":
			o.globalKnownHosts = strings.Fields(v)
		case "stricthostkeychecking":
			o.strict = isYes(v)
		case "connecttimeout":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				o.connectTimeout = time.Duration(n) * time.Second
			}
		}
	}
	if err := sc.Err(); err != nil {
		return hostOptions{}, fmt.Errorf("ssh -G %s: %w", alias, err)
	}
	if slices.Equal(o.identityFiles, opensshDefaultIdentities()) {
		o.identityFiles = nil
	}
	if login == "" && o.user == s.localUser && s.lib.get(alias, "User") != o.user {
		// ssh's default login is the local user; nixbook's is root (or -u).
		o.user = ""
	}
	return o, nil
}

// rehome maps paths ssh expanded from the password database's home onto
// nixbook's $HOME.
func (s *sshGSource) rehome(files []string) []string {
	if s.pwHome == "" || s.home == "" || s.pwHome == s.home {
		return files
	}
	out := make([]string, len(files))
	for i, f := range files {
		if rest, ok := strings.CutPrefix(f, strings.TrimSuffix(s.pwHome, "/")+"/"); ok {
			f = filepath.Join(s.home, rest)
		}
		out[i] = f
	}
	return out
}
