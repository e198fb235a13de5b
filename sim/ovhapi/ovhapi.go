// Package ovhapi emulates the part of the OVHcloud API (and of its Kimsufi
// and So you Start roots) that nixbook drives for dedicated servers: netboot
// selection, rescue SSH key, hard reboots and their tasks, and the network
// specifications. Requests are signed and checked as go-ovh signs them and
// errors come back with OVH's bodies, so the real client library can be
// pointed at it. By default it behaves like the real API on a bad day
// (Weather, BadDay): slow answers, tasks unknown for a while after they are
// created, bursts of 5xx, writes carried out but answered 504, and 429
// above the key's rate.
package ovhapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Running modes a server can be in, as far as the API knows. The emulator
// sets them when a reboot task completes; ModeInstaller is only ever set by
// the fleet (through SetMode) because a kexec does not go through the API.
const (
	ModeDisk      = "disk"
	ModeRescue    = "rescue"
	ModeInstaller = "installer"
	ModeIPXE      = "ipxe" // an iPXE shell or script: the host never answers SSH
	ModeOff       = "off"
	// ModeWindowsRescue is a Windows rescue (rescue-customer-windows,
	// WinRescue): password login only, rescueSshKey ignored, no SSH.
	ModeWindowsRescue = "windows-rescue"
)

// Task statuses (dedicated.TaskStatusEnum).
const (
	StatusInit          = "init"
	StatusTodo          = "todo"
	StatusDoing         = "doing"
	StatusDone          = "done"
	StatusCancelled     = "cancelled"
	StatusCustomerError = "customerError"
	StatusOVHError      = "ovhError"
)

// Netboot is one entry of GET /dedicated/server/{sn}/boot/{id}.
type Netboot struct {
	ID          int64
	BootType    string // harddisk, internal, ipxeCustomerScript, network, power, rescue
	Kernel      string
	Description string
}

// DefaultBoots returns the netboots a European server offers. The iPXE shell
// and a Windows rescue come before the Linux rescue in the list of
// bootType=rescue, as the iPXE shell does on the real API, so a client that
// takes the first rescue boot, or the first "customer" rescue, fails.
func DefaultBoots() []Netboot {
	return []Netboot{
		{ID: 1, BootType: "harddisk", Kernel: "hd", Description: "Boot to disk"},
		{ID: 203323, BootType: "rescue", Kernel: "ipxe-shell", Description: "iPXE shell"},
		{ID: 228212, BootType: "rescue", Kernel: "rescue-customer-windows", Description: "Windows customer rescue system (password by mail)"},
		{ID: 230242, BootType: "rescue", Kernel: "rescue12-customer", Description: "Customer rescue system (Debian-12-based)"},
		{ID: 95083, BootType: "power", Kernel: "poweroff", Description: "Power-off server"},
	}
}

// ModeOf is the running mode a server ends up in when it boots b.
func ModeOf(b Netboot) string {
	switch {
	case b.Kernel == "efi-shell":
		return ModeIPXE // a shell, no system: like iPXE's, off the network
	case b.Kernel == "hd" || b.BootType == "harddisk":
		return ModeDisk
	case b.Kernel == "poweroff" || b.BootType == "power":
		return ModeOff
	case IsWindowsRescue(b.Kernel):
		return ModeWindowsRescue
	case b.Kernel != "ipxe-shell" && strings.Contains(strings.ToLower(b.Kernel), "rescue"):
		return ModeRescue
	default:
		return ModeIPXE
	}
}

// IsWindowsRescue reports the kernels of OVH's Windows rescues.
func IsWindowsRescue(kernel string) bool {
	k := strings.ToLower(kernel)
	return strings.Contains(k, "windows") || strings.Contains(k, "winrescue")
}

// Firmwares a server boots with.
const (
	FirmwareBIOS = "bios"
	FirmwareUEFI = "uefi"
)

// DebianEFILoader is the loader OVH's Debian install leaves on a UEFI
// server, and its efiBootloaderPath.
const DebianEFILoader = `\efi\debian\grubx64.efi`

// efiShellBoot is what a UEFI server whose efiBootloaderPath names no
// loader boots instead of disk: the UEFI shell.
func efiShellBoot(disk Netboot, why string) Netboot {
	return Netboot{ID: disk.ID, BootType: disk.BootType, Kernel: "efi-shell", Description: "UEFI shell: " + why}
}

