package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/gofrs/flock"
)

// MemoryFile is the file, in Options.StateDir, where modules' per-host
// memory outlives a run (see modules.Host.Remember).
const MemoryFile = "memory.json"

// memory is what modules remember of hosts between runs, keyed by inventory
// name then key. It is read and written whole, under a lock, so that runs in
// parallel on other hosts keep each other's entries.
type memory struct {
	dir string // "": nothing is kept beyond the run
	mu  sync.Mutex
	// mem holds the entries when dir is empty.
	mem map[string]map[string]string
}

func newMemory(dir string) *memory {
	return &memory{dir: dir, mem: map[string]map[string]string{}}
}

func (m *memory) path() string { return filepath.Join(m.dir, MemoryFile) }

func (m *memory) recall(host, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dir == "" {
		return m.mem[host][key], nil
	}
	all, err := m.read()
	if err != nil {
		return "", err
	}
	return all[host][key], nil
}

// remember sets a host's key; an empty value forgets it.
func (m *memory) remember(host, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dir == "" {
		set(m.mem, host, key, value)
		return nil
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("host memory: %w", err)
	}
	lock := flock.New(m.path() + ".lock")
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("host memory: lock: %w", err)
	}
	defer lock.Unlock()
	all, err := m.read()
	if err != nil {
		return err
	}
	set(all, host, key, value)
	data, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return fmt.Errorf("host memory: %w", err)
	}
	tmp, err := os.CreateTemp(m.dir, MemoryFile+".*")
	if err != nil {
		return fmt.Errorf("host memory: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("host memory: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("host memory: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("host memory: %w", err)
	}
	if err := os.Rename(tmp.Name(), m.path()); err != nil {
		return fmt.Errorf("host memory: %w", err)
	}
	return nil
}

func (m *memory) read() (map[string]map[string]string, error) {
	all := map[string]map[string]string{}
	data, err := os.ReadFile(m.path())
	if errors.Is(err, fs.ErrNotExist) {
		return all, nil
	}
	if err != nil {
		return nil, fmt.Errorf("host memory: %w", err)
	}
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, fmt.Errorf("host memory: %s: %w", m.path(), err)
	}
	return all, nil
}

func set(all map[string]map[string]string, host, key, value string) {
	if value == "" {
		delete(all[host], key)
		if len(all[host]) == 0 {
			delete(all, host)
		}
		return
	}
	if all[host] == nil {
		all[host] = map[string]string{}
	}
	all[host][key] = value
}
