package partition

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/disk"
	"github.com/nixbook/nixbook/internal/transport"
)

// fsLUKS is what blkid reports of a LUKS volume.
const fsLUKS = "crypto_LUKS"

// hostKeyPath is where the key waits on the host while cryptsetup needs
// it: /run is a RAM disk on the rescue and the installer.
const hostKeyPath = "/run/nixbook/luks.key"

// InitrdKeyDir is where, in the installed system, the key of each
// encrypted partition lies (NAME.key), for its initrd to open the volume at
// boot (boot.initrd.secrets).
const InitrdKeyDir = "/etc/secrets/initrd"

// mapperName is the name an encrypted slot's volume is opened under.
func mapperName(s slot) string { return s.name }

func mapperPath(s slot) string { return "/dev/mapper/" + mapperName(s) }

// readKey reads the LUKS key on the controller; it never appears in a
// message.
func (m *module) readKey() ([]byte, error) {
	key, err := os.ReadFile(m.args.LUKSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("luks_key_file: %w", err)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("luks_key_file %s is empty", m.args.LUKSKeyFile)
	}
	return key, nil
}

// volume is an encrypted slot's opened volume as the host shows it.
type volume struct {
	open          bool
	fsType, label string
	majMin        string
}

// probeVolume looks at /dev/mapper/NAME: whether it is open, and what it
// holds.
func probeVolume(ctx context.Context, h modules.ReadOnlyHost, s slot) (volume, error) {
	dev := mapperPath(s)
	if _, err := h.Probe(ctx, transport.Cmd{Args: []string{"test", "-b", dev}}); err != nil {
		var exit *transport.ExitError
		if errors.As(err, &exit) {
			return volume{}, nil
		}
		return volume{}, fmt.Errorf("probe %s: %w", dev, err)
	}
	v := volume{open: true}
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"stat", "-L", "-c", "%t:%T", dev}})
	if err != nil {
		return volume{}, fmt.Errorf("probe %s: %w", dev, err)
	}
	if maj, min, ok := strings.Cut(strings.TrimSpace(string(res.Stdout)), ":"); ok {
		a, err1 := strconv.ParseUint(maj, 16, 32)
		b, err2 := strconv.ParseUint(min, 16, 32)
		if err1 == nil && err2 == nil {
			v.majMin = fmt.Sprintf("%d:%d", a, b)
		}
	}
	// blkid exits 2 when it finds no signature.
	res, err = h.Probe(ctx, transport.Cmd{Args: []string{"blkid", "-p", "-o", "export", dev}})
	var exit *transport.ExitError
	if err != nil && !(errors.As(err, &exit) && res.ExitCode == 2) {
		return volume{}, fmt.Errorf("probe %s: %w", dev, err)
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if k, val, ok := strings.Cut(line, "="); ok {
			switch k {
			case "TYPE":
				v.fsType = val
			case "LABEL":
				v.label = val
			}
		}
	}
	return v, nil
}

// keyUpload puts the key where cryptsetup reads it on the host.
func keyUpload(key []byte) []step {
	return []step{run("mkdir", "-p", "-m", "0700", path.Dir(hostKeyPath)), {upload: &upload{path: hostKeyPath, data: key, mode: 0o400}}}
}

func openStep(dev string, s slot) step {
	return run("cryptsetup", "open", "--key-file", hostKeyPath, dev, mapperName(s))
}

// formatEncrypted are the steps that make an encrypted slot anew: the LUKS
// volume on the partition, opened, and the filesystem in it.
func formatEncrypted(key []byte, dev string, s slot) []step {
	steps := keyUpload(key)
	steps = append(steps,
		run("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--key-file", hostKeyPath, dev),
		openStep(dev, s),
		run(types[s.part.Type].mkfs(s.label, mapperPath(s))...))
	return steps
}

// volumeChanges plans, for each encrypted slot whose LUKS volume is there
// already, what opens it and makes its filesystem when it has none. vols
// are the volumes as probed, by slot index.
func (m *module) volumeChanges(b *builder, key []byte, dp *diskPlan, vols map[int]volume) error {
	for i, s := range dp.slots {
		if !s.part.Encrypt || dp.format[i] {
			continue
		}
		dev := disk.PartitionPath(dp.st.Path, s.number)
		v := vols[i]
		want := types[s.part.Type].fsType
		if !v.open {
			steps := append(keyUpload(key), openStep(dev, s), step{cmd: transport.Cmd{Args: types[s.part.Type].mkfs(s.label, mapperPath(s))}, unlessFS: want, wipe: m.args.Wipe})
			c := modules.Change{Summary: fmt.Sprintf("open the LUKS volume on %s as %s (key from %s), and make %s in it unless it holds one",
				dev, mapperPath(s), m.args.LUKSKeyFile, describeSlot(s))}
			record(&c, steps)
			b.add(c, steps)
			b.written = true
			continue
		}
		if v.fsType == want && labelEqual(want, v.label, s.label) {
			continue
		}
		if v.fsType != "" && !m.args.Wipe {
			return fmt.Errorf("%s holds %s where the layout puts %s; set wipe: true to erase it", mapperPath(s), v.fsType, describeSlot(s))
		}
		steps := []step{run(types[s.part.Type].mkfs(s.label, mapperPath(s))...)}
		c := modules.Change{Summary: fmt.Sprintf("format %s as %s", mapperPath(s), describeSlot(s))}
		record(&c, steps)
		b.add(c, steps)
		b.written = true
	}
	return nil
}

// initrdKeyChanges places the key of each encrypted slot mounted under root
// in the installed system, where its initrd takes it from.
func (m *module) initrdKeyChanges(ctx context.Context, b *builder, h modules.ReadOnlyHost, key []byte, items []mountItem, deferred string) error {
	sum := sha256.Sum256(key)
	want := hex.EncodeToString(sum[:])
	for _, it := range items {
		if !it.slot.part.Encrypt || it.inTarget == "" || deferred != "" {
			continue
		}
		dst := path.Join(m.args.Root, InitrdKeyDir, mapperName(it.slot)+".key")
		res, err := h.Probe(ctx, transport.Cmd{Args: []string{"sha256sum", "--", dst}})
		if err == nil && strings.HasPrefix(string(res.Stdout), want+" ") {
			continue
		}
		steps := []step{run("mkdir", "-p", "-m", "0700", path.Dir(dst)), {upload: &upload{path: dst, data: key, mode: 0o400}}}
		c := modules.Change{Summary: fmt.Sprintf("place the key of %s at %s (0400), for the installed system's initrd", mapperPath(it.slot), dst)}
		record(&c, steps)
		b.add(c, steps)
	}
	return nil
}

// hasEncrypted says whether the layout encrypts a partition.
func (l *layout) hasEncrypted() bool {
	for _, p := range l.Parts {
		if p.Encrypt {
			return true
		}
	}
	return false
}
