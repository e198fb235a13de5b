package swaps

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSwapsFileIsTheKernels(t *testing.T) {
	tests := []struct {
		name  string
		areas []*swapArea
		want  string
	}{
		{"none", nil, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"},
		{
			"partition and file",
			[]*swapArea{
				{path: "/dev/sda2", kib: 524284, prio: -2},
				{path: "/mnt/swap file", file: true, kib: 12582908, prio: 5},
			},
			"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
				"/dev/sda2                               partition\t524284\t\t0\t\t-2\n" +
				"/mnt/swap\\040file                       file\t\t12582908\t0\t\t5\n",
		},
		{
			"long name",
			[]*swapArea{{path: "/dev/disk/by-id/ata-NIXBOOK_SIM_HDD_0123456789-part2", kib: 1024, prio: -3}},
			"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
				"/dev/disk/by-id/ata-NIXBOOK_SIM_HDD_0123456789-part2 partition\t1024\t\t0\t\t-3\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := swapsFile(tt.areas); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestHumanBytesLikeUtilLinux(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0B"},
		{1000, "1000B"},
		{1024, "1K"},
		{1536, "1.5K"},
		{134213632, "128M"}, // a 128 MiB swap partition less its header page
		{536866816, "512M"},
		{2147479552, "2G"},
		{1610612736, "1.5G"},
		{1<<30 + 1<<20*100, "1.1G"},
		{1 << 40, "1T"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestGetoptLikeGlibc(t *testing.T) {
	longs := []longOpt{{"priority", requiredArg, "p"}, {"show", optionalArg, "show"}, {"summary", noArg, "s"}, {"all", noArg, "a"}}
	tests := []struct {
		args     []string
		opts     []option
		operands []string
		bad      string
	}{
		{args: []string{"/dev/sda2"}, operands: []string{"/dev/sda2"}},
		{args: []string{"-p", "5", "/dev/sda2", "-a"}, opts: []option{{key: "p", val: "5", hasVal: true}, {key: "a"}}, operands: []string{"/dev/sda2"}},
		{args: []string{"-ap5"}, opts: []option{{key: "a"}, {key: "p", val: "5", hasVal: true}}},
		{args: []string{"--show=NAME,SIZE"}, opts: []option{{key: "show", val: "NAME,SIZE", hasVal: true}}},
		{args: []string{"--sh"}, opts: []option{{key: "show"}}},
		{args: []string{"--pri", "3"}, opts: []option{{key: "p", val: "3", hasVal: true}}},
		{args: []string{"--", "-a"}, operands: []string{"-a"}},
		{args: []string{"--s"}, bad: "swapon: option '--s' is ambiguous; possibilities: '--show' '--summary'\n"},
		{args: []string{"--bogus=1"}, bad: "swapon: unrecognized option '--bogus=1'\n"},
		{args: []string{"-Q"}, bad: "swapon: invalid option -- 'Q'\n"},
		{args: []string{"-p"}, bad: "swapon: option requires an argument -- 'p'\n"},
		{args: []string{"--priority"}, bad: "swapon: option '--priority' requires an argument\n"},
		{args: []string{"--all=yes"}, bad: "swapon: option '--all' doesn't allow an argument\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			opts, operands, bad := getopt("swapon", tt.args, "asp:", longs)
			if bad != tt.bad || !reflect.DeepEqual(opts, tt.opts) || !reflect.DeepEqual(operands, tt.operands) {
				t.Errorf("got %+v %q %q, want %+v %q %q", opts, operands, bad, tt.opts, tt.operands, tt.bad)
			}
		})
	}
}

func TestSwapTableLikeLibsmartcols(t *testing.T) {
	areas := []*swapArea{
		{path: "/dev/sda2", kib: 131068, prio: -2, uuid: "0a8d3f0e-5e6c-4c9b-9d5e-2f1b0c6a7e11", label: "swap"},
		{path: "/mnt/swapfile", file: true, kib: 65532, prio: 10},
	}
	tests := []struct {
		name                   string
		columns                []string
		noHeadings, raw, bytes bool
		want                   string
	}{
		{name: "default", columns: []string{"NAME", "TYPE", "SIZE", "USED", "PRIO"},
			want: "NAME          TYPE      SIZE USED PRIO\n" +
				"/dev/sda2     partition 128M   0B   -2\n" +
				"/mnt/swapfile file       64M   0B   10\n"},
		{name: "bytes, no headings", columns: []string{"NAME", "SIZE"}, noHeadings: true, bytes: true,
			want: "/dev/sda2     134213632\n/mnt/swapfile  67104768\n"},
		{name: "raw", columns: []string{"NAME", "LABEL", "UUID"}, raw: true,
			want: "NAME LABEL UUID\n/dev/sda2 swap 0a8d3f0e-5e6c-4c9b-9d5e-2f1b0c6a7e11\n/mnt/swapfile  \n"},
		{name: "last column left-aligned", columns: []string{"LABEL", "NAME"},
			want: "LABEL NAME\nswap  /dev/sda2\n      /mnt/swapfile\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := swapTable(areas, tt.columns, tt.noHeadings, tt.raw, tt.bytes); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	if got := swapTable(nil, []string{"NAME"}, false, false, false); got != "" {
		t.Errorf("no swap: %q, want nothing (as swapon prints)", got)
	}
}

func TestReadSwapHeaderOfMkswap(t *testing.T) {
	mkswap, err := exec.LookPath("mkswap")
	if err != nil {
		t.Skip("needs mkswap (util-linux)")
	}
	// A swap area in a regular file: mkswap never touches a device here.
	img := filepath.Join(t.TempDir(), "swap.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	const uuid = "0a8d3f0e-5e6c-4c9b-9d5e-2f1b0c6a7e11"
	if out, err := exec.Command(mkswap, "-L", "swap", "-U", uuid, img).CombinedOutput(); err != nil {
		t.Fatalf("mkswap: %v: %s", err, out)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr, ok := readSwapHeader(f)
	if !ok {
		t.Fatal("no swap header found")
	}
	want := swapHeader{pageSize: os.Getpagesize(), version: 1, lastPage: uint32(8<<20/os.Getpagesize() - 1), uuid: uuid, label: "swap"}
	if *hdr != want {
		t.Errorf("header %+v, want %+v", *hdr, want)
	}
	other := filepath.Join(t.TempDir(), "zero.img")
	if err := os.WriteFile(other, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	z, err := os.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if _, ok := readSwapHeader(z); ok {
		t.Error("a swap header in zeros")
	}
}
