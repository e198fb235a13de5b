package ovh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"

	goovh "github.com/ovh/go-ovh/ovh"
	"gopkg.in/ini.v1"
)

// LoginRules are the access rules of a consumer key for the stock
// playbooks: the calls RescueRights lists, on each of services, or on
// every server when services is empty.
func LoginRules(services []string) []Rule {
	if len(services) == 0 {
		services = []string{"*"}
	}
	var rules []Rule
	for _, s := range services {
		for _, r := range RescueRights(s) {
			if s == "*" {
				r.Path = strings.Replace(r.Path, "%2A", "*", 1)
			}
			r.Path = strings.NewReplacer("{bootId}", "*", "{taskId}", "*").Replace(r.Path)
			if !slices.Contains(rules, r) {
				rules = append(rules, r)
			}
		}
	}
	return rules
}

// PendingKey is a consumer key OVH made, waiting for its owner to
// validate it at ValidationURL.
type PendingKey struct {
	ConsumerKey   string
	ValidationURL string
}

// RequestKey asks OVH for a consumer key with rules for the application
// of r (POST /auth/credential, with go-ovh's own request), which its owner
// then validates at the URL OVH answers.
func RequestKey(r *Resolved, rules []Rule, httpClient *http.Client) (*PendingKey, error) {
	api := &goovh.Client{AppKey: r.Credentials.AppKey, AppSecret: r.Credentials.AppSecret, Client: httpClient, Timeout: time.Minute, UserAgent: "nixbook"}
	if httpClient == nil {
		api.Client = &http.Client{}
	}
	if err := api.SetEndpoint(r.URL); err != nil {
		return nil, fmt.Errorf("ovh: %w", err)
	}
	req := api.NewCkRequest()
	for _, rule := range rules {
		req.AddRule(rule.Method, rule.Path)
	}
	state, err := req.Do()
	if err != nil {
		return nil, wrapError(http.MethodPost, "/auth/credential", err, nil)
	}
	if state.ConsumerKey == "" || state.ValidationURL == "" {
		return nil, errors.New("ovh: POST /auth/credential: the answer holds no consumer key or validation URL")
	}
	return &PendingKey{ConsumerKey: state.ConsumerKey, ValidationURL: state.ValidationURL}, nil
}

// WaitValidated polls GET /auth/currentCredential every interval until
// the client's consumer key is validated, or ctx ends. OVH refuses a key
// pending validation with 403 "This credential is not valid", as it does
// an expired or revoked one; only the wait tells them apart.
func (c *Client) WaitValidated(ctx context.Context, interval time.Duration) (*Credential, error) {
	r := Request{Method: http.MethodGet, Path: "/auth/currentCredential"}
	for {
		var cred Credential
		err := c.Do(ctx, r, &cred)
		var apiErr *Error
		switch {
		case err == nil && (cred.Status == "" || cred.Status == CredentialValidated):
			return &cred, nil
		case err == nil && cred.Status != CredentialPendingValidation:
			return nil, fmt.Errorf("ovh: the consumer key is %s, not validated", cred.Status)
		case err != nil && !(errors.As(err, &apiErr) && apiErr.Status == http.StatusForbidden):
			return nil, err
		}
		if serr := c.sleep(ctx, interval); serr != nil {
			return nil, fmt.Errorf("ovh: the consumer key was not validated in time: %w", serr)
		}
	}
}

// DefaultConfPath is the user's ovh.conf, where go-ovh looks: in the home
// directory of the user running nixbook.
func DefaultConfPath() (string, error) {
	home := ""
	if u, err := user.Current(); err == nil {
		home = u.HomeDir
	}
	if home == "" {
		home = os.Getenv("HOME")
	}
	if home == "" {
		return "", errors.New("ovh: no home directory for ~/.ovh.conf: name the file to write")
	}
	return filepath.Join(home, ".ovh.conf"), nil
}

// WriteConf sets the application key, its secret and the consumer key of
// the section for endpoint in the ovh.conf at path, keeping the rest of
// the file, and leaves the file readable by its owner only (0600).
func WriteConf(path, endpoint string, c Credentials) error {
	f := ini.Empty()
	if data, err := os.ReadFile(path); err == nil {
		if f, err = ini.Load(data); err != nil {
			// ini quotes lines, which may hold secrets: name the file only.
			return fmt.Errorf("ovh: %s is not a valid ovh.conf (INI) file", path)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ovh: %w", err)
	}
	s := f.Section(endpoint)
	for _, k := range []string{"client_id", "client_secret", "access_token"} {
		// go-ovh refuses a section with two ways of signing in.
		s.DeleteKey(k)
	}
	s.Key("application_key").SetValue(c.AppKey)
	s.Key("application_secret").SetValue(c.AppSecret)
	s.Key("consumer_key").SetValue(c.ConsumerKey)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ovh.conf-*")
	if err != nil {
		return fmt.Errorf("ovh: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("ovh: %w", err)
	}
	if _, err := f.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("ovh: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ovh: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("ovh: %w", err)
	}
	return nil
}
