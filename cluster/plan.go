package cluster

import (
	"fmt"
	"time"

	"replication-manager-pro/backup"
	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// PlanKind says what a plan does.
type PlanKind string

const (
	PlanFailover   PlanKind = "failover"   // a dead master replaced by the best replica
	PlanSwitchover PlanKind = "switchover" // a live master handed over without losing a commit
	PlanRejoin     PlanKind = "rejoin"     // a former master back as a replica
	PlanRepoint    PlanKind = "repoint"    // a replica moved to the current master
	PlanBootstrap  PlanKind = "bootstrap"  // master-slave replication set up on standalone servers
	PlanCleanup    PlanKind = "cleanup"    // every server's replication and binary log reset
	PlanRelay      PlanKind = "relay"      // the replicas of a dead relay moved to a live source
)

// PlanKinds lists every kind, in the order the documentation gives them.
var PlanKinds = []PlanKind{PlanFailover, PlanSwitchover, PlanRelay, PlanRejoin, PlanRepoint, PlanBootstrap, PlanCleanup, PlanReseed}

// StepKind names one step of a plan. Each step is idempotent: running it twice, or after a
// crash half-way, leaves the same result.
type StepKind string

const (
	StepPreScript        StepKind = "pre-script"        // failover-pre-script
	StepCheckLongWrites  StepKind = "check-long-writes" // switchover-wait-write-query on the old master
	StepFreezeOldMaster  StepKind = "freeze-old-master" // read_only, kill writers, flush binlogs
	StepFenceOldMaster   StepKind = "fence-old-master"  // failover: read_only queued on a held connection to the old master
	StepWaitCatchUp      StepKind = "wait-catch-up"     // candidate applies up to a position
	StepPromote          StepKind = "promote"           // stop and reset replication, read_only off
	StepNotifyRouters    StepKind = "notify-routers"    // routers send writes to the new master
	StepDemoteOldMaster  StepKind = "demote-old-master" // old master replicates from the new one
	StepRepointReplica   StepKind = "repoint-replica"   // replica follows the new master
	StepPostScript       StepKind = "post-script"       // failover-post-script
	StepRecordCrash      StepKind = "record"            // crash record, counters
	StepRejoin           StepKind = "rejoin"            // a former master replicates from the master at its own position
	StepOpenMaster       StepKind = "open-master"       // bootstrap: the master writable, its position read
	StepReplicateFrom    StepKind = "replicate-from"    // bootstrap: a server replicates from the master's position
	StepResetReplication StepKind = "reset-replication" // cleanup: no replication, empty binary log
)

// Step is one action of a plan on one server (or none).
type Step struct {
	Kind   StepKind      `json:"kind"`
	Server ipv6.HostPort `json:"server"`
	Detail string        `json:"detail"`
	// Position to wait for (StepWaitCatchUp): empty means "the old master's position, read
	// when the step runs" (switchover) or "what the candidate received" (failover).
	Position gtid.List `json:"position,omitempty"`
	// Channels are the replication connections a cleanup step resets.
	Channels []string `json:"channels,omitempty"`
	// Upstream are the relays above a failover's candidate (StepWaitCatchUp): it waits for
	// what they hold, which they pass down to it, besides what it received itself.
	Upstream []ipv6.HostPort `json:"upstream,omitempty"`
	// Seed is where a reseed's restore step takes the data from (cluster/reseed.go).
	Seed *backup.Source `json:"seed,omitempty"`
}

// Plan is a failover or switchover decided on one snapshot. A refused plan has no steps and
// says why in Refused.
type Plan struct {
	Kind      PlanKind      `json:"kind"`
	Cluster   string        `json:"cluster"`
	OldMaster ipv6.HostPort `json:"oldMaster"`
	NewMaster ipv6.HostPort `json:"newMaster"`
	Election  Election      `json:"election"`
	Steps     []Step        `json:"steps"`
	Refused   string        `json:"refused,omitempty"`
	Code      RefusalCode   `json:"code,omitempty"`
	// Origin says who asked: "api", "cli", "monitor" (automatic recovery), "resume".
	Origin string `json:"origin,omitempty"`
	// OldMasterPos is the dead master's position when the manager last saw it (failover):
	// what of it the new master lacks once promoted is reported as lost.
	OldMasterPos gtid.List `json:"oldMasterPos,omitempty"`
}

// RefusalCode names why a failover or switchover does not run.
type RefusalCode string

const (
	RefuseNoMaster        RefusalCode = "NoMaster"
	RefuseMasterAlive     RefusalCode = "MasterAlive"
	RefuseMasterDown      RefusalCode = "MasterDown"
	RefuseNotDead         RefusalCode = "MasterNotConfirmedDead"
	RefuseManualMode      RefusalCode = "ManualMode"
	RefuseLimit           RefusalCode = "FailoverLimitReached"
	RefuseTooSoon         RefusalCode = "FailoverTooSoon"
	RefuseNotFailable     RefusalCode = "NotFailable"
	RefuseNoCandidate     RefusalCode = "NoCandidate"
	RefuseUnsupportedKind RefusalCode = "UnsupportedTopology"
	RefuseExistingSetup   RefusalCode = "ExistingReplication"
	RefuseUnknownServer   RefusalCode = "UnknownServer"
	RefuseNothingToDo     RefusalCode = "NothingToDo"
	RefuseDiverged        RefusalCode = "Diverged"
)

// FailoverHistory is what the manager remembers between failovers, on disk so that a
// restart keeps it: the counters of the failover preconditions, the master it promoted last,
// and the masters it replaced, waiting to rejoin.
type FailoverHistory struct {
	Count         int            `json:"count"` // failovers since the last reset-failover-control
	Last          time.Time      `json:"last"`
	Promoted      *ipv6.HostPort `json:"promoted,omitempty"`
	FormerMasters []FormerMaster `json:"formerMasters,omitempty"`
}

// FormerMaster is a master replaced by a failover. PromotionPos is the new master's position
// when it was promoted: the old master may rejoin as a replica only if everything it wrote
// is within that position; anything beyond was never received by the cluster.
type FormerMaster struct {
	Addr         ipv6.HostPort `json:"addr"`
	PromotionPos gtid.List     `json:"promotionPos"`
	Time         time.Time     `json:"time"`
	// Saved is the file holding the transactions it wrote that the cluster never received,
	// once saved (SaveConfig).
	Saved string `json:"saved,omitempty"`
}

// formerMasters indexes the history's former masters by address.
func (h FailoverHistory) formerMasters() map[ipv6.HostPort]gtid.List {
	out := make(map[ipv6.HostPort]gtid.List, len(h.FormerMasters))
	for _, f := range h.FormerMasters {
		out[f.Addr] = f.PromotionPos
	}
	return out
}

// PlanOptions are the settings plans depend on.
type PlanOptions struct {
	Elect ElectOptions

	// Failover preconditions.
	Automatic bool          // the monitor asks (failover-mode = automatic), not an operator
	Mode      string        // failover-mode
	Limit     int           // failover-limit; 0 = unlimited
	TimeLimit time.Duration // failover-time-limit; 0 = no wait
	Force     bool          // operator insists on failing over a master that answers
	Now       time.Time

	// Flatten (replication-tree-flatten): after a failover or switchover every server
	// replicates directly from the new master; otherwise relays keep their replicas.
	Flatten bool
	// KeepDepth (replication-relay-keep-depth): a dead relay's replicas go to the best
	// surviving relay of the same source rather than to the source itself.
	KeepDepth bool

	PreScript, PostScript string
}

// DecideFailover decides a failover on a snapshot. Pure.
func DecideFailover(s *topology.Snapshot, h FailoverHistory, opt PlanOptions) Plan {
	p := Plan{Kind: PlanFailover, Cluster: s.Cluster}
	refuse := func(c RefusalCode, format string, a ...any) Plan {
		p.Code, p.Refused, p.Steps = c, fmt.Sprintf(format, a...), nil
		return p
	}
	master, ok := s.MasterServer()
	if !ok {
		return refuse(RefuseNoMaster, "no master is known")
	}
	p.OldMaster = master.Addr
	if s.Kind != topology.KindMasterSlave {
		return refuse(RefuseUnsupportedKind, "topology %s: failover handles master-slave clusters", s.Kind)
	}
	if opt.Automatic {
		if opt.Mode != "automatic" {
			return refuse(RefuseManualMode, "failover-mode is %q: failover only on command", opt.Mode)
		}
		if !hasProblem(s, topology.DeadMaster) {
			return refuse(RefuseNotDead, "master %s is not confirmed dead (%s)", master.Addr, masterVerdict(s))
		}
		if !s.IsFailable {
			return refuse(RefuseNotFailable, "cluster not failable: %s", blockingProblems(s))
		}
		if opt.Limit > 0 && h.Count >= opt.Limit {
			return refuse(RefuseLimit, "failover-limit %d reached (%d failovers since the last reset-failover-control)", opt.Limit, h.Count)
		}
		if opt.TimeLimit > 0 && !h.Last.IsZero() && opt.Now.Sub(h.Last) < opt.TimeLimit {
			return refuse(RefuseTooSoon, "last failover %s ago, failover-time-limit is %s", opt.Now.Sub(h.Last).Round(time.Second), opt.TimeLimit)
		}
	} else if master.Reachable && !opt.Force {
		return refuse(RefuseMasterAlive, "master %s answers: a failover would leave it writable beside the new master; use switchover (or --force)", master.Addr)
	}
	if hasProblem(s, topology.UnreachableMasterWithHealthyReplicas) && !opt.Force {
		return refuse(RefuseNotDead, "replicas still receive from master %s: only the manager lost it", master.Addr)
	}

	if !p.elect(s, opt.Elect, ElectFailover) {
		return refuse(RefuseNoCandidate, "%s", p.Election.Reason)
	}
	newMaster := p.NewMaster
	p.OldMasterPos = master.CurrentPos
	cand := &s.Servers[p.Election.Winner]
	r, _ := cand.PrimaryReplication()
	up := p.Election.winner().Upstream

	// A master that froze rather than died must come back read-only: queue it first.
	core := []Step{{Kind: StepFenceOldMaster, Server: master.Addr, Detail: "clients ended and read_only=ON, queued on the manager's held connection: a frozen master runs it when it resumes"}}
	// The relays above the candidate first apply what they received (top down), so that
	// it reaches the candidate, which then waits for all of it.
	for i := len(up) - 1; i >= 0; i-- {
		core = append(core, Step{Kind: StepWaitCatchUp, Server: up[i], Detail: "relay applies its relay log and passes it down to " + newMaster.String()})
	}
	detail := "apply the relay log before promotion"
	if len(up) > 0 {
		detail = "apply what it and the relays above it received before promotion"
	}
	core = append(core,
		Step{Kind: StepWaitCatchUp, Server: newMaster, Position: r.IOPos, Upstream: up, Detail: detail},
		Step{Kind: StepPromote, Server: newMaster, Detail: "stop and reset replication, read_only off"},
		Step{Kind: StepNotifyRouters, Server: newMaster},
	)
	p.Steps = frame(opt, core, repointSteps(s, p.Election.Winner, opt.Flatten))
	return p
}

// winner returns the winning candidate's line (zero when there is none).
func (e Election) winner() Candidate {
	for _, c := range e.Candidates {
		if c.index == e.Winner {
			return c
		}
	}
	return Candidate{}
}

// elect runs the election in the given mode and sets the plan's new master; false when no
// replica can be promoted (the reason is in p.Election.Reason).
func (p *Plan) elect(s *topology.Snapshot, eo ElectOptions, mode ElectMode) bool {
	eo.Mode = mode
	p.Election = Elect(s, eo)
	nm, ok := p.Election.WinnerAddr(s)
	p.NewMaster = nm
	return ok
}

// frame puts a plan's own steps between the configured scripts: pre-script, core steps,
// replica repointing, post-script, record.
func frame(opt PlanOptions, core, repoint []Step) []Step {
	var out []Step
	if opt.PreScript != "" {
		out = append(out, Step{Kind: StepPreScript, Detail: opt.PreScript})
	}
	out = append(append(out, core...), repoint...)
	if opt.PostScript != "" {
		out = append(out, Step{Kind: StepPostScript, Detail: opt.PostScript})
	}
	return append(out, Step{Kind: StepRecordCrash})
}

// DecideSwitchover decides a switchover on a snapshot. Pure.
func DecideSwitchover(s *topology.Snapshot, opt PlanOptions) Plan {
	p := Plan{Kind: PlanSwitchover, Cluster: s.Cluster}
	refuse := func(c RefusalCode, format string, a ...any) Plan {
		p.Code, p.Refused, p.Steps = c, fmt.Sprintf(format, a...), nil
		return p
	}
	master, ok := s.MasterServer()
	if !ok {
		return refuse(RefuseNoMaster, "no master is known")
	}
	p.OldMaster = master.Addr
	if !master.Reachable || master.State != topology.StateMaster {
		return refuse(RefuseMasterDown, "master %s is %s: switchover needs a live master (use failover)", master.Addr, master.State)
	}
	if s.Kind != topology.KindMasterSlave {
		return refuse(RefuseUnsupportedKind, "topology %s: switchover handles master-slave clusters", s.Kind)
	}
	if !p.elect(s, opt.Elect, ElectSwitchover) {
		return refuse(RefuseNoCandidate, "%s", p.Election.Reason)
	}
	newMaster := p.NewMaster
	p.Steps = frame(opt, []Step{
		{Kind: StepCheckLongWrites, Server: master.Addr},
		{Kind: StepFreezeOldMaster, Server: master.Addr, Detail: "read_only, kill clients, read lock, final position"},
		{Kind: StepWaitCatchUp, Server: newMaster, Detail: "apply everything the old master wrote"},
		{Kind: StepPromote, Server: newMaster, Detail: "stop and reset replication, read_only off"},
		{Kind: StepNotifyRouters, Server: newMaster},
		{Kind: StepDemoteOldMaster, Server: master.Addr, Detail: "replicate from the new master with GTID"},
	}, repointSteps(s, p.Election.Winner, opt.Flatten))
	return p
}

// repointSteps moves to the new master every reachable server of the old master's tree
// that would otherwise be left without a live source: the old master's direct replicas
// (the relays above the winner among them) and the replicas of dead relays. Relays keep
// their replicas, so the tree stays as it was under the new master, unless flatten asks
// for every server to replicate from it directly. Each server gets at most one step;
// unreachable ones are repointed when they come back.
func repointSteps(s *topology.Snapshot, winner int, flatten bool) []Step {
	g := buildGraph(s.Servers)
	var out []Step
	for i := range s.Servers {
		srv := &s.Servers[i]
		if i == winner || i == s.Master || !srv.Reachable || !srv.IsReplica() {
			continue
		}
		p := g.parent[i]
		move := false
		switch {
		case p < 0 || !followsMaster(g, i, s.Master):
			// Outside the master's tree: not this plan's business.
		case flatten:
			move = p != winner
		case p == s.Master:
			move = true
		default:
			move = s.Servers[p].State == topology.StateFailed // a dead relay's replica
		}
		if move {
			out = append(out, Step{Kind: StepRepointReplica, Server: srv.Addr})
		}
	}
	return out
}

func hasProblem(s *topology.Snapshot, c topology.Code) bool {
	for _, p := range s.Problems {
		if p.Code == c {
			return true
		}
	}
	return false
}

func masterVerdict(s *topology.Snapshot) string {
	for _, p := range s.Problems {
		switch p.Code {
		case topology.SuspectMaster, topology.UnreachableMasterWithHealthyReplicas:
			return string(p.Code) + ": " + p.Message
		}
	}
	if m, ok := s.MasterServer(); ok {
		return "state " + string(m.State)
	}
	return "no master"
}

func blockingProblems(s *topology.Snapshot) string {
	out := ""
	for _, p := range s.Problems {
		if Blocking(p.Code) {
			if out != "" {
				out += "; "
			}
			out += string(p.Code) + ": " + p.Message
		}
	}
	return out
}

func refusal(p Plan, c RefusalCode, format string, a ...any) Plan {
	p.Code, p.Refused, p.Steps = c, fmt.Sprintf(format, a...), nil
	return p
}

// DecideRejoin makes a former master a replica of the current master at its own position.
// The analysis judged it (FormerMasterCanRejoin): everything it wrote is on the master. Pure.
func DecideRejoin(s *topology.Snapshot, server ipv6.HostPort) Plan {
	p := Plan{Kind: PlanRejoin, Cluster: s.Cluster, OldMaster: server}
	master, ok := s.MasterServer()
	if !ok || !master.Reachable {
		return refusal(p, RefuseNoMaster, "no live master to rejoin")
	}
	p.NewMaster = master.Addr
	srv, ok := s.Find(server)
	if !ok {
		return refusal(p, RefuseUnknownServer, "%s is not a server of cluster %s", server, s.Cluster)
	}
	if ipv6.SameAddr(srv.Addr, master.Addr) {
		return refusal(p, RefuseNothingToDo, "%s is the master", server)
	}
	if !srv.Reachable {
		return refusal(p, RefuseMasterDown, "%s does not answer", server)
	}
	p.Steps = []Step{{Kind: StepRejoin, Server: srv.Addr, Detail: "read-only, replicate from " + master.Addr.String() + " at its own position"}}
	return p
}

// DecideRepoint moves a replica from the source it follows to the current master. Pure.
func DecideRepoint(s *topology.Snapshot, server ipv6.HostPort) Plan {
	p := Plan{Kind: PlanRepoint, Cluster: s.Cluster}
	master, ok := s.MasterServer()
	if !ok || !master.Reachable {
		return refusal(p, RefuseNoMaster, "no live master to repoint to")
	}
	p.NewMaster = master.Addr
	srv, ok := s.Find(server)
	if !ok {
		return refusal(p, RefuseUnknownServer, "%s is not a server of cluster %s", server, s.Cluster)
	}
	r, ok := srv.PrimaryReplication()
	if !ok {
		return refusal(p, RefuseNothingToDo, "%s does not replicate: use rejoin", server)
	}
	p.OldMaster = r.Source
	if ipv6.SameAddr(r.Source, master.Addr) && r.IO == topology.ThreadYes && r.SQL == topology.ThreadYes {
		return refusal(p, RefuseNothingToDo, "%s already replicates from the master %s", server, master.Addr)
	}
	p.Steps = []Step{{Kind: StepRepointReplica, Server: srv.Addr, Detail: "follow " + master.Addr.String()}}
	return p
}

// BootstrapOptions choose the servers and master of a bootstrap.
type BootstrapOptions struct {
	Hosts     []ipv6.HostPort // db-servers-hosts
	Preferred []ipv6.HostPort // db-servers-prefered-master: the first one becomes the master
}

// DecideBootstrap sets up master-slave replication on servers that have none: the master
// is the first preferred master, else the first host; every other server replicates from
// the master's position read when the plan runs. Pure.
func DecideBootstrap(s *topology.Snapshot, opt BootstrapOptions) Plan {
	p := Plan{Kind: PlanBootstrap, Cluster: s.Cluster}
	if len(opt.Hosts) == 0 {
		return refusal(p, RefuseNoCandidate, "db-servers-hosts is empty")
	}
	for i := range s.Servers {
		if s.Servers[i].IsReplica() {
			return refusal(p, RefuseExistingSetup, "Environment already has an existing master/slave setup (%s replicates)", s.Servers[i].Addr)
		}
	}
	master := opt.Hosts[0]
	if len(opt.Preferred) > 0 {
		found := false
		for _, h := range opt.Hosts {
			found = found || ipv6.SameAddr(h, opt.Preferred[0])
		}
		if !found {
			return refusal(p, RefuseUnknownServer, "Preferred master could not be found in existing servers")
		}
		master = opt.Preferred[0]
	}
	for _, h := range opt.Hosts {
		if srv, ok := s.Find(h); !ok || !srv.Reachable {
			return refusal(p, RefuseMasterDown, "%s does not answer: bootstrap needs every server", h)
		}
	}
	p.NewMaster = master
	p.Steps = []Step{{Kind: StepOpenMaster, Server: master, Detail: "writable, position read"}}
	for _, h := range opt.Hosts {
		if !ipv6.SameAddr(h, master) {
			p.Steps = append(p.Steps, Step{Kind: StepReplicateFrom, Server: h, Detail: "replicate from " + master.String()})
		}
	}
	return p
}

// DecideCleanup resets replication on every server: no replication connection, empty
// binary log and slave position. Pure.
func DecideCleanup(s *topology.Snapshot, hosts []ipv6.HostPort) Plan {
	p := Plan{Kind: PlanCleanup, Cluster: s.Cluster}
	if len(hosts) == 0 {
		return refusal(p, RefuseNoCandidate, "db-servers-hosts is empty")
	}
	for _, h := range hosts {
		st := Step{Kind: StepResetReplication, Server: h}
		if srv, ok := s.Find(h); ok {
			for _, r := range srv.Replications {
				if r.Channel != "" {
					st.Channels = append(st.Channels, r.Channel)
				}
			}
		}
		p.Steps = append(p.Steps, st)
	}
	return p
}

// DecideRelay moves the replicas of a dead relay (intermediate master) to a live source: the
// relay's own source, or with opt.KeepDepth the most advanced surviving relay replicating
// from that source, which first catches up with them. The monitor asks only once the
// relay's replicas confirmed it dead (DeadRelay); an operator may ask for any relay that
// does not answer, or any relay at all with Force. Pure.
func DecideRelay(s *topology.Snapshot, relay ipv6.HostPort, opt PlanOptions) Plan {
	p := Plan{Kind: PlanRelay, Cluster: s.Cluster, OldMaster: relay}
	ri := -1
	for i := range s.Servers {
		if ipv6.SameAddr(s.Servers[i].Addr, relay) {
			ri = i
		}
	}
	if ri < 0 {
		return refusal(p, RefuseUnknownServer, "%s is not a server of cluster %s", relay, s.Cluster)
	}
	if ri == s.Master {
		return refusal(p, RefuseUnsupportedKind, "%s is the master: use failover", relay)
	}
	srv := &s.Servers[ri]
	p.OldMaster = srv.Addr
	g := buildGraph(s.Servers)
	if len(g.children[ri]) == 0 {
		return refusal(p, RefuseNothingToDo, "%s has no replicas", relay)
	}
	switch {
	case opt.Automatic && !problemOn(s, topology.DeadRelay, srv.Addr):
		return refusal(p, RefuseNotDead, "relay %s is not confirmed dead by its replicas (%s)", relay, srv.State)
	case srv.Reachable && !opt.Force:
		return refusal(p, RefuseMasterAlive, "relay %s answers: its replicas are left under it (use --force to move them)", relay)
	}
	src := g.parent[ri]
	if src < 0 || !s.Servers[src].Reachable || (src != s.Master && !replicating(&s.Servers[src])) {
		name := "none"
		if src >= 0 {
			name = s.Servers[src].Addr.String()
		}
		return refusal(p, RefuseMasterDown, "the relay's source (%s) is not a live source: a failover of the master moves these replicas", name)
	}
	target := src
	var need gtid.List // what the replicas hold: a relay taking them must have it first
	var steps []Step
	for _, c := range g.children[ri] {
		if cs := &s.Servers[c]; cs.Reachable {
			need = maxPos(need, cs.CurrentPos)
			steps = append(steps, Step{Kind: StepRepointReplica, Server: cs.Addr, Detail: "its relay " + relay.String() + " is dead"})
		}
	}
	if len(steps) == 0 {
		return refusal(p, RefuseNothingToDo, "no replica of %s answers", relay)
	}
	if opt.KeepDepth {
		var best gtid.List
		for _, sib := range g.children[src] {
			ss := &s.Servers[sib]
			if sib == ri || len(g.children[sib]) == 0 || !ss.Reachable || ss.Maintenance || !ss.LogBin || !ss.LogSlaveUpdates || !replicating(ss) {
				continue
			}
			if target == src || best.Behind(ss.CurrentPos) > 0 {
				target, best = sib, ss.CurrentPos
			}
		}
	}
	p.NewMaster = s.Servers[target].Addr
	if target != src {
		steps = append([]Step{{Kind: StepWaitCatchUp, Server: p.NewMaster, Position: need, Detail: "surviving relay catches up with the dead relay's replicas"}}, steps...)
	}
	p.Steps = steps
	return p
}

func replicating(s *topology.Server) bool {
	r, ok := s.PrimaryReplication()
	return ok && r.Healthy()
}

func problemOn(s *topology.Snapshot, c topology.Code, addr ipv6.HostPort) bool {
	for _, p := range s.Problems {
		if p.Code == c && p.Server == addr.String() {
			return true
		}
	}
	return false
}
