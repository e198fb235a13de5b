package ovh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	goovh "github.com/ovh/go-ovh/ovh"
)

// Config configures a Client.
type Config struct {
	Endpoint    string // the API root URL (see EndpointURL)
	Credentials Credentials
	// Rate is the account's budget; zero: DefaultRate. It only counts for
	// the first client of an account in Limiters.
	Rate Rate
	// Limiters holds the shared budgets; nil: SharedLimiters().
	Limiters *Limiters
	// Retries is how many times a call answered with 429 or 5xx (or, for
	// GET, lost on the network) is tried again; negative: none; zero: 4.
	Retries int
	// RetryWait is the first pause before a retry, doubling each time up to
	// MaxRetryWait; zero: 2s and 30s.
	RetryWait, MaxRetryWait time.Duration
	// RequestTimeout bounds one HTTP request; zero: 60s.
	RequestTimeout time.Duration
	// Log receives a line per call (method, path, status, duration), never
	// credentials; nil: none.
	Log func(format string, args ...any)
	// HTTPClient sends the requests; nil: a client of its own.
	HTTPClient *http.Client
	// Sleep pauses between retries and task polls; nil: real time.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client calls the API for one account. It is safe for concurrent use:
// calls through it are serialized, since go-ovh's client is not.
type Client struct {
	endpoint     string
	limiter      *Limiter
	retries      int
	retryWait    time.Duration
	maxRetryWait time.Duration
	log          func(format string, args ...any)
	sleep        func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	api    *goovh.Client
	synced bool // go-ovh has the API's clock offset
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("ovh: no endpoint")
	}
	c := cfg.Credentials
	if c.AppKey == "" || c.AppSecret == "" || c.ConsumerKey == "" {
		return nil, errors.New("ovh: application key, application secret and consumer key are all required")
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	// Built by hand rather than with goovh.NewClient, which would also read
	// the environment and ovh.conf behind our back (Resolve has done that).
	api := &goovh.Client{
		AppKey:      c.AppKey,
		AppSecret:   c.AppSecret,
		ConsumerKey: c.ConsumerKey,
		Client:      httpClient,
		Timeout:     timeout,
		UserAgent:   "nixbook",
	}
	if err := api.SetEndpoint(strings.TrimRight(cfg.Endpoint, "/")); err != nil {
		return nil, fmt.Errorf("ovh: %w", err)
	}
	limiters := cfg.Limiters
	if limiters == nil {
		limiters = SharedLimiters()
	}
	rate := cfg.Rate
	if rate.Requests == 0 {
		rate = DefaultRate()
	}
	cl := &Client{
		endpoint:     api.Endpoint(),
		limiter:      limiters.For(api.Endpoint(), c.AppKey, rate),
		retries:      cfg.Retries,
		retryWait:    cfg.RetryWait,
		maxRetryWait: cfg.MaxRetryWait,
		log:          cfg.Log,
		sleep:        cfg.Sleep,
		api:          api,
	}
	if cl.retries == 0 {
		cl.retries = 4
	}
	if cl.retries < 0 {
		cl.retries = 0
	}
	if cl.retryWait <= 0 {
		cl.retryWait = 2 * time.Second
	}
	if cl.maxRetryWait <= 0 {
		cl.maxRetryWait = 30 * time.Second
	}
	if cl.log == nil {
		cl.log = func(string, ...any) {}
	}
	if cl.sleep == nil {
		cl.sleep = sleepCtx
	}
	return cl, nil
}

// Endpoint is the API root the client calls.
func (c *Client) Endpoint() string { return c.endpoint }

// Limiter is the account's shared limiter.
func (c *Client) Limiter() *Limiter { return c.limiter }

// Request is one API call, built before it is made so that a plan can show
// exactly the call Apply will make.
type Request struct {
	Method string
	Path   string         // escaped, as sent: /dedicated/server/ns1.ip-203-0-113.eu/reboot
	Body   map[string]any // nil: no body
	// Show replaces a body value in String (a key shown with its
	// fingerprint, say); the value sent is Body's.
	Show map[string]string
}

// String is the call as plans show it:
// PUT /dedicated/server/ns1 {bootId: 230242, rescueSshKey: ssh-ed25519 … (SHA256:…)}.
func (r Request) String() string {
	s := r.Method + " " + r.Path
	if r.Body == nil {
		return s
	}
	keys := make([]string, 0, len(r.Body))
	for k := range r.Body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v, ok := r.Show[k]
		if !ok {
			b, err := json.Marshal(r.Body[k])
			if err != nil {
				b = []byte(fmt.Sprint(r.Body[k]))
			}
			v = string(b)
		}
		parts = append(parts, k+": "+v)
	}
	return s + " {" + strings.Join(parts, ", ") + "}"
}

