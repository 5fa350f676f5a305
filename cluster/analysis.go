package cluster

import (
	"fmt"
	"math"
	"sort"
	"time"

	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// blocking lists the codes that make a cluster not failable (repman's ERROR states such as
// ERR00010 no replica, ERR00021 cluster down, ERR00063 extra master): while one holds, an
// automatic failover must not run because the topology itself is not understood.
var blocking = map[topology.Code]bool{
	topology.NoMaster: true, topology.SplitBrain: true, topology.ReplicationCycle: true, topology.NoReplica: true, topology.ClusterDown: true,
}

// Blocking reports whether a problem code prevents failover.
func Blocking(c topology.Code) bool { return blocking[c] }

// AnalyzeOptions are the settings analysis depends on.
type AnalyzeOptions struct {
	ReadOnlyReplicas bool // failover-readonly-state: replicas must be read_only
	IgnoredReadOnly  map[ipv6.HostPort]bool
	MaxLag           int64 // failover-max-slave-delay, to name the lagging channels
	// HeartbeatCheck (failover-falsepositive-heartbeat): a replica whose IO thread still says
	// "Yes" but whose source showed no life (heartbeats, IO position) for HeartbeatTimeout
	// agrees that the master is gone. Without it only a disconnected IO thread agrees.
	HeartbeatCheck   bool
	HeartbeatTimeout time.Duration
	// HeartbeatPeriod is the MASTER_HEARTBEAT_PERIOD every replica should have
	// (force-slave-heartbeat); 0 leaves replicas as they are.
	HeartbeatPeriod time.Duration
	// FormerMasters are masters replaced by a failover, with the new master's position at
	// promotion (failover history).
	FormerMasters map[ipv6.HostPort]gtid.List
}

// Analyze lists the problems of a snapshot, errors first, then by server and code. Pure.
func Analyze(s *topology.Snapshot, opt AnalyzeOptions) []topology.Problem {
	var ps []topology.Problem
	add := func(c topology.Code, sev topology.Severity, srv *topology.Server, format string, a ...any) {
		p := topology.Problem{Code: c, Severity: sev, Message: fmt.Sprintf(format, a...)}
		if srv != nil {
			p.Server = srv.Addr.String()
		}
		ps = append(ps, p)
	}
	if len(s.Servers) == 0 {
		return nil
	}
	if s.IsDown {
		add(topology.ClusterDown, topology.SeverityError, nil, "all %d servers are down", len(s.Servers))
	}

	master, haveMaster := s.MasterServer()
	g := buildGraph(s.Servers)

	switch s.Kind {
	case topology.KindRing:
		add(topology.ReplicationCycle, topology.SeverityError, nil, "servers replicate in a ring of more than two; no master can be named")
	case topology.KindMultiMaster:
		add(topology.MultiMaster, topology.SeverityWarning, nil, "two servers replicate from each other")
	}
	if !haveMaster && s.Kind != topology.KindRing && len(s.Servers) > 1 && !s.IsDown {
		if roots := replicationRoots(g, len(s.Servers)); len(roots) > 1 {
			names := make([]string, len(roots))
			for i, r := range roots {
				names[i] = s.Servers[r].Addr.String()
			}
			add(topology.SplitBrain, topology.SeverityError, nil, "replicas follow %d different masters: %v", len(roots), names)
		} else if anyReachable(s) {
			add(topology.NoMaster, topology.SeverityError, nil, "no server is replicated from: topology unknown")
		} else {
			add(topology.NoMaster, topology.SeverityError, nil, "no server answers: topology unknown")
		}
	}

	if haveMaster {
		analyzeMaster(s, g, master, opt, add)
		analyzeRelays(s, g, opt, add)
	}
	ref := masterReference(s, g)

	for i := range s.Servers {
		srv := &s.Servers[i]
		if i == s.Master {
			continue
		}
		switch srv.State {
		case topology.StateErrorAuth:
			add(topology.AuthFailure, topology.SeverityWarning, srv, "access denied with the configured credentials")
			continue
		case topology.StateFailed:
			if srv.IsReplica() {
				add(topology.ReplicaDown, topology.SeverityWarning, srv, "replica unreachable: %s", srv.ProbeError)
			}
			continue
		}
		if !srv.Reachable {
			continue
		}
		if !srv.IsReplica() {
			if promotionPos, former := opt.FormerMasters[srv.Addr]; former && haveMaster {
				if extra := gtid.Errant(srv.CurrentPos, promotionPos); len(extra) > 0 {
					add(topology.FormerMasterDiverged, topology.SeverityWarning, srv,
						"former master wrote transactions no replica received before the failover: %s; kept read_only and out of routing until reseeded", extra)
				} else {
					add(topology.FormerMasterCanRejoin, topology.SeverityWarning, srv, "former master is back and has not diverged: it can rejoin as a replica of %s", master.Addr)
				}
				continue
			}
			if haveMaster && !srv.ReadOnly && srv.State != topology.StateMaintenance {
				add(topology.WritableStandalone, topology.SeverityWarning, srv, "writable server outside replication: a second master")
			}
			continue
		}
		r, _ := srv.PrimaryReplication()
		if g.outside[i] {
			add(topology.ReplicaOfUnknownSource, topology.SeverityWarning, srv, "replicates from %s, which is not configured", r.Source)
		} else if haveMaster && !followsMaster(g, i, s.Master) {
			add(topology.ReplicaNotFollowingMaster, topology.SeverityWarning, srv, "replicates from %s, not from the master %s", r.Source, master.Addr)
		}
		for _, ch := range srv.Replications {
			switch {
			case ch.IO == topology.ThreadNo || ch.SQL != topology.ThreadYes:
				add(topology.BrokenReplication, topology.SeverityWarning, srv, "%s%s", channelPrefix(ch), replicationError(ch))
			case srv.State == topology.StateSlaveLate || srv.State == topology.StateRelayLate:
				if ch.Lag != nil && *ch.Lag > opt.MaxLag {
					add(topology.LaggingReplica, topology.SeverityWarning, srv, "%s%d s behind its master", channelPrefix(ch), *ch.Lag)
				}
			}
		}
		if opt.ReadOnlyReplicas && !srv.ReadOnly && !opt.IgnoredReadOnly[srv.Addr] && srv.State != topology.StateMaintenance {
			add(topology.WritableReplica, topology.SeverityWarning, srv, "replica is writable (read_only=OFF)")
		}
		if opt.HeartbeatPeriod > 0 && srv.State != topology.StateMaintenance {
			want := opt.HeartbeatPeriod.Seconds()
			for _, ch := range srv.Replications {
				// Only a replicating channel is tuned: the change restarts its threads.
				if ch.Healthy() && math.Abs(ch.HeartbeatPeriod-want) > 0.0015 {
					add(topology.SlowHeartbeat, topology.SeverityWarning, srv, "%sexpects a heartbeat every %gs; a dead source is confirmed quickly only with one every %gs",
						channelPrefix(ch), ch.HeartbeatPeriod, want)
					break
				}
			}
		}
		if !srv.LogBin {
			add(topology.ReplicaWithoutBinlog, topology.SeverityWarning, srv, "binary log disabled: cannot be promoted")
		}
		if haveMaster && ref.known {
			if errant := ref.errant(srv); len(errant) > 0 {
				add(topology.ErrantGTID, topology.SeverityWarning, srv, "transactions not on the master: %s", errant)
			}
		}
	}

	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Severity != ps[j].Severity {
			return ps[i].Severity == topology.SeverityError
		}
		if ps[i].Server != ps[j].Server {
			return ps[i].Server < ps[j].Server
		}
		return ps[i].Code < ps[j].Code
	})
	return ps
}

