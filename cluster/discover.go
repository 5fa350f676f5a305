// Package cluster watches and heals one replication cluster: the monitor loop, topology
// discovery, analysis, election, plans and their execution. Discovery and analysis are pure
// functions on topology values; only monitor.go and the executors talk to servers.
package cluster

import (
	"time"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Observation is what one probe of one server told us this tick. A failed probe carries only
// the error: discovery keeps the server's last known facts from the previous snapshot, so a
// dead master's replicas and positions stay visible while it is down.
type Observation struct {
	Addr      ipv6.HostPort
	Reachable bool
	AuthError bool   // the server answered but refused our credentials
	Error     string // probe error text, free of secrets
	At        time.Time
	Latency   time.Duration
	Facts     topology.Server // probe facts; identity, state and role fields are ignored
}

// DiscoverOptions are the settings discovery depends on.
type DiscoverOptions struct {
	Cluster     string
	MaxFail     int   // failover-falsepositive-ping-counter: failed probes before Failed
	MaxLag      int64 // failover-max-slave-delay, seconds; 0 disables SlaveLate
	CheckLag    bool  // check-replication-state
	Maintenance map[ipv6.HostPort]bool
	Ignored     map[ipv6.HostPort]bool
	Preferred   map[ipv6.HostPort]bool
	// Promoted is the last master this manager promoted (failover history), if any.
	Promoted *ipv6.HostPort
}

// Discover builds the snapshot of this tick from the observations (in configured order) and
// the previous snapshot (nil on the first tick). It is pure: same inputs, same snapshot.
func Discover(obs []Observation, prev *topology.Snapshot, opt DiscoverOptions, tick uint64, now time.Time) *topology.Snapshot {
	if opt.MaxFail < 1 {
		opt.MaxFail = 1
	}
	snap := &topology.Snapshot{Cluster: opt.Cluster, Tick: tick, Time: now, Master: -1, Kind: topology.KindUnknown}
	snap.Servers = make([]topology.Server, len(obs))
	for i, o := range obs {
		snap.Servers[i] = carryFacts(o, prev)
		s := &snap.Servers[i]
		s.Maintenance = opt.Maintenance[o.Addr]
		s.Ignored = opt.Ignored[o.Addr]
		s.Preferred = opt.Preferred[o.Addr]
	}

	g := buildGraph(snap.Servers)
	prevMaster := -1
	if pm, ok := prev.MasterServer(); ok {
		prevMaster = indexOf(snap.Servers, pm.Addr)
	}
	promoted := -1
	if opt.Promoted != nil {
		promoted = indexOf(snap.Servers, *opt.Promoted)
	}
	snap.Master, snap.Kind = g.findMaster(snap.Servers, prevMaster, promoted)

	for i := range snap.Servers {
		s := &snap.Servers[i]
		s.Role = g.role(i, snap.Master, snap.Kind)
		if snap.Kind == topology.KindMasterSlave {
			s.Depth = g.depth(i, snap.Master)
		}
		if s.Role == topology.RoleStandalone && !s.Reachable {
			s.Role = topology.RoleUnknown // never answered: nothing is known of it
		}
		s.State = serverState(s, i == snap.Master, opt)
	}
	snap.IsAllDBUp = len(snap.Servers) > 0
	down := 0
	for i := range snap.Servers {
		st := snap.Servers[i].State
		if st.IsDown() {
			snap.IsAllDBUp = false
		}
		if st == topology.StateFailed || st == topology.StateErrorAuth {
			down++
		}
	}
	// Like replication-manager, a lone server never makes the cluster "down": it is only
	// judged with two or more, where every one of them failing means an outage.
	snap.IsDown = len(snap.Servers) >= 2 && down == len(snap.Servers)
	return snap
}

// carryFacts turns an observation into a server, keeping the last known facts of a server
// that did not answer and counting its failures.
func carryFacts(o Observation, prev *topology.Snapshot) topology.Server {
	var last *topology.Server
	if prev != nil {
		last, _ = prev.Find(o.Addr)
	}
	var s topology.Server
	if o.Reachable {
		s = o.Facts
		s.Replications = append([]topology.Replication(nil), o.Facts.Replications...)
		s.FailCount = 0
		for i := range s.Replications {
			trackChannel(&s.Replications[i], last, o.At)
		}
	} else {
		if last != nil {
			s = *last
			s.Replications = append([]topology.Replication(nil), last.Replications...)
			s.FailCount = last.FailCount + 1
		} else {
			s.FailCount = 1
		}
		// A server that refuses our credentials is alive: it does not count towards Failed.
		if o.AuthError {
			s.FailCount = 0
		}
		s.BinlogDumpThreads = 0
	}
	s.Addr = o.Addr
	s.ID = topology.ServerIDFor(o.Addr)
	s.Reachable = o.Reachable
	s.ProbeError = o.Error
	s.ProbedAt = o.At
	s.ProbeLatency = o.Latency
	s.PrevState = topology.StateUnknown
	s.State = topology.StateUnknown
	s.Role = topology.RoleUnknown
	if last != nil {
		s.PrevState = last.State
	}
	if o.AuthError {
		s.State = topology.StateErrorAuth
	}
	return s
}

func indexOf(servers []topology.Server, addr ipv6.HostPort) int {
	for i := range servers {
		if servers[i].Addr == addr {
			return i
		}
	}
	return -1
}

// serverState applies replication-manager's state rules to one server.
func serverState(s *topology.Server, isMaster bool, opt DiscoverOptions) topology.State {
	if s.State == topology.StateErrorAuth {
		return s.State
	}
	if !s.Reachable {
		if s.FailCount >= opt.MaxFail {
			return topology.StateFailed
		}
		return topology.StateSuspect
	}
	if s.Maintenance {
		return topology.StateMaintenance
	}
	if isMaster {
		return topology.StateMaster
	}
	if !s.IsReplica() {
		return topology.StateStandAlone
	}
	// Every channel counts (multi-source replicas): one broken channel makes the replica
	// broken, one lagging channel makes it late.
	broken, late := false, false
	for _, r := range s.Replications {
		broken = broken || r.IO == topology.ThreadNo || r.SQL != topology.ThreadYes
		late = late || (opt.CheckLag && opt.MaxLag > 0 && r.Lag != nil && *r.Lag > opt.MaxLag)
	}
	relay := s.Role == topology.RoleRelay
	switch {
	case broken:
		if relay {
			return topology.StateRelayErr
		}
		return topology.StateSlaveErr
	case late:
		if relay {
			return topology.StateRelayLate
		}
		return topology.StateSlaveLate
	}
	if relay {
		return topology.StateRelay
	}
	return topology.StateSlave
}

// trackChannel carries a channel's history from the previous snapshot: the last lag seen,
// and when its source last showed life (new heartbeats or a moving IO position while the IO
// thread runs). A stalled master keeps a replica's IO thread "Yes" for slave_net_timeout;
// a source activity that stops moving tells it apart from a quiet but alive one.
func trackChannel(r *topology.Replication, last *topology.Server, at time.Time) {
	var p *topology.Replication
	if last != nil {
		for i := range last.Replications {
			if last.Replications[i].Channel == r.Channel && last.Replications[i].Source == r.Source {
				p = &last.Replications[i]
				break
			}
		}
	}
	r.LastLag = r.Lag
	if r.Lag == nil && p != nil {
		r.LastLag = p.LastLag
	}
	switch {
	case r.IO != topology.ThreadYes:
		if p != nil {
			r.SourceActivity = p.SourceActivity
		}
	case p == nil || p.IO != topology.ThreadYes:
		r.SourceActivity = at // connected since the last tick
	case r.ReceivedHeartbeats != p.ReceivedHeartbeats || !r.IOPos.Equal(p.IOPos):
		r.SourceActivity = at
	default:
		r.SourceActivity = p.SourceActivity
	}
}
