package fail

import (
	"context"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

func TestFail(t *testing.T) {
	for args, want := range map[string]string{
		"":                      "Failed as requested from task",
		"msg: ks1 has no disks": "ks1 has no disks",
	} {
		p, err := moduletest.New(t, Spec, args).Check(context.Background(), moduletest.NewLocalHost(t).ReadOnly())
		if err == nil || err.Error() != want {
			t.Errorf("%q: err = %v, want %q", args, err, want)
		}
		if p != nil {
			t.Errorf("%q: plan = %+v, want none", args, p)
		}
	}
	if _, err := Spec.New(moduletest.Decoder("message: x")); err == nil {
		t.Error("unknown key accepted")
	}
}
