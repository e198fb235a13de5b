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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goovh "github.com/ovh/go-ovh/ovh"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Config configures a Client.
type Config struct {
	Endpoint    string // the API root URL (see EndpointURL)
	Credentials Credentials
	// Rate is the account's budget; zero: DefaultRate. It only counts for
	// the first client of an account in Limiters.
	Rate Rate
	// Limiters holds the budgets clients share, one per account (a run's,
	// which the runner owns); nil: this client's own.
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
	// Now is the clock that bounds spells of errors while a task is
	// polled; nil: time.Now.
	Now func() time.Time
	// ReadOnly makes a client that sends GET requests only: any other call
	// is refused with ErrReadOnly before it leaves, and its HTTP transport
	// refuses one all the same (see Reader).
	ReadOnly bool
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
	now          func() time.Time

	acct     *account
	send     *http.Client  // sends the requests go-ovh builds
	method   string        // Credentials.Method
	oauth2   bool          // a bearer token, not a signature
	readOnly bool          // Config.ReadOnly
	sent     atomic.Int64  // requests sent, for Calls
	cached   atomic.Int64  // answers taken from acct's cache
	refused  *atomic.Int64 // writes a read-only client refused

	mu      sync.Mutex
	api     *goovh.Client
	started map[int64]bool // reboot tasks this client started or adopted
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("ovh: no endpoint")
	}
	c := cfg.Credentials
	switch c.Method() {
	case MethodAppKey:
		if c.AppKey == "" || c.AppSecret == "" || c.ConsumerKey == "" {
			return nil, errors.New("ovh: application key, application secret and consumer key are all required")
		}
	case MethodClientCredentials:
		if c.ClientID == "" || c.ClientSecret == "" {
			return nil, errors.New("ovh: an OAuth2 client ID needs its secret")
		}
	case MethodAccessToken:
	default:
		return nil, errors.New("ovh: no credentials")
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
	// Client credentials are exchanged for tokens here, not by go-ovh,
	// which knows no token URL for an API given by URL.
	//
	// go-ovh's NewRequest writes its http.Client's Timeout on every call,
	// and the account's clients share one go-ovh client: go-ovh gets an
	// http.Client of its own, written under the account's lock, and
	// requests go out through send, which nobody writes.
	api := &goovh.Client{
		AppKey:      c.AppKey,
		AppSecret:   c.AppSecret,
		ConsumerKey: c.ConsumerKey,
		AccessToken: c.AccessToken,
		Client:      &http.Client{Transport: httpClient.Transport, Timeout: timeout},
		Timeout:     timeout,
		UserAgent:   "nixbook",
	}
	send := &http.Client{Transport: httpClient.Transport, Timeout: timeout, CheckRedirect: httpClient.CheckRedirect, Jar: httpClient.Jar}
	refused := new(atomic.Int64)
	if cfg.ReadOnly {
		send.Transport = getOnly{next: send.Transport, refused: refused}
	}
	if err := api.SetEndpoint(strings.TrimRight(cfg.Endpoint, "/")); err != nil {
		return nil, fmt.Errorf("ovh: %w", err)
	}
	limiters := cfg.Limiters
	if limiters == nil {
		limiters = NewLimiters() // this client's own budget
	}
	rate := cfg.Rate
	if rate.Requests == 0 {
		rate = DefaultRate()
	}
	// Every client of the account shares one go-ovh client, so the API's
	// clock offset is asked once per run, not once per task and host.
	var tokens oauth2.TokenSource
	if c.Method() == MethodClientCredentials {
		u, err := tokenURL(api.Endpoint(), c)
		if err != nil {
			return nil, err
		}
		cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: u, Scopes: []string{"all"}}
		// The token source outlives this call: it is the account's.
		tokens = cc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, httpClient))
	}
	acct := limiters.account(accountKey(api.Endpoint(), c), api, tokens)
	cl := &Client{
		endpoint:     api.Endpoint(),
		send:         send,
		acct:         acct,
		method:       c.Method(),
		oauth2:       c.OAuth2(),
		limiter:      limiters.For(api.Endpoint(), c.budgetKey(), rate),
		retries:      cfg.Retries,
		retryWait:    cfg.RetryWait,
		maxRetryWait: cfg.MaxRetryWait,
		log:          cfg.Log,
		sleep:        cfg.Sleep,
		now:          cfg.Now,
		api:          acct.api,
		readOnly:     cfg.ReadOnly,
		refused:      refused,
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
	if cl.now == nil {
		cl.now = time.Now
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
	// Details holds OVH's details, such as the IAM actions a refusal
	// misses (unauthorizedActionsByIAM).
	Details map[string]string
	QueryID string // X-Ovh-QueryID, for OVH's support
	// RetryAfter is the answer's Retry-After; zero: none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("ovh: %s %s: %d", e.Method, e.Path, e.Status)
	if e.Class != "" {
		s += " " + e.Class
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	var missing []string
	for _, k := range []string{"unauthorizedActionsByAuthentication", "unauthorizedActionsByIAM"} {
		if v := strings.TrimSpace(e.Details[k]); v != "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		s += " (missing IAM permissions: " + strings.Join(missing, ", ") + ")"
	}
	if e.QueryID != "" {
		// OVH's support finds the call by it.
		s += " (query id " + e.QueryID + ")"
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

// ErrMaybeDone marks the failure of a call that is not safe to repeat (a
// POST) when the API may nonetheless have carried it out: a 5xx answer, a
// timeout or a connection lost after the request was sent.
var ErrMaybeDone = errors.New("the API may have carried it out")

// ErrReadOnly is a call other than GET made through a read-only client
// (Config.ReadOnly): what Check and a dry run reach the API with.
var ErrReadOnly = errors.New("refused: a read-only view of the API makes GET calls only")

// getOnly is the HTTP transport of a read-only client: the last line, below
// the client's own refusal, so that no path through go-ovh sends a write.
type getOnly struct {
	next    http.RoundTripper
	refused *atomic.Int64
}

func (g getOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		g.refused.Add(1)
		return nil, fmt.Errorf("ovh: %s %s: %w", req.Method, req.URL.Path, ErrReadOnly)
	}
	next := g.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// idempotent calls may be sent again whatever became of the first try.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// Do makes the call, waiting for the account's rate limit, and decodes the
// answer into out (nil: ignore it). A 429 is retried after its Retry-After
// (or the backoff, whichever is longer), and holds every client of the
// account meanwhile. 5xx answers and network failures are retried for
// idempotent calls (GET, PUT) only; for a POST they come back wrapping
// ErrMaybeDone, since the API may have carried it out.
func (c *Client) Do(ctx context.Context, r Request, out any) error {
	if c.readOnly && r.Method != http.MethodGet {
		c.refused.Add(1)
		return fmt.Errorf("ovh: %s %s: %w", r.Method, r.Path, ErrReadOnly)
	}
	if r.Method != http.MethodGet {
		// A write changes what the run's cache holds of the server, even
		// when its answer is lost.
		if sn := writtenServer(r.Path); sn != "" {
			c.acct.drop(serverKey(sn))
			defer c.acct.drop(serverKey(sn))
		}
	}
	pause := c.retryWait
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, r, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		again, wait := c.retry(r, err, pause)
		if !again || attempt >= c.retries {
			if maybeDone(r, err) {
				return fmt.Errorf("%w: %w", err, ErrMaybeDone)
			}
			return err
		}
		c.log("ovh: %s %s: %v; try %d of %d in %s", r.Method, r.Path, shortErr(err), attempt+2, c.retries+1, wait)
		if serr := c.sleep(ctx, wait); serr != nil {
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

// retry says whether a failed call is tried again, and after how long.
func (c *Client) retry(r Request, err error, pause time.Duration) (bool, time.Duration) {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.Status == http.StatusTooManyRequests:
			// Refused before it was carried out: safe for any call. The
			// whole account waits, not this call alone.
			wait := max(pause, apiErr.RetryAfter)
			c.limiter.Hold(wait)
			return true, wait
		case apiErr.Status == http.StatusRequestTimeout:
			return true, pause
		case apiErr.Status >= 500:
			return idempotent(r.Method), pause
		}
		return false, 0
	}
	if notSent(err) {
		return true, pause
	}
	var netErr net.Error
	return idempotent(r.Method) && errors.As(err, &netErr), pause
}

// notSent reports a network failure before the request left: a refused
// or failed connection.
func notSent(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// maybeDone reports a failure after which a call that is not idempotent
// may have been carried out.
func maybeDone(r Request, err error) bool {
	if idempotent(r.Method) || notSent(err) {
		return false
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Status >= 500
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

func (c *Client) once(ctx context.Context, r Request, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	req, err := c.build(ctx, r)
	if err != nil {
		return err
	}
	start := time.Now()
	if c.acct.tokens != nil {
		tok, err := c.acct.tokens.Token()
		if err != nil {
			return fmt.Errorf("ovh: %s %s: %w: %w", r.Method, r.Path, ErrToken, tokenError(err))
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}
	resp, err := c.send.Do(req.WithContext(ctx))
	var header http.Header
	if err == nil {
		header = resp.Header
		err = c.api.UnmarshalResponse(resp, out)
	}
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
		return wrapError(r.Method, r.Path, err, header)
	}
	return nil
}

// build waits for the call's turn in the account's budget and builds it
// with go-ovh's own steps, so that the answer's headers (Retry-After) can
// be read (CallAPIWithContext hides them); the API's clock is asked first
// when no client of the account has. The account's clients build one at a
// time: go-ovh's client writes itself on every request, and a request
// built right after its turn leaves right after it, so that the API sees
// the budget's pace, not a crowd released at once.
func (c *Client) build(ctx context.Context, r Request) (*http.Request, error) {
	if err := c.acct.lockAPI(ctx); err != nil {
		return nil, fmt.Errorf("ovh: %s %s: %w", r.Method, r.Path, err)
	}
	defer c.acct.unlockAPI()
	if c.api.AppKey != "" && !c.acct.synced.Load() {
		// go-ovh asks GET /auth/time once per client, without a context;
		// doing it here puts it under the rate limit too.
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("ovh: %s %s: %w", r.Method, r.Path, err)
		}
		start := time.Now()
		c.sent.Add(1)
		if _, err := c.api.TimeDelta(); err != nil {
			return nil, wrapError("GET", "/auth/time", err, nil)
		}
		c.log("ovh: GET /auth/time: 200 (%s)", time.Since(start).Round(time.Millisecond))
		c.acct.synced.Store(true)
	}
	if err := c.limiter.Wait(ctx); err != nil {
		return nil, fmt.Errorf("ovh: %s %s: %w", r.Method, r.Path, err)
	}
	var body any
	if r.Body != nil {
		body = r.Body
	}
	c.sent.Add(1)
	req, err := c.api.NewRequest(r.Method, r.Path, body, true)
	if err != nil {
		return nil, wrapError(r.Method, r.Path, err, nil)
	}
	return req, nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

func wrapError(method, path string, err error, header http.Header) error {
	var apiErr *goovh.APIError
	if errors.As(err, &apiErr) {
		return &Error{
			Method:     method,
			Path:       path,
			Status:     apiErr.Code,
			Class:      apiErr.Class,
			Message:    strings.TrimSpace(apiErr.Message),
			Details:    apiErr.Details,
			QueryID:    apiErr.QueryID,
			RetryAfter: retryAfter(header, time.Now()),
		}
	}
	return fmt.Errorf("ovh: %s %s: %w", method, path, err)
}

// ErrToken marks a call that could not get an OAuth2 access token: the
// token endpoint refused the client ID and secret, or could not be reached.
var ErrToken = errors.New("no OAuth2 access token")

// tokenError keeps of a token endpoint's refusal its status and OAuth2
// error code: the body it quotes is not ours to print.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		code := re.ErrorCode
		if code == "" {
			code = "no error code"
		}
		return fmt.Errorf("%s answered %s (%s)", re.Response.Request.URL.Redacted(), re.Response.Status, code)
	}
	return err
}