// scriptBoot is what a server boots while a bootScript replaces its bootId.
var scriptBoot = Netboot{ID: 0, BootType: "ipxeCustomerScript", Kernel: "ipxe-script", Description: "Customer iPXE script"}

// Server describes one dedicated server of the emulated account.
type Server struct {
	Name        string // the service name, e.g. ns1.ip-203-0-113.eu
	IP          string // main IPv4; the gateway is .254 of its /24
	IPv6Block   string // e.g. 2001:db8:1:2a00::/64
	IPv6Gateway string // empty: computed by OVH's rule (…ff:ff:ff:ff:ff)
	Datacenter  string // default gra2
	BootID      int64  // default: the harddisk boot
	Boots       []Netboot
	// Mode is the running mode the server starts in; default the mode of
	// BootID.
	Mode string
	// State is OVH's state of the server (dedicated.server.StateEnum: ok,
	// error, hacked, hackedBlocked); default ok.
	State string
	// RescueSSHKey is the rescueSshKey the server starts with.
	RescueSSHKey string
	// CommercialRange is the server's range (commercialRange). Servers of
	// one range and datacenter offer the same netboots, which clients may
	// rely on to read the catalog once for many servers. Default: the
	// flavour's range ("fs" on ovh, "kimsufi") for DefaultBoots, and a
	// range of the server's own for a server given other Boots.
	CommercialRange string
	// Firmware is "bios" (default) or "uefi". A UEFI server booting its
	// disk runs the loader its efiBootloaderPath names, found among
	// EFILoaders (the loaders on its EFI system partition, matched as
	// FAT does, without case); any other path leaves it in the UEFI
	// shell, off the network (ModeIPXE). EFIBootloaderPath is the path
	// it starts with; default for UEFI: \efi\debian\grubx64.efi, the loader
	// of OVH's Debian install, which EFILoaders then holds by default.
	Firmware          string
	EFIBootloaderPath string
	EFILoaders        []string
	// EFIBoot, when set, decides instead of EFILoaders: it is asked, at
	// each disk boot, whether the path names a loader on the server's EFI
	// system partitions as they are then, and says why not. A simulated
	// host answers from its disks.
	EFIBoot func(path string) error
}

// Timings is the time a reboot task spends in each status before done.
type Timings struct{ Init, Todo, Doing time.Duration }

// Rule is an access rule of the consumer key (method and a path glob where
// '*' matches anything, slashes included).
type Rule struct{ Method, Path string }

// Config holds the emulated account.
type Config struct {
	AppKey, AppSecret, ConsumerKey string
	Timings                        Timings
	// Now is the API's clock (GET /auth/time, timestamps, task progress);
	// default time.Now.
	Now func() time.Time
	// Flavour is "ovh" (GET server carries an iam block) or "kimsufi".
	Flavour string
	// OnReboot is called once when a reboot task enters "doing", with the
	// boot the server is set to at that moment and its rescue SSH key. An
	// error makes the task end in ovhError with the error as its comment;
	// the task is not done before it returns. Calls for different servers
	// run concurrently; ctx ends when the emulator is closed.
	OnReboot func(ctx context.Context, server string, boot Netboot, rescueSSHKey string) error
	// MaxSkew is how far X-Ovh-Timestamp may be from Now; default 300s.
	MaxSkew time.Duration
	// Rules granted to the consumer key; default GET /dedicated/server and
	// GET, PUT, POST /dedicated/server/*.
	Rules []Rule
	// Weather is how the API misbehaves by itself; nil: BadDay(1). Calm()
	// turns it off.
	Weather *Weather
	// CredentialStatus is the consumer key's state: validated (default),
	// pendingValidation, expired or refused; CredentialExpires, when set,
	// is when a validated key expires. A key that is not validated, or
	// has expired, is refused on every signed call (credential.go).
	CredentialStatus  string
	CredentialExpires time.Time
	// ClientID and ClientSecret, when set, are an OAuth2 service account:
	// POST /auth/oauth2/token (at the root, beside /1.0) exchanges them
	// for access tokens that calls carry as Authorization: Bearer, with
	// the rights of Rules. TokenLifetime is a token's; default 1h.
	ClientID, ClientSecret string
	TokenLifetime          time.Duration
}

