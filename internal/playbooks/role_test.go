package playbooks

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yml": `
- hosts: all
  roles:
    - base
    - role: web
      when: web_enabled
      tags: [web]
      port: 81
      vars: {from_entry: true}
    - base
  tasks:
    - name: own
      command: ls
    - import_role: {name: web, tasks_from: extra}
      when: more
    - include_role: {name: private}
  handlers:
    - name: play handler
      command: ls
`,
		"roles/base/tasks/main.yml":       "- name: base task\n  command: ls\n",
		"roles/web/meta/main.yml":         "galaxy_info: {author: me}\ndependencies:\n  - role: base\n",
		"roles/web/defaults/main.yml":     "port: 80\nlow: default\n",
		"roles/web/vars/main.yml":         "from_entry: false\nhigh: vars\n",
		"roles/web/tasks/main.yml":        "- name: web task\n  command: ls\n  notify: restart\n- import_tasks: more.yml\n",
		"roles/web/tasks/more.yml":        "- name: more\n  command: ls\n",
		"roles/web/tasks/extra.yml":       "- name: extra\n  command: ls\n",
		"roles/web/handlers/main.yml":     "- name: restart\n  command: ls\n",
		"roles/unused/tasks/main.yml":     "- bad: yaml\n",
		"roles/base/defaults/main.yml":    "",
		"roles/private/tasks/main.yml":    "- name: private task\n  command: ls\n",
		"roles/private/defaults/main.yml": "mine: 1\n",
	})
	pb, err := Load(filepath.Join(dir, "site.yml"), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	play := pb.Plays[0]
	var got []string
	for _, task := range Leaves(play.Tasks) {
		role := "-"
		if task.Role != nil {
			role = fmt.Sprintf("%s params=%v", task.Role.Name, task.Role.Params)
		}
		got = append(got, fmt.Sprintf("%s %s when=%v tags=%v role=%s", strings.TrimPrefix(task.Source, dir+"/"), task.DisplayName(), task.When, task.Tags, role))
	}
	// base runs once although listed twice and depended on (Ansible's
	// has_run); import_role always brings the tasks. The roles of roles:
	// and import_role are the play's (their variables are seen by all its
	// tasks), include_role's are not (Ansible's public: false).
	want := []string{
		"roles/base/tasks/main.yml:1 base : base task when=[] tags=[] role=base params=map[]",
		"roles/web/tasks/main.yml:1 web : web task when=[web_enabled] tags=[web] role=web params=map[port:81]",
		"roles/web/tasks/more.yml:1 web : more when=[web_enabled] tags=[web] role=web params=map[port:81]",
		"site.yml:12 own when=[] tags=[] role=-",
		"roles/web/tasks/extra.yml:1 web : extra when=[more] tags=[] role=web params=map[]",
		"roles/private/tasks/main.yml:1 private : private task when=[] tags=[] role=private params=map[]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tasks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var handlers []string
	for _, h := range play.Handlers {
		handlers = append(handlers, h.DisplayName())
	}
	if got, want := strings.Join(handlers, ", "), "web : restart, play handler"; got != want {
		t.Errorf("handlers: %s, want %s", got, want)
	}
	var names []string
	for _, r := range play.Roles {
		names = append(names, fmt.Sprintf("%s defaults=%v vars=%v", r.Name, r.Defaults, r.Vars))
	}
	wantRoles := []string{
		"base defaults=map[] vars=map[]",
		"web defaults=map[low:default port:80] vars=map[from_entry:true high:vars]",
		"web defaults=map[low:default port:80] vars=map[from_entry:false high:vars]",
	}
	if strings.Join(names, "\n") != strings.Join(wantRoles, "\n") {
		t.Errorf("roles:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(wantRoles, "\n"))
	}
	if !filepath.IsAbs(play.Roles[0].Path) || filepath.Base(play.Roles[0].Path) != "base" {
		t.Errorf("role path %q", play.Roles[0].Path)
	}
}

func TestRoleErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"missing role", map[string]string{
			"play.yml": "- hosts: all\n  roles: [nope]\n",
		}, `play.yml:2: role "nope" not found (looked in roles/nope, nope)`},
		{"entry without a role", map[string]string{
			"play.yml": "- hosts: all\n  roles:\n    - vars: {a: 1}\n",
		}, `play.yml:3: roles[0]: a role entry needs role: NAME`},
		{"templated name", map[string]string{
			"play.yml": "- hosts: all\n  roles: [\"{{ r }}\"]\n",
		}, `play.yml:2: roles[0]: role names with templates are not supported: "{{ r }}" (roles are read when the playbook loads)`},
		{"error in a role's task names its file", map[string]string{
			"play.yml":                 "- hosts: all\n  roles: [web]\n",
			"roles/web/tasks/main.yml": "- command: ls\n  regster: x\n",
		}, `roles/web/tasks/main.yml:2: unknown key "regster" (did you mean register?)`},
		{"defaults not a mapping", map[string]string{
			"play.yml":                    "- hosts: all\n  roles: [web]\n",
			"roles/web/defaults/main.yml": "- a\n",
		}, `roles/web/defaults/main.yml:1: a vars file is a mapping of variables, got a list`},
		{"dependency cycle", map[string]string{
			"play.yml":               "- hosts: all\n  roles: [a]\n",
			"roles/a/meta/main.yml":  "dependencies: [b]\n",
			"roles/b/meta/main.yml":  "dependencies: [a]\n",
			"roles/a/tasks/main.yml": "- command: ls\n",
		}, `roles/b/meta/main.yml:1: role "a" depends on itself (through a, b)`},
		{"tasks_from missing", map[string]string{
			"play.yml":                 "- hosts: all\n  tasks:\n    - import_role: {name: web, tasks_from: nope}\n",
			"roles/web/tasks/main.yml": "- command: ls\n",
		}, `play.yml:3: role "web" has no tasks/nope`},
		{"unknown import_role argument", map[string]string{
			"play.yml":                 "- hosts: all\n  tasks:\n    - include_role: {name: web, allow_duplicates: true}\n",
			"roles/web/tasks/main.yml": "- command: ls\n",
		}, `play.yml:3: include_role: unknown key "allow_duplicates"`},
		{"include_role with a loop", map[string]string{
			"play.yml":                 "- hosts: all\n  tasks:\n    - include_role: {name: web}\n      loop: [1]\n",
			"roles/web/tasks/main.yml": "- command: ls\n",
		}, `play.yml:4: include_role is read once, when the playbook loads: it takes no loop`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			t.Chdir(dir)
			_, err := Load("play.yml", testRegistry())
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}
