// Package simcli is the command line of nixbook-sim, which runs a simulated
// fleet of OVH/Kimsufi dedicated servers on this machine, to rehearse
// nixbook playbooks on:
//
//	nixbook-sim up 3 --dir ./fleet        # writes ./fleet/fleet.yml
//	nixbook-sim status --dir ./fleet
//	nixbook-sim reboot ks1 --into rescue --dir ./fleet
//	nixbook-sim down --dir ./fleet
//
// It needs root: every server is a set of Linux namespaces with its own
// loop-backed disks and a real OpenSSH server.
package simcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nixbook/nixbook/internal/cliargs"
	"github.com/nixbook/nixbook/sim"
)

// Main runs nixbook-sim's command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	app := app(stdout, stderr)
	if err := app.Run(cliargs.Interspersed(app, args)); err != nil {
		fmt.Fprintln(stderr, "nixbook-sim:", err)
		return 1
	}
	return 0
}

func app(stdout, stderr io.Writer) *cli.App {
	dirFlag := &cli.StringFlag{Name: "dir", Usage: "the fleet's directory", Required: true}
	fleetFlags := []cli.Flag{
		dirFlag,
		&cli.StringFlag{Name: "subnet", Usage: "the fleet's IPv4 /24, the gateway at .254 (default " + sim.DefaultSubnet + ", or the next free range when another fleet has it)"},
		&cli.StringFlag{Name: "subnet6", Usage: "the range of the hosts' IPv6 /64s (default: derived from --subnet)"},
		&cli.StringFlag{Name: "hosts", Usage: "a YAML file of per-host overrides (disks, nic, mac, ramdisk, boot_delay, mode, data, faults) and the API's behaviour (api:)"},
		&cli.DurationFlag{Name: "boot-delay", Value: sim.DefaultBootDelay, Usage: "how long a reboot takes"},
		&cli.StringFlag{Name: "payload-cache", Usage: "where the NixOS payload is built and cached (default: the user cache directory)"},
		&cli.BoolFlag{Name: "no-payload", Usage: "do not build or serve the NixOS payload"},
		&cli.BoolFlag{Name: "calm-api", Usage: "the OVH API emulator never misbehaves by itself (by default it has a bad day: slow answers, tasks unknown for a while, 5xx bursts, lost answers, 429 above 60 requests a minute)"},
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "how long to wait for every host to answer SSH"},
	}
	return &cli.App{
		Name:      "nixbook-sim",
		Usage:     "a simulated fleet of OVH/Kimsufi servers to rehearse nixbook on",
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			{
				Name:      "up",
				Usage:     "start N simulated servers and write DIR/fleet.yml",
				ArgsUsage: "N",
				Flags:     fleetFlags,
				Action:    func(c *cli.Context) error { return up(c, stdout) },
			},
			{
				Name:   "serve",
				Usage:  "run a fleet in the foreground (what `up` starts in the background)",
				Hidden: true,
				Flags:  append(fleetFlags, &cli.IntFlag{Name: "count", Required: true}, &cli.BoolFlag{Name: "own-dir"}, &cli.StringSliceFlag{Name: "file"}),
				Action: serve,
			},
			{
				Name:   "down",
				Usage:  "remove everything `up` made in DIR",
				Flags:  []cli.Flag{dirFlag},
				Action: func(c *cli.Context) error { return down(c, stdout) },
			},
			{
				Name:   "status",
				Usage:  "show each server's mode, boot id, SSH and disks",
				Flags:  []cli.Flag{dirFlag, &cli.BoolFlag{Name: "json"}},
				Action: func(c *cli.Context) error { return status(c, stdout) },
			},
			{
				Name:      "reboot",
				Usage:     "reboot a server into rescue, installer, disk or off",
				ArgsUsage: "HOST",
				Flags:     []cli.Flag{dirFlag, &cli.StringFlag{Name: "into", Required: true, Usage: "rescue, installer, disk or off"}},
				Action:    func(c *cli.Context) error { return reboot(c, stdout) },
			},
		},
	}
}

func up(c *cli.Context, stdout io.Writer) error {
	if c.NArg() != 1 {
		return errors.New("usage: nixbook-sim up N --dir DIR")
	}
	n, err := strconv.Atoi(c.Args().First())
	if err != nil || n < 1 || n > sim.MaxHosts {
		return fmt.Errorf("N must be a number from 1 to %d", sim.MaxHosts)
	}
	if os.Geteuid() != 0 {
		return errors.New("a simulated fleet needs root (namespaces, loop devices, a bridge)")
	}
	dir, err := filepath.Abs(c.String("dir"))
	if err != nil {
		return err
	}
	ctx := c.Context
	client := sim.Client{Dir: dir}
	if st, err := client.Status(ctx); err == nil {
		return fmt.Errorf("a fleet of %d servers is already up in %s (pid %d): run `nixbook-sim down --dir %s` first", len(st.Hosts), dir, st.PID, dir)
	}
	if err := sim.Cleanup(ctx, dir); err != nil {
		return fmt.Errorf("clear what a previous fleet left in %s: %w", dir, err)
	}
	ownDir := false
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		ownDir = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"serve", "--dir", dir, "--count", strconv.Itoa(n), "--file", logPath,
		"--boot-delay", c.Duration("boot-delay").String(), "--timeout", c.Duration("timeout").String()}
	for _, f := range []string{"subnet", "subnet6", "hosts", "payload-cache"} {
		if v := c.String(f); v != "" {
			if f == "hosts" || f == "payload-cache" {
				if v, err = filepath.Abs(v); err != nil {
					return err
				}
			}
			args = append(args, "--"+f, v)
		}
	}
	if c.Bool("no-payload") {
		args = append(args, "--no-payload")
	}
	if c.Bool("calm-api") {
		args = append(args, "--calm-api")
	}
	if ownDir {
		args = append(args, "--own-dir")
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the fleet daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(c.Duration("timeout") + 30*time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the fleet daemon stopped (%v):\n%s", err, tail(logPath, 15))
		case <-deadline:
			return fmt.Errorf("the fleet is not ready after %s; see %s, and run `nixbook-sim down --dir %s`", c.Duration("timeout"), logPath, dir)
		case <-time.After(200 * time.Millisecond):
		}
		st, err := client.Status(ctx)
		if err != nil {
			continue
		}
		if st.Error != "" {
			return fmt.Errorf("the fleet came up but not every host answers SSH: %s\n(see %s; the fleet is still up: `nixbook-sim status --dir %s`, `nixbook-sim down --dir %s`)", st.Error, logPath, dir, dir)
		}
		if st.Ready {
			printSummary(stdout, st, time.Since(start))
			return nil
		}
	}
}