// Fault is a misbehaviour injected for one server.
type Fault struct {
	// TaskStatus ("ovhError" or "customerError") makes the next reboot task
	// end in that status with Comment instead of done; the server is not
	// rebooted and OnReboot is not called.
	TaskStatus string
	Comment    string
	// HTTP500 makes the next N authenticated requests for the server answer
	// 500.
	HTTP500 int
	// TaskNotFound makes the next N GET task/{id} for the server answer 404,
	// as the real API does when a task lives in another region's database.
	TaskNotFound int
	// SlowTask adds this much time in doing to the next reboot task.
	SlowTask time.Duration
	// Note is the note of the next reboot task (dedicated.server.Task.note),
	// as OVH adds to tasks its technicians handle.
	Note string
	// LostAnswer makes the next N writes (PUT, POST) for the server be
	// carried out and then answered 504, as when OVH's gateway times out
	// behind a backend that did the work.
	LostAnswer int
	// TooMany makes the next N requests for the server answer 429 with a
	// Retry-After of RetryAfter (rounded up to whole seconds; zero: none).
	TooMany    int
	RetryAfter time.Duration
}

// Task is a task as ServerState reports it.
type Task struct {
	ID       int64
	Function string
	Status   string
	Comment  string
	Started  time.Time
	Done     time.Time // zero while pending
	Boot     Netboot   // what the reboot booted; zero before doing
}

// ServerState is the emulated state of one server.
type ServerState struct {
	Name         string
	BootID       int64 // 0 while a bootScript is active
	BootScript   string
	Boot         Netboot // what a reboot now would boot
	RescueSSHKey string
	Monitoring   bool
	Mode         string
	// EFIBootloaderPath is the loader a UEFI server boots from its disk.
	EFIBootloaderPath string
	PowerState        string
	Tasks             []Task // oldest first
}

// Call is one request the emulator received for a server.
type Call struct {
	At     time.Time // Config.Now at arrival
	Method string
	Path   string // without the API version prefix, decoded, e.g. /dedicated/server/ns1/reboot
	Status int
}

// Emulator is the emulated API. It is safe for concurrent use.
type Emulator struct {
	cfg      Config
	queryTag string

	ctx    context.Context // cancelled by Close; parent of OnReboot calls
	cancel context.CancelFunc
	wg     sync.WaitGroup // task goroutines and servers started by Serve

	mu         sync.Mutex
	closed     bool
	servers    map[string]*server
	order      []string // server names in the order they were added
	tasks      map[int64]*task
	nextTaskID int64
	queries    int64
	httpSrvs   []*http.Server
	weather    Weather
	tat        time.Time // the key's rate: when the next request may come
	// keys are the account's consumer keys: Config's and those made with
	// POST /auth/credential.
	keys map[string]*consumerKey
	// tokens are the OAuth2 access tokens issued, with their expiry.
	tokens map[string]time.Time
}

// New returns an emulator for cfg with no servers.
func New(cfg Config) *Emulator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Flavour == "" {
		cfg.Flavour = "ovh"
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = 300 * time.Second
	}
	if cfg.Rules == nil {
		cfg.Rules = []Rule{
			{Method: "GET", Path: "/dedicated/server"},
			{Method: "GET", Path: "/dedicated/server/*"},
			{Method: "PUT", Path: "/dedicated/server/*"},
			{Method: "POST", Path: "/dedicated/server/*"},
		}
	}
	weather := cfg.Weather
	if weather == nil {
		weather = BadDay(1)
	}
	if cfg.CredentialStatus == "" {
		cfg.CredentialStatus = CredentialValidated
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = time.Hour
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Emulator{
		cfg: cfg,
		keys: map[string]*consumerKey{cfg.ConsumerKey: {
			id: int64(hash32(cfg.ConsumerKey)), status: cfg.CredentialStatus, expires: cfg.CredentialExpires,
			rules: cfg.Rules, created: cfg.Now().Add(-24 * time.Hour),
		}},
		tokens:     map[string]time.Time{},
		weather:    *weather,
		queryTag:   fmt.Sprintf("%08x", uint32(time.Now().UnixNano())),
		ctx:        ctx,
		cancel:     cancel,
		servers:    map[string]*server{},
		tasks:      map[int64]*task{},
		nextTaskID: 600000000,
	}
}

