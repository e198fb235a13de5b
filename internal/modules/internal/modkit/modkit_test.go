package modkit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
)

type strictDecoder string

func (s strictDecoder) Decode(v any) error {
	d := yaml.NewDecoder(strings.NewReader(string(s)))
	d.KnownFields(true)
	return d.Decode(v)
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "echo hello world", want: []string{"echo", "hello", "world"}},
		{in: "  spaced \t out\n", want: []string{"spaced", "out"}},
		{in: `printf '%s\n' "a b" c\ d`, want: []string{"printf", `%s\n`, "a b", "c d"}},
		{in: `echo "it's" 'say "hi"'`, want: []string{"echo", "it's", `say "hi"`}},
		{in: `echo "a\"b\\c\d\$x"`, want: []string{"echo", `a"b\c\d$x`}},
		{in: `echo $HOME | grep x > out`, want: []string{"echo", "$HOME", "|", "grep", "x", ">", "out"}},
		{in: `empty '' ""`, want: []string{"empty", "", ""}},
		{in: `ab'cd'"ef"`, want: []string{"abcdef"}},
		{in: "line \\\ncontinued", want: []string{"line", "continued"}},
		{in: `trailing\`, want: []string{`trailing\`}},
		{in: "", want: nil},
		{in: `echo 'open`, wantErr: true},
		{in: `echo "open`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := SplitWords(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("SplitWords(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type testArgs struct {
	Cmd     Argv     `yaml:"cmd" required:""`
	Timeout Duration `yaml:"timeout" default:"10m"`
	Sleep   Duration `yaml:"sleep" default:"1s"`
	Flag    bool     `yaml:"flag" default:"true"`
	Reboot  Argv     `yaml:"reboot" default:"sh -c 'sleep 1; reboot'"`
	Inner   `yaml:",inline"`
}

type Inner struct {
	Dest string `yaml:"dest" required:""`
	Mode string `yaml:"mode" default:"0644"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    testArgs
		wantErr string
	}{
		{
			name: "defaults fill what is not written",
			yaml: "cmd: echo hi\ndest: /x\n",
			want: testArgs{
				Cmd: Argv{"echo", "hi"}, Timeout: Duration(10 * time.Minute), Sleep: Duration(time.Second), Flag: true,
				Reboot: Argv{"sh", "-c", "sleep 1; reboot"}, Inner: Inner{Dest: "/x", Mode: "0644"},
			},
		},
		{
			name: "written values win, false and 0 included",
			yaml: "cmd: [ls, -l, 'a b']\ntimeout: 90\nsleep: 0\nflag: false\nreboot: [systemctl, reboot]\ndest: /y\nmode: '0600'\n",
			want: testArgs{
				Cmd: Argv{"ls", "-l", "a b"}, Timeout: Duration(90 * time.Second), Sleep: 0, Flag: false,
				Reboot: Argv{"systemctl", "reboot"}, Inner: Inner{Dest: "/y", Mode: "0600"},
			},
		},
		{name: "required missing", yaml: "dest: /x\n", wantErr: `"cmd" is required and must not be empty`},
		{name: "required in inline struct", yaml: "cmd: true\n", wantErr: `"dest" is required and must not be empty`},
		{name: "unknown key", yaml: "cmd: true\ndest: /x\nbogus: 1\n", wantErr: "field bogus not found"},
		{name: "bad duration", yaml: "cmd: true\ndest: /x\ntimeout: soon\n", wantErr: `got "soon"`},
		{name: "negative duration", yaml: "cmd: true\ndest: /x\ntimeout: -5\n", wantErr: "negative duration"},
		{name: "bad quoting", yaml: "cmd: echo 'open\ndest: /x\n", wantErr: "unterminated single quote"},
		{name: "nested list in argv", yaml: "cmd: [a, [b]]\ndest: /x\n", wantErr: "must be strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got testArgs
			err := Decode(strictDecoder(tt.yaml), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeDocMatchesDefaults(t *testing.T) {
	// The registry documents the same tags Decode applies.
	spec := modules.Spec{Args: testArgs{}}
	var names []string
	for _, d := range spec.Doc() {
		names = append(names, d.Name+"="+d.Default)
	}
	want := []string{"cmd=", "timeout=10m", "sleep=1s", "flag=true", "reboot=sh -c 'sleep 1; reboot'", "dest=", "mode=0644"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("doc = %q, want %q", names, want)
	}
}

type fakeHost struct {
	modules.ReadOnlyHost
	vars  map[string]any
	facts *facts.Facts
}

func (f fakeHost) Reach() modules.Reach  { return modules.Reach{Dial: "203.0.113.10"} }
func (f fakeHost) Scope() map[string]any { return f.vars }
func (f fakeHost) Facts() *facts.Facts   { return f.facts }

func TestVars(t *testing.T) {
	h := fakeHost{vars: map[string]any{"a": 1}, facts: &facts.Facts{Hostname: "ks1", CPUs: 4}}
	got := Vars(h)
	f, ok := got["facts"].(map[string]any)
	if !ok || f["hostname"] != "ks1" || f["cpus"] != float64(4) || got["a"] != 1 {
		t.Fatalf("Vars = %v", got)
	}
	if _, touched := h.vars["facts"]; touched {
		t.Error("Vars changed the host's own map")
	}
	own := fakeHost{vars: map[string]any{"facts": "runner's"}, facts: &facts.Facts{Hostname: "ks1"}}
	if got := Vars(own)["facts"]; got != "runner's" {
		t.Errorf("facts = %v, want the runner's value kept", got)
	}
}

func TestArgvDocType(t *testing.T) {
	if got := modules.TypeName(reflect.TypeOf(Argv{})); got != "string or list of string" {
		t.Errorf("type name = %q", got)
	}
	if got := modules.TypeName(reflect.TypeOf(Duration(0))); got != "duration" {
		t.Errorf("type name = %q", got)
	}
}

func TestStringList(t *testing.T) {
	tests := []struct {
		yaml    string
		want    StringList
		wantErr bool
	}{
		{yaml: "v: x == 1", want: StringList{"x == 1"}},
		{yaml: "v: [a, 'b c', 3]", want: StringList{"a", "b c", "3"}},
		{yaml: "v: [[a]]", wantErr: true},
		{yaml: "v: {a: b}", wantErr: true},
	}
	for _, tt := range tests {
		var got struct {
			V StringList `yaml:"v"`
		}
		err := strictDecoder(tt.yaml).Decode(&got)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v, want error %v", tt.yaml, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got.V, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.yaml, got.V, tt.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	tests := map[time.Duration]string{
		10 * time.Minute:                "10m",
		time.Hour:                       "1h",
		90 * time.Minute:                "1h30m",
		time.Hour + 5*time.Second:       "1h0m5s",
		1500 * time.Millisecond:         "1.5s",
		0:                               "0s",
		10*time.Minute + 30*time.Second: "10m30s",
	}
	for d, want := range tests {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", time.Duration(d), got, want)
		}
	}
}

type newArgs struct {
	Name string `yaml:"name" required:""`
}

type newModule struct {
	modules.Module
	args newArgs
}

func TestNew(t *testing.T) {
	build := New(func(a newArgs) (modules.Module, error) {
		if a.Name == "bad" {
			return (*newModule)(nil), errors.New("bad name")
		}
		return &newModule{args: a}, nil
	})
	m, err := build(strictDecoder("name: ks1"))
	if err != nil || m.(*newModule).args.Name != "ks1" {
		t.Fatalf("New = %v, %v", m, err)
	}
	if m, err := build(strictDecoder("{}")); err == nil || m != nil {
		t.Errorf("a missing required argument: %v, %v", m, err)
	}
	// A constructor's typed nil is no module: the caller sees a nil interface.
	if m, err := build(strictDecoder("name: bad")); err == nil || m != nil {
		t.Errorf("a failing constructor: %#v, %v", m, err)
	}
}

func TestPlanData(t *testing.T) {
	type plan struct{ n int }
	if p, err := PlanData[*plan](&modules.Plan{Data: &plan{n: 3}}); err != nil || p.n != 3 {
		t.Errorf("PlanData = %v, %v", p, err)
	}
	if _, err := PlanData[*plan](&modules.Plan{Data: "someone else's"}); err == nil {
		t.Error("a plan of another module was taken")
	}
}

type varArgs struct {
	Service string         `yaml:"service" var:"ovh_service"`
	Port    int            `yaml:"port" var:"port"`
	Off     string         `yaml:"-" var:"ovh_monitoring"`
	Keys    any            `yaml:"-" var:"ssh_keys,rescue_ssh_key"`
	Timeout Duration       `yaml:"timeout" default:"1m" var:"timeout"`
	Keep    bool           `yaml:"keep" default:"true" var:"keep"`
	Extra   map[string]any `yaml:"extra"`
}

// TestDecodeFromVars: an argument with a var tag that the task leaves out
// takes the first of its variables the host defines, typed as if the task
// had written it; one the task gives wins, a false or 0 too, and an empty
// one falls back; without a host, nothing is filled.
func TestDecodeFromVars(t *testing.T) {
	vars := map[string]any{"ovh_service": "ns1.ip-203-0-113.eu", "port": "2222", "ovh_monitoring": false,
		"rescue_ssh_key": "ssh-ed25519 AAAA", "timeout": "5m"}
	tests := []struct {
		name string
		args string
		vars map[string]any
		want varArgs
	}{
		{name: "from the variables", args: "{}", vars: vars, want: varArgs{
			Service: "ns1.ip-203-0-113.eu", Port: 2222, Off: "false", Keys: "ssh-ed25519 AAAA", Timeout: Duration(5 * time.Minute), Keep: true}},
		{name: "the first defined wins", args: "{}", vars: map[string]any{"ssh_keys": []any{"a", "b"}, "rescue_ssh_key": "c"},
			want: varArgs{Keys: []any{"a", "b"}, Timeout: Duration(time.Minute), Keep: true}},
		{name: "the task's argument wins", args: "service: other\nport: 22", vars: vars, want: varArgs{
			Service: "other", Port: 22, Off: "false", Keys: "ssh-ed25519 AAAA", Timeout: Duration(5 * time.Minute), Keep: true}},
		{name: "the task's false and 0 win", args: "port: 0\nkeep: false", vars: map[string]any{"port": 2222, "keep": true},
			want: varArgs{Port: 0, Timeout: Duration(time.Minute), Keep: false}},
		{name: "a variable's false wins over the default", args: "{}", vars: map[string]any{"keep": false},
			want: varArgs{Timeout: Duration(time.Minute), Keep: false}},
		{name: "an empty argument falls back", args: "service: ''", vars: vars, want: varArgs{
			Service: "ns1.ip-203-0-113.eu", Port: 2222, Off: "false", Keys: "ssh-ed25519 AAAA", Timeout: Duration(5 * time.Minute), Keep: true}},
		{name: "no host", args: "{}", want: varArgs{Timeout: Duration(time.Minute), Keep: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d modules.Decoder = strictDecoder(tt.args)
			if tt.vars != nil {
				d = modules.WithVars(d, tt.vars)
			}
			var got varArgs
			if err := Decode(d, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	var bad varArgs
	err := Decode(modules.WithVars(strictDecoder("{}"), map[string]any{"port": "many"}), &bad)
	if err == nil || !strings.Contains(err.Error(), "the host's port variable") {
		t.Errorf("a variable of the wrong type: %v, want an error naming it", err)
	}
	// A var-only input is no argument: a task cannot set it.
	if err := Decode(strictDecoder("off: true"), &bad); err == nil {
		t.Error("a task set an input declared yaml:\"-\"")
	}
}
