package hostinit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nixbook/nixbook/sim/simstate"
)

// runReaper outlives a fleet's process: if that process dies without taking
// its fleet down (a test killed by its timeout, a daemon killed -9), the
// reaper removes what the fleet recorded in dir.
func runReaper(stdin io.Reader, dir, owner string, stderr io.Writer) int {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	if strings.TrimSpace(line) == ReaperDone {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := simstate.CleanupOwned(ctx, dir, 0, owner); err != nil {
		fmt.Fprintf(stderr, "nixbook-sim reaper: %v\n", err)
		return 1
	}
	return 0
}
