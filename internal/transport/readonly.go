package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// CheckReadOnly returns nil when cmd only reads the host: its program is on
// the read-only allow-list, its arguments pass that program's guard, and its
// environment sets nothing but the locale. Otherwise it returns why not, as
// an error wrapping ErrReadOnly. Anything the list does not know is refused:
// a read-only connection fails closed.
func CheckReadOnly(cmd Cmd) error {
	if err := readOnlyArgv(cmd.Args); err != nil {
		return fmt.Errorf("%w: %w: %s", ErrReadOnly, err, cmd.Line())
	}
	for k := range cmd.Env {
		if k != "LANG" && k != "LANGUAGE" && k != "TZ" && !strings.HasPrefix(k, "LC_") {
			return fmt.Errorf("%w: a probe sets only the locale in its environment, not %s: %s", ErrReadOnly, k, cmd.Line())
		}
	}
	return nil
}

// IsMutating reports whether argv is not known to only read the host: the
// read-only connection refuses it (see CheckReadOnly).
func IsMutating(argv []string) bool { return readOnlyArgv(argv) != nil }

// ReadOnly wraps c so that uploads and every command CheckReadOnly refuses
// are refused: the backstop behind the type-level gate (modules only get a
// read-only host in Check), not the main line of defence.
func ReadOnly(c Conn) Conn { return readOnly{c} }

type readOnly struct{ Conn }

func (r readOnly) Run(ctx context.Context, cmd Cmd) (Result, error) {
	if err := CheckReadOnly(cmd); err != nil {
		return Result{ExitCode: -1}, err
	}
	return r.Conn.Run(ctx, cmd)
}

func (r readOnly) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	return fmt.Errorf("%w: upload to %s", ErrReadOnly, dst)
}

// systemBin are the directories a probe may name its program by: anywhere
// else (/tmp/cat, a store path, ./ls) could be any program.
func systemBin(dir string) bool {
	switch dir {
	case "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/run/current-system/sw/bin", "/run/current-system/sw/sbin":
		return true
	}
	return false
}

// readOnlyArgv returns nil when argv runs a program of the allow-list in a
// way that only reads, else why not.
func readOnlyArgv(argv []string) error {
	if len(argv) == 0 {
		return errors.New("no program")
	}
	prog := argv[0]
	if strings.Contains(prog, "/") {
		if !path.IsAbs(prog) || path.Clean(prog) != prog || !systemBin(path.Dir(prog)) {
			return fmt.Errorf("%s is not in a system program directory", prog)
		}
		prog = path.Base(prog)
	}
	guard, known := readOnlyGuard(prog)
	if !known {
		return refusal(prog)
	}
	if err := guard(argv[1:]); err != nil {
		return fmt.Errorf("%s: %w", prog, err)
	}
	return nil
}

// refusal says why prog is not on the allow-list.
func refusal(prog string) error {
	switch prog {
	case "sh", "bash", "dash", "zsh", "ash", "ksh", "fish", "busybox", "toybox",
		"awk", "gawk", "mawk", "nawk", "sed", "perl", "python", "python2", "python3", "ruby", "lua", "tclsh",
		"nix", "nix-shell", "nix-build", "nix-env", "jq", "ed", "vi", "vim", "less", "more", "man", "make", "git":
		return fmt.Errorf("%s is an interpreter: it runs whatever program it is given", prog)
	case "env", "xargs", "nice", "ionice", "timeout", "nohup", "setsid", "sudo", "doas", "su", "runuser",
		"chroot", "nsenter", "unshare", "stdbuf", "flock", "watch", "time", "strace", "ltrace", "chrt",
		"taskset", "exec", "command", "builtin", "eval", "systemd-run", "script", "ssh", "parallel":
		return fmt.Errorf("%s runs another program", prog)
	case "parted":
		// Even `parted DEV print` writes: reading a GPT whose backup
		// header is damaged, libparted repairs and commits it.
		return errors.New("parted may write a partition table it only reads (use lsblk, blkid or sgdisk -p)")
	}
	return fmt.Errorf("%s is not known to be read-only", prog)
}

