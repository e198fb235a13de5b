package ovh

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

// TestReaderSendsOnlyGET: the read-only view Check gets reads the API, and
// any write made through its client is refused before it leaves, by the
// client and, below it, by its HTTP transport; the API sees GET calls
// only. The writer Apply gets does write.
func TestReaderSendsOnlyGET(t *testing.T) {
	clearOVHEnv(t)
	emu, endpoint := startAPI(t, ovhapi.Config{}, testSN)
	vars := map[string]any{VarEndpoint: endpoint, VarAppKey: testAK, VarAppSecret: testAS, VarConsumerKey: testCK, VarRateLimit: "1000/s burst 1000"}
	env := Env{Limiters: NewLimiters(), RetryWait: time.Millisecond}
	ctx := context.Background()
	r, err := env.Reader("", vars, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetServer(ctx, testSN); err != nil {
		t.Fatalf("read: %v", err)
	}
	writes := []struct {
		name string
		do   func() error
	}{
		{"put", func() error { return r.c.Do(ctx, SetBootRequest(testSN, 230242, ""), nil) }},
		{"reboot", func() error { _, err := r.c.Reboot(ctx, testSN, fastWait()); return err }},
		{"below the client", func() error {
			// A path that skipped the client's own refusal meets the
			// transport's.
			r.c.readOnly = false
			defer func() { r.c.readOnly = true }()
			return r.c.Do(ctx, RebootRequest(testSN), nil)
		}},
	}
	for _, w := range writes {
		if err := w.do(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s through the reader: %v, want %v", w.name, err, ErrReadOnly)
		}
	}
	if got := r.Calls().Refused; got != int64(len(writes)) {
		t.Errorf("%d writes counted as refused, want %d", got, len(writes))
	}
	for _, c := range emu.Calls(testSN) {
		if c.Method != "GET" {
			t.Errorf("the API saw %s %s through a reader", c.Method, c.Path)
		}
	}
	w, err := env.Writer("", vars, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Do(ctx, SetBootRequest(testSN, 230242, ""), nil); err != nil {
		t.Fatalf("write through the writer: %v", err)
	}
	if st, _ := emu.Server(testSN); st.BootID != 230242 {
		t.Errorf("boot id %d after the writer's PUT, want 230242", st.BootID)
	}
}
