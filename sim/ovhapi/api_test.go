package ovhapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// dedicatedFields are the properties of dedicated.server.Dedicated (2024
// schema, plus efiBootloaderPath of the 2025 one) and whether they can be null.
var dedicatedFields = map[string]bool{
	"availabilityZone": false, "bootId": true, "bootScript": true, "commercialRange": true,
	"datacenter": false, "efiBootloaderPath": true, "ip": false, "linkSpeed": true, "monitoring": false,
	"name": false, "newUpgradeSystem": false, "noIntervention": false, "os": false, "powerState": false,
	"professionalUse": false, "rack": false, "region": false, "rescueMail": true, "rescueSshKey": true,
	"reverse": true, "rootDevice": true, "serverId": false, "state": false, "supportLevel": false,
}

func TestServerObject(t *testing.T) {
	for _, flavour := range []string{"ovh", "kimsufi"} {
		t.Run(flavour, func(t *testing.T) {
			_, endpoint := start(t, Config{Flavour: flavour}, testServer(testSN))
			c := client(t, endpoint)
			var raw map[string]json.RawMessage
			if err := c.Get(serverPath(testSN), &raw); err != nil {
				t.Fatal(err)
			}
			_, hasIAM := raw["iam"]
			if hasIAM != (flavour == "ovh") {
				t.Errorf("iam present = %v in flavour %s", hasIAM, flavour)
			}
			delete(raw, "iam")
			for field, nullable := range dedicatedFields {
				v, ok := raw[field]
				if !ok {
					t.Errorf("field %s missing", field)
					continue
				}
				if !nullable && string(v) == "null" {
					t.Errorf("field %s is null but cannot be", field)
				}
			}
			for field := range raw {
				if _, ok := dedicatedFields[field]; !ok {
					t.Errorf("unexpected field %s", field)
				}
			}
			for field, want := range map[string]string{
				"name": `"` + testSN + `"`, "ip": `"203.0.113.10"`, "bootId": "1", "datacenter": `"gra2"`,
				"region": `"eu-west-gra"`, "state": `"ok"`, "powerState": `"poweron"`, "monitoring": "true",
				"bootScript": "null", "rescueSshKey": "null", "rescueMail": "null", "rootDevice": "null", "efiBootloaderPath": "null",
			} {
				if got := string(raw[field]); got != want {
					t.Errorf("%s = %s, want %s", field, got, want)
				}
			}
		})
	}
}

