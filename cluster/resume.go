package cluster

import (
	"context"
	"fmt"
	"time"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Resume finishes or rolls back the plan a previous manager left unfinished in the journal,
// before the monitor does anything else. A failover or switchover whose new master was
// promoted is finished (routers, old master, replicas follow the new master); one stopped
// before the promotion is rolled back (switchover: the old master writable again) or decided
// again (failover); the other plans, whose steps can all be repeated, run their unfinished
// steps. The event log says which.
func (m *Monitor) Resume(ctx context.Context) {
	rec, ok, err := m.journal.Load()
	if err != nil {
		m.log.WithError(err).Error("unfinished plan unreadable: left for an operator")
		m.addEvent(eventFor(ActionEvent{Kind: ObsResumed, Cluster: m.cfg.Cluster, Message: "unfinished plan unreadable", Error: err.Error()}))
		return
	}
	if !ok {
		return
	}
	p := rec.Plan
	p.Origin = "resume"
	release, err := m.acquire(ctx, ActionRequest{Kind: p.Kind, Origin: "resume"})
	if err != nil {
		return // cannot happen before Run: nothing else acts yet
	}
	defer release()
	m.tickMu.Lock()
	m.paused.Store(true)
	snap := m.waitForServers(ctx, p)
	x := m.executor()
	var msg string
	var res Result
	switch {
	case (p.Kind == PlanFailover || p.Kind == PlanSwitchover) && (rec.Promoted || looksPromoted(snap, p)):
		cp := DecideCompletion(snap, p)
		if rec.Promoted {
			x.OnPromoted = nil // already counted and recorded before the crash
		}
		msg = fmt.Sprintf("resuming %s: %s was promoted, finishing (%d steps)", p.Kind, p.NewMaster, len(cp.Steps))
		m.observe(ActionEvent{Kind: ObsResumed, Plan: p.Kind, Origin: p.Origin, Server: p.NewMaster.String(), Message: msg})
		x.Journal.resumeFrom(JournalRecord{Plan: cp, Started: time.Now(), Promoted: rec.Promoted, State: rec.State})
		res = x.Resume(ctx, cp, nil, rec.State)
	case p.Kind == PlanSwitchover:
		msg = fmt.Sprintf("rolling back switchover from %s to %s: stopped before the promotion", p.OldMaster, p.NewMaster)
		m.observe(ActionEvent{Kind: ObsResumed, Plan: p.Kind, Origin: p.Origin, Server: p.OldMaster.String(), Message: msg})
		res = x.rollbackUnpromoted(ctx, p)
		m.journal.Clear()
	case p.Kind == PlanFailover:
		np := DecideFailover(snap, m.History(), m.planOptions(false, false))
		np.Origin = p.Origin
		if np.Refused != "" {
			msg = "unfinished failover not resumed: " + np.Refused + np.Election.Excluded()
			m.observe(ActionEvent{Kind: ObsResumed, Plan: p.Kind, Origin: p.Origin, Message: msg, Error: string(np.Code)})
			m.journal.Clear()
			break
		}
		msg = fmt.Sprintf("resuming failover: stopped before the promotion, decided again: %s", np.NewMaster)
		m.observe(ActionEvent{Kind: ObsResumed, Plan: p.Kind, Origin: p.Origin, Server: np.NewMaster.String(), Message: msg})
		res = x.Run(ctx, np)
		p = np
	default:
		done := map[int]bool{}
		for _, i := range rec.Done {
			done[i] = true
		}
		msg = fmt.Sprintf("resuming %s: %d of %d steps were done", p.Kind, len(done), len(p.Steps))
		m.observe(ActionEvent{Kind: ObsResumed, Plan: p.Kind, Origin: p.Origin, Message: msg})
		x.Journal.resumeFrom(rec)
		res = x.Resume(ctx, p, done, rec.State)
	}
	m.afterPlan(p, res)
	m.log.WithField("plan", p.Kind).Warn(msg)
	m.paused.Store(false)
	m.tickMu.Unlock()
	m.Tick(ctx)
}

// waitForServers probes until every server a plan touches answers, or 3 s pass: a resume
// decided on a server that merely restarts too would be wrong. tickMu is held.
func (m *Monitor) waitForServers(ctx context.Context, p Plan) *topology.Snapshot {
	need := []ipv6.HostPort{p.NewMaster}
	for _, st := range p.Steps {
		if st.Server.Host != "" && (p.Kind != PlanFailover || !ipv6.SameAddr(st.Server, p.OldMaster)) {
			need = append(need, st.Server)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		snap := m.tickLocked(ctx)
		all := true
		for _, a := range need {
			if a.Host == "" {
				continue
			}
			if srv, ok := snap.Find(a); !ok || !srv.Reachable {
				all = false
			}
		}
		if all || time.Now().After(deadline) || ctx.Err() != nil {
			return snap
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// looksPromoted reports a new master that no longer replicates from the old one: the
// promotion's reset ran, so finishing is the way forward.
func looksPromoted(s *topology.Snapshot, p Plan) bool {
	srv, ok := s.Find(p.NewMaster)
	if !ok || !srv.Reachable {
		return false
	}
	for _, r := range srv.Replications {
		if ipv6.SameAddr(r.Source, p.OldMaster) {
			return false
		}
	}
	return true
}

// DecideCompletion finishes a failover or switchover whose new master was promoted: promote
// again (idempotent), tell the routers, bring the old master back as a replica when it
// answers (a switchover's: it was frozen read-only), repoint every other live server. Pure.
func DecideCompletion(s *topology.Snapshot, p Plan) Plan {
	cp := Plan{Kind: p.Kind, Cluster: p.Cluster, OldMaster: p.OldMaster, NewMaster: p.NewMaster, Election: p.Election, Origin: p.Origin}
	cp.Steps = []Step{
		{Kind: StepPromote, Server: p.NewMaster, Detail: "stop and reset replication, read_only off"},
		{Kind: StepNotifyRouters, Server: p.NewMaster},
	}
	for i := range s.Servers {
		srv := &s.Servers[i]
		if !srv.Reachable || ipv6.SameAddr(srv.Addr, p.NewMaster) {
			continue
		}
		if ipv6.SameAddr(srv.Addr, p.OldMaster) {
			if p.Kind == PlanSwitchover {
				cp.Steps = append(cp.Steps, Step{Kind: StepRejoin, Server: srv.Addr, Detail: "the frozen old master replicates from the new one"})
			}
			continue // a failover's old master rejoins through the former-master rules
		}
		cp.Steps = append(cp.Steps, Step{Kind: StepRepointReplica, Server: srv.Addr})
	}
	cp.Steps = append(cp.Steps, Step{Kind: StepRecordCrash})
	return cp
}
