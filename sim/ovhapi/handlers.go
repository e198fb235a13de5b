package ovhapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds what the emulator reads of a request body.
const maxBody = 1 << 20

var (
	bootTypes    = []string{"harddisk", "internal", "ipxeCustomerScript", "network", "power", "rescue"}
	taskStatuses = []string{StatusCancelled, StatusCustomerError, StatusDoing, StatusDone, StatusInit, StatusOVHError, StatusTodo}
	serverStates = []string{"error", "hacked", "hackedBlocked", "ok"}
	sshKeyTypes  = []string{"ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-"}
)

// request is one parsed call.
type request struct {
	r     *http.Request
	body  []byte
	segs  []string // decoded path segments after the version prefix
	query url.Values
}

// recorder remembers the status written, for Calls.
type recorder struct {
	http.ResponseWriter
	status int
}

func (w *recorder) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (e *Emulator) serveHTTP(hw http.ResponseWriter, r *http.Request) {
	w := &recorder{ResponseWriter: hw, status: http.StatusOK}
	e.mu.Lock()
	e.queries++
	qid := fmt.Sprintf("EMU.ext-1.%s.%d", e.queryTag, e.queries)
	e.mu.Unlock()
	w.Header().Set("X-Ovh-QueryID", qid)

	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		e.writeError(w, errBadRequest("Request body too large or unreadable"))
		return
	}
	req := &request{r: r, body: body, query: r.URL.Query()}
	switch r.URL.Path {
	case "/auth/oauth2/token":
		r.Body = io.NopCloser(bytes.NewReader(body))
		e.serveToken(w, r)
		return
	case "/auth/", "/auth":
		e.serveValidation(w, r)
		return
	}
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		e.writeError(w, errInvalidURL)
		return
	}
	req.segs = segs
	apiPath := "/" + strings.Join(segs, "/")

	// Count every call naming a server, whatever becomes of it.
	if len(segs) >= 3 && segs[0] == "dedicated" && segs[1] == "server" {
		arrived := e.cfg.Now()
		defer func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if s, ok := e.servers[segs[2]]; ok {
				s.calls = append(s.calls, Call{At: arrived, Method: r.Method, Path: apiPath, Status: w.status})
			}
		}()
	}

	if r.Method == http.MethodGet && apiPath == "/auth/time" {
		e.writeJSON(w, http.StatusOK, e.cfg.Now().Unix())
		return
	}
	if r.Method == http.MethodPost && apiPath == "/auth/credential" {
		if !e.wait(r, segs) {
			e.writeError(w, errGatewayTimeout)
			return
		}
		status, out, aerr := e.newCredential(r, body)
		if aerr != nil {
			e.writeError(w, aerr)
			return
		}
		e.writeJSON(w, status, out)
		return
	}
	if aerr := e.checkAuth(r, body, apiPath); aerr != nil {
		e.writeError(w, aerr)
		return
	}
	if !e.wait(r, segs) {
		e.writeError(w, errGatewayTimeout)
		return
	}
	e.mu.Lock()
	aerr := e.admit(e.cfg.Now())
	e.mu.Unlock()
	if aerr != nil {
		e.writeError(w, aerr)
		return
	}
	status, out, aerr := e.route(req)
	if aerr != nil {
		e.writeError(w, aerr)
		return
	}
	e.writeJSON(w, status, out)
}

// wait holds the answer for the weather's delay; false when the client
// left meanwhile.
func (e *Emulator) wait(r *http.Request, segs []string) bool {
	e.mu.Lock()
	var d time.Duration
	if len(segs) >= 3 && segs[0] == "dedicated" && segs[1] == "server" {
		if s, ok := e.servers[segs[2]]; ok {
			d = e.delay(s)
		}
	} else {
		d = e.weather.DelayMin
	}
	e.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-e.ctx.Done():
		return false
	}
}

// splitPath strips the version prefix and decodes each segment on its own,
// so that an escaped '/' inside a service name stays in the name.
func splitPath(escaped string) ([]string, bool) {
	parts := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	if len(parts) < 2 || (parts[0] != "1.0" && parts[0] != "v1") {
		return nil, false
	}
	segs := make([]string, 0, len(parts)-1)
	for _, p := range parts[1:] {
		d, err := url.PathUnescape(p)
		if err != nil || d == "" {
			return nil, false
		}
		segs = append(segs, d)
	}
	return segs, true
}

