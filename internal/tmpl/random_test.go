package tmpl

import (
	"reflect"
	"strings"
	"testing"
)

// With a seed, random picks what Python's random.Random(seed) picks, so
// what Ansible picks: the values come from Python 3.11.
func TestRandomWithSeed(t *testing.T) {
	e := New()
	tests := []struct {
		expr string
		want any
	}{
		{"60 | random(seed='web1')", 52},
		{"60 | random(seed=42)", 40},
		{"60 | random(seed='db.example.com')", 4},
		{"60 | random(seed=0)", 54},
		{"60 | random(seed=1099511627776)", 6},
		{"['a', 'b', 'c', 'd'] | random(seed='web1')", "c"},
		{"['a', 'b', 'c', 'd'] | random(seed=0)", "d"},
		{"100 | random(10, 5, seed='web1')", 60},
		{"100 | random(start=10, step=5, seed=42)", 25},
		{"1099511627776 | random(seed='web1')", 720783362290},
		{"1099511627776 | random(seed=0)", 849735321549},
		{"0 | random(100, -7, seed='db.example.com')", 93},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := e.Eval(tt.expr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval(%q) = %#v, want %#v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestRandomWithoutSeed(t *testing.T) {
	e := New()
	for range 100 {
		got, err := e.Eval("10 | random(start=5, step=2)", nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := got.(int); n < 5 || n >= 10 || n%2 == 0 {
			t.Fatalf("10 | random(start=5, step=2) = %d", n)
		}
		got, _ = e.Eval("['x'] | random", nil)
		if got != "x" {
			t.Fatalf("['x'] | random = %v", got)
		}
	}
}

func TestRandomErrors(t *testing.T) {
	e := New()
	tests := []struct{ expr, want string }{
		{"0 | random", "random: empty range for randrange(0, 0, 1)"},
		{"5 | random(10)", "random: empty range"},
		{"[] | random", "random: cannot choose from an empty sequence"},
		{"[1] | random(start=1)", "random: start and step can only be used with integer values"},
		{"{'a': 1} | random", "random: can only be used on sequences and integers, got a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := e.Eval(tt.expr, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Eval(%q) error = %v, want it to contain %q", tt.expr, err, tt.want)
			}
		})
	}
}
