package haproxy

import (
	"sort"

	"replication-manager-pro/ipv6"
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

// Rules are the routing choices that do not come from the topology.
type Rules struct {
	// ReadOnMaster puts the master in the read backend (proxy-servers-read-on-master).
	ReadOnMaster bool
	// ReadOnMasterNoSlave puts the master in the read backend when no replica can serve
	// (proxy-servers-read-on-master-no-slave).
	ReadOnMasterNoSlave bool
	// MaxReplicationLag drains a replica whose lag exceeds it, in seconds; 0 disables
	// (proxy-servers-backend-max-replication-lag).
	MaxReplicationLag int64
}

// Layout names the two backends of one cluster.
type Layout struct {
	WriteBackend string
	ReadBackend  string
}

// SlotName is the stable server name of a database in every backend: replication-manager's
// server id ("db" + CRC-64 of "host:port"), so that an address always finds its slot.
func SlotName(addr ipv6.HostPort) string { return topology.ServerIDFor(addr) }

// Desired computes the administrative state of every slot from a snapshot. Pure.
//
// Write backend: only the snapshot's master, and only while its state is Master (not Suspect,
// Failed, ...), is ready; every other slot is in maintenance. Read backend: replicas in state
// Slave or Relay are ready (drained beyond MaxReplicationLag); lagging or broken replicas are
// drained; unreachable, stand-alone and maintenance servers are in maintenance; the master
// joins per the read-on-master rules. maint lists operator overrides (Router.Maintenance):
// such servers are in maintenance in both backends.
func Desired(s *topology.Snapshot, l Layout, r Rules, maint map[ipv6.HostPort]bool) map[Slot]AdminState {
	out := map[Slot]AdminState{}
	if s == nil {
		return out
	}
	readyReplicas := 0
	for i := range s.Servers {
		srv := &s.Servers[i]
		if i == s.Master {
			continue
		}
		st := readState(srv, r, maint[srv.Addr])
		if st == Ready {
			readyReplicas++
		}
		out[Slot{l.ReadBackend, SlotName(srv.Addr)}] = st
		out[Slot{l.WriteBackend, SlotName(srv.Addr)}] = Maint
	}
	if m, ok := s.MasterServer(); ok {
		name := SlotName(m.Addr)
		usable := m.State == topology.StateMaster && !m.Maintenance && !maint[m.Addr]
		w, rd := Maint, Maint
		if usable {
			w = Ready
			if r.ReadOnMaster || (readyReplicas == 0 && r.ReadOnMasterNoSlave) {
				rd = Ready
			}
		}
		out[Slot{l.WriteBackend, name}] = w
		out[Slot{l.ReadBackend, name}] = rd
	}
	return out
}

// readState is a non-master server's state in the read backend.
func readState(srv *topology.Server, r Rules, override bool) AdminState {
	if override || srv.Maintenance {
		return Maint
	}
	switch srv.State {
	case topology.StateSlave, topology.StateRelay:
		if r.MaxReplicationLag > 0 {
			if rep, ok := srv.PrimaryReplication(); ok && rep.Lag != nil && *rep.Lag > r.MaxReplicationLag {
				return Drain
			}
		}
		return Ready
	case topology.StateSlaveLate, topology.StateRelayLate, topology.StateSlaveErr, topology.StateRelayErr:
		// Still answers, possibly stale: finish what runs there, send nothing new.
		return Drain
	default:
		// Failed, Suspect, ErrorAuth, StandAlone (not replicating: data may have diverged),
		// Maintenance, unknown.
		return Maint
	}
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
