package transport

import (
	"context"
	"io"
	"io/fs"
	"path"
)

// ChrootEnvFile is the shell file a chroot's commands source first, so the
// environment of the system inside (PATH, NIX_PATH, ...) applies to them.
// The chroot module writes it when it prepares the root.
const ChrootEnvFile = "/etc/nixbook-chroot.env"

// chrootScript runs "$@" inside the chroot after sourcing the environment
// file and changing to the working directory in $1 (empty: /).
const chrootScript = `[ -r ` + ChrootEnvFile + ` ] && . ` + ChrootEnvFile + `; cd "${1:-/}" || exit 1; shift; exec "$@"`

// Chroot wraps c so that every command runs inside root (which must hold
// /bin/sh) and uploads land under root. Values stay argv elements: nothing
// of the command is glued into the script.
func Chroot(c Conn, root string) Conn { return chrooted{Conn: c, root: root} }

type chrooted struct {
	Conn
	root string
}

// Wrap returns cmd as it runs inside root.
func (c chrooted) Wrap(cmd Cmd) Cmd {
	args := []string{"chroot", c.root, "/bin/sh", "-c", chrootScript, "sh", cmd.Dir}
	if len(cmd.Env) > 0 {
		args = append(args, "env")
		for _, k := range sortedKeys(cmd.Env) {
			args = append(args, k+"="+cmd.Env[k])
		}
	}
	cmd.Args = append(args, cmd.Args...)
	cmd.Dir, cmd.Env = "", nil
	return cmd
}

func (c chrooted) Run(ctx context.Context, cmd Cmd) (Result, error) {
	return c.Conn.Run(ctx, c.Wrap(cmd))
}

func (c chrooted) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	return c.Conn.Upload(ctx, path.Join(c.root, dst), src, mode)
}
