package hostkeys

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRedial(t *testing.T) {
	refused := errors.New("connection refused")
	t.Run("until it answers", func(t *testing.T) {
		calls := 0
		err := Redial(context.Background(), func(context.Context) error {
			if calls++; calls < 3 {
				return refused
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Errorf("Redial = %v after %d dials, want nil after 3", err, calls)
		}
	})
	t.Run("a changed key ends it", func(t *testing.T) {
		calls := 0
		err := Redial(context.Background(), func(context.Context) error { calls++; return &ChangedError{Name: "ks1"} })
		var changed *ChangedError
		if !errors.As(err, &changed) || calls != 1 {
			t.Errorf("Redial = %v after %d dials, want the changed key after 1", err, calls)
		}
	})
	t.Run("ctx ends it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := Redial(ctx, func(context.Context) error { return refused })
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, refused) || err.Error() != "reconnect: context deadline exceeded (last error: connection refused)" {
			t.Errorf("Redial = %v", err)
		}
	})
}
