package playbooks

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/yamlx"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// dump renders a playbook canonically for golden files.
func dump(pb *Playbook) string {
	type task struct {
		Source       string         `yaml:"source"`
		Name         string         `yaml:"name,omitempty"`
		Module       string         `yaml:"module"`
		Args         *yaml.Node     `yaml:"args"`
		When         []string       `yaml:"when,omitempty"`
		Register     string         `yaml:"register,omitempty"`
		Loop         any            `yaml:"loop,omitempty"`
		LoopVar      string         `yaml:"loop_var"`
		Retries      int            `yaml:"retries,omitempty"`
		Until        []string       `yaml:"until,omitempty"`
		Delay        string         `yaml:"delay,omitempty"`
		IgnoreErrors bool           `yaml:"ignore_errors,omitempty"`
		Tags         []string       `yaml:"tags,omitempty"`
		Timeout      string         `yaml:"timeout,omitempty"`
		NoLog        bool           `yaml:"no_log,omitempty"`
		Notify       []string       `yaml:"notify,omitempty"`
		ChangedWhen  []string       `yaml:"changed_when,omitempty"`
		FailedWhen   []string       `yaml:"failed_when,omitempty"`
		Chroot       string         `yaml:"chroot,omitempty"`
		Vars         map[string]any `yaml:"vars,omitempty"`
		Listen       []string       `yaml:"listen,omitempty"`
	}
	type play struct {
		Source         string         `yaml:"source"`
		Name           string         `yaml:"name,omitempty"`
		Hosts          string         `yaml:"hosts"`
		GatherFacts    bool           `yaml:"gather_facts"`
		Serial         []string       `yaml:"serial,omitempty"`
		MaxFailPercent *int           `yaml:"max_fail_percentage,omitempty"`
		AnyErrorsFatal bool           `yaml:"any_errors_fatal,omitempty"`
		Vars           map[string]any `yaml:"vars,omitempty"`
		Tasks          []task         `yaml:"tasks,omitempty"`
		Handlers       []task         `yaml:"handlers,omitempty"`
	}
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	tasks := func(in []*Task) []task {
		var out []task
		for _, t := range in {
			out = append(out, task{
				Source: t.Source, Name: t.Name, Module: t.Module, Args: t.Args, When: t.When,
				Register: t.Register, Loop: t.Loop, LoopVar: t.LoopVar, Retries: t.Retries,
				Until: t.Until, Delay: dur(t.Delay), IgnoreErrors: t.IgnoreErrors, Tags: t.Tags,
				Timeout: dur(t.Timeout), NoLog: t.NoLog, Notify: t.Notify, ChangedWhen: t.ChangedWhen,
				FailedWhen: t.FailedWhen, Chroot: t.Chroot, Vars: t.Vars, Listen: t.Listen,
			})
		}
		return out
	}
	var plays []play
	for _, p := range pb.Plays {
		var serial []string
		for _, b := range p.Serial {
			if b.Percent > 0 {
				serial = append(serial, fmt.Sprintf("%d%%", b.Percent))
			} else {
				serial = append(serial, fmt.Sprint(b.Count))
			}
		}
		plays = append(plays, play{
			Source: p.Source, Name: p.Name, Hosts: p.Hosts, GatherFacts: p.GatherFacts, Serial: serial,
			MaxFailPercent: p.MaxFailPercent, AnyErrorsFatal: p.AnyErrorsFatal, Vars: p.Vars,
			Tasks: tasks(p.Tasks), Handlers: tasks(p.Handlers),
		})
	}
	out, err := yaml.Marshal(map[string]any{"path": pb.Path, "dir": pb.Dir, "plays": plays})
	if err != nil {
		panic(err)
	}
	return string(out)
}

func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", golden, got)
	}
}

func TestLoadGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			pb, err := Load(file, testRegistry())
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(file, ".yml")+".golden", dump(pb))
		})
	}
}

