package modules

import (
	"reflect"
	"testing"
)

type SchemaInner struct {
	Dest string `yaml:"dest" required:"" doc:"where"`
}

type schemaArgs struct {
	SchemaInner `yaml:",inline"`
	Mode        string   `yaml:"mode" default:"0644"`
	Items       []string `yaml:"items"`
	Hidden      string   `yaml:"-"`
	unexported  string
	Service     string `yaml:"service" var:"ovh_service"`
	Keys        any    `yaml:"-" var:"ssh_keys,rescue_ssh_key" doc:"keys"`
}

func TestSchema(t *testing.T) {
	got := Schema(reflect.TypeOf(&schemaArgs{}))
	want := []Arg{
		{Name: "dest", Type: "string", Doc: "where", Required: true, Index: []int{0, 0}},
		{Name: "mode", Type: "string", Default: "0644", Index: []int{1}},
		{Name: "items", Type: "list of string", Index: []int{2}},
		{Name: "service", Type: "string", Vars: []string{"ovh_service"}, Index: []int{5}},
		// yaml:"-" with a var tag: an input, not an argument.
		{Name: "", Type: "any", Doc: "keys", Vars: []string{"ssh_keys", "rescue_ssh_key"}, Index: []int{6}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Schema =\n%+v\nwant\n%+v", got, want)
	}
	if again := Schema(reflect.TypeOf(schemaArgs{})); &again[0] != &got[0] {
		t.Error("the schema of a type is computed again")
	}
	v := reflect.ValueOf(&schemaArgs{}).Elem()
	v.FieldByIndex(got[0].Index).SetString("/etc/motd")
	if v.Interface().(schemaArgs).Dest != "/etc/motd" {
		t.Error("Index does not lead to the field")
	}
}
