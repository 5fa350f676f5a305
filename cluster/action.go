package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// ActionRequest asks a cluster for a topology change. Every caller (the API, the CLI, the
// monitor's automatic recovery, a resumed journal) goes through Monitor.Act with one.
type ActionRequest struct {
	Kind   PlanKind
	DryRun bool // decide and return the plan, change nothing
	Force  bool // failover: even when the master answers
	// Target is the switchover's new master, or the server a rejoin or repoint moves.
	Target *ipv6.HostPort
	// Automatic marks the monitor's own failover: failover-mode, the limits and the dead
	// master confirmation apply.
	Automatic bool
	Origin    string // "api", "cli", "monitor", "resume": in events and logs
	// SeedKind restricts a reseed to backups of one kind ("physical", "logical"; the
	// original's reseed-physicalbackup and reseed-logicalbackup); "" takes the newest usable.
	SeedKind string
	// Wait is how long to wait for a running action to end before refusing with a
	// *BusyError; 0 refuses at once (the monitor's own recoveries: the next tick decides
	// again).
	Wait time.Duration

	snapshot *topology.Snapshot // the monitor decides on the tick it just made
}

// BusyError refuses an action while another runs on the same cluster.
type BusyError struct {
	Running PlanKind
	Origin  string
	Since   time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("another action runs on this cluster: %s (asked by %s, running for %s)", e.Running, e.Origin, time.Since(e.Since).Round(time.Millisecond))
}

// running is the action holding a cluster's lock.
type running struct {
	kind   PlanKind
	origin string
	since  time.Time
	// cancel ends a running reseed: a failover does not wait minutes for a copy.
	cancel context.CancelFunc
}

// preemptWait bounds how long a failover waits for a reseed it cancelled to unwind.
const preemptWait = 30 * time.Second

