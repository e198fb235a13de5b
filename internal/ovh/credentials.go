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
	"maps"
	neturl "net/url"
	"os"
	"slices"
	"sort"
	"strings"

	goovh "github.com/ovh/go-ovh/ovh"
)

// Credentials are one of the ways go-ovh signs in: an application key,
// its secret and a consumer key; an OAuth2 service account's client ID and
// secret; or an OAuth2 access token. They print as a placeholder, so that
// no %v in a log or an error can leak them.
type Credentials struct {
	AppKey, AppSecret, ConsumerKey string
	ClientID, ClientSecret         string
	AccessToken                    string
	// TokenURL is where the client ID and secret are exchanged for access
	// tokens; "": OVH's for the endpoint (see tokenURL).
	TokenURL string
}

// String hides the values.
func (Credentials) String() string { return "ovh.Credentials{redacted}" }

// GoString hides the values from %#v too.
func (c Credentials) GoString() string { return c.String() }

// Format hides the values from every verb, %+v included.
func (c Credentials) Format(f fmt.State, verb rune) { fmt.Fprint(f, c.String()) }

// Ways of signing in, as Credentials.Method names them.
const (
	MethodAppKey            = "application key"
	MethodClientCredentials = "OAuth2 client credentials"
	MethodAccessToken       = "OAuth2 access token"
)

// Method names the way the credentials sign in; "" when they hold none.
func (c Credentials) Method() string {
	switch {
	case c.ClientID != "" || c.ClientSecret != "":
		return MethodClientCredentials
	case c.AccessToken != "":
		return MethodAccessToken
	case c.AppKey != "" || c.AppSecret != "" || c.ConsumerKey != "":
		return MethodAppKey
	}
	return ""
}

// OAuth2 reports credentials that carry a bearer token rather than a
// signature: their rights are IAM policies, not consumer key rules.
func (c Credentials) OAuth2() bool {
	m := c.Method()
	return m == MethodClientCredentials || m == MethodAccessToken
}

// budgetKey is what OVH counts requests by: the consumer key, the OAuth2
// client, or the token. Only a map key, never shown.
func (c Credentials) budgetKey() string {
	switch c.Method() {
	case MethodClientCredentials:
		return "oauth2\x00" + c.ClientID
	case MethodAccessToken:
		return "token\x00" + c.AccessToken
	}
	return c.ConsumerKey
}

// The host variables credentials and the endpoint come from.
const (
	VarEndpoint     = "ovh_endpoint"
	VarAppKey       = "ovh_application_key"
	VarAppSecret    = "ovh_application_secret"
	VarConsumerKey  = "ovh_consumer_key"
	VarClientID     = "ovh_client_id"
	VarClientSecret = "ovh_client_secret"
	VarAccessToken  = "ovh_access_token"
	// VarTokenURL is the OAuth2 token endpoint, for an API given by URL
	// (OVH's own are known).
	VarTokenURL  = "ovh_oauth2_token_url"
	VarService   = "ovh_service"
	VarRateLimit = "ovh_rate_limit"
	// VarTaskPoll sets the first pause before a task poll and between
	// polls (default 10s, then 5s growing to 30s), for places whose tasks
	// run faster than OVH's, such as the simulated fleet.
	VarTaskPoll = "ovh_task_poll"
)

// credentialFields are the credentials as go-ovh's configuration names
// them (ovh.conf keys, OVH_* variables), with their host variables.
var credentialFields = []struct {
	key, varName string
	get          func(*Credentials) *string
}{
	{"application_key", VarAppKey, func(c *Credentials) *string { return &c.AppKey }},
	{"application_secret", VarAppSecret, func(c *Credentials) *string { return &c.AppSecret }},
	{"consumer_key", VarConsumerKey, func(c *Credentials) *string { return &c.ConsumerKey }},
	{"client_id", VarClientID, func(c *Credentials) *string { return &c.ClientID }},
	{"client_secret", VarClientSecret, func(c *Credentials) *string { return &c.ClientSecret }},
	{"access_token", VarAccessToken, func(c *Credentials) *string { return &c.AccessToken }},
}

// ConfigPaths are the ovh.conf files go-ovh reads, later ones overriding
// earlier ones.
const ConfigPaths = "/etc/ovh.conf, ~/.ovh.conf, ./ovh.conf"

