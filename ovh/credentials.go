// Package ovh is nixbook's client for the part of the OVHcloud API (and of
// its Kimsufi and So you Start roots) that reinstalls dedicated servers:
// netboot selection, hard reboots and their tasks. It signs requests with
// github.com/ovh/go-ovh, keeps every client of a process under one shared
// rate limit per account, retries what OVH answers with 429 or 5xx, and
// names the call and OVH's message in every error.
package ovh

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	goovh "github.com/ovh/go-ovh/ovh"
	"gopkg.in/ini.v1"
)

// Credentials are an application key, its secret and a consumer key. They
// print as a placeholder, so that no %v in a log or an error can leak them.
type Credentials struct {
	AppKey, AppSecret, ConsumerKey string
}

// String hides the values.
func (Credentials) String() string { return "ovh.Credentials{redacted}" }

// GoString hides the values from %#v too.
func (c Credentials) GoString() string { return c.String() }

// Format hides the values from every verb, %+v included.
func (c Credentials) Format(f fmt.State, verb rune) { fmt.Fprint(f, c.String()) }

// The host variables credentials and the endpoint come from.
const (
	VarEndpoint    = "ovh_endpoint"
	VarAppKey      = "ovh_application_key"
	VarAppSecret   = "ovh_application_secret"
	VarConsumerKey = "ovh_consumer_key"
	VarService     = "ovh_service"
	VarRateLimit   = "ovh_rate_limit"
	// VarTaskPoll sets the first pause before a task poll and between
	// polls (default 10s, then 5s growing to 30s), for places whose tasks
	// run faster than OVH's, such as the simulated fleet.
	VarTaskPoll = "ovh_task_poll"
)

// Source is where credentials come from when the inventory does not hold
// them: the environment, then ovh.conf files, as go-ovh reads them. Tests
// inject both.
type Source struct {
	Getenv func(string) string
	// ConfigPaths are read in order, later files overriding earlier ones;
	// missing files are skipped.
	ConfigPaths []string
}

// DefaultSource reads the process environment and go-ovh's ovh.conf files:
// /etc/ovh.conf, ~/.ovh.conf and ./ovh.conf.
func DefaultSource() Source {
	paths := []string{"/etc/ovh.conf"}
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".ovh.conf"))
	}
	paths = append(paths, "ovh.conf")
	return Source{Getenv: os.Getenv, ConfigPaths: paths}
}

// Resolved is an endpoint with the credentials to use on it.
type Resolved struct {
	Name        string // as written: ovh-eu, or the URL
	URL         string // the API root, e.g. https://eu.api.ovh.com/1.0
	Credentials Credentials
	// From says where each credential came from, for messages that must
	// not show the values ("inventory", "OVH_APPLICATION_KEY", "ovh.conf").
	From map[string]string
}

// Resolve picks the endpoint and credentials for a host. Each value comes
// from the host variables first, then OVH_* environment variables, then the
// endpoint's section of ovh.conf, the precedence go-ovh uses. endpoint may be
// empty: then ovh_endpoint, OVH_ENDPOINT, ovh.conf's [default] endpoint, and
// finally ovh-eu.
func Resolve(endpoint string, vars map[string]any, src Source) (*Resolved, error) {
	if src.Getenv == nil {
		src.Getenv = func(string) string { return "" }
	}
	conf, err := loadConf(src.ConfigPaths)
	if err != nil {
		return nil, err
	}
	lookup := func(varName, section, key string) (string, string) {
		if v := stringVar(vars, varName); v != "" {
			return v, "inventory variable " + varName
		}
		env := "OVH_" + strings.ToUpper(key)
		if v := src.Getenv(env); v != "" {
			return v, "environment variable " + env
		}
		if v := confValue(conf, section, key); v != "" {
			return v, fmt.Sprintf("ovh.conf [%s] %s", section, key)
		}
		return "", ""
	}
	if endpoint == "" {
		endpoint, _ = lookup(VarEndpoint, "default", "endpoint")
	}
	if endpoint == "" {
		endpoint = "ovh-eu"
	}
	url, err := EndpointURL(endpoint)
	if err != nil {
		return nil, err
	}
	r := &Resolved{Name: endpoint, URL: url, From: map[string]string{}}
	fields := []struct {
		varName, key string
		dst          *string
	}{
		{VarAppKey, "application_key", &r.Credentials.AppKey},
		{VarAppSecret, "application_secret", &r.Credentials.AppSecret},
		{VarConsumerKey, "consumer_key", &r.Credentials.ConsumerKey},
	}
	var missing []string
	for _, f := range fields {
		v, from := lookup(f.varName, endpoint, f.key)
		if v == "" {
			missing = append(missing, fmt.Sprintf("%s (or OVH_%s, or %s in the [%s] section of ovh.conf)",
				f.varName, strings.ToUpper(f.key), f.key, endpoint))
			continue
		}
		*f.dst = strings.TrimSpace(v)
		r.From[f.key] = from
	}
	if len(missing) > 0 {
		where := "no ovh.conf found"
		if len(conf.found) > 0 {
			where = "read " + strings.Join(conf.found, ", ")
		}
		return nil, fmt.Errorf("ovh: missing credentials for %s: set %s; %s; create them at %s",
			endpoint, strings.Join(missing, " and "), where, createTokenURL(url))
	}
	return r, nil
}