func (e *Emulator) writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		e.writeError(w, errInternal)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

func (e *Emulator) writeError(w http.ResponseWriter, aerr *apiError) {
	body := struct {
		Class     string            `json:"class"`
		Message   string            `json:"message"`
		ErrorCode string            `json:"errorCode,omitempty"`
		HTTPCode  string            `json:"httpCode"`
		Details   map[string]string `json:"details,omitempty"`
	}{aerr.class, aerr.message, aerr.errorCode, fmt.Sprintf("%d %s", aerr.status, http.StatusText(aerr.status)), aerr.details}
	buf, _ := json.Marshal(body)
	if aerr.retryAfter > 0 {
		secs := (aerr.retryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(aerr.status)
	_, _ = w.Write(buf)
}

// route dispatches an authenticated call; it returns the status and the value
// to encode, or an error answer.
func (e *Emulator) route(req *request) (int, any, *apiError) {
	segs, method := req.segs, req.r.Method
	switch {
	case len(segs) == 2 && segs[0] == "auth" && segs[1] == "currentCredential" && method == http.MethodGet:
		if req.r.Header.Get("Authorization") != "" {
			// A token has no consumer key (OVH: 403 for OAuth2 clients).
			return 0, nil, errNoCredential
		}
		return http.StatusOK, e.currentCredential(req.r.Header.Get("X-Ovh-Consumer")), nil
	case len(segs) == 2 && segs[0] == "auth" && segs[1] == "details" && method == http.MethodGet:
		return http.StatusOK, e.authDetails(req.r.Header.Get("Authorization") != ""), nil
	case len(segs) == 2 && segs[0] == "dedicated" && segs[1] == "server" && method == http.MethodGet:
		e.mu.Lock()
		defer e.mu.Unlock()
		return http.StatusOK, append([]string{}, e.order...), nil
	case len(segs) >= 3 && segs[0] == "dedicated" && segs[1] == "server":
		return e.routeServer(req, segs[2], segs[3:])
	}
	return 0, nil, errInvalidURL
}

func (e *Emulator) routeServer(req *request, name string, rest []string) (int, any, *apiError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.servers[name]
	if !ok {
		return 0, nil, errNoService
	}
	if s.fault.TooMany > 0 {
		s.fault.TooMany--
		return 0, nil, errTooMany(s.fault.RetryAfter)
	}
	if s.fault.HTTP500 > 0 {
		s.fault.HTTP500--
		return 0, nil, errInternal
	}
	if aerr := e.stormBefore(s); aerr != nil {
		return 0, nil, aerr
	}
	status, out, aerr := e.serveServer(s, req, rest)
	if method := req.r.Method; aerr == nil && method != http.MethodGet {
		if s.fault.LostAnswer > 0 {
			s.fault.LostAnswer--
			return 0, nil, errGatewayTimeout
		}
		if e.loseAnswer(s) {
			return 0, nil, errGatewayTimeout
		}
	}
	return status, out, aerr
}

// serveServer answers a call on server s. Called with e.mu held.
func (e *Emulator) serveServer(s *server, req *request, rest []string) (int, any, *apiError) {
	method := req.r.Method
	at := func(path string, m string) bool {
		return method == m && strings.Join(rest, "/") == path
	}
	switch {
	case at("", http.MethodGet):
		return http.StatusOK, e.dedicatedJSON(s), nil
	case at("", http.MethodPut):
		return e.putServer(s, req.body)
	case at("boot", http.MethodGet):
		return e.listBoots(s, req.query)
	case len(rest) == 2 && rest[0] == "boot" && method == http.MethodGet,
		len(rest) == 3 && rest[0] == "boot" && rest[2] == "option" && method == http.MethodGet:
		id, err := strconv.ParseInt(rest[1], 10, 64)
		if err != nil {
			return 0, nil, errBadRequest("Invalid value for parameter bootId")
		}
		b, ok := s.findBoot(id)
		if !ok {
			return 0, nil, errNotFound(fmt.Sprintf("The requested object (bootId = %d) does not exist", id))
		}
		if len(rest) == 3 {
			return http.StatusOK, []string{}, nil
		}
		return http.StatusOK, netbootJSON{BootID: b.ID, BootType: b.BootType, Kernel: b.Kernel, Description: b.Description}, nil
	case at("reboot", http.MethodPost):
		if len(req.body) != 0 {
			return 0, nil, errUnexpectedBody
		}
		if e.closed {
			return 0, nil, &apiError{status: http.StatusServiceUnavailable, class: "Server::ServiceUnavailable", message: "Service unavailable"}
		}
		if p := e.pendingReboot(s); p != nil {
			return 0, nil, errRebootPending(p.id)
		}
		t := e.newRebootTask(s)
		return http.StatusOK, taskJSONOf(t), nil
	case at("task", http.MethodGet):
		return e.listTasks(s, req.query)
	case len(rest) == 2 && rest[0] == "task" && method == http.MethodGet:
		t, aerr := e.findTask(s, rest[1])
		if aerr != nil {
			return 0, nil, aerr
		}
		if s.fault.TaskNotFound > 0 {
			s.fault.TaskNotFound--
			return 0, nil, errNotFound(fmt.Sprintf("The requested object (taskId = %d) does not exist", t.id))
		}
		e.advance(s, t, e.cfg.Now())
		return http.StatusOK, taskJSONOf(t), nil
	case len(rest) == 3 && rest[0] == "task" && rest[2] == "cancel" && method == http.MethodPost:
		if len(req.body) != 0 {
			return 0, nil, errUnexpectedBody
		}
		t, aerr := e.findTask(s, rest[1])
		if aerr != nil {
			return 0, nil, aerr
		}
		now := e.cfg.Now()
		e.advance(s, t, now)
		// Once the power cycle has begun it cannot be taken back.
		if t.status != StatusInit && t.status != StatusTodo {
			return 0, nil, errBadRequest(fmt.Sprintf("Task %d cannot be cancelled in status %s", t.id, t.status))
		}
		e.finish(t, StatusCancelled, t.comment, now)
		return http.StatusOK, nil, nil
	case at("ips", http.MethodGet):
		ips := []string{s.IP + "/32"}
		if s.IPv6Block != "" {
			ips = append(ips, s.IPv6Block)
		}
		return http.StatusOK, ips, nil
	case at("specifications/network", http.MethodGet):
		return http.StatusOK, networkJSON(s), nil
	}
	return 0, nil, errInvalidURL
}

func (e *Emulator) findTask(s *server, idText string) (*task, *apiError) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return nil, errBadRequest("Invalid value for parameter taskId")
	}
	t, ok := e.tasks[id]
	if !ok || t.server != s.Name || e.taskHidden(t, e.cfg.Now()) {
		return nil, errNotFound(fmt.Sprintf("The requested object (taskId = %d) does not exist", id))
	}
	return t, nil
}

