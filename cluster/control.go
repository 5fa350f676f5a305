package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// FailoverConfig is what failover and switchover need beyond monitoring.
type FailoverConfig struct {
	Mode        string        // failover-mode: "automatic" lets the monitor fail over by itself
	Limit       int           // failover-limit
	TimeLimit   time.Duration // failover-time-limit
	PreScript   string        // failover-pre-script
	PostScript  string        // failover-post-script
	AtEqualGTID bool          // switchover-at-equal-gtid
	AtSync      bool          // failover-at-sync
	Exec        ExecConfig
	// Routers are bootstrapped on the first tick with a master, reconciled every tick, told
	// of maintenance, and moved by failovers and switchovers.
	Routers []router.Router
	// FastConfirm is the probe interval while the master is suspect, so that the
	// false-positive ping counter is reached in a fraction of a tick. 0 = ticker / 5.
	FastConfirm time.Duration
}

// ErrRefused wraps the reason a failover or switchover did not run.
var ErrRefused = errors.New("refused")

// sqlServer returns the monitor's SQL handle of a server, opening it if needed. Call with
// tickMu held.
func (m *Monitor) sqlServer(addr ipv6.HostPort) (*mariadb.Server, error) {
	c, err := m.conn(addr)
	if err != nil {
		return nil, err
	}
	mc, ok := c.(mariadbConn)
	if !ok {
		return nil, fmt.Errorf("%s: no SQL connection", addr)
	}
	return mc.s, nil
}

func (m *Monitor) planOptions(automatic, force bool) PlanOptions {
	f := m.cfg.Failover
	return PlanOptions{
		Elect: ElectOptions{
			CheckReplication: m.cfg.CheckLag, MaxLag: m.cfg.MaxLag,
			Preferred: set(m.cfg.Preferred), Ignored: set(m.cfg.Ignored),
			AtEqualGTID: f.AtEqualGTID, RequireSemiSync: f.AtSync,
		},
		Automatic: automatic, Mode: f.Mode, Limit: f.Limit, TimeLimit: f.TimeLimit, Force: force, Now: time.Now(),
		PreScript: f.PreScript, PostScript: f.PostScript,
		Flatten: m.cfg.FlattenTree, KeepDepth: m.cfg.RelayKeepDepth,
	}
}

func (m *Monitor) executor() *Executor {
	cfg := m.cfg.Failover.Exec
	cfg.Cluster = m.cfg.Cluster
	x := NewExecutor(cfg, m.sqlServer, m.cfg.Failover.Routers, m.observe, m.log)
	x.OnPromoted = m.promoted
	x.Journal = m.journal
	x.ArmFence = m.armFence
	x.seeding = m.seed.Load()
	if m.lead != nil {
		x.Guard = m.lead.Guard
	}
	return x
}

// promoted records a promotion at once, so a manager that dies right after it still knows
// the new master and the old one waiting to rejoin.
func (m *Monitor) promoted(p Plan, pos gtid.List) {
	h := m.History()
	nm := p.NewMaster
	h.Promoted = &nm
	var kept []FormerMaster
	for _, f := range h.FormerMasters {
		if !ipv6.SameAddr(f.Addr, p.OldMaster) && !ipv6.SameAddr(f.Addr, p.NewMaster) {
			kept = append(kept, f)
		}
	}
	if p.Kind == PlanFailover {
		h.Count++
		h.Last = time.Now()
		kept = append(kept, FormerMaster{Addr: p.OldMaster, PromotionPos: pos, Time: time.Now()})
	}
	h.FormerMasters = kept
	m.setHistory(h)
}

// rejoined forgets a former master once it replicates again.
func (m *Monitor) rejoined(addr ipv6.HostPort) {
	h := m.History()
	var kept []FormerMaster
	for _, f := range h.FormerMasters {
		if !ipv6.SameAddr(f.Addr, addr) {
			kept = append(kept, f)
		}
	}
	h.FormerMasters = kept
	m.setHistory(h)
}

// OperatorWait is how long an operator's action (API, CLI) waits for a running one to end
// before it is refused: long enough for a failover or switchover, short enough to answer.
const OperatorWait = 30 * time.Second

