package rescue

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

// costLine is what logCost writes.
var costLine = regexp.MustCompile(`^ovh: (preflight|check|apply) of \S+: (\d+) API calls?`)

// fleetCheck runs the preflight then the check of the rescue task on n
// hosts of one account at once, as `nixbook run --check` does with every
// host in flight, and returns the API calls each host's clients sent and
// the time it took.
func fleetCheck(t *testing.T, n int, cfg ovhapi.Config, rate string) ([]int, time.Duration) {
	t.Helper()
	a := newAccount(t, cfg)
	limiters := ovh.NewLimiters()
	var hosts []*server
	for i := range n {
		name := fmt.Sprintf("ns%d.ip-10-0-%d.eu", i+1, i/250)
		ip := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		a.emu.AddServer(ovhapi.Server{Name: name, IP: ip})
		vars := map[string]any{
			"ovh_service": name, "ovh_endpoint": a.endpoint, "ovh_application_key": testAK,
			"ovh_application_secret": testAS, "ovh_consumer_key": testCK, "rescue_ssh_key": edKey,
		}
		if rate != "" {
			vars["ovh_rate_limit"] = rate
		}
		s := newServer(vars)
		s.HostName, s.Address = fmt.Sprintf("ks%d", i+1), ip
		hosts = append(hosts, s)
	}
	start := time.Now()
	each := func(step func(m *module, s *server) error) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, s := range hosts {
			wg.Go(func() {
				m := testModule(t, "", s)
				s.API.Limiters = limiters
				s.API.RetryWait = 0 // the real pauses: 2s doubling
				if err := step(m, s); err != nil {
					errs <- fmt.Errorf("%s: %w", s.Name(), err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	each(func(m *module, s *server) error { return m.Preflight(ctx, s) })
	each(func(m *module, s *server) error {
		p, err := m.Check(ctx, s)
		if err == nil && !p.Changed() {
			err = fmt.Errorf("no change planned")
		}
		return err
	})
	elapsed := time.Since(start)
	costs := make([]int, n)
	for i, s := range hosts {
		for _, l := range strings.Split(s.AllLogs(), "\n") {
			if m := costLine.FindStringSubmatch(l); m != nil {
				v, _ := strconv.Atoi(m[2])
				costs[i] += v
			}
		}
	}
	return costs, elapsed
}

// TestCheckCostPerHost: a --check of the rescue costs at most 3 API calls
// per host: the server (read once for the preflight and the check), with
// its IP blocks only when the host is reached on another address. The
// clock, the key's rights, the rescue list of the servers' range and each
// netboot are read once for the whole fleet.
func TestCheckCostPerHost(t *testing.T) {
	const n = 8
	costs, _ := fleetCheck(t, n, ovhapi.Config{}, "1000/s burst 1000")
	total := 0
	for _, c := range costs {
		total += c
	}
	// The server per host, plus the clock, the credential, the range's
	// rescue list and 4 netboots (the 3 rescues and the disk the servers
	// boot now) once for all.
	if want := n + 7; total > want || total > 3*n {
		t.Errorf("the fleet cost %d calls, want at most %d and 3 a host: %v", total, min(n+7, 3*n), costs)
	}
}

// TestCheckCostBench measures a --check on NIXBOOK_BENCH_HOSTS hosts
// against the emulator as it is by default (a bad day: slow answers, 5xx
// bursts, 429 above 60 requests a minute) with nixbook's default rate
// (60 a minute, bursts of 5). bench/ovh-check-cost.sh runs it.
func TestCheckCostBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("NIXBOOK_BENCH_HOSTS"))
	if n <= 0 {
		t.Skip("set NIXBOOK_BENCH_HOSTS to the number of hosts")
	}
	cfg := ovhapi.Config{Weather: ovhapi.BadDay(1)}
	costs, elapsed := fleetCheck(t, n, cfg, "")
	total, most := 0, 0
	for _, c := range costs {
		total += c
		most = max(most, c)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hosts=%d calls=%d per_host=%.2f max_host=%d elapsed=%s rate=%s\n",
		n, total, float64(total)/float64(n), most, elapsed.Round(time.Second), ovh.DefaultRate())
	t.Log(b.String())
	fmt.Print("BENCH " + b.String())
}
