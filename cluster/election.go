package cluster

import (
	"fmt"
	"sort"
	"strings"

	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// ElectMode tells the election why a new master is needed.
type ElectMode string

const (
	// ElectFailover: the master is gone; rank replicas by what they received from it
	// (Gtid_IO_Pos), since their relay logs are applied before promotion.
	ElectFailover ElectMode = "failover"
	// ElectSwitchover: the master is alive and will be drained; replicas must replicate
	// cleanly, and are ranked by what they applied.
	ElectSwitchover ElectMode = "switchover"
)

// ElectOptions are the settings the election depends on.
type ElectOptions struct {
	Mode             ElectMode
	CheckReplication bool  // check-replication-state: broken or lagging replicas are not elected
	MaxLag           int64 // failover-max-slave-delay in seconds; negative disables the lag check
	Preferred        map[ipv6.HostPort]bool
	Ignored          map[ipv6.HostPort]bool
	Target           *ipv6.HostPort // switchover to this server only (--prefered)
	AtEqualGTID      bool           // switchover-at-equal-gtid: candidate must have the master's position
	RequireSemiSync  bool           // failover-at-sync / switchover-at-sync
}

// Candidate is one replica's line in the election report.
type Candidate struct {
	Server    ipv6.HostPort `json:"server"`
	Eligible  bool          `json:"eligible"`
	Reasons   []string      `json:"reasons"`  // why it was excluded, or notes on its rank
	Position  gtid.List     `json:"position"` // the position it was ranked by
	Behind    uint64        `json:"behind"`   // transactions behind the most advanced eligible replica
	Preferred bool          `json:"preferred"`
	SemiSync  bool          `json:"semiSync"`
	Depth     int           `json:"depth"` // 1 for a direct replica of the master, 2 under a relay...
	// Upstream are the live relays between the master and this server, nearest first:
	// before its promotion they apply what they received and pass it down to it.
	Upstream []ipv6.HostPort `json:"upstream,omitempty"`
	Keeps    int             `json:"keeps"`           // replicas under it, which stay in place if it wins
	Notes    []string        `json:"notes,omitempty"` // how an eligible server was ranked
	index    int
}

// Election is the outcome: the winner (if any) and why every replica was or was not chosen.
type Election struct {
	Mode       ElectMode   `json:"mode"`
	Winner     int         `json:"winner"` // index into the snapshot's servers, -1 when none
	Reason     string      `json:"reason"`
	Candidates []Candidate `json:"candidates"`
}

// WinnerAddr returns the winner's address.
func (e Election) WinnerAddr(s *topology.Snapshot) (ipv6.HostPort, bool) {
	if e.Winner < 0 || e.Winner >= len(s.Servers) {
		return ipv6.HostPort{}, false
	}
	return s.Servers[e.Winner].Addr, true
}

// Excluded summarises the replicas that could not be elected and why, for events and logs:
// "; not elected: db2:3306 (errant GTID 0-2-5)". Empty when every replica was eligible.
func (e Election) Excluded() string {
	out := ""
	for _, c := range e.Candidates {
		if c.Eligible {
			continue
		}
		if out == "" {
			out = "; not elected: "
		} else {
			out += ", "
		}
		out += c.Server.String() + " (" + strings.Join(c.Reasons, "; ") + ")"
	}
	return out
}

// Elect picks the replica to promote. Pure: it reads the snapshot only.
//
// Every server of the master's replication tree is a candidate: direct replicas, relays and
// the replicas under them at any depth. One is excluded when it cannot safely become
// master: unreachable, in maintenance, ignored, outside the master's tree, without binary
// log, with errant GTIDs, not applying its relay log, too far behind, or (switchover) not
// replicating cleanly. A server under live relays is ranked by what the chain above it
// holds, since the relays pass it down before the promotion.
//
// Among the others, failover takes the most advanced, so no transaction a replica received
// is lost; ties go to the one that keeps most replicas in place (a relay), then to a
// preferred server. Switchover takes the target or a preferred server first, since the old
// master waits for the winner to catch up, then the most advanced.
func Elect(s *topology.Snapshot, opt ElectOptions) Election {
	e := Election{Mode: opt.Mode, Winner: -1}
	if _, ok := s.MasterServer(); !ok {
		e.Reason = "no master is known: nothing to replace"
		return e
	}
	g := buildGraph(s.Servers)
	ref := masterReference(s, g)
	replicas := 0
	for i := range s.Servers {
		if i != s.Master && s.Servers[i].IsReplica() && followsMaster(g, i, s.Master) {
			replicas++
		}
	}
	for i := range s.Servers {
		if i == s.Master {
			continue
		}
		srv := &s.Servers[i]
		c := Candidate{Server: srv.Addr, Preferred: opt.Preferred[srv.Addr], SemiSync: srv.SemiSyncReplica, index: i,
			Depth: g.depth(i, s.Master), Keeps: g.descendants(i)}
		c.Position, c.Reasons = judge(s, g, ref, i, replicas, opt)
		if len(c.Reasons) == 0 {
			var cut string
			c.Position, c.Upstream, c.Notes, cut = chain(s, g, i, c.Position, opt.Mode)
			if cut != "" && opt.Mode == ElectSwitchover {
				// The old master's last writes could not reach it.
				c.Reasons, c.Notes = append(c.Reasons, cut), nil
			}
		}
		c.Eligible = len(c.Reasons) == 0
		e.Candidates = append(e.Candidates, c)
	}

	// Rank the eligible by how far behind the best position they are.
	best := gtid.List{}
	for _, c := range e.Candidates {
		if c.Eligible {
			best = maxPos(best, c.Position)
		}
	}
	var eligible []*Candidate
	for i := range e.Candidates {
		c := &e.Candidates[i]
		if c.Eligible {
			c.Behind = c.Position.Behind(best)
			eligible = append(eligible, c)
		}
	}
	if len(eligible) == 0 {
		e.Reason = "no replica can be promoted"
		if opt.Target != nil {
			e.Reason = fmt.Sprintf("target %s cannot be promoted", *opt.Target)
		}
		return e
	}
	sort.SliceStable(eligible, func(i, j int) bool {
		a, b := eligible[i], eligible[j]
		if opt.Mode == ElectSwitchover && a.Preferred != b.Preferred {
			return a.Preferred
		}
		if a.Behind != b.Behind {
			return a.Behind < b.Behind
		}
		if a.Keeps != b.Keeps {
			return a.Keeps > b.Keeps // fewer servers to move
		}
		if a.Preferred != b.Preferred {
			return a.Preferred
		}
		if a.SemiSync != b.SemiSync {
			return a.SemiSync // it acknowledged the master's last commits
		}
		return a.index < b.index
	})
	w := eligible[0]
	e.Winner = w.index
	switch {
	case opt.Target != nil:
		e.Reason = fmt.Sprintf("%s is the requested target", w.Server)
	case opt.Mode == ElectSwitchover && w.Preferred:
		e.Reason = fmt.Sprintf("%s is a preferred master (db-servers-prefered-master)", w.Server)
	case w.Behind == 0 && len(eligible) > 1 && eligible[1].Behind == 0 && w.Preferred:
		e.Reason = fmt.Sprintf("%s is among the most advanced and preferred", w.Server)
	case w.Behind == 0 && len(eligible) > 1 && eligible[1].Behind == 0 && w.Keeps > eligible[1].Keeps:
		e.Reason = fmt.Sprintf("%s is among the most advanced and keeps %d replicas in place", w.Server, w.Keeps)
	case w.Behind == 0:
		e.Reason = fmt.Sprintf("%s is the most advanced eligible replica (%s)", w.Server, w.Position)
	default:
		e.Reason = fmt.Sprintf("%s is the best eligible replica, %d transactions behind the most advanced", w.Server, w.Behind)
	}
	return e
}

// chain adds to an eligible candidate's position what the live relays above it hold: before
// the promotion each applies what it received and passes it down (failover; in a switchover
// the old master's final position reaches it the same way). The walk stops at a relay that
// is down or not applying, which passes nothing on.
func chain(s *topology.Snapshot, g graph, i int, pos gtid.List, mode ElectMode) (_ gtid.List, up []ipv6.HostPort, notes []string, cut string) {
	for _, a := range g.ancestors(i, s.Master) {
		srv := &s.Servers[a]
		r, ok := srv.PrimaryReplication()
		if !srv.Reachable || !ok || r.SQL != topology.ThreadYes {
			cut = fmt.Sprintf("relay %s above it cannot pass transactions down (%s)", srv.Addr, srv.State)
			notes = append(notes, cut)
			break
		}
		up = append(up, srv.Addr)
		if mode == ElectFailover {
			pos = maxPos(pos, maxPos(srv.CurrentPos, r.IOPos))
		}
	}
	if len(up) > 0 {
		notes = append(notes, fmt.Sprintf("under relay %s: catches up through it before promotion", up[0]))
	}
	if k := g.descendants(i); k > 0 {
		notes = append(notes, fmt.Sprintf("relay: its %d replicas stay under it", k))
	}
	return pos, up, notes, cut
}

// judge returns the position a replica is ranked by, and why it must not be promoted.
func judge(s *topology.Snapshot, g graph, ref reference, i, replicas int, opt ElectOptions) (gtid.List, []string) {
	srv := &s.Servers[i]
	var why []string
	no := func(format string, a ...any) { why = append(why, fmt.Sprintf(format, a...)) }

	if opt.Target != nil && srv.Addr != *opt.Target {
		no("not the requested target")
		return srv.CurrentPos, why
	}
	if !srv.Reachable {
		no("unreachable (%s)", srv.ProbeError)
		return srv.CurrentPos, why
	}
	if srv.State == topology.StateMaintenance || srv.Maintenance {
		no("in maintenance")
	}
	if opt.Ignored[srv.Addr] {
		no("ignored (db-servers-ignored-hosts)")
	}
	r, isReplica := srv.PrimaryReplication()
	if !isReplica {
		no("not a replica")
		return srv.CurrentPos, why
	}
	if !followsMaster(g, i, s.Master) {
		no("replicates from %s, outside the master's replication tree", r.Source)
	}
	if !srv.LogBin {
		no("binary log disabled (log_bin=OFF)")
	}
	if !srv.LogSlaveUpdates && replicas > 1 {
		no("log_slave_updates=OFF: the other replicas could not continue from its binary log")
	}
	if errant := ref.errant(srv); ref.known && len(errant) > 0 {
		no("errant GTID %s (not on the master)", errant)
	}
	if opt.RequireSemiSync && !srv.SemiSyncReplica {
		no("semi-sync replication not active and required")
	}

	pos := srv.CurrentPos
	switch opt.Mode {
	case ElectFailover:
		if len(r.IOPos) > 0 {
			// What it received will be applied before promotion.
			pos = maxPos(srv.CurrentPos, r.IOPos)
		}
		if opt.CheckReplication && r.SQL != topology.ThreadYes {
			no("SQL thread %s: its relay log cannot be applied (%s)", r.SQL, r.LastSQLError)
		}
		if opt.CheckReplication && opt.MaxLag >= 0 && r.LastLag != nil && *r.LastLag > opt.MaxLag {
			no("lag %d s exceeds failover-max-slave-delay %d s", *r.LastLag, opt.MaxLag)
		}
	case ElectSwitchover:
		if opt.CheckReplication && !r.Healthy() {
			no("replication not running (IO %s, SQL %s)", r.IO, r.SQL)
		}
		if opt.CheckReplication && opt.MaxLag >= 0 && (r.Lag == nil || *r.Lag > opt.MaxLag) {
			lag := "NULL"
			if r.Lag != nil {
				lag = fmt.Sprintf("%d s", *r.Lag)
			}
			no("lag %s exceeds failover-max-slave-delay %d s", lag, opt.MaxLag)
		}
		if master := &s.Servers[s.Master]; opt.AtEqualGTID && !srv.CurrentPos.Equal(master.CurrentPos) {
			no("position %s differs from the master's %s (switchover-at-equal-gtid)", srv.CurrentPos, master.CurrentPos)
		}
	}
	return pos, why
}

// maxPos returns, per domain, the higher sequence of the two positions.
func maxPos(a, b gtid.List) gtid.List {
	out := append(gtid.List(nil), a...)
	for _, g := range b {
		found := false
		for i := range out {
			if out[i].Domain == g.Domain {
				found = true
				if g.Seq > out[i].Seq {
					out[i] = g
				}
			}
		}
		if !found {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out
}