func analyzeMaster(s *topology.Snapshot, g graph, master *topology.Server, opt AnalyzeOptions, add func(topology.Code, topology.Severity, *topology.Server, string, ...any)) {
	replicas := g.children[s.Master]
	if master.Reachable {
		if master.ReadOnly && master.State != topology.StateMaintenance && s.Kind != topology.KindMultiMaster {
			add(topology.ReadOnlyMaster, topology.SeverityWarning, master, "master is read_only")
		}
		if len(replicas) == 0 && len(s.Servers) > 1 && s.Kind == topology.KindMasterSlave {
			add(topology.NoReplica, topology.SeverityError, master, "no configured server replicates from the master")
		}
		return
	}
	if master.State == topology.StateErrorAuth {
		add(topology.AuthFailure, topology.SeverityWarning, master, "access denied on the master with the configured credentials")
		return
	}
	// The master does not answer us. Ask its replicas: a replica whose IO thread is still
	// connected to it, and (with the heartbeat check) still receiving from it, proves it
	// alive: the problem is between us and it.
	seeing, reachable := 0, 0
	for _, c := range replicas {
		r := &s.Servers[c]
		if !r.Reachable {
			continue
		}
		reachable++
		if rep, ok := r.PrimaryReplication(); ok && SourceAlive(rep, s.Time, opt.HeartbeatCheck, opt.HeartbeatTimeout) {
			seeing++
		}
	}
	switch {
	case seeing > 0:
		add(topology.UnreachableMasterWithHealthyReplicas, topology.SeverityWarning, master,
			"unreachable from the manager, but %d of %d replicas still replicate from it", seeing, reachable)
	case master.State == topology.StateFailed:
		add(topology.DeadMaster, topology.SeverityError, master, "master unreachable for %d probes and no replica is connected to it (%s)", master.FailCount, master.ProbeError)
	default:
		add(topology.SuspectMaster, topology.SeverityWarning, master, "master missed %d probes (%s)", master.FailCount, master.ProbeError)
	}
}

// reference is what a server of the master's tree is judged against for errant
// transactions: the master's position and server_id.
type reference struct {
	pos      gtid.List
	serverID uint32
	known    bool // false: nothing is known of the master, no judgement is possible
}

