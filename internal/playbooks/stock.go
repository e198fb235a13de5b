package playbooks

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"

	"github.com/nixbook/nixbook/internal/yamlx"
)

// stock holds the playbooks shipped in the binary, and under tasks/ the
// tasks files they import.
//
//go:embed *.yml tasks/*.yml
var stock embed.FS

// EmbeddedPrefix marks the Path of a stock playbook.
const EmbeddedPrefix = "embedded:"

// Stock lists the stock playbooks by file name ("facts.yml").
func Stock() []string {
	entries, _ := fs.ReadDir(stock, ".")
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yml") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// StockFile returns a stock playbook as StockData does, or a tasks file
// the stock playbooks import, by its path ("tasks/install-iso.yml").
func StockFile(name string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(name, "tasks/"); ok && !strings.ContainsRune(rest, '/') {
		if data, err := stock.ReadFile(name); err == nil {
			return data, nil
		}
	}
	return StockData(name)
}

// StockData returns a stock playbook by name, with or without ".yml".
func StockData(name string) ([]byte, error) {
	file := strings.TrimPrefix(name, EmbeddedPrefix)
	if !strings.HasSuffix(file, ".yml") {
		file += ".yml"
	}
	if strings.ContainsRune(file, '/') {
		return nil, fmt.Errorf("no stock playbook %q", name)
	}
	data, err := stock.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("no stock playbook %q (stock playbooks: %s)", name, strings.Join(Stock(), ", "))
	}
	return data, nil
}

// Resolve finds a playbook: a file at name if there is one, else the stock
// playbook of that name (with or without ".yml"), whose path is then
// "embedded:NAME.yml".
func Resolve(name string) (path string, data []byte, err error) {
	if st, statErr := os.Stat(name); statErr == nil && !st.IsDir() {
		data, err = yamlx.ReadFile(name)
		if err != nil {
			return "", nil, fmt.Errorf("read playbook: %w", err)
		}
		return name, data, nil
	} else if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("read playbook: %w", statErr)
	}
	data, stockErr := StockData(name)
	if stockErr != nil {
		return "", nil, fmt.Errorf("playbook %q: no such file, and no stock playbook of that name (stock playbooks: %s)",
			name, strings.Join(Stock(), ", "))
	}
	file := strings.TrimPrefix(name, EmbeddedPrefix)
	if !strings.HasSuffix(file, ".yml") {
		file += ".yml"
	}
	return EmbeddedPrefix + file, data, nil
}

// Open resolves name as Resolve does and loads the playbook.
func Open(name string, reg *modules.Registry) (*Playbook, error) {
	path, data, err := Resolve(name)
	if err != nil {
		return nil, err
	}
	dir := ""
	if !strings.HasPrefix(path, EmbeddedPrefix) {
		dir = filepath.Dir(path)
	}
	return LoadBytes(path, data, dir, reg)
}