// Resolved is an endpoint with the credentials to use on it.
type Resolved struct {
	Name        string // as written: ovh-eu, or the URL
	URL         string // the API root, e.g. https://eu.api.ovh.com/1.0
	Credentials Credentials
	// From says where each credential came from, for messages that must
	// not show the values ("inventory variable ovh_consumer_key",
	// "environment variable OVH_CLIENT_ID", "ovh.conf [ovh-eu] consumer_key").
	From map[string]string
}

// Resolve picks the endpoint and credentials for a host with go-ovh's own
// configuration loading: the host variables stand for the values a program
// passes go-ovh, and each one they leave unset comes from OVH_* variables,
// then the endpoint's section of ovh.conf. endpoint may be empty: then
// ovh_endpoint, OVH_ENDPOINT, ovh.conf's [default] endpoint, and finally
// ovh-eu. An application key needs its consumer key.
func Resolve(endpoint string, vars map[string]any) (*Resolved, error) {
	r, err := resolve(endpoint, vars)
	if err != nil {
		return nil, err
	}
	if r.Credentials.Method() == MethodAppKey && r.Credentials.ConsumerKey == "" {
		return nil, fmt.Errorf("ovh: no consumer key for %s: set %s (or OVH_CONSUMER_KEY, or consumer_key in the [%s] section of ovh.conf); `nixbook ovh login --endpoint %s` makes one for the application key, or create all three at %s",
			r.Name, VarConsumerKey, r.Name, r.Name, createTokenURL(r.URL))
	}
	return r, nil
}

// ResolveApp is Resolve for a consumer key yet to be made: it needs an
// application key and its secret, and takes no consumer key.
func ResolveApp(endpoint string, vars map[string]any) (*Resolved, error) {
	r, err := resolve(endpoint, vars)
	if err != nil {
		return nil, err
	}
	if r.Credentials.Method() != MethodAppKey {
		return nil, fmt.Errorf("ovh: the credentials for %s are an %s, not an application key (from %s): a consumer key belongs to an application; register one at %s",
			r.Name, r.Credentials.Method(), strings.Join(slices.Sorted(maps.Values(r.From)), ", "), createAppURL(r.URL))
	}
	return r, nil
}

func resolve(endpoint string, vars map[string]any) (*Resolved, error) {
	if endpoint == "" {
		endpoint = stringVar(vars, VarEndpoint)
	}
	if endpoint != "" {
		u, err := EndpointURL(endpoint)
		if err != nil {
			return nil, err
		}
		if strings.Contains(endpoint, "/") {
			endpoint = u // go-ovh refuses a trailing slash
		}
	}
	var inv Credentials
	kinds := map[string]bool{}
	for _, f := range credentialFields {
		if v := stringVar(vars, f.varName); v != "" {
			*f.get(&inv) = v
			var one Credentials
			*f.get(&one) = v
			kinds[one.Method()] = true
		}
	}
	if len(kinds) > 1 {
		return nil, fmt.Errorf("ovh: the inventory sets credentials of %d kinds (%s): keep one of application key, secret and consumer key; client ID and secret; or access token",
			len(kinds), strings.Join(slices.Sorted(maps.Keys(kinds)), ", "))
	}
	api, err := loadConfig(endpoint, inv)
	if err != nil {
		return nil, explainConfig(endpoint, err)
	}
	r := &Resolved{Name: endpoint, URL: api.Endpoint(), From: map[string]string{}}
	if r.Name == "" {
		r.Name = endpointName(r.URL)
	}
	r.Credentials = Credentials{AppKey: api.AppKey, AppSecret: api.AppSecret, ConsumerKey: api.ConsumerKey,
		ClientID: api.ClientID, ClientSecret: api.ClientSecret, AccessToken: api.AccessToken, TokenURL: stringVar(vars, VarTokenURL)}
	for _, f := range credentialFields {
		v := f.get(&r.Credentials)
		*v = strings.TrimSpace(*v)
		if *v == "" {
			continue
		}
		env := "OVH_" + strings.ToUpper(f.key)
		switch {
		case stringVar(vars, f.varName) != "":
			r.From[f.key] = "inventory variable " + f.varName
		case os.Getenv(env) != "":
			r.From[f.key] = "environment variable " + env
		default:
			r.From[f.key] = fmt.Sprintf("ovh.conf [%s] %s", r.Name, f.key)
		}
	}
	return r, nil
}