func (e *Emulator) listBoots(s *server, q url.Values) (int, any, *apiError) {
	bootType := q.Get("bootType")
	if q.Has("bootType") && !slices.Contains(bootTypes, bootType) {
		return 0, nil, errBadRequest("Invalid value for parameter bootType")
	}
	ids := []int64{}
	for _, b := range s.Boots {
		if bootType == "" || b.BootType == bootType {
			ids = append(ids, b.ID)
		}
	}
	return http.StatusOK, ids, nil
}

func (e *Emulator) listTasks(s *server, q url.Values) (int, any, *apiError) {
	function, status := q.Get("function"), q.Get("status")
	if q.Has("status") && !slices.Contains(taskStatuses, status) {
		return 0, nil, errBadRequest("Invalid value for parameter status")
	}
	now := e.cfg.Now()
	ids := []int64{}
	for _, t := range s.tasks {
		e.advance(s, t, now)
		if e.weather.TaskPurge > 0 && t.final() && !now.Before(t.doneAt.Add(e.weather.TaskPurge)) {
			continue
		}
		if (function == "" || t.function == function) && (status == "" || t.status == status) {
			ids = append(ids, t.id)
		}
	}
	return http.StatusOK, ids, nil
}

// putServer applies a partial dedicated.server.Dedicated. Called with e.mu held.
func (e *Emulator) putServer(s *server, body []byte) (int, any, *apiError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return 0, nil, errBadRequest("Invalid body: a JSON object is expected")
	}
	// Validate everything before changing anything.
	next := *s
	for key, raw := range fields {
		switch key {
		case "bootId":
			var id int64
			if err := json.Unmarshal(raw, &id); err != nil || isNull(raw) {
				return 0, nil, errBadRequest("Invalid value for property bootId: an integer is expected")
			}
			if _, ok := s.findBoot(id); !ok {
				return 0, nil, errBadRequest(fmt.Sprintf("Invalid bootId %d: not a boot of this server", id))
			}
			next.bootID = &id
		case "bootScript", "efiBootloaderPath", "rescueMail", "rescueSshKey", "rootDevice":
			v, aerr := nullableString(key, raw)
			if aerr != nil {
				return 0, nil, aerr
			}
			switch key {
			case "bootScript":
				next.bootScript = v
			case "efiBootloaderPath":
				next.efiBootloaderPath = v
			case "rescueMail":
				next.rescueMail = v
			case "rescueSshKey":
				if v != nil && !validSSHKey(*v) {
					return 0, nil, errBadRequest("Invalid value for property rescueSshKey: one RSA, ECDSA or ED25519 public key is expected")
				}
				next.rescueSSHKey = v
			case "rootDevice":
				next.rootDevice = v
			}
		case "monitoring", "noIntervention":
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil || isNull(raw) {
				return 0, nil, errBadRequest(fmt.Sprintf("Invalid value for property %s: a boolean is expected", key))
			}
			if key == "monitoring" {
				next.monitoring = b
			} else {
				next.noIntervention = b
			}
		case "state":
			var st string
			if err := json.Unmarshal(raw, &st); err != nil || !slices.Contains(serverStates, st) {
				return 0, nil, errBadRequest("Invalid value for property state")
			}
			next.state = st
		case "availabilityZone", "commercialRange", "datacenter", "iam", "ip", "linkSpeed", "name",
			"newUpgradeSystem", "os", "powerState", "professionalUse", "rack", "region", "reverse",
			"serverId", "supportLevel":
			// Read-only in OVH's schema. How the real API treats them is
			// unknown (ovh-api.md 4.3); refusing them is the cautious
			// choice, so a client that sends them is caught here. The
			// message is the emulator's.
			return 0, nil, errBadRequest(fmt.Sprintf("Invalid property %s: it is read-only", key))
		default:
			return 0, nil, errBadRequest(fmt.Sprintf("Invalid property %s", key))
		}
	}
	_, setsBootID := fields["bootId"]
	scriptSet := next.bootScript != nil && *next.bootScript != ""
	_, setsScript := fields["bootScript"]
	switch {
	case setsBootID && setsScript && scriptSet:
		return 0, nil, errBadRequest("bootId and bootScript cannot be set together")
	case setsBootID:
		next.bootScript = nil
	case setsScript && scriptSet:
		next.bootID = nil
	case setsScript && next.bootID == nil:
		// Clearing the script without a boot falls back to the disk.
		hd := s.BootID
		for _, b := range s.Boots {
			if b.BootType == "harddisk" {
				hd = b.ID
				break
			}
		}
		next.bootID = &hd
	}
	*s = next
	return http.StatusOK, nil, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// nullableString decodes a nullable string property; "" clears it like null.