func TestPutRules(t *testing.T) {
	e, endpoint := start(t, Config{}, testServer(testSN))
	c := client(t, endpoint)
	type view struct {
		BootID       *int64  `json:"bootId"`
		BootScript   *string `json:"bootScript"`
		RescueSSHKey *string `json:"rescueSshKey"`
		RescueMail   *string `json:"rescueMail"`
		Monitoring   bool    `json:"monitoring"`
		State        string  `json:"state"`
		IP           string  `json:"ip"`
	}
	steps := []struct {
		name  string
		body  map[string]any
		check func(v view) bool
	}{
		{"key, mail and monitoring", map[string]any{"rescueSshKey": edKey, "rescueMail": "ops@example.org", "monitoring": false},
			func(v view) bool {
				return *v.BootID == 1 && *v.RescueSSHKey == edKey && *v.RescueMail == "ops@example.org" && !v.Monitoring
			}},
		{"empty string clears", map[string]any{"rescueMail": ""}, func(v view) bool { return v.RescueMail == nil && v.RescueSSHKey != nil }},
		{"a boot script nulls bootId", map[string]any{"bootScript": "#!ipxe\nchain http://x/boot"},
			func(v view) bool { return v.BootID == nil && *v.BootScript == "#!ipxe\nchain http://x/boot" }},
		{"a bootId nulls the script", map[string]any{"bootId": 230242}, func(v view) bool { return *v.BootID == 230242 && v.BootScript == nil }},
		{"state is writable", map[string]any{"state": "error"},
			func(v view) bool { return v.IP == "203.0.113.10" && v.State == "error" }},
		{"null clears the key", map[string]any{"rescueSshKey": nil}, func(v view) bool { return v.RescueSSHKey == nil }},
	}
	for _, step := range steps {
		if err := c.Put(serverPath(testSN), step.body, nil); err != nil {
			t.Fatalf("%s: PUT %v: %v", step.name, step.body, err)
		}
		var v view
		if err := c.Get(serverPath(testSN), &v); err != nil {
			t.Fatal(err)
		}
		if !step.check(v) {
			b, _ := json.Marshal(v)
			t.Fatalf("%s: server now %s", step.name, b)
		}
	}
	if st, _ := e.Server(testSN); st.Boot.Kernel != "rescue12-customer" {
		t.Fatalf("the next reboot would boot %+v", st.Boot)
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		path        string
		body        any
		wantCode    int
		wantClass   string
		wantMessage string // a prefix
	}{
		{"unknown server", "GET", serverPath("ns9.ip-9-9-9.eu"), nil, 404, "Client::NotFound", "This service does not exist"},
		{"unknown server reboot", "POST", serverPath("ns9.ip-9-9-9.eu", "reboot"), nil, 404, "Client::NotFound", "This service does not exist"},
		{"unknown route", "GET", serverPath(testSN, "nothing"), nil, 404, "Client::NotFound", "Got an invalid (or empty) URL"},
		{"DELETE is not granted", "DELETE", serverPath(testSN), nil, 403, "Client::Forbidden", "This call has not been granted"},
		{"wrong method", "POST", serverPath(testSN), nil, 404, "Client::NotFound", "Got an invalid (or empty) URL"},
		{"PUT an array", "PUT", serverPath(testSN), []int{1}, 400, "Client::BadRequest", "Invalid body"},
		{"PUT a string", "PUT", serverPath(testSN), "bootId", 400, "Client::BadRequest", "Invalid body"},
		{"PUT a number", "PUT", serverPath(testSN), 230242, 400, "Client::BadRequest", "Invalid body"},
		{"PUT null", "PUT", serverPath(testSN), (*struct{})(nil), 400, "Client::BadRequest", "Invalid body"},
		{"PUT a bootId of no boot", "PUT", serverPath(testSN), map[string]any{"bootId": 42}, 400, "Client::BadRequest", "Invalid bootId 42"},
		{"PUT a bootId as a string", "PUT", serverPath(testSN), map[string]any{"bootId": "230242"}, 400, "Client::BadRequest", "Invalid value for property bootId"},
		{"PUT an unknown property", "PUT", serverPath(testSN), map[string]any{"bootID": 1}, 400, "Client::BadRequest", "Invalid property bootID"},
		{"PUT a password as key", "PUT", serverPath(testSN), map[string]any{"rescueSshKey": "hunter2"}, 400, "Client::BadRequest", "Invalid value for property rescueSshKey"},
		{"PUT a DSA key", "PUT", serverPath(testSN), map[string]any{"rescueSshKey": "ssh-dss AAAAB3NzaC1kc3M x"}, 400, "Client::BadRequest", "Invalid value for property rescueSshKey"},
		{"PUT two keys", "PUT", serverPath(testSN), map[string]any{"rescueSshKey": edKey + "\n" + edKey}, 400, "Client::BadRequest", "Invalid value for property rescueSshKey"},
		{"PUT a bad state", "PUT", serverPath(testSN), map[string]any{"state": "broken"}, 400, "Client::BadRequest", "Invalid value for property state"},
		{"PUT bootId and a script", "PUT", serverPath(testSN), map[string]any{"bootId": 1, "bootScript": "#!ipxe"}, 400, "Client::BadRequest", "bootId and bootScript"},
		{"a read-only field", "PUT", serverPath(testSN), map[string]any{"bootId": 1, "ip": "192.0.2.1"}, 400, "Client::BadRequest", "Invalid property ip: it is read-only"},
		{"a read-only field alone", "PUT", serverPath(testSN), map[string]any{"datacenter": "rbx1"}, 400, "Client::BadRequest", "Invalid property datacenter: it is read-only"},
		{"reboot with an empty object", "POST", serverPath(testSN, "reboot"), struct{}{}, 400, "Client::BadRequest", "You provided an input body while none was expected"},
		{"reboot with null", "POST", serverPath(testSN, "reboot"), (*struct{})(nil), 400, "Client::BadRequest", "You provided an input body while none was expected"},
		{"invalid bootType", "GET", serverPath(testSN, "boot?bootType=disk"), nil, 400, "Client::BadRequest", "Invalid value for parameter bootType"},
		{"unknown boot", "GET", serverPath(testSN, "boot", "42"), nil, 404, "Client::NotFound", "The requested object (bootId = 42) does not exist"},
		{"boot id not a number", "GET", serverPath(testSN, "boot", "hd"), nil, 400, "Client::BadRequest", "Invalid value for parameter bootId"},
		{"unknown task", "GET", serverPath(testSN, "task", "42"), nil, 404, "Client::NotFound", "The requested object (taskId = 42) does not exist"},
		{"invalid task status filter", "GET", serverPath(testSN, "task?status=finished"), nil, 400, "Client::BadRequest", "Invalid value for parameter status"},
		{"cancel an unknown task", "POST", serverPath(testSN, "task", "42", "cancel"), nil, 404, "Client::NotFound", "The requested object (taskId = 42)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, endpoint := start(t, Config{}, testServer(testSN))
			c := client(t, endpoint)
			err := c.CallAPI(tt.method, tt.path, tt.body, nil, true)
			ae := apiErr(t, err)
			if ae.Code != tt.wantCode || ae.Class != tt.wantClass || !strings.HasPrefix(ae.Message, tt.wantMessage) {
				t.Fatalf("got %d %s %q, want %d %s %q…", ae.Code, ae.Class, ae.Message, tt.wantCode, tt.wantClass, tt.wantMessage)
			}
			st, _ := e.Server(testSN)
			if len(st.Tasks) != 0 || st.BootID != 1 || st.RescueSSHKey != "" || st.BootScript != "" {
				t.Fatalf("a refused call changed the server: %+v", st)
			}
		})
	}
}

