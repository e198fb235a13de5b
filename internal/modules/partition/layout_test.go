package partition

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    size
		wantErr string
	}{
		{in: "512MiB", want: size{mib: 512}},
		{in: "512M", want: size{mib: 512}},
		{in: "20GiB", want: size{mib: 20 * 1024}},
		{in: "20g", want: size{mib: 20 * 1024}},
		{in: "1.5GiB", want: size{mib: 1536}},
		{in: "2T", want: size{mib: 2 * 1024 * 1024}},
		{in: "10%", want: size{pct: 10}},
		{in: "12.5%", want: size{pct: 12.5}},
		{in: "rest", want: size{rest: true}},
		{in: " Rest ", want: size{rest: true}},
		{in: "1 GiB", want: size{mib: 1024}},
		{in: "100%", wantErr: "below 100% (write rest"},
		{in: "0%", wantErr: "above 0%"},
		{in: "512", wantErr: "needs a unit"},
		{in: "512MB", wantErr: `unknown unit "MB"`},
		{in: "0.5MiB", wantErr: "not a whole number of MiB"},
		{in: "0MiB", wantErr: "at least 1MiB"},
		{in: "big", wantErr: "want 512MiB"},
		{in: "-1GiB", wantErr: "want 512MiB"},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseSize(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	const rootOnly = "partitions:\n  - {name: nixos, size: rest, type: ext4, mount: /}\n"
	tests := []struct {
		name, args, wantErr string
	}{
		{"no disks", rootOnly, `missing required key "disks"`},
		{"relative disk", "disks: [sda]\n" + rootOnly, `"sda" is not a device path`},
		{"disk twice", "disks: [/dev/sda, /dev/sda/]\n" + rootOnly, "/dev/sda is listed twice"},
		{"nothing to lay out", "disks: [/dev/sda]\n", "give partitions or a preset"},
		{"bad label", "disks: [/dev/sda]\nlabel: mbr\n" + rootOnly, `label "mbr": want gpt or msdos`},
		{"bad firmware", "disks: [/dev/sda]\nfirmware: efi\n" + rootOnly, `firmware "efi"`},
		{"relative root", "disks: [/dev/sda]\nroot: mnt\n" + rootOnly, `root "mnt" must be an absolute path`},
		{"unknown key", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: rest, type: ext4, fs: ext4}\n", `unknown key "fs"`},
		{"unknown preset", "disks: [/dev/sda]\npreset: raid\n", `preset "raid": want iso or zfs`},
		{"preset override unknown", "disks: [/dev/sda]\npreset: zfs\npartitions:\n  - {name: root, size: 1GiB}\n", `preset zfs has no such partition (it has bios_grub, boot, rpool)`},
		{"missing name", "disks: [/dev/sda]\npartitions:\n  - {size: rest, type: ext4}\n", "partitions[0]: name is required"},
		{"missing size", "disks: [/dev/sda]\npartitions:\n  - {name: a, type: ext4}\n", `partition "a": size and type are required`},
		{"bad type", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: rest, type: btrfs}\n", `type "btrfs": want ext4, xfs`},
		{"bad name", "disks: [/dev/sda]\npartitions:\n  - {name: 'my disk', size: rest, type: ext4}\n", "a name is up to 36"},
		{"name twice", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: 1GiB, type: ext4}\n  - {name: a, size: rest, type: ext4}\n", `partition "a" is named twice`},
		{"two rests", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: rest, type: ext4}\n  - {name: b, size: rest, type: ext4}\n", "only one partition can take the rest"},
		{"shares over 100", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: 60%, type: ext4}\n  - {name: b, size: 40%, type: ext4}\n", "add up to 100%"},
		{"xfs too small", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: 100MiB, type: xfs}\n", `100 MiB is too small for xfs (at least 300 MiB)`},
		{"bios_grub on msdos", "disks: [/dev/sda]\nlabel: msdos\npartitions:\n  - {name: g, size: 1MiB, type: bios_grub}\n", "bios_grub partitions exist only on gpt"},
		{"five on msdos", "disks: [/dev/sda]\nlabel: msdos\npartitions:\n" + strings.Repeat("  - {name: p, size: 1GiB, type: ext4}\n", 5), "at most 4 primary partitions and the layout has 5"},
		{"vfat label too long", "disks: [/dev/sda]\npartitions:\n  - {name: e, size: 512MiB, type: vfat, label: nixos-rescue}\n", `label "nixos-rescue" is too long for vfat (11 characters`},
		{"label suffix too long", "disks: [/dev/sda, /dev/sdb]\npartitions:\n  - {name: e, size: 512MiB, type: vfat, label: ABCDEFGHIJ}\n", "counting the -N suffix"},
		{"label on zfs", "disks: [/dev/sda]\npartitions:\n  - {name: z, size: rest, type: zfs, label: rpool}\n", "a zfs partition has no filesystem to label"},
		{"mount swap", "disks: [/dev/sda]\npartitions:\n  - {name: s, size: 1GiB, type: swap, mount: /swap}\n", "a swap partition cannot be mounted"},
		{"relative mount", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: rest, type: ext4, mount: home}\n", `mount "home" must be a clean absolute path`},
		{"unclean mount", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: rest, type: ext4, mount: /home/}\n", "clean absolute path"},
		{"mount twice", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: 1GiB, type: ext4, mount: /}\n  - {name: b, size: rest, type: ext4, mount: /}\n", "mount / is taken by partition \"a\""},
		{"root on every disk", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: rest, type: ext4, mount: /, every_disk: true}\n", "/ is mounted once"},
		{"options without mount", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: rest, type: ext4, mount_options: [noatime]}\n", "mount_options without mount"},
		{"explicit bios without bios_grub", "disks: [/dev/sda]\nfirmware: bios\n" + rootOnly, "GPT on a BIOS host needs a bios_grub partition"},
		{"explicit uefi without esp", "disks: [/dev/sda]\nfirmware: uefi\n" + rootOnly, "the host boots with UEFI and the layout has no EFI system partition"},
		{"encrypt without a key file", "disks: [/dev/sda]\npartitions:\n  - {name: a, size: rest, type: ext4, mount: /, encrypt: true}\n", `partition "a": encrypt needs luks_key_file`},
		{"encrypt zfs", "disks: [/dev/sda]\npreset: zfs\npartitions:\n  - {name: rpool, encrypt: true}\nluks_key_file: /k\n", "encrypt puts ext4 or xfs in a LUKS volume, not zfs (ZFS encrypts its datasets itself"},
		{"encrypt /boot", "disks: [/dev/sda]\npartitions:\n  - {name: b, size: 1GiB, type: ext4, mount: /boot, encrypt: true}\nluks_key_file: /k\n", "GRUB reads /boot before anything is unlocked"},
		{"encrypt every disk", "disks: [/dev/sda]\npartitions:\n  - {name: s, size: 1GiB, type: ext4, mount: /srv, every_disk: true, encrypt: true}\nluks_key_file: /k\n", "on the first disk only"},
		{"preset on uefi msdos", "disks: [/dev/sda]\nfirmware: uefi\nlabel: msdos\npreset: iso\n", "preset iso on a UEFI host: an msdos table holds at most 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Spec.New(moduletest.Decoder(tt.args))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestSpecExampleAndDoc(t *testing.T) {
	// The example must build: it is what `nixbook doc` shows users.
	var tasks []map[string]any
	if err := decodeYAML(Spec.Example, &tasks); err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		args, err := encodeYAML(task["partition"])
		if err != nil {
			t.Fatal(err)
		}
		args = strings.ReplaceAll(args, `'{{ disks }}'`, "[/dev/sda]")
		args = strings.ReplaceAll(args, `'{{ wipe | default(false) }}'`, "false")
		if _, err := Spec.New(moduletest.Decoder(args)); err != nil {
			t.Errorf("example task:\n%s\n%v", args, err)
		}
	}
	var names []string
	for _, d := range Spec.Doc() {
		names = append(names, d.Name+"="+d.Default)
	}
	want := []string{"disks=", "label=gpt", "preset=", "partitions=", "root=/mnt", "wipe=", "firmware=auto", "mount=true", "luks_key_file="}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("doc = %q, want %q", names, want)
	}
}

