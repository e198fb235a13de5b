package ovhapi_test

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/ovh/go-ovh/ovh"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

func Example() {
	emu := ovhapi.New(ovhapi.Config{
		AppKey: "TDPKJdwZwAQPwKX2", AppSecret: "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk", ConsumerKey: "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY",
		Timings: ovhapi.Timings{Init: 10 * time.Millisecond, Todo: 10 * time.Millisecond, Doing: 10 * time.Millisecond},
		// By default the API has a bad day (ovhapi.BadDay); this example
		// keeps to the happy path.
		Weather: ovhapi.Calm(),
		OnReboot: func(ctx context.Context, server string, boot ovhapi.Netboot, key string) error {
			fmt.Printf("%s boots %s (%s)\n", server, boot.Kernel, ovhapi.ModeOf(boot))
			return nil
		},
	})
	defer emu.Close()
	emu.AddServer(ovhapi.Server{Name: "ns1.ip-203-0-113.eu", IP: "203.0.113.10", IPv6Block: "2001:db8:1:2a00::/64"})
	endpoint, err := emu.Serve(context.Background(), "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}

	client, _ := ovh.NewClient(endpoint, "TDPKJdwZwAQPwKX2", "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk", "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY")
	sn := "/dedicated/server/" + url.PathEscape("ns1.ip-203-0-113.eu")
	_ = client.Put(sn, map[string]any{"bootId": 230242, "rescueSshKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}, nil)
	var task struct {
		TaskID int64  `json:"taskId"`
		Status string `json:"status"`
	}
	_ = client.Post(sn+"/reboot", nil, &task)
	for task.Status != "done" {
		time.Sleep(5 * time.Millisecond)
		if err := client.Get(fmt.Sprintf("%s/task/%d", sn, task.TaskID), &task); err != nil {
			fmt.Println(err)
			return
		}
	}
	state, _ := emu.Server("ns1.ip-203-0-113.eu")
	fmt.Println("mode:", state.Mode)
	// Output:
	// ns1.ip-203-0-113.eu boots rescue12-customer (rescue)
	// mode: rescue
}
