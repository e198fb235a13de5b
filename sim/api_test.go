package sim

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovh/go-ovh/ovh"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

// apiClient is go-ovh's client for the fleet's account.
func apiClient(t *testing.T, f *Fleet) *ovh.Client {
	t.Helper()
	creds := f.Credentials()
	client, err := ovh.NewClient(creds.Endpoint, creds.ApplicationKey, creds.ApplicationSecret, creds.ConsumerKey)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// rebootThroughAPI does what nixbook's rescue step does with go-ovh: pick
// the Linux rescue by its kernel, set it with the rescue key, reboot and
// wait for the task.
func rebootThroughAPI(t *testing.T, f *Fleet, host, bootType, kernel, key string) {
	t.Helper()
	client := apiClient(t, f)
	h, _ := f.Host(host)
	base := "/dedicated/server/" + h.Service()
	var ids []int64
	if err := client.Get(base+"/boot?bootType="+bootType, &ids); err != nil {
		t.Fatal(err)
	}
	var bootID int64
	for _, id := range ids {
		var nb struct{ Kernel string }
		if err := client.Get(fmt.Sprintf("%s/boot/%d", base, id), &nb); err != nil {
			t.Fatal(err)
		}
		if nb.Kernel == kernel {
			bootID = id
		}
	}
	if bootID == 0 {
		t.Fatalf("no %s boot with kernel %s in %v", bootType, kernel, ids)
	}
	body := map[string]any{"bootId": bootID}
	switch key {
	case "":
	case "none": // clear it
		body["rescueSshKey"] = nil
	default:
		body["rescueSshKey"] = key
	}
	if err := client.Put(base, body, nil); err != nil {
		t.Fatal(err)
	}
	var task struct {
		TaskID int64
		Status string
	}
	if err := client.Post(base+"/reboot", nil, &task); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for task.Status != "done" {
		if time.Now().After(deadline) {
			t.Fatalf("reboot task still %s", task.Status)
		}
		time.Sleep(200 * time.Millisecond)
		if err := client.Get(fmt.Sprintf("%s/task/%d", base, task.TaskID), &task); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAPIRebootChangesBootIDAndHostKey(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1, CalmAPI: true, Timings: ovhapi.Timings{Init: 100 * time.Millisecond, Todo: 100 * time.Millisecond, Doing: 300 * time.Millisecond}})
	h, _ := f.Host("ks1")
	c, key1 := dial(t, f, "ks1")
	c.Close()
	boot1 := h.BootID()

	// A rescue key of the user's own: only it opens the new rescue.
	user, err := newKeyPair("user@example.org")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := t.TempDir() + "/user_key"
	if err := writeFileMode(keyFile, user.Private); err != nil {
		t.Fatal(err)
	}
	rebootThroughAPI(t, f, "ks1", "rescue", "rescue12-customer", strings.TrimSpace(user.Public))
	eventually(t, 20*time.Second, "rescue back", func() error {
		if h.BootID() == boot1 {
			return fmt.Errorf("not rebooted yet")
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	if _, _, err := dialHost(h.Addr().String(), f.ClientKeyFile()); err == nil {
		t.Errorf("the fleet's key still opens a rescue booted with another rescueSshKey")
	}
	c2, key2, err := dialHost(h.Addr().String(), keyFile)
	if err != nil {
		t.Fatalf("the API's rescue key does not open the rescue: %v", err)
	}
	defer c2.Close()
	if bytes.Equal(key1.Marshal(), key2.Marshal()) {
		t.Errorf("host key unchanged by an API reboot into rescue")
	}
	if got := strings.TrimSpace(run(t, c2, "cat /proc/sys/kernel/random/boot_id")); got == boot1 || got != h.BootID() {
		t.Errorf("boot id %s (was %s)", got, boot1)
	}
	if st, _ := f.Emulator().Server(h.Service()); st.Mode != ovhapi.ModeRescue {
		t.Errorf("API says mode %s", st.Mode)
	}

	// The iPXE shell listed among the rescues is a trap: the server never
	// comes back on the network.
	rebootThroughAPI(t, f, "ks1", "rescue", "ipxe-shell", "")
	eventually(t, 10*time.Second, "ipxe", func() error {
		if h.Mode() != ModeIPXE {
			return fmt.Errorf("mode %s", h.Mode())
		}
		return nil
	})
	if st := h.Status(context.Background()); st.SSH || !strings.Contains(st.Why, "iPXE") {
		t.Errorf("status after the iPXE shell: %+v", st)
	}

	// A Windows rescue ignores the rescue key: never on SSH.
	rebootThroughAPI(t, f, "ks1", "rescue", "rescue-customer-windows", strings.TrimSpace(user.Public))
	eventually(t, 10*time.Second, "windows rescue", func() error {
		if h.Mode() != ModeWindowsRescue {
			return fmt.Errorf("mode %s", h.Mode())
		}
		return nil
	})
	if st := h.Status(context.Background()); st.SSH || !strings.Contains(st.Why, "Windows rescue") {
		t.Errorf("status after the Windows rescue: %+v", st)
	}

	// A rescue without rescueSshKey mails a password: no key gets in.
	rebootThroughAPI(t, f, "ks1", "rescue", "rescue12-customer", "none")
	eventually(t, 20*time.Second, "keyless rescue", func() error {
		if h.Mode() != ModeRescue {
			return fmt.Errorf("mode %s", h.Mode())
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	for _, k := range []string{f.ClientKeyFile(), keyFile} {
		if _, _, err := dialHost(h.Addr().String(), k); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("%s into a rescue without rescueSshKey: %v", filepath.Base(k), err)
		}
	}
}

func TestInventoryLoadsAndNamesEveryHost(t *testing.T) {
	f := startFleet(t, Config{Hosts: 2, Overrides: &Overrides{Hosts: map[string]HostOverride{"ks2": {DiskCount: 2, DiskKind: NVMe, DiskSize: "1GiB"}}}})
	inv, err := inventory.Load(f.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Hosts) != 2 {
		t.Fatalf("%d hosts in the inventory", len(inv.Hosts))
	}
	for _, ih := range inv.Hosts {
		h, ok := f.Host(ih.Name)
		if !ok {
			t.Fatalf("inventory host %s is not in the fleet", ih.Name)
		}
		if ih.Address != h.Addr().String() || ih.Port != 22 || ih.User != "root" || len(ih.KeyFiles) != 1 || ih.KeyFiles[0] != f.ClientKeyFile() {
			t.Errorf("%s connection: %+v", ih.Name, ih)
		}
		if !ih.InGroup(Group) {
			t.Errorf("%s not in group %s", ih.Name, Group)
		}
		for _, k := range []string{"ovh_endpoint", "ovh_application_key", "ovh_application_secret", "ovh_consumer_key", "rescue_ssh_key", "ovh_service", "disks", "ipv4", "ipv6", "ipv6_gateway"} {
			if ih.Vars[k] == nil {
				t.Errorf("%s lacks %s", ih.Name, k)
			}
		}
		if ih.Vars["ovh_service"] != h.Service() || ih.Vars["ipv6_gateway"] != f.Gateway6().String() {
			t.Errorf("%s vars: %v", ih.Name, ih.Vars)
		}
	}
	ks2, _ := inv.Host("ks2")
	h2, _ := f.Host("ks2")
	if got, want := fmt.Sprint(ks2.Vars["disks"]), fmt.Sprintf("[%s %s]", h2.Disks()[0].ByIDPath(), h2.Disks()[1].ByIDPath()); got != want {
		t.Errorf("ks2 disks = %s, want them by id: %s", got, want)
	}
	if got := fmt.Sprint(ks2.Vars["disk_names"]); got != "[/dev/nvme0n1 /dev/nvme1n1]" {
		t.Errorf("ks2 disk_names = %s", got)
	}
	// go-ovh finds the endpoint and keys in ./ovh.conf.
	t.Chdir(f.Dir())
	client, err := ovh.NewDefaultClient()
	if err != nil {
		t.Fatalf("go-ovh with the fleet's ovh.conf: %v", err)
	}
	var servers []string
	if err := client.Get("/dedicated/server", &servers); err != nil {
		t.Fatalf("go-ovh with the fleet's ovh.conf: %v", err)
	}
	h1, _ := f.Host("ks1")
	if len(servers) != 2 || servers[0] != h1.Service() {
		t.Errorf("servers = %v", servers)
	}
}
