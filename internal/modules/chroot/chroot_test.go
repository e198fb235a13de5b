package chroot

import (
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
)

var update = flag.Bool("update", false, "rewrite golden files")

var line = moduletest.Line

const (
	root    = "/root/rescue"
	store   = root + "/nix/store"
	sysPath = "/nix/store/5k2ihh0q9pbxvz7ncbn8ks3g0zmqyhfi-nixos-system-nixos-24.05.20240528.9f632c533d4e"
	bash    = "/nix/store/a2yg3djwkrzmlihhlm93z44x7gq6iml8-bash-5.2-p26/bin/bash"
	nixConf = "/nix/store/xlkc2ahfq53nr1yfq6kwjsaxv8f3gfj4-nix.conf"
)

// stage2 is the end of NixOS's stage-2 init as releases since 2015 have it.
const stage2 = `#! ` + bash + `
systemConfig=` + sysPath + `
export HOME=/root PATH="` + sysPath + `/sw/bin"
echo "running activation script..."
$systemConfig/activate
exec {logOutFd}>&1 {logErrFd}>&2
ln -sfn "$systemConfig" /run/booted-system
# Start systemd.
echo "starting systemd..."
PATH=/run/current-system/systemd/lib/systemd \
    LOCALE_ARCHIVE=/run/current-system/sw/lib/locale/locale-archive \
    exec systemd
`

var findSystem = line("find", store, "-mindepth", "1", "-maxdepth", "2",
	"(", "-path", store+"/*-nixos-system-*/init", "-o", "-path", store+"/*-nix.conf", ")", "-type", "f")

var fhsStat = func() string {
	args := []string{"stat", "-c", "%s\t%F\t%n", "--"}
	for _, d := range fhsDirs {
		args = append(args, root+"/"+d)
	}
	return line(append(args, root+"/bin/sh")...)
}()

const findmnt = `TARGET="/" SOURCE="tmpfs" FSTYPE="tmpfs" FSROOT="/" OPTIONS="rw"
TARGET="/proc" SOURCE="proc" FSTYPE="proc" FSROOT="/" OPTIONS="rw"
TARGET="/sys" SOURCE="sysfs" FSTYPE="sysfs" FSROOT="/" OPTIONS="rw"
TARGET="/dev" SOURCE="devtmpfs" FSTYPE="devtmpfs" FSROOT="/" OPTIONS="rw"
TARGET="/dev/pts" SOURCE="devpts" FSTYPE="devpts" FSROOT="/" OPTIONS="rw"
TARGET="/mnt" SOURCE="/dev/sda1" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"
TARGET="/mnt/home" SOURCE="/dev/sda2" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"
TARGET="/root/rescue" SOURCE="/dev/sda4" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"
`

// prepared are the mounts once the root is prepared (and the init has
// mounted its own things inside).
const prepared = findmnt + `TARGET="/root/rescue/dev" SOURCE="devtmpfs" FSTYPE="devtmpfs" FSROOT="/" OPTIONS="rw"
TARGET="/root/rescue/dev/pts" SOURCE="devpts" FSTYPE="devpts" FSROOT="/" OPTIONS="rw"
TARGET="/root/rescue/proc" SOURCE="proc" FSTYPE="proc" FSROOT="/" OPTIONS="rw"
TARGET="/root/rescue/sys" SOURCE="sysfs" FSTYPE="sysfs" FSROOT="/" OPTIONS="rw"
TARGET="/root/rescue/mnt" SOURCE="/dev/sda1" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"
TARGET="/root/rescue/mnt/home" SOURCE="/dev/sda2" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"
TARGET="/root/rescue/run/keys" SOURCE="ramfs" FSTYPE="ramfs" FSROOT="/" OPTIONS="rw"
`

const resolv = "nameserver 213.186.33.99\n"