func nullableString(key string, raw json.RawMessage) (*string, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, errBadRequest(fmt.Sprintf("Invalid value for property %s: a string is expected", key))
	}
	if v == "" {
		return nil, nil
	}
	return &v, nil
}

// validSSHKey accepts one public key line of a type the rescue takes.
func validSSHKey(key string) bool {
	key = strings.TrimRight(key, "\r\n")
	if strings.ContainsAny(key, "\r\n") {
		return false
	}
	ok := false
	for _, prefix := range sshKeyTypes {
		ok = ok || strings.HasPrefix(key, prefix)
	}
	return ok && len(strings.Fields(key)) >= 2
}

// authDetails is GET /auth/details: who calls, and how.
func (e *Emulator) authDetails(oauth2 bool) any {
	method, identity := "account", "urn:v1:eu:identity:account:xx1234-ovh"
	if oauth2 {
		method, identity = "oauth2_client_credentials", "urn:v1:eu:identity:credential:xx1234-ovh/oauth2-"+e.cfg.ClientID
	}
	return map[string]any{"account": "xx1234-ovh", "method": method, "identities": []string{identity}, "description": nil, "roles": nil, "user": nil}
}

func (e *Emulator) currentCredential(ck string) any {
	e.mu.Lock()
	k := e.keyOf(ck)
	status, expiry, created, id := k.status, k.expires, k.created, k.id
	rules := make([]map[string]string, 0, len(k.rules))
	for _, r := range k.rules {
		rules = append(rules, map[string]string{"method": r.Method, "path": r.Path})
	}
	e.mu.Unlock()
	var expiration any
	if !expiry.IsZero() {
		expiration = expiry.UTC().Format(time.RFC3339)
	}
	return map[string]any{
		"credentialId":  id,
		"applicationId": hash32(e.cfg.AppKey),
		"creation":      created.UTC().Format(time.RFC3339),
		"expiration":    expiration,
		"lastUse":       e.cfg.Now().UTC().Format(time.RFC3339),
		"ovhSupport":    false,
		"rules":         rules,
		"status":        status,
		"allowedIPs":    nil,
	}
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

type netbootJSON struct {
	BootID      int64  `json:"bootId"`
	BootType    string `json:"bootType"`
	Description string `json:"description"`
	Kernel      string `json:"kernel"`
}

type iamJSON struct {
	ID          string `json:"id"`
	URN         string `json:"urn"`
	DisplayName string `json:"displayName"`
}

// dedicatedJSON is dedicated.server.Dedicated (DedicatedWithIAM for "ovh").
type dedicatedJSON struct {
	AvailabilityZone  string   `json:"availabilityZone"`
	BootID            *int64   `json:"bootId"`
	BootScript        *string  `json:"bootScript"`
	CommercialRange   *string  `json:"commercialRange"`
	Datacenter        string   `json:"datacenter"`
	EFIBootloaderPath *string  `json:"efiBootloaderPath"`
	IAM               *iamJSON `json:"iam,omitempty"`
	IP                string   `json:"ip"`
	LinkSpeed         *int64   `json:"linkSpeed"`
	Monitoring        bool     `json:"monitoring"`
	Name              string   `json:"name"`
	NewUpgradeSystem  bool     `json:"newUpgradeSystem"`
	NoIntervention    bool     `json:"noIntervention"`
	OS                string   `json:"os"`
	PowerState        string   `json:"powerState"`
	ProfessionalUse   bool     `json:"professionalUse"`
	Rack              string   `json:"rack"`
	Region            string   `json:"region"`
	RescueMail        *string  `json:"rescueMail"`
	RescueSSHKey      *string  `json:"rescueSshKey"`
	Reverse           *string  `json:"reverse"`
	RootDevice        *string  `json:"rootDevice"`
	ServerID          int64    `json:"serverId"`
	State             string   `json:"state"`
	SupportLevel      string   `json:"supportLevel"`
}

func (e *Emulator) dedicatedJSON(s *server) dedicatedJSON {
	region := regionOf(s.Datacenter)
	h := hash32(s.Name)
	linkSpeed := int64(1000)
	commercialRange := s.CommercialRange
	reverse := s.Name
	d := dedicatedJSON{
		AvailabilityZone:  region + "-a",
		BootID:            s.bootID,
		BootScript:        s.bootScript,
		CommercialRange:   &commercialRange,
		Datacenter:        s.Datacenter,
		EFIBootloaderPath: s.efiBootloaderPath,
		IP:                s.IP,
		LinkSpeed:         &linkSpeed,
		Monitoring:        s.monitoring,
		Name:              s.Name,
		NoIntervention:    s.noIntervention,
		OS:                "none_64",
		PowerState:        s.powerState,
		Rack:              fmt.Sprintf("S%03dB%02d", h%1000, h/1000%100),
		Region:            region,
		RescueMail:        s.rescueMail,
		RescueSSHKey:      s.rescueSSHKey,
		Reverse:           &reverse,
		RootDevice:        s.rootDevice,
		ServerID:          int64(100000 + h%900000),
		State:             s.state,
		SupportLevel:      "pro",
	}
	if e.cfg.Flavour == "ovh" {
		d.IAM = &iamJSON{
			ID:          fmt.Sprintf("%08x-0000-4000-8000-%012x", h, uint64(hash32(s.Name+"/iam"))),
			URN:         "urn:v1:eu:resource:dedicatedServer:" + s.Name,
			DisplayName: s.Name,
		}
	}
	return d
}

// regionOf maps a datacenter like gra2 to its region like eu-west-gra.
func regionOf(datacenter string) string {
	site := strings.TrimRight(datacenter, "0123456789")
	regions := map[string]string{
		"gra": "eu-west-gra", "sbg": "eu-west-sbg", "rbx": "eu-west-rbx", "eri": "eu-west-eri",
		"lim": "eu-west-lim", "waw": "eu-central-waw", "bhs": "ca-east-bhs", "hil": "us-west-or",
		"vin": "us-east-va", "sgp": "ap-southeast-sgp", "syd": "ap-southeast-syd",
	}
	if r, ok := regions[site]; ok {
		return r
	}
	return "eu-west-" + site
}

type taskJSON struct {
	Comment               *string  `json:"comment"`
	DoneDate              *string  `json:"doneDate"`
	Function              string   `json:"function"`
	LastUpdate            *string  `json:"lastUpdate"`
	NeedSchedule          bool     `json:"needSchedule"`
	Note                  *string  `json:"note"`
	PlannedInterventionID *int64   `json:"plannedInterventionId"`
	StartDate             string   `json:"startDate"`
	Status                string   `json:"status"`
	Tags                  []string `json:"tags"`
	TaskID                int64    `json:"taskId"`
	TicketReference       *string  `json:"ticketReference"`
}

func apiDate(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func taskJSONOf(t *task) taskJSON {
	last := apiDate(t.lastUpdate)
	out := taskJSON{
		Function:   t.function,
		LastUpdate: &last,
		StartDate:  apiDate(t.created),
		Status:     t.status,
		TaskID:     t.id,
	}
	if t.comment != "" {
		c := t.comment
		out.Comment = &c
	}
	if t.note != "" {
		n := t.note
		out.Note = &n
	}
	if t.final() {
		done := apiDate(t.doneAt)
		out.DoneDate = &done
	}
	return out
}

func networkJSON(s *server) any {
	type unitValue struct {
		Unit  string `json:"unit"`
		Value int64  `json:"value"`
	}
	gbit := unitValue{Unit: "Mbps", Value: 1000}
	ipv4 := map[string]any{"gateway": nil, "ip": s.IP, "network": nil}
	if ip := net.ParseIP(s.IP).To4(); ip != nil {
		ipv4["gateway"] = net.IPv4(ip[0], ip[1], ip[2], 254).String()
		ipv4["network"] = net.IPv4(ip[0], ip[1], ip[2], 0).String() + "/24"
	}
	var ipv6 any
	if s.IPv6Block != "" {
		gw := s.IPv6Gateway
		if gw == "" {
			gw = IPv6Gateway(s.IPv6Block)
		}
		ipv6 = map[string]any{"gateway": gw, "ip": s.IPv6Block, "network": s.IPv6Block}
	}
	return map[string]any{
		"routing":    map[string]any{"ipv4": ipv4, "ipv6": ipv6},
		"connection": gbit,
		"bandwidth": map[string]any{
			"type": "included", "InternetToOvh": gbit, "OvhToInternet": gbit, "OvhToOvh": gbit,
		},
		"switching": map[string]any{"name": strings.ToLower(s.Datacenter) + "-a12-b34"},
		"traffic": map[string]any{
			"isThrottled": false, "inputQuotaSize": nil, "inputQuotaUsed": nil,
			"outputQuotaSize": nil, "outputQuotaUsed": nil, "resetQuotaDate": nil,
		},
		"vmac":  map[string]any{"supported": false},
		"ola":   map[string]any{"available": false, "availableModes": []any{}, "supportedModes": []any{}},
		"vrack": nil,
	}
}

// IPv6Gateway is OVH's gateway for an IPv6 block: the first 56 bits of the
// /64, then ff:ff:ff:ff:ff (2001:db8:1:2a00::/64 -> 2001:db8:1:2aff:ff:ff:ff:ff).
// It lies outside the /64, so hosts need an on-link route to it. It returns ""
// for something that is not an IPv6 block.
func IPv6Gateway(block string) string {
	ip, _, err := net.ParseCIDR(block)
	if err != nil || ip.To4() != nil {
		return ""
	}
	gw := make(net.IP, net.IPv6len)
	copy(gw, ip.To16()[:7])
	gw[7] = 0xff
	for _, i := range []int{9, 11, 13, 15} {
		gw[i] = 0xff
	}
	return gw.String()
}