// AddServer adds s to the account, replacing a server of the same name (whose
// pending tasks then run to their end unseen).
func (e *Emulator) AddServer(s Server) {
	if len(s.Boots) == 0 {
		s.Boots = DefaultBoots()
		if s.CommercialRange == "" {
			s.CommercialRange = e.defaultRange()
		}
	} else {
		s.Boots = append([]Netboot(nil), s.Boots...)
		if s.CommercialRange == "" {
			s.CommercialRange = "custom-" + s.Name
		}
	}
	if s.Datacenter == "" {
		s.Datacenter = "gra2"
	}
	if s.BootID == 0 {
		s.BootID = s.Boots[0].ID
		for _, b := range s.Boots {
			if b.BootType == "harddisk" {
				s.BootID = b.ID
				break
			}
		}
	}
	if s.Firmware == "" {
		s.Firmware = FirmwareBIOS
	}
	if s.Firmware == FirmwareUEFI && s.EFIBootloaderPath == "" && s.EFILoaders == nil && s.EFIBoot == nil {
		s.EFIBootloaderPath = DebianEFILoader
		s.EFILoaders = []string{DebianEFILoader}
	}
	s.EFILoaders = slices.Clone(s.EFILoaders)
	var efiPath *string
	if s.EFIBootloaderPath != "" {
		p := s.EFIBootloaderPath
		efiPath = &p
	}
	bootID := s.BootID
	var rescueKey *string
	if s.RescueSSHKey != "" {
		k := s.RescueSSHKey
		rescueKey = &k
	}
	st := &server{
		efiBootloaderPath: efiPath,
		rescueSSHKey:      rescueKey,
		Server:            s,
		bootID:            &bootID,
		monitoring:        true,
		state:             s.State,
		powerState:        "poweron",
		mode:              s.Mode,
	}
	if st.state == "" {
		st.state = "ok"
	}
	if st.mode == "" {
		boot, _ := st.findBoot(s.BootID)
		st.mode = ModeOf(boot)
	}
	if st.mode == ModeOff {
		st.powerState = "poweroff"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.servers[s.Name]; !ok {
		e.order = append(e.order, s.Name)
	}
	e.servers[s.Name] = st
}

// defaultRange is the commercial range of servers with DefaultBoots.
func (e *Emulator) defaultRange() string {
	if e.cfg.Flavour == "ovh" {
		return "fs"
	}
	return "kimsufi"
}

// Server returns the current state of the named server.
func (e *Emulator) Server(name string) (ServerState, bool) {
	st, firmware, ok := e.server(name)
	if firmware != nil {
		st.Boot = firmware()
	}
	return st, ok
}

// LoaderPath is the named server's efiBootloaderPath: Server without
// asking the host's firmware what it would boot.
func (e *Emulator) LoaderPath(name string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.servers[name]
	if !ok {
		return "", false
	}
	return deref(s.efiBootloaderPath), true
}

func (e *Emulator) server(name string) (st ServerState, firmware func() Netboot, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.servers[name]
	if !ok {
		return ServerState{}, nil, false
	}
	now := e.cfg.Now()
	st = ServerState{
		Name:              s.Name,
		EFIBootloaderPath: deref(s.efiBootloaderPath),
		BootScript:        deref(s.bootScript),
		RescueSSHKey:      deref(s.rescueSSHKey),
		Monitoring:        s.monitoring,
		PowerState:        s.powerState,
	}
	if s.bootID != nil {
		st.BootID = *s.bootID
	}
	for _, t := range s.tasks {
		e.advance(s, t, now)
		st.Tasks = append(st.Tasks, t.export())
	}
	st.Mode = s.mode // after advance: a task may just have completed
	st.Boot, firmware = s.currentBoot()
	return st, firmware, true
}

// SetMode records the mode a server is running in when it changed without the
// API (a kexec, or a reboot from inside the host). It reports whether the
// server exists.
func (e *Emulator) SetMode(name, mode string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.servers[name]
	if !ok {
		return false
	}
	s.mode = mode
	s.powerState = "poweron"
	if mode == ModeOff {
		s.powerState = "poweroff"
	}
	return true
}

// InjectFault sets the faults pending for a server, replacing those not yet
// consumed; Fault{} clears them. It reports whether the server exists.
func (e *Emulator) InjectFault(name string, f Fault) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.servers[name]
	if ok {
		s.fault = f
	}
	return ok
}

