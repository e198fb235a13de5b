package runner

import "sync"

// stopHosts closes every host's connection at once. A connection's Close
// returns once the commands cancelled on it are killed, so after stopHosts
// nothing nixbook started on a host is still running there.
func (r *run) stopHosts() {
	var wg sync.WaitGroup
	for _, h := range r.hosts {
		wg.Go(h.close)
	}
	wg.Wait()
}

// unfinished lists, in order, the hosts an interrupt stopped before they
// went through every play they were in.
func (r *run) unfinished(order []string) []string {
	var out []string
	for _, name := range order {
		if h := r.hosts[name]; h.playsDone.Load() < h.plays {
			out = append(out, name)
		}
	}
	return out
}
