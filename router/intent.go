package router

import (
	"fmt"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Route is what every router does with one server. It is decided once, here, from a
// snapshot (IntentFor); the HAProxy and ProxySQL routers only translate it into their own
// mechanisms (docs/architecture.md, "Routing intent").
type Route string

const (
	// Writer takes the writes (and the reads too when Intent.WriterReads).
	Writer Route = "writer"
	// Reader takes new read connections.
	Reader Route = "reader"
	// Drained takes no new connection; the open ones may finish.
	Drained Route = "drained"
	// Offline takes no traffic at all; open connections are ended.
	Offline Route = "offline"
)

// ServerIntent is the route of one server, and why.
type ServerIntent struct {
	Addr  ipv6.HostPort
	Route Route
	// Master marks the snapshot's master: when it is Drained, its writes (and its reads
	// with Intent.WriterReads) drain.
	Master bool
	// Maintenance marks a server the operator put in maintenance (snapshot flag or state,
	// or IntentOptions.Maintenance).
	Maintenance bool
	// Reason says why, for logs, events and the API.
	Reason string
}

// Intent is the routing a snapshot calls for.
type Intent struct {
	Servers []ServerIntent // in the snapshot's order
	// Master is the index of the snapshot's master in Servers, -1 when no master is known.
	// Without a master there is no Writer; routers then leave their routing as it is.
	Master int
	// WriterReads: the master also takes reads (read-on-master, or no Reader left under
	// read-on-master-no-slave). A Drained master's reads drain with its writes.
	WriterReads bool
}

// MasterIntent returns the master's intent, if a master is known.
func (in Intent) MasterIntent() (ServerIntent, bool) {
	if in.Master < 0 || in.Master >= len(in.Servers) {
		return ServerIntent{}, false
	}
	return in.Servers[in.Master], true
}

// Find returns the intent of a server (addresses compared with ipv6.SameAddr).
func (in Intent) Find(addr ipv6.HostPort) (ServerIntent, bool) {
	for _, s := range in.Servers {
		if ipv6.SameAddr(s.Addr, addr) {
			return s, true
		}
	}
	return ServerIntent{}, false
}

// Readers counts the servers routed as Reader (the master's reads not included).
func (in Intent) Readers() int {
	n := 0
	for _, s := range in.Servers {
		if s.Route == Reader {
			n++
		}
	}
	return n
}

// IntentOptions are the routing choices that come from configuration and from the
// operator, not from the topology. Both routers build them from their existing settings.
type IntentOptions struct {
	// ReadOnMaster: the master always takes reads too (proxy-servers-read-on-master).
	ReadOnMaster bool
	// ReadOnMasterNoSlave: the master takes reads when no server is a Reader
	// (proxy-servers-read-on-master-no-slave).
	ReadOnMasterNoSlave bool
	// MaxReplicationLag drains a replica lagging more, in seconds; 0 disables
	// (proxy-servers-backend-max-replication-lag).
	MaxReplicationLag int64
	// Maintenance lists the servers put in maintenance through Router.Maintenance: they
	// stay in maintenance, whatever the snapshots say, until the router is told "off".
	Maintenance []ipv6.HostPort
}

// WriterTakesReads is the one read-on-master rule: with readers servers left to read
// from, does the master also take reads? Failover, which has no snapshot, uses it too.
func (o IntentOptions) WriterTakesReads(readers int) bool {
	return o.ReadOnMaster || (o.ReadOnMasterNoSlave && readers == 0)
}

func (o IntentOptions) inMaintenance(srv *topology.Server) bool {
	if srv.Maintenance || srv.State == topology.StateMaintenance {
		return true
	}
	for _, a := range o.Maintenance {
		if ipv6.SameAddr(a, srv.Addr) {
			return true
		}
	}
	return false
}

// IntentFor computes the routing intent of a snapshot. It is pure. The rules, and why each
// was chosen where the routers used to differ, are in docs/architecture.md:
//
//   - The snapshot's master is the Writer whatever its state (Suspect, Failed, ErrorAuth):
//     nobody else may take writes before a failover, which moves them explicitly
//     (Router.Failover), and a master only the manager cannot reach may still serve
//     clients. In maintenance it is Drained.
//   - Ignored (db-servers-ignored-hosts), Failed, StandAlone (not replicating: its data
//     may have diverged) and servers of unknown state are Offline, even in maintenance.
//   - Other servers in maintenance are Drained.
//   - Slave and Relay are Readers, Drained when a channel lags beyond MaxReplicationLag.
//   - SlaveLate, RelayLate, SlaveErr, RelayErr (stale but consistent), Suspect (not yet
//     known dead) and ErrorAuth (alive, replication unknown) are Drained.
//   - WriterReads follows WriterTakesReads with the number of Readers.
//
// A nil snapshot gives an empty intent without a master.
func IntentFor(s *topology.Snapshot, opt IntentOptions) Intent {
	in := Intent{Master: -1}
	if s == nil {
		return in
	}
	if _, ok := s.MasterServer(); ok {
		in.Master = s.Master
	}
	in.Servers = make([]ServerIntent, len(s.Servers))
	for i := range s.Servers {
		srv := &s.Servers[i]
		si := ServerIntent{Addr: srv.Addr, Master: i == in.Master, Maintenance: opt.inMaintenance(srv)}
		if si.Master {
			si.Route, si.Reason = masterRoute(srv, si.Maintenance)
		} else {
			si.Route, si.Reason = replicaRoute(srv, si.Maintenance, opt.MaxReplicationLag)
		}
		in.Servers[i] = si
	}
	in.WriterReads = in.Master >= 0 && opt.WriterTakesReads(in.Readers())
	return in
}

func masterRoute(srv *topology.Server, maint bool) (Route, string) {
	switch {
	case maint:
		return Drained, "master in maintenance: writes drain"
	case srv.State == topology.StateMaster:
		return Writer, "master"
	case srv.State == topology.StateSuspect:
		return Writer, "master suspect: not confirmed dead, writes stay until a failover moves them"
	case srv.State == topology.StateFailed:
		return Writer, "master failed: nobody else may write before a failover moves the writes"
	case srv.State == topology.StateErrorAuth:
		return Writer, "master refuses the manager's credentials: clients are not affected"
	default:
		return Writer, fmt.Sprintf("master (state %q)", srv.State)
	}
}

func replicaRoute(srv *topology.Server, maint bool, maxLag int64) (Route, string) {
	// What must not serve stays Offline, maintenance or not.
	switch {
	case srv.Ignored:
		return Offline, "ignored (db-servers-ignored-hosts)"
	case srv.State == topology.StateFailed:
		return Offline, "failed: unreachable"
	case srv.State == topology.StateStandAlone,
		srv.State == topology.StateMaintenance && !srv.IsReplica():
		return Offline, "standalone: not replicating, its data may have diverged"
	}
	if maint {
		return Drained, "maintenance"
	}
	switch srv.State {
	case topology.StateSlave, topology.StateRelay:
		if lag, ok := maxChannelLag(srv); ok && maxLag > 0 && lag > maxLag {
			return Drained, fmt.Sprintf("lagging %d s, more than %d s", lag, maxLag)
		}
		if srv.State == topology.StateRelay {
			return Reader, "relay"
		}
		return Reader, "replica"
	case topology.StateSlaveLate, topology.StateRelayLate:
		return Drained, string(srv.State) + ": lagging beyond failover-max-slave-delay"
	case topology.StateSlaveErr, topology.StateRelayErr:
		return Drained, string(srv.State) + ": replication stopped, data stale"
	case topology.StateSuspect:
		return Drained, "suspect: missed probes, maybe dead"
	case topology.StateErrorAuth:
		return Drained, "refuses the manager's credentials: replication state unknown"
	case topology.StateMaster:
		return Offline, "writable master that is not the cluster's master"
	default:
		return Offline, fmt.Sprintf("state %q: nothing known to route on", srv.State)
	}
}

// maxChannelLag is the largest known lag of a server's channels: one lagging channel makes
// the server lag, as in discovery.
func maxChannelLag(srv *topology.Server) (int64, bool) {
	var max int64
	found := false
	for _, r := range srv.Replications {
		if r.Lag != nil && (!found || *r.Lag > max) {
			max, found = *r.Lag, true
		}
	}
	return max, found
}