// Failover decides and, unless dryRun, runs a failover on a fresh snapshot. An operator's
// failover skips the automatic preconditions (mode, limits) but never fails over a master
// that still answers unless force is set.
func (m *Monitor) Failover(ctx context.Context, dryRun, force bool) (Plan, *Result, error) {
	return m.Act(ctx, ActionRequest{Kind: PlanFailover, DryRun: dryRun, Force: force, Origin: "cli", Wait: OperatorWait})
}

// Switchover decides and, unless dryRun, runs a switchover to target (or the best replica).
func (m *Monitor) Switchover(ctx context.Context, target *ipv6.HostPort, dryRun bool) (Plan, *Result, error) {
	return m.Act(ctx, ActionRequest{Kind: PlanSwitchover, Target: target, DryRun: dryRun, Origin: "cli", Wait: OperatorWait})
}

// decide builds the plan a request asks for, on one snapshot. Pure but for the history.
func (m *Monitor) decide(s *topology.Snapshot, req ActionRequest) Plan {
	switch req.Kind {
	case PlanFailover:
		return DecideFailover(s, m.History(), m.planOptions(req.Automatic, req.Force))
	case PlanSwitchover:
		o := m.planOptions(false, false)
		o.Elect.Target = req.Target
		return DecideSwitchover(s, o)
	case PlanRejoin, PlanRepoint:
		if req.Target == nil {
			return refusal(Plan{Kind: req.Kind, Cluster: s.Cluster}, RefuseUnknownServer, "%s needs a server", req.Kind)
		}
		if req.Kind == PlanRejoin {
			return DecideRejoin(s, *req.Target)
		}
		return DecideRepoint(s, *req.Target)
	case PlanRelay:
		if req.Target == nil {
			return refusal(Plan{Kind: req.Kind, Cluster: s.Cluster}, RefuseUnknownServer, "relay needs the dead relay's address")
		}
		return DecideRelay(s, *req.Target, m.planOptions(req.Automatic, req.Force))
	case PlanBootstrap:
		return DecideBootstrap(s, BootstrapOptions{Hosts: m.cfg.Hosts, Preferred: m.cfg.Preferred})
	case PlanCleanup:
		return DecideCleanup(s, m.cfg.Hosts)
	case PlanReseed:
		return m.decideReseed(s, req)
	case PlanStopReplica, PlanStartReplica, PlanSkipEvent:
		if req.Target == nil {
			return refusal(Plan{Kind: req.Kind, Cluster: s.Cluster}, RefuseUnknownServer, "%s needs a server", req.Kind)
		}
		return DecideReplicaControl(s, req.Kind, *req.Target, req.Force)
	}
	return refusal(Plan{Kind: req.Kind, Cluster: s.Cluster}, RefuseUnsupportedKind, "unknown action %q", req.Kind)
}

// execute runs a plan with enforcement paused; tickMu and the action lock are held.
func (m *Monitor) execute(ctx context.Context, p Plan) Result {
	m.paused.Store(true)
	defer m.paused.Store(false)
	res := m.executor().Run(ctx, p)
	m.afterPlan(p, res)
	return res
}

// afterPlan updates what the monitor remembers once a plan ended.
func (m *Monitor) afterPlan(p Plan, res Result) {
	if res.Err != "" {
		return
	}
	switch p.Kind {
	case PlanRejoin, PlanReseed:
		m.rejoined(p.OldMaster)
	case PlanBootstrap, PlanCleanup:
		// A new topology: the former masters and the promoted master no longer apply.
		h := m.History()
		h.FormerMasters, h.Promoted = nil, nil
		m.setHistory(h)
	}
}

