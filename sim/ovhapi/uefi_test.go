package ovhapi

import (
	"testing"
	"time"
)

// TestUEFIHonoursEFIBootloaderPath: a UEFI server boots its disk only
// when efiBootloaderPath names a loader on its EFI system partition.
func TestUEFIHonoursEFIBootloaderPath(t *testing.T) {
	const removable = `\EFI\BOOT\BOOTX64.EFI`
	tests := []struct {
		name     string
		server   Server
		put      *string // efiBootloaderPath set through the API
		loaders  []string
		wantMode string
	}{
		{name: "OVH's Debian as installed", server: Server{Firmware: FirmwareUEFI}, wantMode: ModeDisk},
		{name: "NixOS installed, the path stale", server: Server{Firmware: FirmwareUEFI}, loaders: []string{removable}, wantMode: ModeIPXE},
		{name: "NixOS installed, the path set", server: Server{Firmware: FirmwareUEFI}, loaders: []string{removable},
			put: ptr(`\efi\boot\bootx64.efi`), wantMode: ModeDisk},
		{name: "the path set with slashes", server: Server{Firmware: FirmwareUEFI}, loaders: []string{removable},
			put: ptr(`/EFI/BOOT/BOOTX64.EFI`), wantMode: ModeDisk},
		{name: "no path at all", server: Server{Firmware: FirmwareUEFI}, put: ptr(""), wantMode: ModeIPXE},
		{name: "BIOS ignores the path", server: Server{}, put: ptr(`\nowhere.efi`), wantMode: ModeDisk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.server.Name, tt.server.IP = testSN, "203.0.113.10"
			e, endpoint := start(t, Config{Timings: Timings{Init: time.Millisecond, Todo: time.Millisecond, Doing: time.Millisecond}}, tt.server)
			if tt.loaders != nil {
				e.SetEFILoaders(testSN, tt.loaders)
			}
			c := client(t, endpoint)
			if tt.put != nil {
				if err := c.Put(serverPath(testSN), map[string]any{"efiBootloaderPath": *tt.put}, nil); err != nil {
					t.Fatal(err)
				}
			}
			var task struct {
				TaskID int64 `json:"taskId"`
			}
			if err := c.Post(serverPath(testSN, "reboot"), nil, &task); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				st, _ := e.Server(testSN)
				if len(st.Tasks) == 1 && st.Tasks[0].Status == StatusDone {
					if st.Mode != tt.wantMode {
						t.Errorf("mode %s after booting %s, want %s", st.Mode, st.Tasks[0].Boot.Kernel, tt.wantMode)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the reboot never ended: %+v", st.Tasks)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// What a UEFI server's firmware would boot is asked of its host (which
// reads its disks) without the emulator's lock: the fleet's other requests
// do not wait for it.
func TestAFirmwareLookDoesNotHoldTheAPI(t *testing.T) {
	const other = "ns2.ip-1-2-3.eu"
	looking, release := make(chan struct{}), make(chan struct{})
	uefi := Server{Name: testSN, IP: "203.0.113.10", Firmware: FirmwareUEFI, EFIBoot: func(string) error {
		close(looking)
		<-release
		return nil
	}}
	e, endpoint := start(t, Config{}, uefi, Server{Name: other, IP: "203.0.113.11"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Server(testSN)
	}()
	defer func() { close(release); <-done }()
	select {
	case <-looking:
	case <-time.After(10 * time.Second):
		t.Fatal("the emulator never asked the firmware")
	}
	answered := make(chan error, 1)
	go func() {
		var srv map[string]any
		answered <- client(t, endpoint).Get(serverPath(other), &srv)
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a GET of another server waited for the firmware's look at the disks")
	}
}
