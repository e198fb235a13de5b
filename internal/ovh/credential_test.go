package ovh

import (
	"strings"
	"testing"
)

// OVH's access rules: '*' matches any run of characters, '/' included.
func TestRuleAllows(t *testing.T) {
	for _, tt := range []struct {
		rule, method, path string
		want               bool
	}{
		{"/dedicated/server/*", "GET", "/dedicated/server/ns1.ip-203-0-113.eu", true},
		{"/dedicated/server/*", "GET", "/dedicated/server/ns1/task/7", true},
		{"/dedicated/server/*", "GET", "/dedicated/server", false},
		{"/dedicated/server", "GET", "/dedicated/server", true},
		{"/dedicated/server/*/reboot", "POST", "/dedicated/server/ns1/reboot", true},
		{"/dedicated/server/*/reboot", "POST", "/dedicated/server/ns1/task", false},
		{"/*/server/*", "GET", "/dedicated/server/ns1", true},
		{"*", "GET", "/anything/at/all", true},
		{"/me", "GET", "/me/", false},
	} {
		r := Rule{Method: tt.method, Path: tt.rule}
		if got := r.Allows(tt.method, tt.path); got != tt.want {
			t.Errorf("%s %s allows %s %s: %v, want %v", r.Method, r.Path, tt.method, tt.path, got, tt.want)
		}
	}
}

// A rule grants its own method only.
func TestRuleAllowsItsMethodOnly(t *testing.T) {
	if (Rule{Method: "GET", Path: "/dedicated/server/*"}).Allows("PUT", "/dedicated/server/ns1") {
		t.Error("a GET rule allowed a PUT")
	}
}

// A rule full of stars from the API is matched without backtracking
// through every way to split the path (which would not finish here).
func TestRuleAllowsManyStars(t *testing.T) {
	rule := Rule{Method: "GET", Path: strings.Repeat("*a", 40) + "b"}
	if rule.Allows("GET", strings.Repeat("a", 4000)) {
		t.Fatal("allowed a path without the final b")
	}
	if !rule.Allows("GET", strings.Repeat("a", 4000)+"b") {
		t.Fatal("refused a path the rule covers")
	}
}
