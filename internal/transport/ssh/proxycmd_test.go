package ssh

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A ProxyCommand that has already exited fails the handshake's first write
// or first read; either way the error says what the command said.
func TestEndedProxyCommandSaysWhy(t *testing.T) {
	for _, op := range []string{"write", "read"} {
		t.Run(op, func(t *testing.T) {
			c, err := dialCommand(context.Background(), "sh -c 'echo no route to pcfail >&2; exit 1'")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			<-c.done
			time.Sleep(10 * time.Millisecond)
			if op == "write" {
				_, err = c.Write([]byte("SSH-2.0-nixbook\r\n"))
			} else {
				_, err = c.Read(make([]byte, 64))
			}
			if err == nil || !strings.Contains(err.Error(), "no route to pcfail") {
				t.Errorf("%s: %v", op, err)
			}
		})
	}
}
