package playbooks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImports(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yml": `
- import_playbook: plays/web.yml
- hosts: db
  tasks:
    - name: first
      command: ls
    - import_tasks: tasks/common.yml
      when: ready
      tags: common
      vars: {who: db}
    - ansible.builtin.include_tasks:
        file: tasks/common.yml
`,
		"plays/web.yml": `
- hosts: web
  vars_files: [vars.yml]
  tasks:
    - include_tasks: ../tasks/common.yml
`,
		"plays/vars.yml": "port: 80\n",
		"tasks/common.yml": `
- name: common one
  command: ls
  when: more
- import_tasks: nested.yml
`,
		"tasks/nested.yml": `
- name: nested
  command: ls
`,
	})
	pb, err := Load(filepath.Join(dir, "site.yml"), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if len(pb.Plays) != 2 || pb.Plays[0].Hosts != "web" || pb.Plays[0].Vars["port"] != 80 {
		t.Fatalf("plays: %+v", pb.Plays)
	}
	var got []string
	for _, p := range pb.Plays {
		for _, task := range p.Tasks {
			got = append(got, fmt.Sprintf("%s %s when=%v tags=%v vars=%v", strings.TrimPrefix(task.Source, dir+"/"), task.DisplayName(), task.When, task.Tags, task.Vars))
		}
	}
	want := []string{
		"tasks/common.yml:2 common one when=[more] tags=[] vars=map[]",
		"tasks/nested.yml:2 nested when=[] tags=[] vars=map[]",
		"site.yml:5 first when=[] tags=[] vars=map[]",
		"tasks/common.yml:2 common one when=[ready more] tags=[common] vars=map[who:db]",
		"tasks/nested.yml:2 nested when=[ready] tags=[common] vars=map[who:db]",
		"tasks/common.yml:2 common one when=[more] tags=[] vars=map[]",
		"tasks/nested.yml:2 nested when=[] tags=[] vars=map[]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tasks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestImportErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"error in the imported file names it", map[string]string{
			"inc.yml": "- command: ls\n  regster: x\n",
		}, `inc.yml:2: unknown key "regster" (did you mean register?)`},
		{"missing file", nil, `play.yml:4: import_tasks: cannot read inc.yml: no such file or directory`},
		{"cycle", map[string]string{
			"inc.yml": "- import_tasks: inc.yml\n",
		}, `inc.yml:1: import_tasks: inc.yml imports itself (through play.yml, inc.yml)`},
		{"templated name", map[string]string{
			"play.yml": "- hosts: all\n  tasks:\n    - include_tasks: \"{{ x }}.yml\"\n",
		}, `play.yml:3: include_tasks: file names with templates are not supported: "{{ x }}.yml" (imports are read when the playbook loads)`},
		{"loop", map[string]string{
			"inc.yml":  "- command: ls\n",
			"play.yml": "- hosts: all\n  tasks:\n    - include_tasks: inc.yml\n      loop: [1]\n",
		}, `play.yml:4: include_tasks is read once, when the playbook loads: it takes no loop`},
		{"imported playbook", map[string]string{
			"play.yml":  "- import_playbook: other.yml\n",
			"other.yml": "- hosts: all\n  taks: []\n",
		}, `other.yml:2: unknown key "taks" (did you mean tasks?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"play.yml": "- hosts: all\n  tasks:\n    - name: x\n      import_tasks: inc.yml\n"}
			for k, v := range tt.files {
				files[k] = v
			}
			dir := writeFiles(t, files)
			t.Chdir(dir)
			_, err := Load("play.yml", testRegistry())
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}
