package ovhapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSignatureVectors(t *testing.T) {
	// go-ovh's ovh_test.go and python-ovh's test_client.py, then the ones
	// computed for this project's calls (ovh-api.md §2.3).
	tests := []struct {
		method, target, body, want string
	}{
		{"GET", "https://eu.api.ovh.com/1.0/auth", "", "$1$e9556054b6309771395efa467c22e627407461ad"},
		{"POST", "https://eu.api.ovh.com/1.0/auth", `{"a":"b","c":"d"}`, "$1$ec2fb5c7a81f64723c77d2e5b609ae6f58a84fc1"},
		{"PUT", "https://eu.api.ovh.com/1.0/auth", `{"a":"b","c":"d"}`, "$1$8a75a9e7c8e7296c9dbeda6a2a735eb6bd58ec4b"},
		{"DELETE", "https://eu.api.ovh.com/1.0/auth", "", "$1$a1eecd00b3b02b6cf5708b84b9ff42059a950d85"},
		{"GET", "https://eu.api.ovh.com/1.0/authTO", "", "$1$1f0958be70f095ddaba525778a9ac1dcffac89f3"},
		{"POST", "https://eu.api.ovh.com/1.0/authTO", `{"a":"b","c":"d"}`, "$1$b592effcb3bc2d37860eceb06a1b17670fbe49c6"},
		{"GET", "https://eu.api.ovh.com/1.0/call", "", "$1$7f2db49253edfc41891023fcd1a54cf61db05fbb"},
		{"GET", "https://eu.api.ovh.com/v1/call", "", "$1$e6e7906d385eb28adcbfbe6b66c1528a42d741ad"},
		{"GET", "https://eu.api.ovh.com/v2/call", "", "$1$bb63b132a6f84ad5433d0c534d48d3f7c3804285"},
		{"GET", "https://eu.api.ovh.com/1.0/dedicated/server/ns1.ip-1-2-3.eu/boot?bootType=rescue", "", "$1$f6157d987f30da26f9c0428ff7004dbf889a6b7a"},
		{"PUT", "https://eu.api.ovh.com/1.0/dedicated/server/ns1.ip-1-2-3.eu", `{"bootId":230242,"rescueSshKey":"ssh-ed25519 AAAA test"}`, "$1$2967a342951691597eb64215f17cea01589b4e11"},
		{"POST", "https://eu.api.ovh.com/1.0/dedicated/server/ns1.ip-1-2-3.eu/reboot", "", "$1$3a4f056fce609aa8d905af75bdd79e45a61e0dd2"},
		{"GET", "https://eu.api.ovh.com/1.0/dedicated/server/ns1.ip-1-2-3.eu/task/123", "", "$1$056a9c9d0d0db5f9719dc91b4b6f2ea246778e21"},
		{"PUT", "https://eu.api.ovh.com/1.0/dedicated/server/ns1.ip-1-2-3.eu", `{"bootId":1}`, "$1$cdfd71971f63d5dc5bfa3465133965247a691db3"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			if got := Signature(testAS, testCK, tt.method, tt.target, body, 1457018875); got != tt.want {
				t.Errorf("Signature = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestDocumentedVectorsVerify replays the documented requests, signatures
// included, against the emulator over TLS with Host eu.api.ovh.com and the
// clock at the vectors' timestamp: the check must rebuild the URL the client
// signed from the scheme, the Host header and the raw request target.
func TestDocumentedVectorsVerify(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1457018875, 0)}
	e := New(Config{AppKey: testAK, AppSecret: testAS, ConsumerKey: testCK, Now: clock.Now, Weather: Calm()})
	e.AddServer(testServer(testSN))
	ts := httptest.NewTLSServer(e.Handler())
	defer ts.Close()
	defer e.Close()

	tests := []struct {
		method, path, body, sig string
		wantStatus              int
	}{
		{"GET", "/1.0/dedicated/server/ns1.ip-1-2-3.eu/boot?bootType=rescue", "", "$1$f6157d987f30da26f9c0428ff7004dbf889a6b7a", 200},
		{"PUT", "/1.0/dedicated/server/ns1.ip-1-2-3.eu", `{"bootId":230242,"rescueSshKey":"ssh-ed25519 AAAA test"}`, "$1$2967a342951691597eb64215f17cea01589b4e11", 200},
		{"PUT", "/1.0/dedicated/server/ns1.ip-1-2-3.eu", `{"bootId":1}`, "$1$cdfd71971f63d5dc5bfa3465133965247a691db3", 200},
		// The same signature does not cover another query string.
		{"GET", "/1.0/dedicated/server/ns1.ip-1-2-3.eu/boot?bootType=harddisk", "", "$1$f6157d987f30da26f9c0428ff7004dbf889a6b7a", 400},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "eu.api.ovh.com"
			req.Header.Set("X-Ovh-Application", testAK)
			req.Header.Set("X-Ovh-Consumer", testCK)
			req.Header.Set("X-Ovh-Timestamp", "1457018875")
			req.Header.Set("X-Ovh-Signature", tt.sig)
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tt.wantStatus)
			}
		})
	}
	if st, _ := e.Server(testSN); st.BootID != 1 || st.RescueSSHKey != "ssh-ed25519 AAAA test" {
		t.Fatalf("after the documented PUTs: %+v", st)
	}
}

// tamperTransport changes the body after go-ovh signed it.
type tamperTransport struct{ from, to string }