func TestEscapedServiceNames(t *testing.T) {
	names := []string{"ns1.ip-1-2-3.eu", "odd name/with%chars?&", "ks-1.ip-203-0-113.eu"}
	var servers []Server
	for _, n := range names {
		servers = append(servers, testServer(n))
	}
	e, endpoint := start(t, Config{}, servers...)
	c := client(t, endpoint)
	var listed []string
	if err := c.Get("/dedicated/server", &listed); err != nil || !slices.Equal(listed, names) {
		t.Fatalf("GET /dedicated/server = %v, %v; want %v", listed, err, names)
	}
	for _, n := range names {
		var got struct {
			Name string `json:"name"`
		}
		if err := c.Get(serverPath(n), &got); err != nil || got.Name != n {
			t.Fatalf("GET %s = %+v, %v", serverPath(n), got, err)
		}
		if err := c.Put(serverPath(n), map[string]any{"rescueSshKey": edKey}, nil); err != nil {
			t.Fatalf("PUT %s: %v", serverPath(n), err)
		}
		if st, _ := e.Server(n); st.RescueSSHKey != edKey {
			t.Fatalf("the PUT on %q did not land", n)
		}
		if e.Requests(n) != 2 {
			t.Fatalf("Requests(%q) = %d, want 2", n, e.Requests(n))
		}
	}
	// Through the /v1 alias too, which go-ovh maps onto the same root.
	var ids []int64
	if err := c.Get("/v1"+serverPath(names[1], "boot"), &ids); err != nil || len(ids) != len(DefaultBoots()) {
		t.Fatalf("GET /v1 boots = %v, %v", ids, err)
	}
}

func TestNetworkAndIPs(t *testing.T) {
	computed := testServer("ns2.ip-198-51-100.eu")
	computed.IP, computed.IPv6Block, computed.IPv6Gateway = "198.51.100.7", "2001:db8:0:7::/64", ""
	_, endpoint := start(t, Config{}, testServer(testSN), computed)
	c := client(t, endpoint)
	tests := []struct {
		name                    string
		wantIPs                 []string
		wantGW4, wantNet4       string
		wantGW6, wantIP6, wantN string
	}{
		{testSN, []string{"203.0.113.10/32", "2001:db8:1:2a00::/64"}, "203.0.113.254", "203.0.113.0/24",
			"2001:db8:1:2aff:ff:ff:ff:ff", "2001:db8:1:2a00::/64", "2001:db8:1:2a00::/64"},
		{computed.Name, []string{"198.51.100.7/32", "2001:db8:0:7::/64"}, "198.51.100.254", "198.51.100.0/24",
			"2001:db8:0:ff:ff:ff:ff:ff", "2001:db8:0:7::/64", "2001:db8:0:7::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ips []string
			if err := c.Get(serverPath(tt.name, "ips"), &ips); err != nil || !slices.Equal(ips, tt.wantIPs) {
				t.Fatalf("ips = %v, %v; want %v", ips, err, tt.wantIPs)
			}
			var spec struct {
				Routing struct {
					IPv4 struct{ Gateway, IP, Network string } `json:"ipv4"`
					IPv6 struct{ Gateway, IP, Network string } `json:"ipv6"`
				} `json:"routing"`
				Vmac *struct {
					Supported bool `json:"supported"`
				} `json:"vmac"`
			}
			if err := c.Get(serverPath(tt.name, "specifications", "network"), &spec); err != nil {
				t.Fatal(err)
			}
			r := spec.Routing
			if r.IPv4.Gateway != tt.wantGW4 || r.IPv4.Network != tt.wantNet4 || r.IPv4.IP != strings.TrimSuffix(tt.wantIPs[0], "/32") ||
				r.IPv6.Gateway != tt.wantGW6 || r.IPv6.IP != tt.wantIP6 || r.IPv6.Network != tt.wantN || spec.Vmac == nil {
				t.Fatalf("specifications/network = %+v", spec)
			}
		})
	}
}

