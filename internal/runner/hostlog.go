package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// hostLog is a host's log file: every command, its exit code, duration and
// output. It is safe for the concurrent stdout and stderr copies of a
// command. The file is created when the host first logs, and its
// descriptor is released between plays, so a large inventory does not run
// out of file descriptors.
type hostLog struct {
	mu     sync.Mutex
	path   string // "" when no logs are written
	f      *os.File
	failed error // the file could not be opened: nothing more is written
	onFail func(error)
}

// newHostLog names host's log in dir (prepared by PrepareLogDir) without
// opening it; dir "" writes no log.
func newHostLog(dir, host string, onFail func(error)) *hostLog {
	if dir == "" {
		return &hostLog{}
	}
	return &hostLog{path: filepath.Join(dir, LogFileName(host)), onFail: onFail}
}

// LogFileName is the name of a host's log: the inventory name, made safe as
// one path element.
func LogFileName(host string) string {
	name := strings.NewReplacer("/", "_", "\x00", "_").Replace(host)
	if strings.HasPrefix(name, ".") {
		name = "_" + name
	}
	return name + ".log"
}

// open opens the file, never through a symbolic link: created exclusively,
// or, when an earlier run with the same --log-dir left it, continued if it
// is a plain file of ours.
func (l *hostLog) open() error {
	f, err := openLogFile(l.path)
	if err != nil {
		return fmt.Errorf("host log: %w", err)
	}
	l.f = f
	return nil
}

// openLogFile creates path exclusively, 0600, or appends to the file an
// earlier run left there once checked (see checkLogFile).
func openLogFile(path string) (*os.File, error) {
	const flags = os.O_WRONLY | os.O_APPEND | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	f, err := os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, 0o600)
	if !errors.Is(err, fs.ErrExist) {
		return f, err
	}
	if f, err = os.OpenFile(path, flags, 0); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkLogFile(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkLogFile accepts an existing log only when it is a plain file of ours
// with one name (not a hard link to a file elsewhere), readable by us alone.
func checkLogFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a plain file (%s): remove it or give another --log-dir", path, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("%s belongs to another user (uid %d): give another --log-dir", path, st.Uid)
		}
		if st.Nlink != 1 {
			return fmt.Errorf("%s has %d names (a hard link): remove it or give another --log-dir", path, st.Nlink)
		}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable or writable by others (mode %04o): remove it or give another --log-dir", path, fi.Mode().Perm())
	}
	return nil
}

func (l *hostLog) Printf(format string, args ...any) {
	if l == nil || l.path == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return
	}
	if l.f == nil {
		if err := l.open(); err != nil {
			l.failed = err
			if l.onFail != nil {
				l.onFail(err)
			}
			return
		}
	}
	fmt.Fprintf(l.f, "%s %s\n", time.Now().Format("15:04:05.000"), escapeControl(fmt.Sprintf(format, args...)))
}

// release closes the descriptor; the next line reopens the file.
func (l *hostLog) release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

func (l *hostLog) Close() error {
	l.release()
	return nil
}

// PrepareLogDir makes dir ready for a run's logs: created 0700 if missing;
// refused when it, or a directory above it, is a place others could swap
// files in (a symbolic link, writable by others without the sticky bit,
// owned by another user), or when one of files is there but is no log of
// ours to continue (see checkLogFile).
func PrepareLogDir(dir string, files []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("log dir %s is a symbolic link: give the directory itself", dir)
	}
	if err := safeDir(dir, fi, false); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("log dir: %w", err)
		}
		if err := safeDir(p, fi, true); err != nil {
			return err
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	for _, f := range files {
		path := filepath.Join(dir, f)
		fi, err := os.Lstat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("log dir: %w", err)
		default:
			if err := checkLogFile(path, fi); err != nil {
				return fmt.Errorf("log dir: %w", err)
			}
		}
	}
	return nil
}

// safeDir refuses a directory others may write to; above the log dir, a
// sticky one (/tmp) is fine, as others cannot replace what is ours there.
func safeDir(path string, fi fs.FileInfo, ancestor bool) error {
	if !fi.IsDir() {
		return fmt.Errorf("log dir: %s is not a directory", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("log dir: %s belongs to another user (uid %d): choose a directory of your own", path, st.Uid)
	}
	sticky := ancestor && fi.Mode()&fs.ModeSticky != 0
	if fi.Mode().Perm()&0o022 != 0 && !sticky {
		return fmt.Errorf("log dir: %s is writable by others (mode %04o): choose another --log-dir or remove their write permission", path, fi.Mode().Perm())
	}
	return nil
}

// escapeControl writes control characters (escape sequences a host
// printed, say) as \xNN, so the log keeps every byte but shows them
// harmlessly.
func escapeControl(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isControl(rune(c)) {
			fmt.Fprintf(&b, `\x%02x`, c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

// lineWriter splits a stream into lines and hands each complete line on.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	emit func(line string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(w.buf.Next(i + 1))
		w.emit(line[:len(line)-1])
	}
	// A line without end is passed on in pieces rather than held whole.
	for w.buf.Len() >= maxLine {
		w.emit(string(w.buf.Next(maxLine)))
	}
	return len(p), nil
}

// Flush hands on a last line that had no newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
}
