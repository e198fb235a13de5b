package playbooks

import (
	"fmt"
	"strings"
	"testing"
)

func TestBlockInheritance(t *testing.T) {
	src := `
- hosts: all
  tasks:
    - name: outer
      when: a
      tags: [outer]
      vars: {x: 1, y: 1}
      ignore_errors: true
      block:
        - name: first
          command: ls
          when: b
          vars: {y: 2}
        - name: inner
          when: c
          tags: inner
          block:
            - name: deep
              command: ls
              ignore_errors: false
          rescue:
            - name: inner rescue
              command: ls
      rescue:
        - name: save
          command: ls
      always:
        - name: cleanup
          command: ls
    - name: after
      command: ls
`
	pb, err := LoadBytes("play.yml", []byte(src), "", testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tasks := pb.Plays[0].Tasks
	if len(tasks) != 2 || tasks[0].Block == nil || tasks[0].Source != "play.yml:4" {
		t.Fatalf("tasks = %+v", tasks)
	}
	var got []string
	for _, leaf := range Leaves(tasks) {
		got = append(got, fmt.Sprintf("%s when=%v tags=%v vars=%v ignore=%v", leaf.Name, leaf.When, leaf.Tags, leaf.Vars, leaf.IgnoreErrors))
	}
	want := []string{
		"first when=[a b] tags=[outer] vars=map[x:1 y:2] ignore=true",
		"deep when=[a c] tags=[inner outer] vars=map[x:1 y:1] ignore=false",
		"inner rescue when=[a c] tags=[inner outer] vars=map[x:1 y:1] ignore=true",
		"save when=[a] tags=[outer] vars=map[x:1 y:1] ignore=true",
		"cleanup when=[a] tags=[outer] vars=map[x:1 y:1] ignore=true",
		"after when=[] tags=[] vars=map[] ignore=false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("leaves:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	kept := Filter(tasks, func(t *Task) bool { return t.Name == "cleanup" })
	if len(kept) != 1 || len(kept[0].Block.Tasks) != 0 || len(kept[0].Block.Always) != 1 || len(tasks[0].Block.Tasks) != 2 {
		t.Errorf("filter: %+v", kept)
	}
	if none := Filter(tasks, func(*Task) bool { return false }); len(none) != 0 {
		t.Errorf("filter kept %d", len(none))
	}
}

func TestBlockErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"rescue without block", `
- hosts: all
  tasks:
    - rescue:
        - command: ls
`, "play.yml:4: rescue and always need a block"},
		{"module on a block", `
- hosts: all
  tasks:
    - block:
        - command: ls
      command: ls
`, `play.yml:6: unknown key "command"`},
		{"error inside a block", `
- hosts: all
  tasks:
    - block:
        - command: ls
          regster: x
`, `play.yml:6: unknown key "regster" (did you mean register?)`},
		{"block in handlers", `
- hosts: all
  handlers:
    - name: h
      block:
        - command: ls
`, "play.yml:4: a handler cannot be a block"},
		{"notify from a rescue", `
- hosts: all
  tasks:
    - block:
        - command: ls
      rescue:
        - command: ls
          notify: nobody
`, `play.yml:8: notify: no handler is named or listens to "nobody"`},
		{"block not a list", `
- hosts: all
  tasks:
    - block: ls
`, `play.yml:4: block: want a list of tasks, got "ls"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("play.yml", []byte(tt.src), "", testRegistry())
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}
