package haproxy

import (
	"sort"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// AdminState is a server slot's administrative state in HAProxy, as the runtime API's
// "set server <b>/<s> state" names it.
type AdminState string

const (
	// Ready: the slot takes new connections (when its health check passes).
	Ready AdminState = "ready"
	// Drain: no new connections; open sessions continue; health checks keep running.
	Drain AdminState = "drain"
	// Maint: no traffic and no health check; open sessions are not cut by this alone.
	Maint AdminState = "maint"
)

// Slot names one server line of one backend.
type Slot struct {
	Backend string
	Server  string
}

// String is "backend/server", the runtime API's form.
func (s Slot) String() string { return s.Backend + "/" + s.Server }

// Rules are the routing options from configuration (see router.IntentOptions).
type Rules struct {
	// ReadOnMaster puts the master in the read backend (proxy-servers-read-on-master).
	ReadOnMaster bool
	// ReadOnMasterNoSlave puts the master in the read backend when no replica is a reader
	// (proxy-servers-read-on-master-no-slave).
	ReadOnMasterNoSlave bool
	// MaxReplicationLag drains a replica whose lag exceeds it, in seconds; 0 disables
	// (proxy-servers-backend-max-replication-lag).
	MaxReplicationLag int64
}

// IntentOptions returns the options of router.IntentFor, with the servers in operator
// maintenance (Router.Maintenance).
func (r Rules) IntentOptions(maint map[ipv6.HostPort]bool) router.IntentOptions {
	o := router.IntentOptions{ReadOnMaster: r.ReadOnMaster, ReadOnMasterNoSlave: r.ReadOnMasterNoSlave, MaxReplicationLag: r.MaxReplicationLag}
	for a, on := range maint {
		if on {
			o.Maintenance = append(o.Maintenance, a)
		}
	}
	return o
}

// Layout names the two backends of one cluster.
type Layout struct {
	WriteBackend string
	ReadBackend  string
}

// SlotName is the stable server name of a database in every backend: replication-manager's
// server id ("db" + CRC-64 of "host:port"), so that an address always finds its slot.
func SlotName(addr ipv6.HostPort) string { return topology.ServerIDFor(addr) }

// Desired translates a routing intent into the administrative state of every slot. Pure;
// the decisions are router.IntentFor's.
//
//	intent           write slot                     read slot
//	Writer           ready                          ready with WriterReads, else maint
//	Reader           maint                          ready
//	Drained master   drain                          drain with WriterReads, else maint
//	Drained          maint                          drain
//	Offline          maint                          maint
//
// Without a master every write slot is in maintenance (Config's initial state; the Router
// does not apply such an intent).
func Desired(in router.Intent, l Layout) map[Slot]AdminState {
	want, _ := translate(in, l)
	return want
}

// translate is Desired, plus the slots whose open sessions are cut when they enter
// maintenance: both slots of an Offline server, and the write slot of every server but
// the master (writes on a former master must stop at once; its clients reconnect).
func translate(in router.Intent, l Layout) (want map[Slot]AdminState, cut map[Slot]bool) {
	want, cut = map[Slot]AdminState{}, map[Slot]bool{}
	for _, si := range in.Servers {
		w, r := Slot{l.WriteBackend, SlotName(si.Addr)}, Slot{l.ReadBackend, SlotName(si.Addr)}
		want[w], want[r] = Maint, Maint
		switch si.Route {
		case router.Writer:
			want[w] = Ready
			if in.WriterReads {
				want[r] = Ready
			}
		case router.Reader:
			want[r] = Ready
		case router.Drained:
			if si.Master {
				want[w] = Drain
				if in.WriterReads {
					want[r] = Drain
				}
			} else {
				want[r] = Drain
			}
		case router.Offline:
			cut[r] = true
		}
		if !si.Master || si.Route == router.Offline {
			cut[w] = true
		}
	}
	return want, cut
}

// diff returns the slots whose desired state differs from have, in a stable order: the
// ones leaving service first (maint, then drain), then the ones entering it, so a write
// slot is never ready beside another during a change.
func diff(want, have map[Slot]AdminState) []change {
	var out []change
	for s, w := range want {
		if h, ok := have[s]; !ok || h != w {
			out = append(out, change{s, w})
		}
	}
	rank := map[AdminState]int{Maint: 0, Drain: 1, Ready: 2}
	sort.Slice(out, func(i, j int) bool {
		if rank[out[i].state] != rank[out[j].state] {
			return rank[out[i].state] < rank[out[j].state]
		}
		if out[i].slot.Backend != out[j].slot.Backend {
			return out[i].slot.Backend < out[j].slot.Backend
		}
		return out[i].slot.Server < out[j].slot.Server
	})
	return out
}

type change struct {
	slot  Slot
	state AdminState
}