// fresh is a rescue with the ISO's store unpacked on the rescue partition
// mounted at the root, and nothing else done.
func fresh() *moduletest.ScriptedHost {
	stat := func(p string) string { return line("stat", "-c", "%s\t%F\t%n", "--", p) }
	return &moduletest.ScriptedHost{
		Files: map[string]string{
			root + sysPath + "/init": stage2,
			root + nixConf:           "allowed-users = *\nbuild-users-group = nixbld\nsandbox = true\ntrusted-users = root\n",
			"/etc/resolv.conf":       resolv,
		},
		Probes: map[string]moduletest.Reply{
			findSystem:                           {Stdout: store + "/5k2ihh0q9pbxvz7ncbn8ks3g0zmqyhfi-nixos-system-nixos-24.05.20240528.9f632c533d4e/init\n" + root + nixConf + "\n"},
			stat(root + bash):                    {Stdout: "1234\tregular file\t" + root + bash + "\n"},
			line(hostfs.MountsArgv()...):         {Stdout: findmnt},
			fhsStat:                              {Stdout: "4096\tdirectory\t" + root + "/nix\n", Exit: 1},
			stat("/mnt"):                         {Stdout: "4096\tdirectory\t/mnt\n"},
			stat(root + InitCopy):                moduletest.Missing(root + InitCopy),
			stat(root + transport.ChrootEnvFile): moduletest.Missing(root + transport.ChrootEnvFile),
			stat(root + "/etc/resolv.conf"):      moduletest.Missing(root + "/etc/resolv.conf"),
			line("readlink", "--", root+"/run/current-system"): {Exit: 1},
		},
	}
}

// done is the same rescue once the module has run.
func done() *moduletest.ScriptedHost {
	h := fresh()
	stat := func(p string) string { return line("stat", "-c", "%s\t%F\t%n", "--", p) }
	var st strings.Builder
	for _, d := range fhsDirs {
		st.WriteString("4096\tdirectory\t" + root + "/" + d + "\n")
	}
	st.WriteString("33\tsymbolic link\t" + root + "/bin/sh\n")
	h.Probes[fhsStat] = moduletest.Reply{Stdout: st.String()}
	h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: prepared}
	patched, err := patchInit(stage2, bash)
	if err != nil {
		panic(err)
	}
	h.Files[root+nixConf] = "allowed-users = *\nbuild-users-group =\nsandbox = false\ntrusted-users = root\n"
	h.Files[root+InitCopy] = patched
	h.Files[root+transport.ChrootEnvFile] = EnvFile()
	h.Files[root+"/etc/resolv.conf"] = resolv
	for _, p := range []string{InitCopy, transport.ChrootEnvFile, "/etc/resolv.conf"} {
		h.Probes[stat(root+p)] = moduletest.Reply{Stdout: "100\tregular file\t" + root + p + "\n"}
	}
	h.Probes[line("readlink", "--", root+"/run/current-system")] = moduletest.Reply{Stdout: sysPath + "\n"}
	return h
}