// loadConfig is go-ovh's loading, with the inventory's values as the ones
// a program passes. go-ovh knows no OAuth2 token URL for an API given by
// URL (a proxy, the emulator) and refuses client credentials there; then
// they come from the inventory or OVH_CLIENT_ID and OVH_CLIENT_SECRET, and
// the token URL from ovh_oauth2_token_url or the API's host.
func loadConfig(endpoint string, inv Credentials) (*goovh.Client, error) {
	if strings.Contains(endpoint, "/") && (inv.Method() == "" || inv.Method() == MethodClientCredentials) {
		id, secret := inv.ClientID, inv.ClientSecret
		if id == "" && secret == "" {
			id, secret = os.Getenv("OVH_CLIENT_ID"), os.Getenv("OVH_CLIENT_SECRET")
		}
		if id != "" || secret != "" {
			if id == "" || secret == "" {
				return nil, errors.New("invalid oauth2 config, both client_id and client_secret must be given")
			}
			api := &goovh.Client{ClientID: id, ClientSecret: secret}
			if err := api.SetEndpoint(endpoint); err != nil {
				return nil, err
			}
			return api, nil
		}
	}
	switch inv.Method() {
	case MethodClientCredentials:
		return goovh.NewOAuth2Client(endpoint, inv.ClientID, inv.ClientSecret)
	case MethodAccessToken:
		return goovh.NewAccessTokenClient(endpoint, inv.AccessToken)
	}
	return goovh.NewClient(endpoint, inv.AppKey, inv.AppSecret, inv.ConsumerKey)
}

// explainConfig adds to go-ovh's refusal where credentials go.
func explainConfig(endpoint string, err error) error {
	section := "the endpoint's"
	if endpoint != "" {
		section = "the [" + endpoint + "]"
	}
	return fmt.Errorf("ovh: credentials: %w; set %s, %s and %s (or %s and %s, or %s) in the inventory, as OVH_* variables, or in %s section of ovh.conf (%s); `nixbook ovh login` makes a consumer key",
		err, VarAppKey, VarAppSecret, VarConsumerKey, VarClientID, VarClientSecret, VarAccessToken, section, ConfigPaths)
}

// endpointName is the name go-ovh knows url by, else url.
func endpointName(url string) string {
	for _, n := range EndpointNames() {
		if goovh.Endpoints[n] == url {
			return n
		}
	}
	return url
}

// tokenURL is where client credentials become access tokens: the
// credentials' own, OVH's for its APIs (as go-ovh has them), else the API
// host's /auth/oauth2/token.
func tokenURL(apiURL string, c Credentials) (string, error) {
	if c.TokenURL != "" {
		return c.TokenURL, nil
	}
	if u, ok := oauth2TokenURLs[strings.TrimRight(apiURL, "/")]; ok {
		return u, nil
	}
	u, err := neturl.Parse(apiURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("ovh: no OAuth2 token URL for %s: set %s", apiURL, VarTokenURL)
	}
	if strings.Contains(u.Host, "kimsufi") || strings.Contains(u.Host, "soyoustart") {
		return "", fmt.Errorf("ovh: %s has no OAuth2: use an application key and a consumer key", apiURL)
	}
	return u.Scheme + "://" + u.Host + "/auth/oauth2/token", nil
}

// oauth2TokenURLs are OVH's token endpoints (go-ovh's tokensURLs, which
// it does not export), under both names of each API.
var oauth2TokenURLs = map[string]string{
	"https://eu.api.ovh.com/1.0":      "https://www.ovh.com/auth/oauth2/token",
	"https://api.eu.ovhcloud.com/1.0": "https://www.ovh.com/auth/oauth2/token",
	"https://ca.api.ovh.com/1.0":      "https://ca.ovh.com/auth/oauth2/token",
	"https://api.ca.ovhcloud.com/1.0": "https://ca.ovh.com/auth/oauth2/token",
	"https://api.us.ovhcloud.com/1.0": "https://us.ovhcloud.com/auth/oauth2/token",
}

// createAppURL is where a user registers an application.
func createAppURL(apiURL string) string {
	return strings.TrimSuffix(apiURL, "/1.0") + "/createApp/"
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
