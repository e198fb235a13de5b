package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

// APIOverride changes how the OVH API emulator misbehaves; read from the
// overrides file's api section:
//
//	api:
//	  calm: true               # start from an API that never misbehaves
//	  seed: 7
//	  delay: 20ms-120ms        # or one duration
//	  task_not_found_for: 3s
//	  error_bursts: 0.02       # chance a request starts a burst of 5xx
//	  burst_max: 2
//	  lost_answers: 0.05       # chance a write is done and answered 504
//	  rate: 60/m burst 20      # or none
//	  task_purge: 1h
//	  faults:                  # one-off faults, per host
//	    ks2: {http500: 3, task_not_found: 5, lost_answer: 1, too_many: 2, retry_after: 2s,
//	          task_status: ovhError, comment: "…", note: "…", slow_task: 30s}
//	  credential:              # the consumer key of the inventory and ovh.conf
//	    status: pendingValidation   # validated (default), expired, refused
//	    expires: 2h            # from the fleet's start, or an RFC 3339 time
//	    rules: ["GET /dedicated/server/*", "POST /dedicated/server/*/reboot"]
//
// Unset fields keep ovhapi.BadDay's (or, with calm, none).
type APIOverride struct {
	Calm            bool                `yaml:"calm"`
	Seed            *uint64             `yaml:"seed"`
	Delay           string              `yaml:"delay"`
	TaskNotFoundFor string              `yaml:"task_not_found_for"`
	ErrorBursts     *float64            `yaml:"error_bursts"`
	BurstMax        *int                `yaml:"burst_max"`
	LostAnswers     *float64            `yaml:"lost_answers"`
	Rate            string              `yaml:"rate"`
	TaskPurge       string              `yaml:"task_purge"`
	Faults          map[string]APIFault `yaml:"faults"`
	Credential      *APICredential      `yaml:"credential"`
}

// APICredential is the state, expiry and rules of the fleet's consumer
// key, as OVH keeps them; unset fields: validated, no expiry, the rights
// of the stock playbooks.
type APICredential struct {
	Status  string   `yaml:"status"`
	Expires string   `yaml:"expires"`
	Rules   []string `yaml:"rules"`
}

// apply sets the key's state, expiry (relative to now) and rules in cfg.
func (c *APICredential) apply(cfg *ovhapi.Config, now time.Time) error {
	if c == nil {
		return nil
	}
	switch c.Status {
	case "", ovhapi.CredentialValidated, ovhapi.CredentialPendingValidation, ovhapi.CredentialExpired, ovhapi.CredentialRefused:
		cfg.CredentialStatus = c.Status
	default:
		return fmt.Errorf("api credential status %q: want validated, pendingValidation, expired or refused", c.Status)
	}
	if c.Expires != "" {
		if d, err := time.ParseDuration(c.Expires); err == nil {
			cfg.CredentialExpires = now.Add(d)
		} else if t, err := time.Parse(time.RFC3339, c.Expires); err == nil {
			cfg.CredentialExpires = t
		} else {
			return fmt.Errorf("api credential expires %q: want a duration from the start such as 2h, or an RFC 3339 time", c.Expires)
		}
	}
	if c.Rules != nil {
		cfg.Rules = []ovhapi.Rule{}
	}
	for _, text := range c.Rules {
		method, path, ok := strings.Cut(strings.TrimSpace(text), " ")
		path = strings.TrimSpace(path)
		switch method {
		case "GET", "PUT", "POST", "DELETE":
		default:
			ok = false
		}
		if !ok || !strings.HasPrefix(path, "/") {
			return fmt.Errorf("api credential rule %q: want METHOD /path, such as GET /dedicated/server/*", text)
		}
		cfg.Rules = append(cfg.Rules, ovhapi.Rule{Method: method, Path: path})
	}
	return nil
}

// APIFault is a one-off misbehaviour for one host's server (ovhapi.Fault).
type APIFault struct {
	HTTP500      int    `yaml:"http500"`
	TaskNotFound int    `yaml:"task_not_found"`
	LostAnswer   int    `yaml:"lost_answer"`
	TooMany      int    `yaml:"too_many"`
	RetryAfter   string `yaml:"retry_after"`
	TaskStatus   string `yaml:"task_status"`
	Comment      string `yaml:"comment"`
	Note         string `yaml:"note"`
	SlowTask     string `yaml:"slow_task"`
}

