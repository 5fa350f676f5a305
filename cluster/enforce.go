package cluster

import (
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// EnforceKind is a corrective action the monitor takes by itself each tick.
type EnforceKind string

const (
	EnforceReadOnly EnforceKind = "set-read-only" // a writable replica
	EnforceWritable EnforceKind = "set-writable"  // a read-only master
	EnforceRepoint  EnforceKind = "repoint"       // a replica still following a dead former master
	EnforceRejoin   EnforceKind = "rejoin"        // a former master back, not diverged
)

// Enforcement is one corrective action on one server.
type Enforcement struct {
	Server ipv6.HostPort
	Kind   EnforceKind
	Reason string
}

// EnforceOptions are the settings enforcement depends on.
type EnforceOptions struct {
	ReadOnlyReplicas bool                   // failover-readonly-state
	IgnoredReadOnly  map[ipv6.HostPort]bool // db-servers-ignored-readonly
	// Paused is set while a failover or switchover runs: those set read_only on purpose
	// (the old master during a switchover) and the monitor must not undo it.
	Paused bool
	// AutoRejoin (autorejoin): former masters that did not diverge rejoin as replicas, and
	// replicas left on a dead former master follow the new one.
	AutoRejoin bool
}

// Enforcements derives the actions from a snapshot's problems, as replication-manager does:
// replicas are kept read-only, and a read-only master of a master-slave cluster is made
// writable. Pure: the monitor runs the actions and records each as an event.
func Enforcements(s *topology.Snapshot, ps []topology.Problem, opt EnforceOptions) []Enforcement {
	if opt.Paused {
		return nil
	}
	var out []Enforcement
	for _, p := range ps {
		switch p.Code {
		case topology.WritableReplica:
			if !opt.ReadOnlyReplicas {
				continue
			}
			if srv := serverByName(s, p.Server); srv != nil && !opt.IgnoredReadOnly[srv.Addr] {
				out = append(out, Enforcement{Server: srv.Addr, Kind: EnforceReadOnly, Reason: p.Message})
			}
		case topology.FormerMasterDiverged:
			if srv := serverByName(s, p.Server); srv != nil && !srv.ReadOnly {
				out = append(out, Enforcement{Server: srv.Addr, Kind: EnforceReadOnly, Reason: "diverged former master"})
			}
		case topology.FormerMasterCanRejoin:
			if srv := serverByName(s, p.Server); srv != nil && opt.AutoRejoin {
				out = append(out, Enforcement{Server: srv.Addr, Kind: EnforceRejoin, Reason: p.Message})
			}
		case topology.ReplicaNotFollowingMaster:
			srv := serverByName(s, p.Server)
			if srv == nil || !opt.AutoRejoin {
				continue
			}
			// Only away from a source that is confirmed dead: a live source is an operator's
			// choice (or a relay set-up) and is left alone.
			r, _ := srv.PrimaryReplication()
			if src, ok := s.Find(r.Source); ok && src.State == topology.StateFailed {
				out = append(out, Enforcement{Server: srv.Addr, Kind: EnforceRepoint, Reason: p.Message})
			}
		case topology.ReadOnlyMaster:
			if s.Kind != topology.KindMasterSlave && s.Kind != topology.KindActivePassive {
				continue
			}
			if srv := serverByName(s, p.Server); srv != nil {
				out = append(out, Enforcement{Server: srv.Addr, Kind: EnforceWritable, Reason: p.Message})
			}
		}
	}
	return out
}

func serverByName(s *topology.Snapshot, name string) *topology.Server {
	for i := range s.Servers {
		if s.Servers[i].Addr.String() == name {
			return &s.Servers[i]
		}
	}
	return nil
}
