package yamlx

import (
	"fmt"
	"io"
	"os"
)

// MaxFileBytes bounds every YAML file nixbook reads (playbooks, inventories,
// vars files): far beyond a real one, it keeps a wrong path (a disk image,
// a log) from exhausting memory.
const MaxFileBytes = 16 << 20

// ReadFile reads path, refusing a file larger than MaxFileBytes.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB, more than nixbook reads", path, MaxFileBytes>>20)
	}
	return data, nil
}