func TestCheckGolden(t *testing.T) {
	tests := []struct {
		name string
		args string
		host func() *moduletest.ScriptedHost
	}{
		{name: "fresh", args: "root: " + root, host: fresh},
		{name: "done", args: "root: " + root, host: done},
		{
			name: "resolv-conf-changed",
			args: "root: " + root,
			host: func() *moduletest.ScriptedHost {
				h := done()
				h.Files[root+"/etc/resolv.conf"] = "nameserver 127.0.0.1\n"
				return h
			},
		},
		{
			name: "root-not-a-mount-point",
			args: "root: " + root + "\nbind: [/mnt, /srv/keys]",
			host: func() *moduletest.ScriptedHost {
				h := fresh()
				h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: strings.ReplaceAll(findmnt, `TARGET="/root/rescue" SOURCE="/dev/sda4" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"`+"\n", "")}
				h.Probes[line("stat", "-c", "%s\t%F\t%n", "--", "/srv/keys")] = moduletest.Reply{Stdout: "4096\tdirectory\t/srv/keys\n"}
				return h
			},
		},
		{
			name: "store-not-there-yet",
			args: "root: " + root,
			host: func() *moduletest.ScriptedHost {
				h := fresh()
				h.Probes[findSystem] = moduletest.Reply{Stderr: "find: '" + store + "': No such file or directory\n", Exit: 1}
				return h
			},
		},
		{
			name: "not-a-nixos-store",
			args: "root: " + root,
			host: func() *moduletest.ScriptedHost {
				h := fresh()
				h.Probes[findSystem] = moduletest.Reply{}
				h.Probes[line("find", store, "-mindepth", "1", "-maxdepth", "1", "-print", "-quit")] = moduletest.Reply{Stdout: store + "/abc-hello-2.12\n"}
				return h
			},
		},
		{
			name: "several-systems",
			args: "root: " + root,
			host: func() *moduletest.ScriptedHost {
				h := fresh()
				h.Probes[findSystem] = moduletest.Reply{Stdout: store + "/b-nixos-system-b/init\n" + store + "/a-nixos-system-a/init\n"}
				return h
			},
		},
		{
			name: "absent",
			args: "root: " + root + "\nstate: absent",
			host: func() *moduletest.ScriptedHost {
				h := fresh()
				h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: prepared}
				return h
			},
		},
		{
			name: "absent-self-bound-root",
			args: "root: " + root + "\nstate: absent",
			host: func() *moduletest.ScriptedHost {
				h := fresh()
				m := strings.ReplaceAll(prepared, `TARGET="/root/rescue" SOURCE="/dev/sda4" FSTYPE="ext4" FSROOT="/"`, `TARGET="/root/rescue" SOURCE="tmpfs[/root/rescue]" FSTYPE="tmpfs" FSROOT="/root/rescue"`)
				h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: m}
				return h
			},
		},
		{
			name: "absent-shared-binds",
			args: "root: " + root + "\nstate: absent",
			host: func() *moduletest.ScriptedHost {
				h := fresh()
				m := strings.ReplaceAll(prepared, `TARGET="/root/rescue/dev" SOURCE="devtmpfs" FSTYPE="devtmpfs" FSROOT="/" OPTIONS="rw"`, `TARGET="/root/rescue/dev" SOURCE="devtmpfs" FSTYPE="devtmpfs" FSROOT="/" OPTIONS="rw" PROPAGATION="shared"`)
				h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: m}
				return h
			},
		},
		{
			name: "bound-but-still-shared",
			args: "root: " + root,
			host: func() *moduletest.ScriptedHost {
				h := done()
				m := strings.ReplaceAll(prepared, `TARGET="/root/rescue/mnt/home" SOURCE="/dev/sda2" FSTYPE="ext4" FSROOT="/" OPTIONS="rw"`, `TARGET="/root/rescue/mnt/home" SOURCE="/dev/sda2" FSTYPE="ext4" FSROOT="/" OPTIONS="rw" PROPAGATION="shared"`)
				h.Probes[line(hostfs.MountsArgv()...)] = moduletest.Reply{Stdout: m}
				return h
			},
		},
		{name: "absent-nothing-mounted", args: "root: " + root + "\nstate: absent", host: fresh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.host()
			m := moduletest.New(t, Spec, tt.args)
			p, err := moduletest.CheckScripted(context.Background(), m, h)
			got := moduletest.Outcome(p, err, h, moduletest.FormatPlan)
			moduletest.Golden(t, filepath.Join("testdata", tt.name+".golden"), got, *update)
		})
	}
}

func TestPatchInit(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{
			name: "2015 stage 2",
			in:   "#! /bin/bash\nPATH=/x \\\n    exec systemd\n",
			want: "#! /bin/bash\nPATH=/x \\\n    exec /b/bash\n",
		},
		{
			name: "newer stage 2",
			in:   "#! /bin/bash\nexec {logOutFd}>&1\necho starting systemd...\nexec /run/current-system/systemd/lib/systemd/systemd \"$@\"\n",
			want: "#! /bin/bash\nexec {logOutFd}>&1\necho starting systemd...\nexec /b/bash\n",
		},
		{name: "no systemd", in: "#! /bin/sh\nexec /bin/init\n", wantErr: "no `exec systemd` line"},
	}
	for _, tt := range tests {
		got, err := patchInit(tt.in, "/b/bash")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v", tt.name, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestArgs(t *testing.T) {
	tests := []struct{ args, wantErr string }{
		{args: "root: /root/rescue"},
		{args: "{}", wantErr: `missing required key "root"`},
		{args: "root: /", wantErr: "the rescue system itself"},
		{args: "root: /mnt/rescue", wantErr: "under /mnt"},
		{args: "root: /root/rescue\nstate: mounted", wantErr: "want present or absent"},
		{args: "root: /root/rescue\nbind: [/root]", wantErr: "contains root"},
		{args: "root: /root/rescue\nbind: [/dev]", wantErr: "bound anyway"},
		{args: "root: /root/rescue\nbind: mnt", wantErr: "want an absolute path"},
	}
	for _, tt := range tests {
		_, err := Spec.New(moduletest.Decoder(tt.args))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: err = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}