func TestPlace(t *testing.T) {
	l := &layout{Label: "gpt", Parts: []part{
		{Name: "bios_grub", Size: size{mib: 1}, Type: typeBIOSGrub},
		{Name: "root", Size: size{pct: 25}, Type: typeExt4, Label: "root"},
		{Name: "data", Size: size{rest: true}, Type: typeXFS},
		{Name: "swap", Size: size{mib: 1024}, Type: typeSwap},
	}}
	slots, small := l.place(1, 10*gib+512<<20)
	if small != nil {
		t.Fatalf("too small: %+v", small)
	}
	type got struct {
		n          int
		start, end int64
		name       string
		label      string
	}
	var have []got
	for _, s := range slots {
		have = append(have, got{s.number, s.startMiB, s.endMiB, s.name, s.label})
	}
	// 10.5 GiB = 10752 MiB: 25% is 2688 MiB; the last MiB stays free.
	want := []got{
		{1, 1, 2, "bios_grub-2", ""},
		{2, 2, 2690, "root-2", "root-2"},
		{3, 2690, 9727, "data-2", ""},
		{4, 9727, 10751, "swap-2", ""},
	}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("slots = %+v, want %+v", have, want)
	}
}

func decodeYAML(s string, v any) error { return yaml.Unmarshal([]byte(s), v) }

func encodeYAML(v any) (string, error) {
	b, err := yaml.Marshal(v)
	return string(b), err
}