// masterReference is the master's position as well as it can be known. A master probed
// alive gives its own (its last known one while it is down). A master this manager never
// saw alive (a manager started after its death) has none: then what its direct replicas
// received from it (their IO positions) and the server_id they report for it stand in, so
// the dead master's own transactions, which every server of the tree holds, are not taken
// for errant ones.
func masterReference(s *topology.Snapshot, g graph) reference {
	master, ok := s.MasterServer()
	if !ok {
		return reference{}
	}
	if master.Reachable || len(master.CurrentPos) > 0 || master.ServerID != 0 {
		return reference{pos: master.CurrentPos, serverID: master.ServerID, known: true}
	}
	var ref reference
	for _, c := range g.children[s.Master] {
		r, ok := s.Servers[c].PrimaryReplication()
		if !ok || len(r.IOPos) == 0 {
			continue
		}
		ref.pos, ref.known = maxPos(ref.pos, r.IOPos), true
		if ref.serverID == 0 {
			ref.serverID = r.SourceServerID
		}
	}
	return ref
}

// errant returns a server's transactions the master does not have, leaving out those
// carrying the master's own server_id: they came from the master, and only look newer
// because the servers were probed a few milliseconds apart (or after the master died).
func (ref reference) errant(srv *topology.Server) gtid.List {
	var out gtid.List
	for _, g := range gtid.Errant(srv.CurrentPos, ref.pos) {
		if ref.serverID == 0 || g.ServerID != ref.serverID {
			out = append(out, g)
		}
	}
	return out
}

// analyzeRelays finds dead relays: a relay (intermediate master) of the master's tree that
// the manager lost, and that none of its reachable replicas still receives from (the same
// false-positive check as for a master). Its replicas are orphaned until repointed.
func analyzeRelays(s *topology.Snapshot, g graph, opt AnalyzeOptions, add func(topology.Code, topology.Severity, *topology.Server, string, ...any)) {
	for i := range s.Servers {
		srv := &s.Servers[i]
		if i == s.Master || len(g.children[i]) == 0 || srv.State != topology.StateFailed || !followsMaster(g, i, s.Master) {
			continue
		}
		seeing, reachable := 0, 0
		for _, c := range g.children[i] {
			r := &s.Servers[c]
			if !r.Reachable {
				continue
			}
			reachable++
			if rep, ok := r.PrimaryReplication(); ok && SourceAlive(rep, s.Time, opt.HeartbeatCheck, opt.HeartbeatTimeout) {
				seeing++
			}
		}
		if reachable == 0 || seeing > 0 {
			continue // nobody to save, or its replicas still receive from it
		}
		add(topology.DeadRelay, topology.SeverityError, srv, "relay unreachable for %d probes and none of its %d reachable replicas receives from it (%s)", srv.FailCount, reachable, srv.ProbeError)
	}
}

// followsMaster reports whether server i's replication tree leads up to the master.
func followsMaster(g graph, i, master int) bool {
	seen := map[int]bool{}
	for j := i; j >= 0 && !seen[j]; j = g.parent[j] {
		if j == master {
			return true
		}
		seen[j] = true
	}
	return false
}

// replicationRoots lists the distinct tops of the replication trees, ascending.
func replicationRoots(g graph, n int) []int {
	set := map[int]bool{}
	for i := 0; i < n; i++ {
		if g.parent[i] < 0 {
			continue
		}
		if r, cyc := g.root(i); !cyc {
			set[r] = true
		}
	}
	out := make([]int, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Ints(out)
	return out
}

func replicationError(r topology.Replication) string {
	switch {
	case r.LastSQLErrno != 0:
		return fmt.Sprintf("SQL thread %s: error %d: %s", r.SQL, r.LastSQLErrno, r.LastSQLError)
	case r.LastIOErrno != 0:
		return fmt.Sprintf("IO thread %s: error %d: %s", r.IO, r.LastIOErrno, r.LastIOError)
	}
	return fmt.Sprintf("replication stopped (IO %s, SQL %s)", r.IO, r.SQL)
}

func channelPrefix(r topology.Replication) string {
	if r.Channel == "" {
		return ""
	}
	return "channel '" + r.Channel + "': "
}

// Failable reports whether no problem blocks a failover.
func Failable(ps []topology.Problem) bool {
	for _, p := range ps {
		if Blocking(p.Code) {
			return false
		}
	}
	return true
}

// SourceAlive reports whether a replica's channel still shows its source alive at time now:
// its IO thread is connected and, when heartbeat checking is on, the source sent heartbeats
// or events within the timeout (or twice the channel's heartbeat period, if longer, so a
// slow heartbeat is not mistaken for silence).
func SourceAlive(r topology.Replication, now time.Time, heartbeatCheck bool, timeout time.Duration) bool {
	if r.IO != topology.ThreadYes {
		return false
	}
	if !heartbeatCheck || r.SourceActivity.IsZero() {
		return true
	}
	if p := time.Duration(2 * r.HeartbeatPeriod * float64(time.Second)); p > timeout {
		timeout = p
	}
	return now.Sub(r.SourceActivity) <= timeout
}

func anyReachable(s *topology.Snapshot) bool {
	for i := range s.Servers {
		if s.Servers[i].Reachable {
			return true
		}
	}
	return false
}