func TestLoadFullSemantics(t *testing.T) {
	pb, err := Load("testdata/full.yml", testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	p := pb.Plays[0]
	if pb.Dir != "testdata" || p.Hosts != "web,db" || p.GatherFacts || *p.MaxFailPercent != 20 || !p.AnyErrorsFatal {
		t.Errorf("play = %+v", p)
	}
	if fmt.Sprint(p.Serial) != "[{1 0} {0 10} {0 25}]" {
		t.Errorf("serial = %v", p.Serial)
	}
	// vars_files come after vars, later files last.
	if p.Vars["root"] != "/target" || p.Vars["file_mode"] != 420 || p.Vars["greeting"] != "hello {{ inventory_hostname }}" {
		t.Errorf("vars = %v", p.Vars)
	}
	byName := map[string]*Task{}
	for _, task := range p.Tasks {
		byName[task.Name] = task
	}
	if tk := byName["Wait for the disk"]; tk.Retries != 3 || tk.Delay != 5*time.Second {
		t.Errorf("until without retries: retries %d delay %v", tk.Retries, tk.Delay)
	}
	if tk := byName["Retry without until"]; tk.Retries != 2 || tk.Delay != 1500*time.Millisecond {
		t.Errorf("retries with delay: retries %d delay %v", tk.Retries, tk.Delay)
	}
	if tk := byName["Free-form command"]; tk.Args.Value != "lsblk --json" || fmt.Sprint(tk.ChangedWhen) != "[false]" || fmt.Sprint(tk.Tags) != "[probe disks]" {
		t.Errorf("free-form task = %+v", tk)
	}
	if tk := byName["Loop over a list"]; tk.LoopVar != "disk" || fmt.Sprint(tk.Loop) != "[map[path:/dev/sda size:100G]]" {
		t.Errorf("loop = %#v, var %s", tk.Loop, tk.LoopVar)
	}
	if tk := byName["Loop over a template"]; tk.Loop != "{{ layout | map(attribute='path') | list }}" || tk.LoopVar != "item" {
		t.Errorf("loop = %#v", tk.Loop)
	}
	// The module decoder the runner uses sees free-form values as their argument.
	var args commandArgs
	if err := ArgsDecoder(pb.Path, byName["Free-form command"].Spec, byName["Free-form command"].Args).Decode(&args); err != nil || fmt.Sprint(args.Cmd) != "[lsblk --json]" {
		t.Errorf("ArgsDecoder: %+v, %v", args, err)
	}
}

func TestArgsDecoder(t *testing.T) {
	reg := testRegistry()
	command, _ := reg.Lookup("command")
	copySpec, _ := reg.Lookup("copy")
	tests := []struct {
		name string
		spec string
		src  string
		want string
	}{
		{"free-form string", "command", `echo hi`, `{Cmd:[echo hi] Creates: Removes: Chdir:}`},
		{"free-form list", "command", `[echo, hi]`, `{Cmd:[echo hi] Creates: Removes: Chdir:}`},
		{"mapping", "command", `{cmd: ls, chdir: /tmp}`, `{Cmd:[ls] Creates: Removes: Chdir:/tmp}`},
		{"unknown argument", "command", "cmd: ls\ncreats: /x\n", `task.yml:2: unknown key "creats" (did you mean creates?)`},
		{"wrong type", "copy", "dest: /x\nmode: abc\n", `task.yml:2: mode: want an integer, got "abc"`},
		{"not free-form", "copy", `/etc/motd`, `task.yml:1: want a mapping, got "/etc/motd"`},
		{"missing required", "copy", `{mode: 1}`, `task.yml:1: missing required key "dest"`},
	}
	specs := map[string]any{"command": &commandArgs{}, "copy": &copyArgs{}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := yamlx.Parse("task.yml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			spec := command
			if tt.spec == "copy" {
				spec = copySpec
			}
			v := specs[tt.spec]
			got := ""
			if err := ArgsDecoder("task.yml", spec, n).Decode(v); err != nil {
				got = err.Error()
			} else {
				got = strings.TrimPrefix(fmt.Sprintf("%+v", v), "&")
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"unknown task key with suggestion", `
- hosts: all
  tasks:
    - command: ls
      regster: out
`, `play.yml:5: unknown key "regster" (did you mean register?)`},
		{"unknown module", `
- hosts: all
  tasks:
    - name: list
      comand: ls
`, `play.yml:5: unknown module "comand" (did you mean command?)`},
		{"another collection's module", `
- hosts: all
  tasks:
    - community.general.parted: {}
`, `play.yml:4: module "community.general.parted" is from the collection community.general, which nixbook does not have (nixbook modules lists its modules)`},
		{"an ansible.builtin module nixbook has not", `
- hosts: all
  tasks:
    - ansible.builtin.apt: {}
`, `play.yml:4: module "ansible.builtin.apt" is not one of nixbook's: ansible.builtin names work for assert, command, copy, debug, fail, reboot, shell, template only (nixbook modules lists the rest)`},
		{"unknown module without suggestion", `
- hosts: all
  tasks:
    - frobnicate: {}
`, `play.yml:4: unknown module "frobnicate"`},
		{"unknown key next to a module", `
- hosts: all
  tasks:
    - command: ls
      frobnicate: 1
`, `play.yml:5: unknown key "frobnicate"`},
		{"two module keys", `
- hosts: all
  tasks:
    - command: ls
      shell: ls
`, `play.yml:5: task has two modules, "command" and "shell"`},
		{"no module", `
- hosts: all
  tasks:
    - name: nothing
      when: true
`, `play.yml:4: task "nothing" has no module`},
		{"unknown module argument", `
- hosts: all
  tasks:
    - copy:
        dest: /etc/motd
        contnet: hi
`, `play.yml:6: unknown key "contnet" (did you mean content?)`},
		{"wrong argument type", `
- hosts: all
  tasks:
    - copy:
        dest: /etc/motd
        content: hi
        mode: abc
`, `play.yml:7: mode: want an integer, got "abc"`},
		{"wrong argument type in a templated task", `
- hosts: all
  tasks:
    - copy:
        dest: "{{ path }}"
        content: hi
        mode: [1]
`, `play.yml:7: mode: want an integer, got a list`},
		{"unknown argument in a templated task", `
- hosts: all
  tasks:
    - command:
        cmd: "{{ cmd }}"
        chdri: /tmp
`, `play.yml:6: unknown key "chdri" (did you mean chdir?)`},
		{"missing required argument", `
- hosts: all
  tasks:
    - copy:
        content: "{{ x }}"
`, `play.yml:5: missing required key "dest"`},
		{"module validation at load", `
- hosts: all
  tasks:
    - copy:
        dest: /etc/motd
        content: hi
        src: motd
`, `play.yml:4: copy: set exactly one of content and src`},
		{"free-form argument error", `
- hosts: all
  tasks:
    - command: {cmd: {a: b}}
`, `play.yml:4: cmd: want a command string or a list of arguments`},
		{"module without arguments", `
- hosts: all
  tasks:
    - ping: {count: 1}
`, `play.yml:4: module "ping" takes no arguments, got a mapping`},
		{"bad serial", `
- hosts: all
  serial: abc
  tasks: []
`, `play.yml:3: serial: want a host count or a percentage such as "30%", got "abc"`},
		{"bad serial in a list", `
- hosts: all
  serial: [1, "150%", 0, [2]]
`, "play.yml:3: serial[1]: want a percentage from 1% to 100%, got \"150%\"\n" +
			"play.yml:3: serial[2]: want at least 1 host, got 0\n" +
			"play.yml:3: serial[3]: want a host count or a percentage such as \"30%\", got a list"},
		{"notify target missing", `
- hosts: all
  tasks:
    - command: ls
      notify: restart ssh
  handlers:
    - name: restart sshd
      command: systemctl restart sshd
`, `play.yml:5: notify: no handler is named or listens to "restart ssh" (did you mean restart sshd?)`},
		{"duplicate handler", `
- hosts: all
  handlers:
    - name: restart
      command: "true"
    - name: restart
      command: "false"
`, `play.yml:6: duplicate handler name "restart" (first at line 4)`},
		{"handler without name", `
- hosts: all
  handlers:
    - command: "true"
`, `play.yml:4: a handler needs a name or listen`},
		{"listen on a task", `
- hosts: all
  tasks:
    - command: "true"
      listen: x
`, `play.yml:5: listen is only valid on handlers`},
		{"vars_files missing", `
- hosts: all
  vars_files: [vars/common.yml, vars/missing.yml]
`, `play.yml:3: vars_files[1]: cannot read testdata/vars/missing.yml: no such file or directory`},
		{"vars_files not a mapping", `
- hosts: all
  vars_files: minimal.yml
`, `testdata/minimal.yml:1: a vars file is a mapping of variables, got a list`},
		{"missing hosts", `
- name: no hosts
  tasks: []
`, `play.yml:2: missing required key "hosts"`},
		{"unknown play key", `
- hosts: all
  gather_fact: false
`, `play.yml:3: unknown key "gather_fact" (did you mean gather_facts?)`},
		{"bad register", `
- hosts: all
  tasks:
    - command: ls
      register: my-var
`, `play.yml:5: register: "my-var" is not a valid variable name (letters, digits and _, not starting with a digit)`},
		{"bad when", `
- hosts: all
  tasks:
    - command: ls
      when: [x ==, {a: 1}]
`, "play.yml:5: when[0]: parse error in expression \"x ==\": expected either a number, string, keyword or identifier (near \"}}\")\n" +
			"play.yml:5: when[1]: want an expression or a list of them, got a mapping"},
		{"template syntax error in arguments", `
- hosts: all
  tasks:
    - copy:
        dest: "/x/{{ a | }}"
        content: x
`, `play.yml:5: dest: parse error in template "/x/{{ a | }}": filter name must be an identifier (near "}}")`},
		{"bad durations and counts", `
- hosts: all
  tasks:
    - command: ls
      delay: soon
      timeout: -5
      retries: many
`, "play.yml:5: delay: want seconds or a duration such as 30s, got \"soon\"\n" +
			"play.yml:6: timeout: want a duration of zero or more, got -5\n" +
			"play.yml:7: retries: want an integer, got \"many\""},
		{"loop not a list", `
- hosts: all
  tasks:
    - command: ls
      loop: disks
      loop_control: {loop_vr: d}
`, "play.yml:5: loop: want a list or a template such as \"{{ disks }}\", got \"disks\"\n" +
			"play.yml:6: loop_control: unknown key \"loop_vr\" (did you mean loop_var?)"},
		{"many errors at once", `
- hosts: all
  tasks:
    - comand: ls
    - copy: {dest: /x, mode: x, content: y}
    - command: ls
      notify: nobody
`, "play.yml:4: unknown module \"comand\" (did you mean command?)\n" +
			"play.yml:5: mode: want an integer, got \"x\"\n" +
			"play.yml:7: notify: no handler is named or listens to \"nobody\""},
		{"not a list", `hosts: all`, `play.yml:1: a playbook is a list of plays, got a mapping`},
		{"yaml syntax", "- hosts: all\n  tasks: [\n", `play.yml:2: did not find expected node content`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("play.yml", []byte(tt.src), "testdata", testRegistry())
			if err == nil {
				t.Fatal("loaded without error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			var ye *yamlx.Error
			if !errors.As(err, &ye) {
				t.Errorf("error is not a *yamlx.Error")
			}
		})
	}
}

func TestTemplatedArgumentsAcceptedAtLoad(t *testing.T) {
	// Each of these would fail New or the shape check if written out, but
	// a template may render to anything: the runner checks them per host.
	src := `
- hosts: all
  tasks:
    - copy:
        dest: /etc/motd
        content: "{{ motd }}"
        src: "{{ motd_file }}"
        mode: "{{ mode }}"
    - copy: "{{ copy_args }}"
    - command: "{{ cmd }}"
    - command: ["{{ prog }}", --flag]
    - debug:
        msg: "{{ m }}"
        var: "{{ v }}"
    - assert:
        that: "{{ checks }}"
`
	pb, err := LoadBytes("play.yml", []byte(src), "", testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pb.Plays[0].Tasks); n != 6 {
		t.Fatalf("%d tasks", n)
	}
	// The same arguments written out are refused at load.
	literal := strings.NewReplacer(`"{{ motd }}"`, "hi", `"{{ motd_file }}"`, "motd", `"{{ mode }}"`, "420").Replace(src)
	literal = literal[:strings.Index(literal, "    - copy: \"{{ copy_args")]
	if _, err := LoadBytes("play.yml", []byte(literal), "", testRegistry()); err == nil || err.Error() != "play.yml:4: copy: set exactly one of content and src" {
		t.Errorf("literal arguments: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/nope.yml", testRegistry())
	if err == nil || err.Error() != "read playbook: open testdata/nope.yml: no such file or directory" {
		t.Errorf("error = %v", err)
	}
}

// TestRenderThenDecode follows what the runner does per host: render the
// normalized arguments, then build the module through ArgsDecoder.
func TestRenderThenDecode(t *testing.T) {
	src := `
- hosts: all
  tasks:
    - debug: "{{ info }}"
    - command: "{{ argv }}"
    - copy: "{{ copy_args }}"
    - copy:
        dest: /etc/motd
        content: "{{ motd }}"
        mode: "{{ mode }}"
`
	pb, err := LoadBytes("play.yml", []byte(src), "", testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{
		"info":      map[string]any{"a": 1},
		"argv":      []any{"ls", "-l"},
		"copy_args": map[string]any{"dest": "/x", "content": "y"},
		"motd":      "hello",
		"mode":      "abc",
	}
	engine := tmpl.New()
	want := []string{
		"&{Msg:map[a:1] Var:}",
		"&{Cmd:[ls -l] Creates: Removes: Chdir:}",
		"&{fileArgs:{Dest:/x Mode:0 Owner:} Content:0x",
		`play.yml:10: mode: want an integer, got "abc"`,
	}
	values := []any{&debugArgs{}, &commandArgs{}, &copyArgs{}, &copyArgs{}}
	for i, task := range pb.Plays[0].Tasks {
		rendered, err := engine.RenderNode(task.NormalizedArgs(), vars)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if err := ArgsDecoder(pb.Path, task.Spec, rendered).Decode(values[i]); err != nil {
			got = err.Error()
		} else {
			got = fmt.Sprintf("%+v", values[i])
		}
		if !strings.HasPrefix(got, want[i]) {
			t.Errorf("task %d: got %s, want %s", i, got, want[i])
		}
	}
	if task := pb.Plays[0].Tasks[0]; task.Args.Kind != yaml.ScalarNode {
		t.Error("NormalizedArgs changed Task.Args")
	}
}

func TestAnsibleBuiltinNames(t *testing.T) {
	src := `
- hosts: all
  tasks:
    - ansible.builtin.command: echo hi
    - ansible.legacy.debug:
        msg: hi
    - ansible.builtin.assert:
        that: ["true"]
`
	pb, err := LoadBytes("play.yml", []byte(src), "", testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, task := range pb.Plays[0].Tasks {
		got = append(got, task.Module)
	}
	if strings.Join(got, " ") != "command debug assert" {
		t.Fatalf("modules %q", got)
	}
}
