package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

// defaultTimings are the times a reboot task spends in init, todo and doing.
func defaultTimings() ovhapi.Timings {
	return ovhapi.Timings{Init: 500 * time.Millisecond, Todo: 500 * time.Millisecond, Doing: time.Second}
}

// Credentials are the OVH API keys of the emulated account.
type Credentials struct {
	Endpoint          string // the emulator, like http://127.0.0.1:PORT/1.0
	ApplicationKey    string
	ApplicationSecret string
	ConsumerKey       string
	// ClientID and ClientSecret are the account's OAuth2 service account,
	// exchanged for tokens at the emulator's /auth/oauth2/token.
	ClientID, ClientSecret string
}

func randomKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// startAPI runs the OVH API emulator on loopback with the fleet's servers;
// its reboot tasks reboot the hosts.
func (f *Fleet) startAPI(ctx context.Context) error {
	timings := f.cfg.Timings
	if timings == (ovhapi.Timings{}) {
		timings = defaultTimings()
	}
	f.creds = Credentials{
		ApplicationKey:    randomKey(16),
		ApplicationSecret: randomKey(32),
		ConsumerKey:       randomKey(32),
		ClientID:          "EU." + randomKey(16),
		ClientSecret:      randomKey(32),
	}
	flavour := f.cfg.Flavour
	if flavour == "" {
		flavour = "kimsufi"
	}
	var api APIOverride
	if f.cfg.Overrides != nil {
		api = f.cfg.Overrides.API
	}
	hosts := map[string]bool{}
	for _, h := range f.hosts {
		hosts[h.spec.Name] = true
	}
	if err := api.check(hosts); err != nil {
		return err
	}
	weather, err := api.Weather(f.cfg.CalmAPI)
	if err != nil {
		return err
	}
	cfg := ovhapi.Config{
		AppKey:       f.creds.ApplicationKey,
		AppSecret:    f.creds.ApplicationSecret,
		ConsumerKey:  f.creds.ConsumerKey,
		ClientID:     f.creds.ClientID,
		ClientSecret: f.creds.ClientSecret,
		Timings:      timings,
		Flavour:      flavour,
		OnReboot:     f.apiReboot,
		Weather:      weather,
	}
	if err := api.Credential.apply(&cfg, time.Now()); err != nil {
		return err
	}
	f.emu = ovhapi.New(cfg)
	for _, h := range f.hosts {
		// A host that starts in the rescue (or kexec'd from it) was booted
		// into it with the fleet's key.
		var rescueKey string
		if h.spec.Mode == ModeRescue || h.spec.Mode == ModeInstaller {
			rescueKey = f.ClientPublicKey()
		}
		f.emu.AddServer(ovhapi.Server{
			RescueSSHKey: rescueKey,
			Name:         h.service,
			IP:           h.sshAddr().Addr().String(),
			IPv6Block:    h.v6.Masked().String(),
			IPv6Gateway:  f.plan.GW6.String(),
			BootID:       netbootFor(h.spec.Mode),
			Mode:         string(h.spec.Mode),
			State:        h.spec.OVHState,
			Firmware:     h.spec.Firmware,
			// OVH's path for its Debian template; an install changes it
			// through the API, or the server stops in the UEFI shell.
			EFIBootloaderPath: efiPathFor(h.spec),
			EFIBoot:           func(path string) error { return h.efiBoot(f.ctx, path) },
		})
		if af, ok := api.Faults[h.spec.Name]; ok {
			fault, _ := af.fault() // checked above
			f.emu.InjectFault(h.service, fault)
		}
	}
	addr := f.cfg.APIAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	url, err := f.emu.Serve(f.ctx, addr)
	if err != nil {
		return err
	}
	f.creds.Endpoint = url
	f.onDown(func(context.Context) error { return f.emu.Close() })
	f.mu.Lock()
	f.netboot = f.apiNetboot
	f.mu.Unlock()
	return nil
}

// netbootFor is the netboot a server booted into mode was set to.
func netbootFor(mode Mode) int64 {
	for _, b := range ovhapi.DefaultBoots() {
		m := Mode(ovhapi.ModeOf(b))
		if m == mode || (mode == ModeInstaller && m == ModeRescue) {
			return b.ID
		}
	}
	return 1
}

// apiReboot is the emulator's OnReboot: the server goes down now and comes
// back, after its boot delay, in what its netboot says.
func (f *Fleet) apiReboot(ctx context.Context, server string, boot ovhapi.Netboot, rescueKey string) error {
	h, ok := f.Host(server)
	if !ok {
		return fmt.Errorf("server %s is not in the simulated fleet", server)
	}
	mode := bootMode(boot)
	// A rescue booted without rescueSshKey mails a root password: no key
	// gets in.
	h.mu.Lock()
	h.rescueKey = rescueKey
	h.mu.Unlock()
	if mode == ModeOff {
		h.powerOff(ctx, "powered off through the API ("+boot.Kernel+")")
		return nil
	}
	h.reboot(ctx, bootRequest{mode: mode, rescueKey: rescueKey}, -1)
	return nil
}

// apiNetboot is what a host that reboots by itself boots: its netboot in
// the API, with the API's rescue key.
func (f *Fleet) apiNetboot(h *Host) (bootRequest, bool) {
	st, ok := f.emu.Server(h.service)
	if !ok {
		return bootRequest{}, false
	}
	key := strings.TrimSpace(st.RescueSSHKey) // none: nobody gets in, as above
	return bootRequest{mode: bootMode(st.Boot), rescueKey: key}, true
}

// bootMode is the mode a host boots for a netboot. A UEFI server's disk
// boot goes to the host as a disk boot even when the API already finds no
// loader: the host looks at its EFI system partitions when it boots, and
// says why it stops in the UEFI shell.
func bootMode(b ovhapi.Netboot) Mode {
	if b.Kernel == "efi-shell" {
		return ModeDisk
	}
	return Mode(ovhapi.ModeOf(b))
}

// efiPathFor is the efiBootloaderPath a server starts with: OVH's Debian
// loader on UEFI, none on BIOS.
func efiPathFor(s HostSpec) string {
	if s.UEFI() {
		return ovhapi.DebianEFILoader
	}
	return ""
}

// Emulator is the fleet's OVH API emulator (for fault injection in tests).
func (f *Fleet) Emulator() *ovhapi.Emulator { return f.emu }

// Credentials are the API endpoint and keys of the fleet's account.
func (f *Fleet) Credentials() Credentials { return f.creds }
