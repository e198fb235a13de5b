package ovh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Env is what modules need to reach the API for a host. The zero value is
// the real thing; tests replace parts.
type Env struct {
	Limiters *Limiters // the run's budgets, one per account; nil: the client's own
	// Sleep pauses between retries and task polls; nil: real time.
	Sleep func(ctx context.Context, d time.Duration) error
	// RetryWait is the first pause before retrying a 429 or 5xx; zero: 2s.
	RetryWait time.Duration
	// Wait tunes task polls; zero: WaitTask's defaults.
	Wait WaitOptions
	// Lookup resolves the host names Verify proves; nil: the system's
	// resolver.
	Lookup LookupFunc
}

// Client resolves a host's endpoint and credentials (see Resolve) and its
// rate (the ovh_rate_limit variable, such as "120/m burst 10"; default
// DefaultRate) and returns a client whose calls are logged through log.
func (e Env) Client(endpoint string, vars map[string]any, log func(format string, args ...any)) (*Client, *Resolved, error) {
	return e.client(endpoint, vars, log, false)
}

func (e Env) client(endpoint string, vars map[string]any, log func(format string, args ...any), readOnly bool) (*Client, *Resolved, error) {
	r, err := Resolve(endpoint, vars)
	if err != nil {
		return nil, nil, err
	}
	rate := DefaultRate()
	if text := stringVar(vars, VarRateLimit); text != "" {
		if rate, err = ParseRate(text); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", VarRateLimit, err)
		}
	}
	c, err := New(Config{
		Endpoint:    r.URL,
		Credentials: r.Credentials,
		Rate:        rate,
		Limiters:    e.Limiters,
		RetryWait:   e.RetryWait,
		Log:         log,
		Sleep:       e.Sleep,
		ReadOnly:    readOnly,
	})
	if err != nil {
		return nil, nil, err
	}
	return c, r, nil
}

// CheckVars reports, without any network, what vars lack or have
// malformed to reach the API at endpoint: the credentials (see Resolve),
// the rate and the task poll.
func (e Env) CheckVars(endpoint string, vars map[string]any) error {
	var errs []error
	if _, err := Resolve(endpoint, vars); err != nil {
		errs = append(errs, err)
	}
	if text := stringVar(vars, VarRateLimit); text != "" {
		if _, err := ParseRate(text); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", VarRateLimit, err))
		}
	}
	if _, err := e.WaitOptions(vars); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// WaitOptions are the task poll settings for a host: Wait, with the host's
// ovh_task_poll variable (a duration such as "2s") as the pause before the
// first poll and the first pause between polls, and six times it as the
// time a lost reboot's task is looked for (10s and 1m by default).
func (e Env) WaitOptions(vars map[string]any) (WaitOptions, error) {
	o := e.Wait
	text := stringVar(vars, VarTaskPoll)
	if text == "" {
		return o, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil || d <= 0 {
		return o, fmt.Errorf("%s: want a positive duration such as 10s, got %q", VarTaskPoll, text)
	}
	o.FirstPoll, o.Interval, o.Adopt = d, d, 6*d
	return o, nil
}

// Explain adds to an API error what a user can do about it: for refused
// credentials, where each one came from (never the values) and which
// rights they need.
func (r *Resolved) Explain(err error) error {
	var apiErr *Error
	if r == nil || !errors.As(err, &apiErr) {
		return err
	}
	if apiErr.NotFound() {
		return r.explainNotFound(err, apiErr)
	}
	if !apiErr.Auth() {
		return err
	}
	keys := make([]string, 0, len(r.From))
	for k := range r.From {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var from []string
	for _, k := range keys {
		from = append(from, k+" from "+r.From[k])
	}
	if r.Credentials.OAuth2() {
		return fmt.Errorf("%w (%s for %s: %s; their IAM policy needs the dedicatedServer:apiovh actions get, put, boot/get, reboot, task/get and ips/get on the servers)",
			err, r.Credentials.Method(), r.Name, strings.Join(from, ", "))
	}
	return fmt.Errorf("%w (credentials for %s: %s; they need GET, PUT and POST on /dedicated/server/*: %s)",
		err, r.Name, strings.Join(from, ", "), createTokenURL(r.URL))
}
