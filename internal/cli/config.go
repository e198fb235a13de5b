package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/yamlx"
)

// ConfigName is the config file's name, beside the playbook, in the
// current directory or in the user's config directory (nixbook/).
const ConfigName = "nixbook.yml"

// configKey is one setting of the config file: the flag it defaults, the
// environment variable that does the same, and whether it is a path
// (resolved against the config file's directory, as Ansible resolves path
// settings of ansible.cfg).
type configKey struct {
	key, flag, env string
	path           bool
}

func configKeys() []configKey {
	return []configKey{
		{key: "inventory", flag: "inventory", env: "NIXBOOK_INVENTORY", path: true},
		{key: "forks", flag: "forks", env: "NIXBOOK_FORKS"},
		{key: "log_dir", flag: "log-dir", env: "NIXBOOK_LOG_DIR", path: true},
		{key: "known_hosts", flag: "known-hosts", env: "NIXBOOK_KNOWN_HOSTS", path: true},
		{key: "user", flag: "user", env: "NIXBOOK_USER"},
		{key: "private_key", flag: "private-key", env: "NIXBOOK_PRIVATE_KEY", path: true},
	}
}

// envVars is the environment variable that defaults a flag, if any.
func envVars(flag string) []string {
	for _, k := range configKeys() {
		if k.flag == flag {
			return []string{k.env}
		}
	}
	return nil
}

// applyConfig fills in the flags that neither the command line nor the
// environment set from the config file: a flag wins over NIXBOOK_*, which
// wins over the file, which wins over nixbook's defaults.
func (e *env) applyConfig(c *ucli.Context) error {
	path, err := e.findConfig(c)
	if err != nil || path == "" {
		return err
	}
	settings, err := readConfig(path)
	if err != nil {
		return usage(err)
	}
	has := map[string]bool{}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			has[n] = true
		}
	}
	for _, s := range settings {
		if !has[s.flag] || c.IsSet(s.flag) {
			continue
		}
		for _, v := range s.values {
			if err := c.Set(s.flag, v); err != nil {
				return usage(fmt.Errorf("%s:%d: %s: %w", path, s.line, s.key, err))
			}
		}
	}
	return nil
}

// findConfig returns the config file to read, "" for none. Like Ansible
// with ansible.cfg, nixbook reads one file, the first it finds:
// $NIXBOOK_CONFIG, nixbook.yml beside the playbook, in the current
// directory, then in the user's config directory.
func (e *env) findConfig(c *ucli.Context) (string, error) {
	if p := e.getenv("NIXBOOK_CONFIG"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", usage(fmt.Errorf("NIXBOOK_CONFIG: %w", err))
		}
		return p, nil
	}
	var dirs []string
	if c.Command.ArgsUsage == "PLAYBOOK" && c.NArg() > 0 {
		if st, err := os.Stat(c.Args().First()); err == nil && !st.IsDir() {
			dirs = append(dirs, filepath.Dir(c.Args().First()))
		}
	}
	dirs = append(dirs, ".")
	if dir := e.userConfigDir(); dir != "" {
		dirs = append(dirs, filepath.Join(dir, "nixbook"))
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, ConfigName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", usage(fmt.Errorf("config: %w", err))
		}
	}
	return "", nil
}

// userConfigDir is $XDG_CONFIG_HOME or ~/.config.
func (e *env) userConfigDir() string {
	if d := e.getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return d
	}
	if h := e.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config")
	}
	return ""
}

// setting is one key of a config file, as flag values.
type setting struct {
	configKey
	values []string
	line   int
}

// readConfig reads a config file: a mapping of the keys of configKeys.
func readConfig(path string) ([]setting, error) {
	data, err := yamlx.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping of settings", path, root.Line)
	}
	known := map[string]configKey{}
	var names []string
	for _, k := range configKeys() {
		known[k.key] = k
		names = append(names, k.key)
	}
	dir := filepath.Dir(path)
	var out []setting
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		ck, ok := known[k.Value]
		if !ok {
			return nil, fmt.Errorf("%s:%d: unknown setting %q (want one of %s)", path, k.Line, k.Value, strings.Join(names, ", "))
		}
		var values []string
		switch {
		case v.Kind == yaml.ScalarNode:
			values = []string{v.Value}
		case v.Kind == yaml.SequenceNode && ck.key == "inventory":
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%s:%d: %s: want a path", path, item.Line, ck.key)
				}
				values = append(values, item.Value)
			}
		default:
			return nil, fmt.Errorf("%s:%d: %s: want a single value", path, v.Line, ck.key)
		}
		for j, val := range values {
			if ck.key == "forks" {
				if n, err := strconv.Atoi(val); err != nil || n < 1 {
					return nil, fmt.Errorf("%s:%d: forks: want a number of hosts of at least 1, got %q", path, v.Line, val)
				}
			}
			if ck.path {
				values[j] = configPath(val, dir)
			}
		}
		out = append(out, setting{configKey: ck, values: values, line: k.Line})
	}
	return out, nil
}

// configPath expands ~/ and resolves a relative path against dir.
func configPath(p, dir string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