// readOnlyGuard returns the argument guard of a program on the allow-list:
// nil from the guard means this use only reads. known is false for a
// program that is not on the list.
func readOnlyGuard(prog string) (guard func(args []string) error, known bool) {
	switch prog {
	case "stat", "test", "[", "readlink", "realpath", "df", "du", "uname", "id", "whoami", "ls",
		"which", "lsblk", "findmnt", "basename", "dirname", "nproc", "true", "false":
		return anyArgs, true
	case "cat", "sha256sum", "sha1sum", "sha512sum", "md5sum", "b2sum", "wc", "head":
		// They open what they are given; opening a watchdog arms it.
		return noWatchdog, true
	case "hostid":
		return noArgs, true
	case "hostname":
		return hostnameQuery, true
	case "find":
		return findReads, true
	case "blkid":
		return blkidReads, true
	case "zpool":
		return zpoolQuery, true
	case "zfs":
		return zfsQuery, true
	case "ip":
		return ipShow, true
	case "sgdisk":
		return sgdiskPrint, true
	case "udevadm":
		return udevadmInfo, true
	case "unsquashfs":
		return unsquashfsListing, true
	case "nix-instantiate":
		return nixParse, true
	}
	return nil, false
}

func anyArgs([]string) error { return nil }

func noArgs(args []string) error {
	if len(args) > 0 {
		return errors.New("takes no arguments here")
	}
	return nil
}

func noWatchdog(args []string) error {
	for _, a := range args {
		if strings.HasPrefix(path.Clean(a), "/dev/watchdog") {
			return fmt.Errorf("opening %s arms the watchdog", a)
		}
	}
	return nil
}

// shortFlags returns the letters of a cluster of short options ("-po":
// "po"), "" for anything else.
func shortFlags(a string) string {
	if len(a) > 1 && a[0] == '-' && a[1] != '-' {
		return a[1:]
	}
	return ""
}

// hostnameQuery allows hostname with query options only: with an operand,
// or -F/-b, it sets the host name.
func hostnameQuery(args []string) error {
	query := []string{"-f", "--fqdn", "--long", "-s", "--short", "-d", "--domain", "-i", "--ip-address",
		"-I", "--all-ip-addresses", "-A", "--all-fqdns", "-a", "--alias"}
	for _, a := range args {
		if !slices.Contains(query, a) {
			return fmt.Errorf("%s sets the host name or is unknown", a)
		}
	}
	return nil
}

// findReads refuses the actions of find that run programs or write files.
func findReads(args []string) error {
	acts := []string{"-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls"}
	for _, a := range args {
		if slices.Contains(acts, a) {
			return fmt.Errorf("%s runs programs or writes files", a)
		}
	}
	return nil
}

// blkidReads refuses the cache writes of blkid: -g collects the cache's
// garbage, -c and -w name a cache file to write (allowed as /dev/null).
func blkidReads(args []string) error {
	for i, a := range args {
		if a == "-c" || a == "-w" {
			if i+1 < len(args) && args[i+1] == "/dev/null" {
				continue
			}
			return fmt.Errorf("%s writes a cache file", a)
		}
		if a == "--garbage-collect" || strings.HasPrefix(a, "--cache-file") && a != "--cache-file=/dev/null" {
			return fmt.Errorf("%s writes a cache file", a)
		}
		if strings.ContainsAny(shortFlags(a), "gcw") {
			return fmt.Errorf("%s writes a cache file", a)
		}
	}
	return nil
}

// zpoolQuery allows `zpool list|get|status` without -c (which runs
// scripts), and `zpool import` with no pool to import: it lists importable
// pools. With a pool name or id, -a or any other option, it imports.
func zpoolQuery(args []string) error {
	if len(args) == 0 {
		return errors.New("no query verb")
	}
	switch args[0] {
	case "list", "get", "status":
		for _, a := range args[1:] {
			if strings.ContainsRune(shortFlags(a), 'c') {
				return fmt.Errorf("%s %s runs scripts", args[0], a)
			}
		}
		return nil
	case "import":
		rest := args[1:]
		for i := 0; i < len(rest); i++ {
			switch rest[i] {
			case "-d":
				if i+1 == len(rest) {
					return errors.New("import -d without a directory")
				}
				i++ // the directory to search
			case "-D", "-s":
			default:
				return fmt.Errorf("import %s imports a pool", rest[i])
			}
		}
		return nil
	}
	return fmt.Errorf("%s is not a query verb (list, get, status, import without a pool)", args[0])
}

