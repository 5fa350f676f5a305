package haproxy

import (
	"context"
	"sort"

	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

var _ router.Viewer = (*Router)(nil)

// View implements router.Viewer: the slot states the router last read from HAProxy's
// runtime API (every resync period) and applied since, and the routing intent it derives
// from s. It reads nothing from HAProxy itself.
func (r *Router) View(_ context.Context, s *topology.Snapshot) router.View {
	r.mu.Lock()
	applied := make(map[Slot]AdminState, len(r.applied))
	for k, v := range r.applied {
		applied[k] = v
	}
	v := router.View{Name: r.name, Kind: "haproxy", ReadAt: r.synced, Intent: router.IntentFor(s, r.rules.IntentOptions(r.maint))}
	known := r.known != nil
	r.mu.Unlock()
	if !known {
		v.Error = "HAProxy's slots are not known: the last read of its runtime API failed, or none was made yet"
	}
	v.Groups = []router.Group{{Name: r.layout.WriteBackend, Role: "write"}, {Name: r.layout.ReadBackend, Role: "read"}}
	names := map[string]string{}
	if s != nil {
		for i := range s.Servers {
			names[SlotName(s.Servers[i].Addr)] = s.Servers[i].Addr.String()
		}
	}
	for sl, st := range applied {
		server := names[sl.Server]
		if server == "" {
			server = sl.Server
		}
		v.Backends = append(v.Backends, router.Backend{Group: sl.Backend, Server: server, State: string(st)})
	}
	sort.Slice(v.Backends, func(i, j int) bool {
		a, b := v.Backends[i], v.Backends[j]
		if a.Group != b.Group {
			return a.Group == r.layout.WriteBackend
		}
		return a.Server < b.Server
	})
	return v
}
