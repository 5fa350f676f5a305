package cluster

import (
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// RecoveryKind is what the monitor does by itself about a problem.
type RecoveryKind string

const (
	RecoverNone        RecoveryKind = ""
	RecoverSetReadOnly RecoveryKind = "set-read-only" // a correction, not a topology change
	RecoverSetWritable RecoveryKind = "set-writable"  // a correction, not a topology change
	RecoverFailover    RecoveryKind = "failover"      // plan PlanFailover
	RecoverRejoin      RecoveryKind = "rejoin"        // plan PlanRejoin
	RecoverRepoint     RecoveryKind = "repoint"       // plan PlanRepoint
	RecoverRelay       RecoveryKind = "relay"         // plan PlanRelay
	RecoverHeartbeat   RecoveryKind = "set-heartbeat" // a correction: MASTER_HEARTBEAT_PERIOD
	RecoverFence       RecoveryKind = "fence"         // a correction: read_only and clients ended on a returning former master
)

// Recovery is one action the monitor takes about one problem.
type Recovery struct {
	Code   topology.Code
	Server ipv6.HostPort // zero for cluster-wide actions (failover)
	Kind   RecoveryKind
	Reason string
}

// RecoveryOptions are the settings the recovery table depends on.
type RecoveryOptions struct {
	ReadOnlyReplicas bool                   // failover-readonly-state
	IgnoredReadOnly  map[ipv6.HostPort]bool // db-servers-ignored-readonly
	AutoRejoin       bool                   // autorejoin
	AutoFailover     bool                   // failover-mode = automatic
	// Paused is set while a plan runs: plans set read_only on purpose (the old master during
	// a switchover) and the monitor must not undo it.
	Paused bool
	// Fenced lists the former masters fenced (read-only, clients ended) since they last
	// answered again: each is fenced once per return.
	Fenced map[ipv6.HostPort]bool
	// Reseed (cluster/reseed.go): autoseed, the former masters of the failover history and
	// those whose diverged transactions are saved (only those are reseeded by autorejoin).
	AutoSeed      bool
	FormerMasters map[ipv6.HostPort]bool
	Saved         map[ipv6.HostPort]bool
	SeedHold      map[ipv6.HostPort]bool // automatic reseed failed recently: not retried yet
}

// checkAndRecover decides the action for one problem; srv is the problem's server (nil for
// cluster-wide problems).
type checkAndRecover func(s *topology.Snapshot, p topology.Problem, srv *topology.Server, opt RecoveryOptions) RecoveryKind

// recoveryTable maps every analysis code to its action, in one place (the style of VTOrc's
// recovery table). A nil entry means the monitor only reports the problem: an operator, or
// the failover that another code triggers, resolves it. TestRecoveryTableCoversEveryCode
// keeps it complete.
var recoveryTable = map[topology.Code]checkAndRecover{
	topology.DeadMaster: func(s *topology.Snapshot, _ topology.Problem, _ *topology.Server, o RecoveryOptions) RecoveryKind {
		return pick(o.AutoFailover, RecoverFailover) // the plan checks the preconditions
	},
	topology.WritableReplica: func(_ *topology.Snapshot, _ topology.Problem, srv *topology.Server, o RecoveryOptions) RecoveryKind {
		return pick(srv != nil && o.ReadOnlyReplicas && !o.IgnoredReadOnly[srv.Addr], RecoverSetReadOnly)
	},
	topology.FormerMasterDiverged: func(_ *topology.Snapshot, _ topology.Problem, srv *topology.Server, o RecoveryOptions) RecoveryKind {
		// It must not take writes beside the master; a reseed brings it back: by itself with
		// autorejoin once its extra transactions are saved, else an operator's.
		if srv != nil && (!o.Fenced[srv.Addr] || !srv.ReadOnly) {
			return RecoverFence
		}
		return pick(srv != nil && o.AutoRejoin && o.Saved[srv.Addr] && !o.SeedHold[srv.Addr], RecoverReseed)
	},
	topology.FormerMasterCanRejoin: func(_ *topology.Snapshot, _ topology.Problem, srv *topology.Server, o RecoveryOptions) RecoveryKind {
		if srv != nil && !o.Fenced[srv.Addr] {
			// First its clients go: writes they sent before it froze may wait for a
			// semi-sync acknowledgement that must never come.
			return RecoverFence
		}
		return pick(srv != nil && o.AutoRejoin, RecoverRejoin)
	},
	topology.SlowHeartbeat: func(_ *topology.Snapshot, _ topology.Problem, srv *topology.Server, o RecoveryOptions) RecoveryKind {
		return pick(srv != nil && !o.Paused, RecoverHeartbeat)
	},
	topology.ReplicaNotFollowingMaster: func(s *topology.Snapshot, _ topology.Problem, srv *topology.Server, o RecoveryOptions) RecoveryKind {
		if srv == nil || !o.AutoRejoin {
			return RecoverNone
		}
		// Only away from a source that is confirmed dead: a live source is an operator's
		// choice (or a relay set-up) and is left alone.
		r, _ := srv.PrimaryReplication()
		src, ok := s.Find(r.Source)
		return pick(ok && src.State == topology.StateFailed, RecoverRepoint)
	},
	topology.DeadRelay: func(s *topology.Snapshot, _ topology.Problem, srv *topology.Server, o RecoveryOptions) RecoveryKind {
		if srv == nil || !o.AutoRejoin {
			return RecoverNone
		}
		// Under a dead master the failover moves these replicas too: wait for it.
		r, _ := srv.PrimaryReplication()
		src, ok := s.Find(r.Source)
		return pick(ok && src.Reachable, RecoverRelay)
	},
	topology.ReadOnlyMaster: func(s *topology.Snapshot, _ topology.Problem, srv *topology.Server, _ RecoveryOptions) RecoveryKind {
		return pick(srv != nil && (s.Kind == topology.KindMasterSlave || s.Kind == topology.KindActivePassive), RecoverSetWritable)
	},
	topology.SuspectMaster:                        nil, // the false-positive counter runs; DeadMaster follows or not
	topology.UnreachableMasterWithHealthyReplicas: nil, // only the manager lost the master: never fail over
	topology.NoMaster:                             nil, // topology unknown: bootstrap is an operator's call
	topology.SplitBrain:                           nil, // two writers: a human chooses
	topology.WritableStandalone:                   nil,
	topology.MultiMaster:                          nil,
	topology.ReplicationCycle:                     nil,
	topology.NoReplica:                            nil,
	topology.BrokenReplication:                    nil, // an SQL error needs a human or a reseed
	topology.LaggingReplica:                       nil, // the election skips it
	topology.ErrantGTID:                           nil, // the election skips it
	topology.ReplicaDown:                          nil, // repointed when it comes back
	topology.AuthFailure:                          nil,
	topology.ClusterDown:                          nil,
	topology.ReplicaWithoutBinlog:                 nil, // the election skips it
	topology.ReplicaOfUnknownSource:               nil,
}

func pick(ok bool, k RecoveryKind) RecoveryKind {
	if ok {
		return k
	}
	return RecoverNone
}

// Recoveries returns the actions a snapshot's problems call for, in problem order, at most
// one failover. Pure: the monitor runs them (corrections at once, plans through Act).
func Recoveries(s *topology.Snapshot, opt RecoveryOptions) []Recovery {
	if opt.Paused {
		return nil
	}
	var out []Recovery
	failover := false
	for _, p := range s.Problems {
		f := recoveryTable[p.Code]
		if f == nil {
			continue
		}
		var srv *topology.Server
		if p.Server != "" {
			if srv = serverNamed(s, p.Server); srv == nil {
				continue
			}
		}
		k := f(s, p, srv, opt)
		if k == RecoverNone || (k == RecoverFailover && failover) {
			continue
		}
		failover = failover || k == RecoverFailover
		r := Recovery{Code: p.Code, Kind: k, Reason: p.Message}
		if srv != nil && k != RecoverFailover {
			r.Server = srv.Addr
		}
		out = append(out, r)
	}
	return append(out, seedRecoveries(s, opt)...)
}

// serverNamed finds the server a problem names (its address as text), with the one address
// equality of package ipv6.
func serverNamed(s *topology.Snapshot, name string) *topology.Server {
	addr, err := ipv6.ParseHostPort(name, ipv6.DefaultPort)
	if err != nil {
		return nil
	}
	srv, ok := s.Find(addr)
	if !ok {
		return nil
	}
	return srv
}
