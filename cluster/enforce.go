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
		case WritableReplica:
			if !opt.ReadOnlyReplicas {
				continue
			}
			if srv := serverByName(s, p.Server); srv != nil && !opt.IgnoredReadOnly[srv.Addr] {
				out = append(out, Enforcement{Server: srv.Addr, Kind: EnforceReadOnly, Reason: p.Message})
			}
		case ReadOnlyMaster:
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