// zfsQuery allows zfs list and get.
func zfsQuery(args []string) error {
	if len(args) > 0 && (args[0] == "list" || args[0] == "get") {
		return nil
	}
	if len(args) == 0 {
		return errors.New("no query verb")
	}
	return fmt.Errorf("%s is not a query verb (list, get)", args[0])
}

// ipShow allows `ip [OPTIONS] OBJECT [show|list|get ...]` for objects that
// only describe the network, with output options only: -batch runs a file
// of commands, -netns another namespace's, -force goes on after errors.
func ipShow(args []string) error {
	options := []string{"-4", "-6", "-0", "-j", "-json", "-p", "-pretty", "-o", "-oneline", "-d", "-details",
		"-s", "-stats", "-statistics", "-br", "-brief", "-c", "-color", "-h", "-human", "-r", "-resolve"}
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-"); i++ {
		if !slices.Contains(options, args[i]) {
			return fmt.Errorf("option %s is not an output option", args[i])
		}
	}
	if i == len(args) {
		return errors.New("no object")
	}
	objects := []string{"link", "address", "addr", "a", "route", "r", "neighbour", "neighbor", "neigh",
		"rule", "maddress", "maddr", "mroute", "netconf"}
	if !slices.Contains(objects, args[i]) {
		return fmt.Errorf("object %s is not one that only shows", args[i])
	}
	if i+1 == len(args) {
		return nil // the object's default verb lists
	}
	if verb := args[i+1]; verb != "show" && verb != "list" && verb != "lst" && !(verb == "get" && args[i] != "link") {
		return fmt.Errorf("%s %s is not a show or list verb", args[i], verb)
	}
	return nil
}

// sgdiskPrint allows sgdisk -p, -i N, -O and -v on one device: every other
// option edits the table.
func sgdiskPrint(args []string) error {
	devices := 0
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-p" || a == "--print" || a == "-O" || a == "--print-mbr" || a == "-v" || a == "--verify":
		case a == "-i" || a == "--info":
			if i+1 == len(args) {
				return fmt.Errorf("%s without a partition number", a)
			}
			i++
		case strings.HasPrefix(a, "--info=") || strings.HasPrefix(a, "-i=") || len(a) > 2 && strings.HasPrefix(a, "-i") && isDigits(a[2:]):
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("%s edits the partition table or is unknown", a)
		default:
			devices++
		}
	}
	if devices != 1 {
		return fmt.Errorf("want one device, got %d", devices)
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// udevadmInfo allows `udevadm info` without -c (--cleanup-db, which deletes
// the database). test-builtin is refused: builtins such as kmod act.
func udevadmInfo(args []string) error {
	if len(args) == 0 || args[0] != "info" {
		if len(args) == 0 {
			return errors.New("no verb")
		}
		return fmt.Errorf("%s is not info", args[0])
	}
	for _, a := range args[1:] {
		if a == "--cleanup-db" || strings.ContainsRune(shortFlags(a), 'c') {
			return fmt.Errorf("info %s deletes the database", a)
		}
	}
	return nil
}

// nixParse allows nix-instantiate --parse only: evaluating may build or
// fetch into the store.
func nixParse(args []string) error {
	parse := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--parse":
			parse = true
		case a == "-E" || a == "--expr" || a == "--json" || a == "-" || a == "--":
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("%s may evaluate or write", a)
		}
	}
	if !parse {
		return errors.New("without --parse it evaluates, which may build")
	}
	return nil
}

// unsquashfsListing allows `unsquashfs -s|-l|-ll|-lls|... IMAGE [PATHS]`:
// with a listing or statistics option and no other option, it extracts
// nothing.
func unsquashfsListing(args []string) error {
	listing := []string{"-s", "-stat", "-l", "-ls", "-ll", "-lls", "-lc", "-llc", "-lln", "-llnumeric", "-linfo"}
	harmless := []string{"-UTC", "-n", "-no-progress", "-q", "-quiet"}
	lists, operands := false, 0
	for _, a := range args {
		switch {
		case slices.Contains(listing, a):
			lists = true
		case slices.Contains(harmless, a):
		case len(a) > 0 && a[0] == '-':
			return fmt.Errorf("%s extracts or is unknown", a) // -d, -f, -dest and anything unknown
		default:
			operands++
		}
	}
	if !lists || operands == 0 {
		return errors.New("extracts without a listing option and an image")
	}
	return nil
}
