package ovh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goovh "github.com/ovh/go-ovh/ovh"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// How long answers that do not change during a run are reused. Modules
// build a client per task and host, so without this a 100-host --check
// would read the same netboot catalog a hundred times. Limiters live for
// the process, which is one run for the CLI; the bounds keep a process
// that runs several plays (tests, a daemon) from trusting old reads.
const (
	// A server's own fields change only through writes, which drop the
	// entry (see Client.Do); the bound covers someone else's writes.
	serverTTL = 10 * time.Minute
	// Netboots, IP blocks and the key's rights change on OVH's schedule,
	// not a run's.
	catalogTTL = time.Hour
	// credentialTTL re-reads the key now and then, so that a key that
	// expires during a long run is seen.
	credentialTTL = 10 * time.Minute
)

// account is what every client of one endpoint and set of credentials
// shares in a process: go-ovh's client (and so the API's clock offset,
// fetched once), and the answers that do not change during a run.
type account struct {
	api *goovh.Client
	// apiTurn is held by the client building a request (see build).
	apiTurn chan struct{}
	synced  atomic.Bool // api has the clock offset
	// tokens gives the OAuth2 access token of client credentials, one for
	// every client of the account; nil for other credentials.
	tokens oauth2.TokenSource

	mu    sync.Mutex
	memo  map[string]memoEntry
	group singleflight.Group
}

type memoEntry struct {
	v       any
	expires time.Time
}

// accountKey names an account without holding its secrets in clear.
func accountKey(endpoint string, c Credentials) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{endpoint, c.AppKey, c.AppSecret, c.ConsumerKey,
		c.ClientID, c.ClientSecret, c.AccessToken, c.TokenURL}, "\x00")))
	return hex.EncodeToString(sum[:])
}

// account returns the shared state of an account, made on first use with
// api as its go-ovh client.
func (ls *Limiters) account(key string, api *goovh.Client, tokens oauth2.TokenSource) *account {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.accounts == nil {
		ls.accounts = map[string]*account{}
	}
	if a, ok := ls.accounts[key]; ok {
		return a
	}
	a := &account{api: api, tokens: tokens, apiTurn: make(chan struct{}, 1), memo: map[string]memoEntry{}}
	ls.accounts[key] = a
	return a
}

// lockAPI takes the account's turn to build a request, or gives up when
// ctx ends.
func (a *account) lockAPI(ctx context.Context) error {
	select {
	case a.apiTurn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *account) unlockAPI() { <-a.apiTurn }

func (a *account) get(key string, now time.Time) (any, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.memo[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.v, true
}

func (a *account) put(key string, v any, expires time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.memo[key] = memoEntry{v: v, expires: expires}
}

func (a *account) drop(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.memo, key)
}

// Calls is what a client cost: the requests it sent (retries and the
// clock's GET /auth/time included) and the answers it took from the run's
// cache instead, and the writes a read-only client refused.
type Calls struct {
	Sent, Cached, Refused int64
}

// Calls reports what the client has cost so far.
func (c *Client) Calls() Calls {
	return Calls{Sent: c.sent.Load(), Cached: c.cached.Load(), Refused: c.refused.Load()}
}

// Since is the cost between an earlier report and this one.
func (n Calls) Since(before Calls) Calls {
	return Calls{Sent: n.Sent - before.Sent, Cached: n.Cached - before.Cached, Refused: n.Refused - before.Refused}
}

func (n Calls) String() string {
	s := plural(n.Sent, "API call")
	if n.Cached > 0 {
		s += " (" + plural(n.Cached, "answer") + " from this run's cache)"
	}
	if n.Refused > 0 {
		s += ", " + plural(n.Refused, "write") + " refused"
	}
	return s
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatInt(n, 10) + " " + what + "s"
}

// cachedGet answers the GET r from the account's cache under key, else
// makes it once for every client asking at the same time and keeps the
// answer for ttl. Only successes are kept.
func cachedGet[T any](ctx context.Context, c *Client, key string, ttl time.Duration, r Request, clone func(T) T) (T, error) {
	if v, ok := c.acct.get(key, c.now()); ok {
		c.cached.Add(1)
		c.log("ovh: %s %s: from this run's cache", r.Method, r.Path)
		return clone(v.(T)), nil
	}
	ran := false
	v, err, _ := c.acct.group.Do(key, func() (any, error) {
		ran = true
		var out T
		if err := c.Do(ctx, r, &out); err != nil {
			return nil, err
		}
		c.acct.put(key, out, c.now().Add(ttl))
		return out, nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	if !ran {
		c.cached.Add(1)
	}
	return clone(v.(T)), nil
}

func same[T any](v T) T { return v }

func cloneSlice[T any](v []T) []T { return slices.Clone(v) }

// serverKey is the cache key of a server's own fields (GET /dedicated/server/{sn}).
func serverKey(service string) string { return "server\x00" + service }

// writtenServer is the service a write goes to, from its path; "" when it
// names none.
func writtenServer(path string) string {
	rest, ok := strings.CutPrefix(path, "/dedicated/server/")
	if !ok {
		return ""
	}
	seg, _, _ := strings.Cut(rest, "/")
	seg, _, _ = strings.Cut(seg, "?")
	if s, err := url.PathUnescape(seg); err == nil {
		return s
	}
	return seg
}
