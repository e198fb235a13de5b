package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// interrupted is the cause of a run's context when a signal stopped it.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return "interrupted by " + i.sig.String() }

// stopSignals are the signals that stop a run: nothing new starts, the
// commands in flight are killed, the recap and retry file are written.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// signalContext returns a context cancelled by the first stop signal; a
// second one calls exit(128+signal) at once. stop ends the watch.
func signalContext(parent context.Context, stderr io.Writer, exit func(int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, stopSignals...)
	done := make(chan struct{})
	go func() {
		var first os.Signal
		select {
		case first = <-sigs:
		case <-done:
			return
		}
		cancel(interrupted{toSyscall(first)})
		fmt.Fprintf(stderr, "nixbook: %s: stopping the commands in flight; a second signal exits at once\n", first)
		select {
		case again := <-sigs:
			fmt.Fprintf(stderr, "nixbook: %s again: exiting at once\n", again)
			exit(128 + int(toSyscall(again)))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

func toSyscall(s os.Signal) syscall.Signal {
	if n, ok := s.(syscall.Signal); ok {
		return n
	}
	return syscall.SIGINT
}

// interruptExit is the exit code of a run stopped by ctx's signal: 128 plus
// the signal's number (130 for Ctrl-C).
func interruptExit(ctx context.Context) int {
	var i interrupted
	if errors.As(context.Cause(ctx), &i) {
		return 128 + int(i.sig)
	}
	return 128 + int(syscall.SIGINT)
}
