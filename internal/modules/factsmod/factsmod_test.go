package factsmod

import (
	"context"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
)

func TestFacts(t *testing.T) {
	h := moduletest.NewLocalHost(t)
	h.FactsVal = &facts.Facts{Hostname: "ks1", Firmware: "uefi", Disks: []facts.Disk{{Path: "/dev/sda"}}}
	p, err := moduletest.New(t, Spec, "").Check(context.Background(), h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if p.Changed() {
		t.Errorf("facts plans changes: %v", p.Changes)
	}
	if p.Output["hostname"] != "ks1" || p.Output["firmware"] != "uefi" {
		t.Errorf("output = %v", p.Output)
	}
	disks, _ := p.Output["disks"].([]any)
	if len(disks) != 1 || disks[0].(map[string]any)["path"] != "/dev/sda" {
		t.Errorf("disks = %#v", p.Output["disks"])
	}
	if _, err := Spec.New(moduletest.Decoder("refresh: true")); err == nil {
		t.Error("unknown key accepted")
	}
}