func tail(path string, lines int) string {
	data, _ := os.ReadFile(path)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func printSummary(w io.Writer, st *sim.FleetStatus, took time.Duration) {
	fmt.Fprintf(w, "%d simulated servers up in %.1fs (subnet %s, %s; bridge %s, daemon pid %d)\n\n",
		len(st.Hosts), took.Seconds(), st.Subnet, st.Subnet6, st.Bridge, st.PID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tMODE\tOVH SERVICE\tDISKS")
	first := ""
	for _, h := range st.Hosts {
		addr := hostAddr(h)
		if first == "" && h.SSH && h.SSHAddr == "" {
			first = addr
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Name, addr, h.Mode, h.Service, h.Disks)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ninventory:  %s\novh.conf:   %s\nclient key: %s\nOVH API:    %s\n", st.Inventory, st.OVHConf, st.ClientKey, st.API)
	if st.Payload != "" {
		fmt.Fprintf(w, "payload:    %s\n", st.Payload)
	}
	if first != "" {
		fmt.Fprintf(w, "\nlog in:     ssh -i %s -o UserKnownHostsFile=/dev/null root@%s\n", st.ClientKey, first)
	}
	fmt.Fprintf(w, "tear down:  nixbook-sim down --dir %s\n", st.Dir)
}

func hostAddr(h sim.Status) string {
	if h.SSHAddr != "" {
		return h.SSHAddr // a vm host, on a forwarded loopback port
	}
	if h.IPv4 != "" {
		return strings.SplitN(h.IPv4, "/", 2)[0]
	}
	return ""
}

func serve(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg := sim.Config{
		Dir:          c.String("dir"),
		Hosts:        c.Int("count"),
		Subnet:       c.String("subnet"),
		Subnet6:      c.String("subnet6"),
		BootDelay:    c.Duration("boot-delay"),
		Payload:      !c.Bool("no-payload"),
		CalmAPI:      c.Bool("calm-api"),
		PayloadCache: c.String("payload-cache"),
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
		},
	}
	if p := c.String("hosts"); p != "" {
		o, err := sim.LoadOverrides(p)
		if err != nil {
			return err
		}
		cfg.Overrides = o
	}
	return sim.Serve(ctx, cfg, sim.ServeOptions{
		ReadyTimeout: c.Duration("timeout"),
		Files:        c.StringSlice("file"),
		OwnDir:       c.Bool("own-dir"),
	})
}

func down(c *cli.Context, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
	defer cancel()
	dir, err := filepath.Abs(c.String("dir"))
	if err != nil {
		return err
	}
	if err := (sim.Client{Dir: dir}).Down(ctx); err != nil {
		return err
	}
	// The log of a daemon that never got to record it.
	_ = os.Remove(filepath.Join(dir, "serve.log"))
	fmt.Fprintf(stdout, "fleet in %s is down\n", dir)
	return nil
}

func status(c *cli.Context, stdout io.Writer) error {
	st, err := (sim.Client{Dir: c.String("dir")}).Status(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(stdout, st)
	}
	state := "ready"
	switch {
	case st.Error != "":
		state = "error: " + st.Error
	case !st.Ready:
		state = "starting"
	}
	fmt.Fprintf(stdout, "fleet %s: %s (subnet %s, API %s, daemon pid %d)\n\n", st.Dir, state, st.Subnet, st.API, st.PID)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tMODE\tBOOT ID\tSSH\tDISKS")
	for _, h := range st.Hosts {
		ssh := "up"
		if !h.SSH {
			ssh = "no"
		}
		bootID := h.BootID
		if len(bootID) > 8 {
			bootID = bootID[:8]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, hostAddr(h), h.Mode, bootID, ssh, h.Disks)
	}
	tw.Flush()
	for _, h := range st.Hosts {
		if !h.SSH && h.Why != "" {
			fmt.Fprintf(stdout, "\n%s does not answer SSH: %s\n", h.Name, h.Why)
		}
		if h.Installed != "" && !strings.Contains(h.Why, h.Installed) {
			fmt.Fprintf(stdout, "%s disks: %s\n", h.Name, h.Installed)
		}
		if h.LostDisk != "" {
			fmt.Fprintf(stdout, "%s lost its disk %s after the install (lose_disk)\n", h.Name, h.LostDisk)
		}
	}
	return nil
}

func reboot(c *cli.Context, stdout io.Writer) error {
	if c.NArg() != 1 {
		return errors.New("usage: nixbook-sim reboot HOST --into rescue|installer|disk|off --dir DIR")
	}
	mode, err := sim.ParseMode(c.String("into"))
	if err != nil {
		return err
	}
	host := c.Args().First()
	if err := (sim.Client{Dir: c.String("dir")}).Reboot(c.Context, host, mode); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is rebooting into %s\n", host, mode)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