// recover runs, after a tick, the plans the recovery table asks for (automatic failover,
// rejoin, repoint). A plan refused for the same reason as last time is not reported again.
func (m *Monitor) recover(ctx context.Context, snap *topology.Snapshot, recs []Recovery) {
	failover := false
	for _, r := range recs {
		req := ActionRequest{Origin: "monitor", snapshot: snap}
		switch r.Kind {
		case RecoverFailover:
			failover = true
			req.Kind, req.Automatic = PlanFailover, true
		case RecoverRelay:
			srv := r.Server
			req.Kind, req.Automatic, req.Target = PlanRelay, true, &srv
		case RecoverReseed:
			srv := r.Server
			req.Kind, req.Automatic, req.Target = PlanReseed, true, &srv
		case RecoverRejoin, RecoverRepoint:
			req.Kind = PlanRejoin
			if r.Kind == RecoverRepoint {
				req.Kind = PlanRepoint
			}
			srv := r.Server
			req.Target = &srv
		default:
			continue
		}
		if _, _, err := m.Act(ctx, req); err != nil {
			var busy *BusyError
			if errors.As(err, &busy) {
				return // another action runs: the next tick decides again
			}
		}
		if failover {
			return // the topology changed: the next tick sees it
		}
		snap = m.Snapshot()
	}
	if !failover {
		m.lastRefusal = ""
	}
}

// History returns the failover counters used by failover-limit and failover-time-limit.
// It is read from the state store once, then again whenever this manager takes the
// cluster's leadership (another manager may have changed it meanwhile).
func (m *Monitor) History() FailoverHistory {
	m.histMu.Lock()
	defer m.histMu.Unlock()
	if !m.histLoaded && m.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
		b, ok, err := m.store.Get(ctx, docHistory)
		cancel()
		switch {
		case err != nil:
			m.log.WithError(err).Warn("failover history not read: counters start from zero for now")
			return m.hist // not marked loaded: read again next time
		case ok:
			var h FailoverHistory
			if err := json.Unmarshal(b, &h); err == nil {
				m.hist = h
			}
		}
	}
	m.histLoaded = true
	return m.hist
}

// ResetFailoverControl zeroes the failover counter (the API's reset-failover-control).
func (m *Monitor) ResetFailoverControl() {
	h := m.History()
	h.Count, h.Last = 0, time.Time{}
	m.setHistory(h)
}

func (m *Monitor) setHistory(h FailoverHistory) {
	m.histMu.Lock()
	defer m.histMu.Unlock()
	m.hist, m.histLoaded = h, true
	if m.store == nil {
		return
	}
	// Kept in the store so a restarted manager, or the next leader, still honours
	// failover-limit and knows the former masters.
	b, _ := json.Marshal(h)
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	if err := m.store.Put(ctx, docHistory, b); err != nil {
		m.log.WithError(err).Warn("failover counters not saved")
	}
}

// reloadHistory makes the next History read the store again.
func (m *Monitor) reloadHistory() {
	m.histMu.Lock()
	m.histLoaded = false
	m.histMu.Unlock()
}

// nextInterval is the wait before the next tick: short while the master or a relay is
// suspect, so the false-positive counter confirms a dead one in a fraction of a tick.
func (m *Monitor) nextInterval(s *topology.Snapshot) time.Duration {
	if s != nil {
		if suspectSource(s) {
			fast := m.cfg.Failover.FastConfirm
			if fast <= 0 {
				fast = m.cfg.Ticker / 5
			}
			if fast < 10*time.Millisecond {
				fast = 10 * time.Millisecond
			}
			if fast < m.cfg.Ticker {
				return fast
			}
		}
	}
	return m.cfg.Ticker
}

// connecting reports a reachable replica whose IO thread is between states.
func connecting(s *topology.Snapshot) bool {
	for i := range s.Servers {
		if r, ok := s.Servers[i].PrimaryReplication(); ok && s.Servers[i].Reachable && r.IO != topology.ThreadYes && r.IO != topology.ThreadNo {
			return true
		}
	}
	return false
}

// suspectSource reports a master or relay that missed its last probe: servers that others
// replicate from, whose death the monitor must confirm quickly.
func suspectSource(s *topology.Snapshot) bool {
	for i := range s.Servers {
		srv := &s.Servers[i]
		if srv.State == topology.StateSuspect && (i == s.Master || srv.Role == topology.RoleRelay) {
			return true
		}
	}
	return false
}