// ServerPath is the escaped path of a dedicated server, plus more segments.
func ServerPath(service string, more ...string) string {
	p := "/dedicated/server/" + url.PathEscape(service)
	for _, m := range more {
		p += "/" + m
	}
	return p
}

// Error is an answer of the API that is not a success.
type Error struct {
	Method, Path string
	Status       int
	Class        string // Client::BadRequest, ...
	Message      string
	QueryID      string // X-Ovh-QueryID, for OVH's support
}

func (e *Error) Error() string {
	s := fmt.Sprintf("ovh: %s %s: %d", e.Method, e.Path, e.Status)
	if e.Class != "" {
		s += " " + e.Class
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// NotFound reports whether the API answered 404.
func (e *Error) NotFound() bool { return e.Status == http.StatusNotFound }

// Auth reports whether the API refused the credentials or their rights.
func (e *Error) Auth() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden ||
		strings.Contains(e.Message, "Invalid signature")
}

func (e *Error) retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Do makes the call, waiting for the account's rate limit, and decodes the
// answer into out (nil: ignore it). Answers 429 and 5xx are retried with
// backoff, as are network failures of GET calls (a lost POST may have been
// carried out).
func (c *Client) Do(ctx context.Context, r Request, out any) error {
	pause := c.retryWait
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, r, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt >= c.retries || !retryable(r, err) {
			return err
		}
		c.log("ovh: %s %s: %v; try %d of %d in %s", r.Method, r.Path, shortErr(err), attempt+2, c.retries+1, pause)
		if serr := c.sleep(ctx, pause); serr != nil {
			return err
		}
		pause = min(pause*2, c.maxRetryWait)
	}
}

func shortErr(err error) string {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("%d %s", apiErr.Status, apiErr.Message)
	}
	return err.Error()
}

func retryable(r Request, err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.retryable()
	}
	var netErr net.Error
	return r.Method == http.MethodGet && errors.As(err, &netErr)
}

func (c *Client) once(ctx context.Context, r Request, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.synced {
		// go-ovh asks GET /auth/time once per client, without a context;
		// doing it here puts it under the rate limit too.
		if err := c.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("ovh: %s %s: %w", r.Method, r.Path, err)
		}
		start := time.Now()
		if _, err := c.api.TimeDelta(); err != nil {
			return c.wrap("GET", "/auth/time", err)
		}
		c.log("ovh: GET /auth/time: 200 (%s)", time.Since(start).Round(time.Millisecond))
		c.synced = true
	}
	if err := c.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("ovh: %s %s: %w", r.Method, r.Path, err)
	}
	var body any
	if r.Body != nil {
		body = r.Body
	}
	start := time.Now()
	err := c.api.CallAPIWithContext(ctx, r.Method, r.Path, body, out, true)
	status := 200
	var apiErr *goovh.APIError
	if errors.As(err, &apiErr) {
		status = apiErr.Code
	}
	if err != nil && status == 200 {
		c.log("ovh: %s %s: %v (%s)", r.Method, r.Path, err, time.Since(start).Round(time.Millisecond))
	} else {
		c.log("ovh: %s %s: %d (%s)", r.Method, r.Path, status, time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		return c.wrap(r.Method, r.Path, err)
	}
	return nil
}

func (c *Client) wrap(method, path string, err error) error {
	var apiErr *goovh.APIError
	if errors.As(err, &apiErr) {
		return &Error{
			Method:  method,
			Path:    path,
			Status:  apiErr.Code,
			Class:   apiErr.Class,
			Message: strings.TrimSpace(apiErr.Message),
			QueryID: apiErr.QueryID,
		}
	}
	return fmt.Errorf("ovh: %s %s: %w", method, path, err)
}
