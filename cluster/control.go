package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/eventlog"
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
	}
}

func (m *Monitor) executor() *Executor {
	cfg := m.cfg.Failover.Exec
	cfg.Cluster = m.cfg.Cluster
	x := NewExecutor(cfg, m.sqlServer, m.cfg.Failover.Routers, m.events, m.log)
	x.OnPromoted = m.promoted
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
		if f.Addr != p.OldMaster && f.Addr != p.NewMaster {
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

// Failover decides and, unless dryRun, runs a failover on a fresh snapshot. An operator's
// failover skips the automatic preconditions (mode, limits) but never fails over a master
// that still answers unless force is set.
func (m *Monitor) Failover(ctx context.Context, dryRun, force bool) (Plan, *Result, error) {
	return m.control(ctx, dryRun, func(s *topology.Snapshot) Plan {
		return DecideFailover(s, m.History(), m.planOptions(false, force))
	})
}

// Switchover decides and, unless dryRun, runs a switchover to target (or the best replica).
func (m *Monitor) Switchover(ctx context.Context, target *ipv6.HostPort, dryRun bool) (Plan, *Result, error) {
	return m.control(ctx, dryRun, func(s *topology.Snapshot) Plan {
		o := m.planOptions(false, false)
		o.Elect.Target = target
		return DecideSwitchover(s, o)
	})
}

func (m *Monitor) control(ctx context.Context, dryRun bool, decide func(*topology.Snapshot) Plan) (Plan, *Result, error) {
	m.tickMu.Lock()
	snap := m.tickLocked(ctx)
	p := decide(snap)
	// A replica whose IO thread is still connecting (just repointed, a demoted master a
	// moment ago) is not electable yet: give it a few seconds rather than refusing.
	for deadline := time.Now().Add(3 * time.Second); p.Code == RefuseNoCandidate && connecting(snap) && time.Now().Before(deadline) && ctx.Err() == nil; {
		m.tickMu.Unlock()
		time.Sleep(100 * time.Millisecond)
		m.tickMu.Lock()
		snap = m.tickLocked(ctx)
		p = decide(snap)
	}
	if p.Refused != "" || dryRun {
		m.tickMu.Unlock()
		if p.Refused != "" {
			m.addEvent(eventlog.Event{Kind: string(p.Kind), Message: "refused: " + p.Refused, Error: string(p.Code)})
			return p, nil, fmt.Errorf("%w: %s", ErrRefused, p.Refused)
		}
		return p, nil, nil
	}
	res := m.execute(ctx, p)
	m.tickMu.Unlock()
	m.Tick(ctx) // publish the new topology at once
	if res.Err != "" {
		return p, &res, errors.New(res.Err)
	}
	return p, &res, nil
}

// execute runs a plan with enforcement paused; tickMu is held.
func (m *Monitor) execute(ctx context.Context, p Plan) Result {
	m.paused.Store(true)
	defer m.paused.Store(false)
	return m.executor().Run(ctx, p)
}

// autoFailover runs after a tick in automatic mode when the master is confirmed dead.
func (m *Monitor) autoFailover(ctx context.Context, snap *topology.Snapshot) {
	if m.cfg.Failover.Mode != "automatic" || !hasProblem(snap, topology.DeadMaster) {
		m.lastRefusal = ""
		return
	}
	m.tickMu.Lock()
	p := DecideFailover(snap, m.History(), m.planOptions(true, false))
	if p.Refused != "" {
		m.tickMu.Unlock()
		if p.Refused != m.lastRefusal { // say it once, not every tick
			m.lastRefusal = p.Refused
			m.log.WithFields(logrus.Fields{"code": p.Code}).Warn("automatic failover refused: " + p.Refused)
			m.addEvent(eventlog.Event{Kind: "failover", Server: p.OldMaster.String(), Message: "automatic failover refused: " + p.Refused, Error: string(p.Code)})
		}
		return
	}
	m.lastRefusal = ""
	m.execute(ctx, p)
	m.tickMu.Unlock()
	m.Tick(ctx)
}

// History returns the failover counters used by failover-limit and failover-time-limit.
func (m *Monitor) History() FailoverHistory {
	m.histMu.Lock()
	defer m.histMu.Unlock()
	if !m.histLoaded {
		m.histLoaded = true
		if b, err := os.ReadFile(m.historyPath()); err == nil {
			json.Unmarshal(b, &m.hist)
		}
	}
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
	path := m.historyPath()
	if path == "" {
		return
	}
	// Kept on disk so a restarted manager still honours failover-limit.
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err == nil {
		b, _ := json.Marshal(h)
		if err := os.WriteFile(path, b, 0o640); err != nil {
			m.log.WithError(err).Warn("failover counters not saved")
		}
	}
}

func (m *Monitor) historyPath() string {
	if m.cfg.Failover.Exec.StateDir == "" {
		return ""
	}
	return filepath.Join(m.cfg.Failover.Exec.StateDir, m.cfg.Cluster, "failover-history.json")
}

// nextInterval is the wait before the next tick: short while the master is suspect, so the
// false-positive counter confirms a dead master in a fraction of a tick.
func (m *Monitor) nextInterval(s *topology.Snapshot) time.Duration {
	if s != nil {
		if ms, ok := s.MasterServer(); ok && ms.State == topology.StateSuspect {
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

// rejoin carries out a repoint or rejoin enforcement; tickMu is held.
func (m *Monitor) rejoin(ctx context.Context, snap *topology.Snapshot, a Enforcement) error {
	master, ok := snap.MasterServer()
	if !ok {
		return errors.New("no master")
	}
	srv, ok := snap.Find(a.Server)
	if !ok {
		return fmt.Errorf("%s not in the snapshot", a.Server)
	}
	x := m.executor()
	if a.Kind == EnforceRepoint {
		r, _ := srv.PrimaryReplication()
		_, err := x.repoint(ctx, Plan{Kind: "rejoin", OldMaster: r.Source, NewMaster: master.Addr}, a.Server)
		return err
	}
	if err := x.rejoinFormerMaster(ctx, a.Server, master.Addr); err != nil {
		return err
	}
	h := m.History()
	var kept []FormerMaster
	for _, f := range h.FormerMasters {
		if f.Addr != a.Server {
			kept = append(kept, f)
		}
	}
	h.FormerMasters = kept
	m.setHistory(h)
	return nil
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
