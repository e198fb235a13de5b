package hostkeys

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Redial calls dial until it succeeds or ctx ends, waiting half a second,
// then twice as long each time, up to 5 s: a server that reboots or kexecs
// answers again within seconds to minutes. A changed host key
// (*ChangedError) ends it at once, as waiting does not make it right.
func Redial(ctx context.Context, dial func(ctx context.Context) error) error {
	delay := 500 * time.Millisecond
	for {
		err := dial(ctx)
		if err == nil {
			return nil
		}
		var changed *ChangedError
		if errors.As(err, &changed) {
			return err
		}
		select {
		case <-ctx.Done():
			// The last error stays in the chain: an unreachable host is
			// reported as such, not as a failed task.
			return fmt.Errorf("reconnect: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}
