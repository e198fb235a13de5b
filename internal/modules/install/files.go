package install

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// HostKeyDir is the folder of the controller's state directory holding the
// host keys nixbook generates, one folder per inventory name.
const HostKeyDir = "host-keys"

// hostKeyFile is where the installed system's sshd looks for its ed25519
// key, under root.
const hostKeyFile = "etc/ssh/ssh_host_ed25519_key"

// extraFile is one entry of the extra_files tree on the controller.
type extraFile struct {
	rel      string // slash-separated, relative to the tree
	mode     fs.FileMode
	uid, gid uint32
	dir      bool
	link     string // a symbolic link's target
}

// extraFiles lists the tree at dir, parents before children.
func extraFiles(dir string) ([]extraFile, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("extra_files: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("extra_files: %s is not a directory", dir)
	}
	var out []extraFile
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f := extraFile{rel: filepath.ToSlash(rel), mode: info.Mode().Perm() | info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)}
		if sys, ok := info.Sys().(*syscall.Stat_t); ok {
			f.uid, f.gid = sys.Uid, sys.Gid
		}
		switch {
		case d.IsDir():
			f.dir = true
		case info.Mode()&fs.ModeSymlink != 0:
			if f.link, err = os.Readlink(p); err != nil {
				return err
			}
		case !info.Mode().IsRegular():
			return fmt.Errorf("%s is neither a file, a directory nor a link", p)
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("extra_files: %w", err)
	}
	return out, nil
}

// copyExtraFiles copies the extra_files tree into root, owners (numeric,
// as on the controller) and modes kept. What the files hold is never shown
// or logged: only their count is.
func (m *module) copyExtraFiles(ctx context.Context, h modules.Host) error {
	dir := m.args.ExtraFiles
	files, err := extraFiles(dir)
	if err != nil {
		return err
	}
	n := 0
	for _, s := range extraFileSteps(m.args.Root, files) {
		if s.upload != nil {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.upload.rel)))
			if err != nil {
				return fmt.Errorf("extra_files: %w", err)
			}
			if err := h.Upload(ctx, s.dst, bytes.NewReader(data), s.upload.mode.Perm()); err != nil {
				return fmt.Errorf("extra_files: copy %s: %w", s.upload.rel, err)
			}
			n++
			continue
		}
		if _, err := h.Run(ctx, s.cmd); err != nil {
			return fmt.Errorf("extra_files: %w", err)
		}
	}
	h.Log("copied %d extra files of %s into %s (contents not logged)", n, dir, m.args.Root)
	return nil
}

// fileStep is one step of copying files into the new root: a command, or
// the upload of a file from the controller.
type fileStep struct {
	cmd    transport.Cmd
	upload *extraFile // nil for a command
	dst    string
}

// extraFileSteps are the steps that copy files into root, owners and modes
// kept, in order: what the plan lists and Apply runs.
func extraFileSteps(root string, files []extraFile) []fileStep {
	var out []fileStep
	run := func(args ...string) { out = append(out, fileStep{cmd: transport.Cmd{Args: args}}) }
	for i, f := range files {
		dst := path.Join(root, f.rel)
		owner := fmt.Sprintf("%d:%d", f.uid, f.gid)
		switch {
		case f.dir:
			run("mkdir", "-p", dst)
		case f.link != "":
			run("ln", "-sfn", f.link, dst)
			run("chown", "-h", owner, dst)
			continue
		default:
			out = append(out, fileStep{upload: &files[i], dst: dst})
		}
		run("chown", owner, dst)
		run("chmod", strconv.FormatUint(uint64(transport.ChmodMode(f.mode)), 8), dst)
	}
	return out
}

// hostKeyPath is where the controller keeps the host key nixbook generates
// for a host.
func hostKeyPath(stateDir, host string) string {
	return filepath.Join(stateDir, HostKeyDir, host, "ssh_host_ed25519_key")
}

// loadHostKey reads the host key kept for a host; fs.ErrNotExist when none.
func loadHostKey(file string) (ssh.Signer, []byte, error) {
	priv, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("host key %s: %w", file, err)
	}
	return signer, priv, nil
}

// ensureHostKey returns the host key kept for a host, generating it (0600,
// in a 0700 folder) the first time, so that a rerun installs the same key.
func ensureHostKey(file, host string) (ssh.Signer, []byte, error) {
	signer, priv, err := loadHostKey(file)
	if !errors.Is(err, fs.ErrNotExist) {
		return signer, priv, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate a host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(key, "root@"+host)
	if err != nil {
		return nil, nil, fmt.Errorf("generate a host key: %w", err)
	}
	priv = pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, nil, fmt.Errorf("keep the host key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".key-*")
	if err != nil {
		return nil, nil, fmt.Errorf("keep the host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(priv); err != nil {
		tmp.Close()
		return nil, nil, fmt.Errorf("keep the host key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, nil, fmt.Errorf("keep the host key: %w", err)
	}
	// Two runs racing keep the first key written.
	if err := os.Link(tmp.Name(), file); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, nil, fmt.Errorf("keep the host key: %w", err)
	}
	return loadHostKey(file)
}

// keeper is the host's KeyKeeper, or an error saying why generate_host_key
// cannot work.
func keeper(h any) (modules.KeyKeeper, string, error) {
	k, ok := h.(modules.KeyKeeper)
	if !ok || k.StateDir() == "" {
		return nil, "", errors.New("generate_host_key: this run keeps no state on the controller (give --known-hosts a file)")
	}
	return k, k.StateDir(), nil
}

// installHostKey places the host key nixbook keeps for the host in the new
// system, before nixos-install, which keeps a key it finds there.
func (m *module) installHostKey(ctx context.Context, h modules.Host) error {
	_, dir, err := keeper(h)
	if err != nil {
		return err
	}
	signer, priv, err := ensureHostKey(hostKeyPath(dir, h.Name()), h.Name())
	if err != nil {
		return err
	}
	dst := path.Join(m.args.Root, hostKeyFile)
	if _, err := h.Run(ctx, transport.Cmd{Args: []string{"mkdir", "-p", path.Dir(dst)}}); err != nil {
		return fmt.Errorf("mkdir %s: %w", path.Dir(dst), err)
	}
	if err := h.Upload(ctx, dst, bytes.NewReader(priv), 0o600); err != nil {
		return fmt.Errorf("install the host key: %w", err)
	}
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if err := h.Upload(ctx, dst+".pub", bytes.NewReader(pub), 0o644); err != nil {
		return fmt.Errorf("install the host key: %w", err)
	}
	h.Log("installed the host key nixbook generated for %s (%s) as %s", h.Name(), ssh.FingerprintSHA256(signer.PublicKey()), dst)
	return nil
}

// pinHostKey records the host key nixbook installed in known_hosts before
// the reboot, and returns the keys of the system being left.
func (m *module) pinHostKey(h modules.Host) ([]ssh.PublicKey, error) {
	k, dir, err := keeper(h)
	if err != nil {
		return nil, err
	}
	signer, _, err := loadHostKey(hostKeyPath(dir, h.Name()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("generate_host_key: nixbook generated no host key (%s): the system stage installs it first", hostKeyPath(dir, h.Name()))
	}
	if err != nil {
		return nil, err
	}
	replaced, err := k.PinHostKey(signer.PublicKey())
	if err != nil {
		return nil, err
	}
	if replaced == nil {
		replaced = []ssh.PublicKey{}
	}
	return replaced, nil
}