// Requests is how many requests named the server in their path, whatever
// their outcome.
func (e *Emulator) Requests(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.servers[name]; ok {
		return len(s.calls)
	}
	return 0
}

// Calls returns the requests that named the server, oldest first.
func (e *Emulator) Calls(name string) []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.servers[name]; ok {
		return append([]Call(nil), s.calls...)
	}
	return nil
}

// Handler returns the API as an http.Handler serving /1.0/... and /v1/....
func (e *Emulator) Handler() http.Handler { return http.HandlerFunc(e.serveHTTP) }

// Serve listens on addr (e.g. 127.0.0.1:0) and serves the API until ctx ends
// or Close is called. It returns the endpoint to give go-ovh, like
// http://127.0.0.1:PORT/1.0.
func (e *Emulator) Serve(ctx context.Context, addr string) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen for the ovh api emulator: %w", err)
	}
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		ln.Close()
		return "", errors.New("ovh api emulator is closed")
	}
	e.httpSrvs = append(e.httpSrvs, srv)
	e.wg.Add(2)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		_ = srv.Serve(ln) // returns once the server is closed
	}()
	go func() {
		defer e.wg.Done()
		select {
		case <-ctx.Done():
		case <-e.ctx.Done():
		}
		_ = srv.Close()
	}()
	return "http://" + ln.Addr().String() + "/1.0", nil
}

// Close stops the servers started by Serve and the task timers, cancels the
// context of running OnReboot calls and waits for all of them to return.
func (e *Emulator) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// server is the mutable state of one server; guarded by Emulator.mu.
type server struct {
	Server
	bootID            *int64
	bootScript        *string
	efiBootloaderPath *string
	rescueMail        *string
	rescueSSHKey      *string
	rootDevice        *string
	monitoring        bool
	noIntervention    bool
	state             string
	powerState        string
	mode              string
	tasks             []*task
	fault             Fault
	calls             []Call
	rng               *rand.Rand // the weather's draws for this server
	burstLeft         int        // 5xx answers left in the current burst
}

func (s *server) findBoot(id int64) (Netboot, bool) {
	for _, b := range s.Boots {
		if b.ID == id {
			return b, true
		}
	}
	return Netboot{}, false
}

// currentBoot is what the server would boot if it were power-cycled now.
// e.mu is held. When the answer depends on what a UEFI firmware finds on
// the host's disks, firmware says it instead, and is called without e.mu:
// it reads the disks, and every request to the API would wait for it.
func (s *server) currentBoot() (b Netboot, firmware func() Netboot) {
	if s.bootID == nil {
		return scriptBoot, nil
	}
	b, _ = s.findBoot(*s.bootID)
	if s.Firmware != FirmwareUEFI || ModeOf(b) != ModeDisk {
		return b, nil
	}
	path := deref(s.efiBootloaderPath)
	if efiBoot := s.EFIBoot; efiBoot != nil {
		return b, func() Netboot {
			if err := efiBoot(path); err != nil {
				return efiShellBoot(b, err.Error())
			}
			return b
		}
	}
	if !s.hasLoader(path) {
		return efiShellBoot(b, "no loader at efiBootloaderPath"), nil
	}
	return b, nil
}

// hasLoader reports whether path names one of the server's EFI loaders,
// as UEFI finds files on FAT: case aside, either slash.
func (s *server) hasLoader(path string) bool {
	norm := func(p string) string { return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(p), "/", `\`)) }
	if path == "" {
		return false
	}
	for _, l := range s.EFILoaders {
		if norm(l) == norm(path) {
			return true
		}
	}
	return false
}

// SetEFILoaders records the loaders on a UEFI server's EFI system
// partition, as an install that writes its own changes them. It reports
// whether the server exists.
func (e *Emulator) SetEFILoaders(name string, loaders []string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.servers[name]
	if ok {
		s.EFILoaders = slices.Clone(loaders)
	}
	return ok
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
