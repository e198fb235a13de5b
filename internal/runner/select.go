package runner

import (
	"fmt"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/playbooks"
)

// Selection is the hosts each play of a playbook runs on: the play's
// pattern, narrowed by the limit (--limit), in inventory order.
type Selection struct {
	plays map[*playbooks.Play][]*inventory.Host
	order []string // every selected host once, in the order first met
}

// Select resolves the hosts of every play of pb before any is touched; an
// unknown pattern or limit is an error naming the play.
func Select(pb *playbooks.Playbook, inv *inventory.Inventory, limit string) (*Selection, error) {
	s := &Selection{plays: map[*playbooks.Play][]*inventory.Host{}}
	seen := map[string]bool{}
	for _, play := range pb.Plays {
		hosts, err := inv.Select(play.Hosts)
		if err != nil {
			return nil, fmt.Errorf("%s: hosts: %w", play.Source, err)
		}
		if limit != "" {
			if hosts, err = inv.Limit(hosts, limit); err != nil {
				return nil, fmt.Errorf("limit: %w", err)
			}
		}
		s.plays[play] = hosts
		for _, h := range hosts {
			if !seen[h.Name] {
				seen[h.Name] = true
				s.order = append(s.order, h.Name)
			}
		}
	}
	return s, nil
}

// Hosts are the hosts of play.
func (s *Selection) Hosts(play *playbooks.Play) []*inventory.Host { return s.plays[play] }

// Names are every selected host, once each.
func (s *Selection) Names() []string { return s.order }
