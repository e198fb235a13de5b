package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/nixbook/nixbook/internal/inventory"
)

// connectionFlags are Ansible's -u and --private-key: defaults for the hosts
// whose inventory names no user or key. As in Ansible, they are command-line
// values, not variables, and rank below every inventory variable
// (docs/docsite/rst/reference_appendices/general_precedence.rst); they rank
// above ~/.ssh/config, as ansible-playbook hands them to ssh as -o options.
func connectionFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "log in as `USER` where the inventory names no user", EnvVars: envVars("user")},
		&ucli.StringFlag{Name: "private-key", Aliases: []string{"key-file"}, Usage: "use the key `FILE` where the inventory names no key", EnvVars: envVars("private-key")},
	}
}

// applyConnectionFlags fills in the hosts' user and key from -u and
// --private-key where the inventory left them unset.
func applyConnectionFlags(c *ucli.Context, inv *inventory.Inventory) error {
	user, key := c.String("user"), c.String("private-key")
	if key != "" {
		var err error
		if key, err = keyPath(key); err != nil {
			return err
		}
	}
	for _, h := range inv.Hosts {
		if h.User == "" && user != "" {
			h.User = user
		}
		if len(h.KeyFiles) == 0 && key != "" {
			h.KeyFiles = []string{key}
		}
	}
	return nil
}

// keyPath expands ~/ and makes the key path absolute, checking that the
// file can be read before any host is touched.
func keyPath(p string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("--private-key %s: %w", p, err)
		}
		p = filepath.Join(home, rest)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("--private-key %s: %w", p, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("--private-key: %w", err)
	}
	f.Close()
	return abs, nil
}

// terminalPassphrase asks for a key's passphrase on the terminal, as ssh
// does; it is nil when nixbook runs without one (cron, CI, a pipe), so
// that a protected key fails with a message that says what to do.
func terminalPassphrase() func(keyFile string) ([]byte, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return func(keyFile string) ([]byte, error) {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("opening the terminal: %w", err)
		}
		defer tty.Close()
		fmt.Fprintf(tty, "Enter passphrase for key '%s': ", keyFile)
		pass, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("reading the passphrase: %w", err)
		}
		return pass, nil
	}
}
