package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       map[string][]string // flag: values
		err        string
	}{
		{name: "empty", text: "", want: map[string][]string{}},
		{name: "paths", text: "inventory: [a.yml, /abs.ini]\nlog_dir: logs\nforks: 3\nuser: admin\n", want: map[string][]string{
			"inventory": {"DIR/a.yml", "/abs.ini"}, "log-dir": {"DIR/logs"}, "forks": {"3"}, "user": {"admin"},
		}},
		{name: "unknown", text: "inventory: a\nforkz: 2\n", err: ":2: unknown setting \"forkz\""},
		{name: "forks", text: "forks: many\n", err: ":1: forks: want a number"},
		{name: "list", text: "user: [a, b]\n", err: ":1: user: want a single value"},
		{name: "not a mapping", text: "- a\n", err: ":1: want a mapping"},
		{name: "yaml", text: "a: [\n", err: "yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ConfigName)
			if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readConfig(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d settings, want %d", len(got), len(tc.want))
			}
			for _, s := range got {
				want := slices.Clone(tc.want[s.flag])
				for i := range want {
					want[i] = strings.Replace(want[i], "DIR", dir, 1)
				}
				if !slices.Equal(s.values, want) {
					t.Errorf("%s = %q, want %q", s.flag, s.values, want)
				}
			}
		})
	}
}

// FuzzReadConfig checks that no config file panics the reader.
func FuzzReadConfig(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "config", "*.yml"))
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), ConfigName)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		readConfig(path)
	})
}