// Weather is the emulator's weather: BadDay(1), or Calm when calm (the
// --calm-api flag) or the section says so, changed by the section.
func (o APIOverride) Weather(calm bool) (*ovhapi.Weather, error) {
	w := ovhapi.BadDay(1)
	if calm || o.Calm {
		w = ovhapi.Calm()
		w.Seed = 1
	}
	if o.Seed != nil {
		w.Seed = *o.Seed
	}
	if o.Delay != "" {
		lo, hi, ranged := strings.Cut(o.Delay, "-")
		if !ranged {
			hi = lo
		}
		var err error
		if w.DelayMin, err = duration("api delay", lo); err != nil {
			return nil, err
		}
		if w.DelayMax, err = duration("api delay", hi); err != nil {
			return nil, err
		}
		if w.DelayMax < w.DelayMin {
			return nil, fmt.Errorf("api delay %q: the longest comes second", o.Delay)
		}
	}
	for _, d := range []struct {
		name, text string
		to         *time.Duration
	}{{"task_not_found_for", o.TaskNotFoundFor, &w.TaskNotFoundFor}, {"task_purge", o.TaskPurge, &w.TaskPurge}} {
		if d.text == "" {
			continue
		}
		v, err := duration("api "+d.name, d.text)
		if err != nil {
			return nil, err
		}
		*d.to = v
	}
	for _, p := range []struct {
		name string
		v    *float64
		to   *float64
	}{{"error_bursts", o.ErrorBursts, &w.ErrorBursts}, {"lost_answers", o.LostAnswers, &w.LostAnswers}} {
		if p.v == nil {
			continue
		}
		if *p.v < 0 || *p.v > 1 {
			return nil, fmt.Errorf("api %s: a chance between 0 and 1, got %v", p.name, *p.v)
		}
		*p.to = *p.v
	}
	if o.BurstMax != nil {
		if *o.BurstMax < 1 {
			return nil, fmt.Errorf("api burst_max: at least 1, got %d", *o.BurstMax)
		}
		w.BurstMax = *o.BurstMax
	}
	switch o.Rate {
	case "":
	case "none":
		w.Rate = ovhapi.Rate{}
	default:
		r, err := ovh.ParseRate(o.Rate)
		if err != nil {
			return nil, fmt.Errorf("api rate: %w", err)
		}
		w.Rate = ovhapi.Rate{Requests: r.Requests, Per: r.Per, Burst: r.Burst}
	}
	return w, nil
}

// fault converts f.
func (f APIFault) fault() (ovhapi.Fault, error) {
	out := ovhapi.Fault{HTTP500: f.HTTP500, TaskNotFound: f.TaskNotFound, LostAnswer: f.LostAnswer, TooMany: f.TooMany,
		TaskStatus: f.TaskStatus, Comment: f.Comment, Note: f.Note}
	switch f.TaskStatus {
	case "", ovhapi.StatusOVHError, ovhapi.StatusCustomerError:
	default:
		return out, fmt.Errorf("task_status %q: want ovhError or customerError", f.TaskStatus)
	}
	var err error
	if f.RetryAfter != "" {
		if out.RetryAfter, err = duration("retry_after", f.RetryAfter); err != nil {
			return out, err
		}
	}
	if f.SlowTask != "" {
		if out.SlowTask, err = duration("slow_task", f.SlowTask); err != nil {
			return out, err
		}
	}
	if f.HTTP500 < 0 || f.TaskNotFound < 0 || f.LostAnswer < 0 || f.TooMany < 0 {
		return out, fmt.Errorf("counts must not be negative")
	}
	return out, nil
}

// check validates the section against the fleet's host names (nil: any).
func (o APIOverride) check(hosts map[string]bool) error {
	if _, err := o.Weather(false); err != nil {
		return err
	}
	if err := o.Credential.apply(&ovhapi.Config{}, time.Now()); err != nil {
		return err
	}
	names := make([]string, 0, len(o.Faults))
	for name := range o.Faults {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if hosts != nil && !hosts[name] {
			return fmt.Errorf("api faults: no host %s in the fleet", name)
		}
		if _, err := o.Faults[name].fault(); err != nil {
			return fmt.Errorf("api faults for %s: %w", name, err)
		}
	}
	return nil
}

func duration(name, text string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(text))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a duration such as 2s", name, text)
	}
	return d, nil
}