func TestIPv6Gateway(t *testing.T) {
	// The examples of OVH's 2019 IPv6 guide.
	tests := map[string]string{
		"2607:5300:60:62ac::/64": "2607:5300:60:62ff:ff:ff:ff:ff",
		"2001:41D0:1:46e::/64":   "2001:41d0:1:4ff:ff:ff:ff:ff",
		"2001:db8:1:2a00::/64":   "2001:db8:1:2aff:ff:ff:ff:ff",
		"203.0.113.0/24":         "",
		"garbage":                "",
	}
	for block, want := range tests {
		if got := IPv6Gateway(block); got != want {
			t.Errorf("IPv6Gateway(%q) = %q, want %q", block, got, want)
		}
	}
}

func TestModeOf(t *testing.T) {
	tests := []struct {
		boot Netboot
		want string
	}{
		{Netboot{ID: 1, BootType: "harddisk", Kernel: "hd"}, ModeDisk},
		{Netboot{ID: 230242, BootType: "rescue", Kernel: "rescue12-customer"}, ModeRescue},
		{Netboot{ID: 46371, BootType: "internal", Kernel: "rescue-customer"}, ModeRescue},
		{Netboot{ID: 1122, BootType: "rescue", Kernel: "rescue64-pro"}, ModeRescue},
		{Netboot{ID: 203323, BootType: "rescue", Kernel: "ipxe-shell"}, ModeIPXE},
		{Netboot{ID: 228212, BootType: "rescue", Kernel: "rescue-customer-windows"}, ModeWindowsRescue},
		{Netboot{ID: 228213, BootType: "rescue", Kernel: "WinRescue"}, ModeWindowsRescue},
		{Netboot{ID: 95083, BootType: "power", Kernel: "poweroff"}, ModeOff},
		{scriptBoot, ModeIPXE},
	}
	for _, tt := range tests {
		if got := ModeOf(tt.boot); got != tt.want {
			t.Errorf("ModeOf(%+v) = %q, want %q", tt.boot, got, tt.want)
		}
	}
}

func TestCurrentCredentialAndTime(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1731234567, 0)}
	_, endpoint := start(t, Config{Now: clock.Now}, testServer(testSN))
	c := client(t, endpoint)
	now, err := c.Time()
	if err != nil || now.Unix() != 1731234567 {
		t.Fatalf("GET /auth/time = %v, %v", now, err)
	}
	var cred struct {
		Status string `json:"status"`
		Rules  []Rule `json:"rules"`
	}
	if err := c.Get("/auth/currentCredential", &cred); err != nil {
		t.Fatal(err)
	}
	if cred.Status != "validated" || len(cred.Rules) != 4 || cred.Rules[3] != (Rule{Method: "POST", Path: "/dedicated/server/*"}) {
		t.Fatalf("currentCredential = %+v", cred)
	}
}

func TestServe(t *testing.T) {
	e := New(Config{AppKey: testAK, AppSecret: testAS, ConsumerKey: testCK})
	defer e.Close()
	e.AddServer(testServer(testSN))
	ctx, cancel := context.WithCancel(context.Background())
	endpoint, err := e.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") || !strings.HasSuffix(endpoint, "/1.0") {
		t.Fatalf("endpoint %q", endpoint)
	}
	var names []string
	if err := client(t, endpoint).Get("/dedicated/server", &names); err != nil || len(names) != 1 {
		t.Fatalf("GET through Serve = %v, %v", names, err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := http.Get(endpoint + "/auth/time")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still serving after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
