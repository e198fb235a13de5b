// Package nixenv is the environment Nix runs in on the controller: no
// daemon, no store and none of the machine's or the user's settings, all
// kept under a scratch directory.
package nixenv

import (
	"os"
	"path/filepath"
)

// Scratch is the environment of a Nix command whose state, logs,
// configuration and caches live under work; extra are added as they are
// (NIX_PATH=..., say).
func Scratch(work string, extra ...string) []string {
	env := []string{
		"HOME=" + filepath.Join(work, "home"),
		"NIX_STATE_DIR=" + filepath.Join(work, "state"),
		"NIX_LOG_DIR=" + filepath.Join(work, "log"),
		"NIX_CONF_DIR=" + filepath.Join(work, "conf"),
		"XDG_CACHE_HOME=" + filepath.Join(work, "cache"),
		"NIX_REMOTE=",
	}
	if path, ok := os.LookupEnv("PATH"); ok {
		env = append(env, "PATH="+path)
	}
	return append(env, extra...)
}