func (tt tamperTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Method == http.MethodPut {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		body = bytes.ReplaceAll(body, []byte(tt.from), []byte(tt.to))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestAuthErrors(t *testing.T) {
	tests := []struct {
		name                 string
		ak, as, ck           string
		tamper               bool
		rules                []Rule
		wantCode             int
		wantClass, wantError string
	}{
		{name: "bad application key", ak: "NotAnAppKey00000", as: testAS, ck: testCK,
			wantCode: 403, wantClass: "Client::Forbidden", wantError: "Invalid application key"},
		{name: "bad consumer key", ak: testAK, as: testAS, ck: "NotAConsumerKey0000000000000000",
			wantCode: 403, wantClass: "Client::Forbidden", wantError: "This credential does not exist"},
		{name: "wrong application secret", ak: testAK, as: "wrongwrongwrongwrongwrongwrong00", ck: testCK,
			wantCode: 400, wantClass: "Client::BadRequest", wantError: "Invalid signature"},
		{name: "body changed after signing", ak: testAK, as: testAS, ck: testCK, tamper: true,
			wantCode: 400, wantClass: "Client::BadRequest", wantError: "Invalid signature"},
		{name: "call not granted", ak: testAK, as: testAS, ck: testCK, rules: []Rule{{Method: "GET", Path: "/dedicated/server/*"}},
			wantCode: 403, wantClass: "Client::Forbidden", wantError: "This call has not been granted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, endpoint := start(t, Config{Rules: tt.rules}, testServer(testSN))
			c := clientWith(t, endpoint, tt.ak, tt.as, tt.ck)
			if tt.tamper {
				c.Client.Transport = tamperTransport{from: `"bootId":1`, to: `"bootId":230242`}
			}
			err := c.Put(serverPath(testSN), map[string]any{"bootId": 1, "monitoring": false}, nil)
			ae := apiErr(t, err)
			if ae.Code != tt.wantCode || ae.Class != tt.wantClass || ae.Message != tt.wantError {
				t.Fatalf("got %d %q %q, want %d %q %q", ae.Code, ae.Class, ae.Message, tt.wantCode, tt.wantClass, tt.wantError)
			}
			if st, _ := e.Server(testSN); st.BootID != 1 || !st.Monitoring {
				t.Fatalf("a refused call changed the server: %+v", st)
			}
		})
	}
}

func TestStaleTimestamp(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1700000000, 0)}
	_, endpoint := start(t, Config{Now: clock.Now}, testServer(testSN))
	c := client(t, endpoint)
	var names []string
	// The first signed call makes go-ovh read /auth/time once and sign with
	// the server's time from then on.
	if err := c.Get("/dedicated/server", &names); err != nil || len(names) != 1 || names[0] != testSN {
		t.Fatalf("GET /dedicated/server = %v, %v", names, err)
	}
	clock.Add(4 * time.Minute) // within the tolerance
	if err := c.Get("/dedicated/server", &names); err != nil {
		t.Fatalf("4 minutes of skew: %v", err)
	}
	clock.Add(2 * time.Minute)
	ae := apiErr(t, c.Get("/dedicated/server", &names))
	if ae.Code != 400 || ae.Class != "Client::BadRequest" || ae.Message != "Invalid signature" {
		t.Fatalf("6 minutes of skew: %+v", ae)
	}
	clock.Add(-12 * time.Minute) // now the client is 6 minutes ahead
	ae = apiErr(t, c.Get("/dedicated/server", &names))
	if ae.Code != 400 || ae.Message != "Invalid signature" {
		t.Fatalf("6 minutes ahead: %+v", ae)
	}
}

// TestRawErrorBodies checks the bodies themselves, which python-ovh reads
// (errorCode) where go-ovh reads class and message.
func TestRawErrorBodies(t *testing.T) {
	_, endpoint := start(t, Config{}, testServer(testSN))
	tests := []struct {
		name    string
		headers map[string]string
		status  int
		want    map[string]string
	}{
		{"no credentials at all", nil, 401,
			map[string]string{"class": "Client::Unauthorized", "errorCode": "NOT_AUTHENTICATED", "message": "You must login first", "httpCode": "401 Unauthorized"}},
		{"unknown application", map[string]string{"X-Ovh-Application": "x"}, 403,
			map[string]string{"class": "Client::Forbidden", "errorCode": "INVALID_KEY", "message": "Invalid application key", "httpCode": "403 Forbidden"}},
		{"no timestamp", map[string]string{"X-Ovh-Application": testAK, "X-Ovh-Consumer": testCK}, 400,
			map[string]string{"class": "Client::BadRequest", "errorCode": "INVALID_SIGNATURE", "message": "Invalid signature", "httpCode": "400 Bad Request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", endpoint+"/dedicated/server", nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || len(got) != len(tt.want) {
				t.Fatalf("got %d %v, want %d %v", resp.StatusCode, got, tt.status, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if resp.Header.Get("X-Ovh-QueryID") == "" {
				t.Error("no X-Ovh-QueryID")
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"/dedicated/server", "/dedicated/server", true},
		{"/dedicated/server", "/dedicated/server/ns1", false},
		{"/dedicated/server/*", "/dedicated/server", false},
		{"/dedicated/server/*", "/dedicated/server/ns1/task/5", true},
		{"/*", "/me", true},
		{"/dedicated/*/boot", "/dedicated/server/ns1/boot", true},
		{"/dedicated/*/boot", "/dedicated/server/ns1/reboot", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