// createTokenURL is where a user makes credentials with the rights nixbook
// needs, prefilled (ovh-api.md §9).
func createTokenURL(apiURL string) string {
	root := strings.TrimSuffix(apiURL, "/1.0")
	return root + "/createToken/?GET=/dedicated/server&GET=/dedicated/server/*&PUT=/dedicated/server/*&POST=/dedicated/server/*"
}

// EndpointURL turns an endpoint name (ovh-eu, kimsufi-ca, ...) or a URL
// into the API root.
func EndpointURL(endpoint string) (string, error) {
	if strings.Contains(endpoint, "/") {
		if !strings.HasPrefix(endpoint, "https://") && !strings.HasPrefix(endpoint, "http://") {
			return "", fmt.Errorf("ovh: endpoint %q is not a name or an http(s) URL", endpoint)
		}
		return strings.TrimRight(endpoint, "/"), nil
	}
	if u, ok := goovh.Endpoints[endpoint]; ok {
		return u, nil
	}
	return "", fmt.Errorf("ovh: unknown endpoint %q: use one of %s, or the API's URL such as https://eu.api.ovh.com/1.0",
		endpoint, strings.Join(EndpointNames(), ", "))
}

// EndpointNames lists the endpoint names go-ovh knows.
func EndpointNames() []string {
	order := []string{"ovh-eu", "ovh-ca", "ovh-us", "kimsufi-eu", "kimsufi-ca", "soyoustart-eu", "soyoustart-ca"}
	var names []string
	for _, n := range order {
		if _, ok := goovh.Endpoints[n]; ok {
			names = append(names, n)
		}
	}
	var extra []string
	for n := range goovh.Endpoints {
		if !slices.Contains(names, n) {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	return append(names, extra...)
}

type confFile struct {
	file  *ini.File
	found []string
}

// loadConf reads the ovh.conf files that exist, later ones overriding
// earlier ones as go-ovh's loose loading does.
func loadConf(paths []string) (confFile, error) {
	var c confFile
	var sources []any
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return c, fmt.Errorf("ovh: read %s: %w", p, err)
		}
		sources = append(sources, p)
		c.found = append(c.found, p)
	}
	if len(sources) == 0 {
		return c, nil
	}
	f, err := ini.Load(sources[0], sources[1:]...)
	if err != nil {
		// ini's messages quote lines, which may hold secrets: name the files only.
		return c, fmt.Errorf("ovh: %s: not a valid ovh.conf (INI) file", strings.Join(c.found, ", "))
	}
	c.file = f
	return c, nil
}

func confValue(c confFile, section, key string) string {
	if c.file == nil || !c.file.HasSection(section) {
		return ""
	}
	s := c.file.Section(section)
	if !s.HasKey(key) {
		return ""
	}
	return strings.TrimSpace(s.Key(key).String())
}

func stringVar(vars map[string]any, name string) string {
	v, ok := vars[name]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(fmt.Sprint(v))
}
