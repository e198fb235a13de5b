package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules/nixosconfig"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	sshtransport "github.com/nixbook/nixbook/internal/transport/ssh"
)

// generatedRecord is the file in each generated folder that records the
// checksum of every file nixbook wrote there.
const generatedRecord = ".nixbook-generated"

func (e *env) generateCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "generate",
		Usage: "gather facts and write each host's folder for a flake (hosts/<name>/default.nix and what it imports)",
		Description: "Writes OUT/<host>/default.nix, hardware-configuration.nix and nixbook-network.nix from the\n" +
			"inventory variables the stock playbooks use (rescue_ssh_key, ipv4, ipv6, ipv6_gateway,\n" +
			"nic_naming, disks, nixos_release, fs_layout) and the facts of the running system. A folder\n" +
			"whose files changed since nixbook wrote them is left alone unless --force.",
		Flags: append([]ucli.Flag{inventoryFlag, limitFlag, knownHostsFlag, extraVarsFlag,
			&ucli.StringFlag{Name: "out", Value: nixosconfigHostsDir, Usage: "the `DIR` of the host folders"},
			&ucli.BoolFlag{Name: "force", Usage: "overwrite folders whose files were changed or not written by nixbook"}}, connectionFlags()...),
		Action: func(c *ucli.Context) error {
			_, hosts, err := e.selectHosts(c)
			if err != nil {
				return usage(err)
			}
			extra, err := inventory.ParseExtraVars(c.StringSlice("extra-vars"), readFile)
			if err != nil {
				return usage(err)
			}
			out := c.String("out")
			store := hostkeys.New(c.String("known-hosts"))
			dialer := sshtransport.NewDialer(sshtransport.DialerOptions{Store: store, UseAgent: true, Passphrase: terminalPassphrase()})
			defer dialer.Close()

			gathered := make([]*facts.Facts, len(hosts))
			gatherErrs := make([]error, len(hosts))
			var g errgroup.Group
			g.SetLimit(runner.MaxForks)
			for i, h := range hosts {
				g.Go(func() error {
					gathered[i], gatherErrs[i] = gatherOne(c.Context, dialer, h)
					return nil
				})
			}
			g.Wait()

			unreachable, failed := false, false
			engine := tmpl.New()
			for i, h := range hosts {
				if gatherErrs[i] != nil {
					unreachable = true
					fmt.Fprintf(e.stderr, "%s: %v\n", h.Name, gatherErrs[i])
					continue
				}
				msg, notes, err := generateHost(c.Context, engine, h, gathered[i], extra, out, c.Bool("force"))
				if err != nil {
					failed = true
					fmt.Fprintf(e.stderr, "%s: %v\n", h.Name, err)
				} else {
					fmt.Fprintf(e.stdout, "%s: %s\n", h.Name, msg)
					for _, n := range notes {
						fmt.Fprintf(e.stdout, "%s: note: %s\n", h.Name, n)
					}
				}
			}
			switch {
			case unreachable:
				return exitCode(ExitUnreachable)
			case failed:
				return exitCode(ExitFailed)
			}
			return nil
		},
	}
}

// nixosconfigHostsDir is where a flake keeps its host folders.
const nixosconfigHostsDir = "hosts"

// generateHost renders one host's folder and writes it under out.
func generateHost(ctx context.Context, engine *tmpl.Engine, h *inventory.Host, f *facts.Facts, extra map[string]any, out string, force bool) (string, []string, error) {
	vars := maps.Clone(h.Vars)
	maps.Copy(vars, h.Magic())
	vars["facts"] = f.Map()
	maps.Copy(vars, extra)
	value := func(name string) (any, bool, error) {
		v, ok := vars[name]
		if !ok || v == nil {
			return nil, false, nil
		}
		r, err := engine.RenderValueContext(ctx, v, vars)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", name, err)
		}
		return r, true, nil
	}
	args := map[string]any{}
	for _, cv := range nixosconfig.InventoryArgs() {
		for _, name := range cv.Vars {
			v, ok, err := value(name)
			if err != nil {
				return "", nil, err
			}
			if ok {
				args[cv.Arg] = v
				break
			}
		}
	}
	layout := ""
	if v, ok, err := value("fs_layout"); err != nil {
		return "", nil, err
	} else if ok {
		layout = fmt.Sprint(v)
	}
	files, notes, err := nixosconfig.GenerateHost(ctx, nixosconfig.Host{Name: h.Name, Facts: f, Vars: args, Layout: layout})
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(out, h.Name)
	msg, err := writeHostFolder(dir, files, force)
	return msg, notes, err
}

func checksum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// readRecord reads a folder's record: file name to checksum. Nil when the
// folder has none.
func readRecord(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, generatedRecord))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		sum, name, ok := strings.Cut(l, "  ")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a line of sha256 and file name", filepath.Join(dir, generatedRecord), l)
		}
		rec[name] = sum
	}
	return rec, nil
}

// changedFiles lists the files of the folder nixbook would overwrite that
// it did not write, or that changed since it did.
func changedFiles(dir string, files []nixosconfig.HostFile, rec map[string]string) ([]string, error) {
	var changed []string
	names := slices.Sorted(maps.Keys(rec))
	for _, f := range files {
		if !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if rec[name] != "" {
				changed = append(changed, name+" (removed)")
			}
		case err != nil:
			return nil, err
		case rec[name] == "":
			changed = append(changed, name+" (not written by nixbook)")
		case checksum(data) != rec[name]:
			changed = append(changed, name+" (changed)")
		}
	}
	return changed, nil
}

// writeHostFolder writes files into dir and records their checksums,
// refusing to overwrite what the user changed unless force.
func writeHostFolder(dir string, files []nixosconfig.HostFile, force bool) (string, error) {
	rec, err := readRecord(dir)
	if err != nil {
		return "", err
	}
	changed, err := changedFiles(dir, files, rec)
	if err != nil {
		return "", err
	}
	if len(changed) > 0 && !force {
		return "", fmt.Errorf("%s: refusing to overwrite %s: keep your changes in the flake (modules beside the folder) or pass --force", dir, strings.Join(changed, ", "))
	}
	same := rec != nil && len(changed) == 0
	for _, f := range files {
		same = same && rec[f.Name] == checksum(f.Content)
	}
	if same {
		return dir + " is up to date", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("# Written by nixbook generate: the sha256 of each file it wrote. It refuses\n# to overwrite a file whose checksum differs (nixbook generate --force does).\n")
	var names []string
	for _, f := range files {
		if err := writeAtomic(filepath.Join(dir, f.Name), f.Content); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s  %s\n", checksum(f.Content), f.Name)
		names = append(names, f.Name)
	}
	if err := writeAtomic(filepath.Join(dir, generatedRecord), []byte(b.String())); err != nil {
		return "", err
	}
	verb := "wrote"
	if rec != nil {
		verb = "updated"
	}
	return fmt.Sprintf("%s %s (%s)", verb, dir, strings.Join(names, ", ")), nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
