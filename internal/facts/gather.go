package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Gather runs the facts script on a host through run, which executes an argv
// there (`sh -c SCRIPT`), and parses what it printed.
func Gather(ctx context.Context, run func(ctx context.Context, argv []string) ([]byte, error)) (*Facts, error) {
	out, err := run(ctx, []string{"sh", "-c", Script()})
	if err != nil {
		return nil, fmt.Errorf("gather facts: %w", err)
	}
	f, err := Parse(out)
	if err != nil {
		return nil, fmt.Errorf("gather facts: %w", err)
	}
	return f, nil
}

// Map returns the facts as plain maps, lists, strings, bools and numbers
// keyed by their JSON names, for templates. Whole numbers are int64.
func (f *Facts) Map() map[string]any {
	b, err := json.Marshal(f)
	if err != nil {
		panic(fmt.Sprintf("facts: marshal: %v", err)) // only plain fields: cannot fail
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		panic(fmt.Sprintf("facts: unmarshal: %v", err))
	}
	return plainNumbers(m).(map[string]any)
}

// plainNumbers replaces json.Number with int64 (or float64 when fractional),
// so templates compare sizes and counts as numbers.
func plainNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = plainNumbers(x)
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = plainNumbers(x)
		}
		return v
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		x, _ := v.Float64()
		return x
	}
	return v
}

// Disk finds a whole disk by its device path (/dev/sda), bare kernel name
// (sda) or one of its /dev/disk/by-id links.
func (f *Facts) Disk(name string) (*Disk, bool) {
	p := name
	if !strings.HasPrefix(p, "/") {
		p = "/dev/" + p
	}
	p = path.Clean(p)
	for i := range f.Disks {
		d := &f.Disks[i]
		if d.Path == p || slices.Contains(d.ByID, p) {
			return d, true
		}
	}
	return nil, false
}

// PrimaryInterface is the interface carrying the IPv4 default route, else the
// IPv6 one; nil when the host has no default route.
func (f *Facts) PrimaryInterface() *Interface {
	for _, name := range []string{f.Gateway4Interface, f.Gateway6Interface} {
		if name == "" {
			continue
		}
		if i := f.Interface(name); i != nil {
			return i
		}
	}
	return nil
}

// Interface finds an interface by name; nil when there is none.
func (f *Facts) Interface(name string) *Interface {
	for i := range f.Interfaces {
		if f.Interfaces[i].Name == name {
			return &f.Interfaces[i]
		}
	}
	return nil
}