// acquire takes the cluster's action lock, waiting up to req.Wait (and ctx) for a running
// action to end, or says which action holds it. A failover cancels a running reseed (it
// copies data for minutes) and waits for it to stop: the replica being reseeded was out of
// service anyway, and autoseed seeds it again later.
func (m *Monitor) acquire(ctx context.Context, req ActionRequest) (func(), error) {
	deadline := time.Now().Add(req.Wait)
	preempted := false
	for {
		release, busy := m.tryAcquire(req)
		if busy == nil {
			return release, nil
		}
		if req.Kind == PlanFailover && busy.Running == PlanReseed && !preempted && m.cancelRunning() {
			preempted = true
			m.log.WithField("origin", req.Origin).Warn("failover needed: cancelling the running reseed")
			m.observe(ActionEvent{Kind: ObsRefused, Plan: PlanReseed, Origin: req.Origin, Message: "reseed cancelled: a failover is needed", Error: "Preempted"})
			if d := time.Now().Add(preemptWait); d.After(deadline) {
				deadline = d
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, busy
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cancelRunning cancels the running action when it can be cancelled (a reseed).
func (m *Monitor) cancelRunning() bool {
	m.actMu.Lock()
	defer m.actMu.Unlock()
	if m.running == nil || m.running.cancel == nil {
		return false
	}
	m.running.cancel()
	return true
}

// setRunningCancel makes the running action cancellable by a failover.
func (m *Monitor) setRunningCancel(cancel context.CancelFunc) {
	m.actMu.Lock()
	defer m.actMu.Unlock()
	if m.running != nil {
		m.running.cancel = cancel
	}
}

func (m *Monitor) tryAcquire(req ActionRequest) (func(), *BusyError) {
	m.actMu.Lock()
	defer m.actMu.Unlock()
	if r := m.running; r != nil {
		return nil, &BusyError{Running: r.kind, Origin: r.origin, Since: r.since}
	}
	m.running = &running{kind: req.Kind, origin: req.Origin, since: time.Now()}
	return func() {
		m.actMu.Lock()
		m.running = nil
		m.actMu.Unlock()
	}, nil
}

// Running returns the action that holds the cluster's lock, if any.
func (m *Monitor) Running() (PlanKind, bool) {
	m.actMu.Lock()
	defer m.actMu.Unlock()
	if m.running == nil {
		return "", false
	}
	return m.running.kind, true
}

// Act is the one road of every topology change: take the cluster's action lock (a second
// action is refused with a *BusyError naming the running one), decide a plan on a fresh
// snapshot, and run it through the executor, whose typed observations feed the event log
// and the metrics. A refused plan returns an error wrapping ErrRefused; a dry run returns
// the plan without running it.
func (m *Monitor) Act(ctx context.Context, req ActionRequest) (Plan, *Result, error) {
	if req.Origin == "" {
		req.Origin = "api"
	}
	if !req.DryRun && !m.Leading() {
		name, addr := m.lead.Leader()
		err := &NotLeaderError{Cluster: m.cfg.Cluster, Leader: name, LeaderAddr: addr}
		return Plan{Kind: req.Kind, Cluster: m.cfg.Cluster, Refused: err.Error()}, nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if !req.DryRun {
		release, err := m.acquire(ctx, req)
		if err != nil {
			if !req.Automatic {
				m.observe(ActionEvent{Kind: ObsRefused, Plan: req.Kind, Origin: req.Origin, Message: "refused: " + err.Error(), Error: "Busy"})
			}
			return Plan{Kind: req.Kind, Cluster: m.cfg.Cluster, Refused: err.Error()}, nil, err
		}
		defer release()
	}
	m.tickMu.Lock()
	snap := req.snapshot
	if snap == nil || snap.Tick != m.tick {
		// The monitor's own request carries the tick it decided on; anything since (a
		// resumed plan, another action's closing tick) makes it stale: decide on a fresh one.
		snap = m.tickLocked(ctx)
	}
	p := m.decide(snap, req)
	// A replica whose IO thread is still connecting (just repointed, a demoted master a
	// moment ago) is not electable yet: give it a few seconds rather than refusing.
	for deadline := time.Now().Add(3 * time.Second); !req.Automatic && p.Code == RefuseNoCandidate && connecting(snap) && time.Now().Before(deadline) && ctx.Err() == nil; {
		m.tickMu.Unlock()
		time.Sleep(100 * time.Millisecond)
		m.tickMu.Lock()
		snap = m.tickLocked(ctx)
		p = m.decide(snap, req)
	}
	p.Origin = req.Origin
	if p.Refused != "" || req.DryRun {
		m.tickMu.Unlock()
		if p.Refused == "" {
			return p, nil, nil
		}
		// A dry run only asks what would happen: its refusal is the answer, not an event.
		if !req.DryRun && (!req.Automatic || p.Refused != m.lastRefusal) { // the monitor says it once, not every tick
			if req.Automatic {
				m.lastRefusal = p.Refused
				m.log.WithFields(logrus.Fields{"code": p.Code, "kind": p.Kind}).Warn("automatic " + string(p.Kind) + " refused: " + p.Refused)
			}
			prefix := "refused: "
			if req.Automatic {
				prefix = "automatic " + string(p.Kind) + " refused: "
			}
			m.observe(ActionEvent{Kind: ObsRefused, Plan: p.Kind, Origin: p.Origin, Server: p.OldMaster.String(), Message: prefix + p.Refused, Code: p.Code})
		}
		return p, nil, fmt.Errorf("%w: %s", ErrRefused, p.Refused)
	}
	if req.Automatic {
		m.lastRefusal = ""
	}
	var res Result
	if p.Kind == PlanReseed {
		// A reseed copies data for minutes: monitoring goes on meanwhile (enforcement stays
		// paused); its steps use connections of their own; a failover may cancel it.
		m.tickMu.Unlock()
		rctx, cancel := context.WithCancel(ctx)
		m.setRunningCancel(cancel)
		res = m.execute(rctx, p)
		cancel()
	} else {
		res = m.execute(ctx, p)
		m.tickMu.Unlock()
	}
	m.Tick(ctx) // publish the new topology at once
	if res.Err != "" {
		return p, &res, errors.New(res.Err)
	}
	return p, &res, nil
}

// observe feeds an observation to the event log and to the fleet's observers (metrics).
func (m *Monitor) observe(a ActionEvent) {
	a.Cluster = m.cfg.Cluster
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	m.addEvent(eventFor(a))
	if f := m.observer.Load(); f != nil {
		(*f)(a)
	}
}

// SetObserver sets the function every typed observation of this cluster is sent to.
func (m *Monitor) SetObserver(f func(ActionEvent)) {
	if f == nil {
		m.observer.Store(nil)
		return
	}
	m.observer.Store(&f)
}
