package api

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"replication-manager-pro/cluster"
)

// Plan timelines: each topology change (failover, switchover, rejoin...) as the steps it
// ran, when each started and how long it took, for the UI's timeline view. They are built
// from the typed observations of the action path (cluster.ActionEvent), never from event
// text, and kept in memory: the last timelinesPerCluster plans of each cluster.

const timelinesPerCluster = 20

// PlanTimeline is one plan as it ran.
type PlanTimeline struct {
	ID         int64          `json:"id"` // increasing over the daemon's life
	Cluster    string         `json:"cluster"`
	Kind       string         `json:"kind"`   // failover, switchover, rejoin, ...
	Origin     string         `json:"origin"` // api, cli, monitor, resume
	Message    string         `json:"message"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end,omitzero"` // zero while it runs
	Duration   time.Duration  `json:"durationNs"`
	Running    bool           `json:"running"`
	Error      string         `json:"error,omitempty"`
	Promoted   bool           `json:"promoted"`
	RolledBack bool           `json:"rolledBack"`
	Resumed    bool           `json:"resumed"` // finished by a restarted or new leading manager
	Steps      []TimelineStep `json:"steps"`
}

// TimelineStep is one step of a plan: it ended at End after Duration (steps of one group,
// such as repointing the replicas, run at once and overlap).
type TimelineStep struct {
	Step     string        `json:"step"`
	Server   string        `json:"server,omitempty"`
	Message  string        `json:"message"`
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	Offset   time.Duration `json:"offsetNs"` // Start - the plan's start
	Duration time.Duration `json:"durationNs"`
	Error    string        `json:"error,omitempty"`
}

type planTimelines struct {
	mu      sync.Mutex
	next    int64
	version uint64                     // bumped on every change: streams poll it
	by      map[string][]*PlanTimeline // lower-case cluster name -> oldest first
	resumed map[string]bool            // a plan-resumed observation precedes the plan's start
}

func newPlanTimelines() *planTimelines {
	return &planTimelines{by: map[string][]*PlanTimeline{}, resumed: map[string]bool{}}
}

// observe is a cluster.Fleet observer.
func (p *planTimelines) observe(a cluster.ActionEvent) {
	key := strings.ToLower(a.Cluster)
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.by[key]
	var cur *PlanTimeline
	if n := len(list); n > 0 && list[n-1].Running {
		cur = list[n-1]
	}
	switch a.Kind {
	case cluster.ObsResumed:
		p.resumed[key] = true
		return
	case cluster.ObsPlanStarted:
		if cur != nil { // the previous plan never said it ended (the process stopped it)
			cur.Running = false
			if cur.Error == "" {
				cur.Error = "interrupted"
			}
		}
		p.next++
		cur = &PlanTimeline{ID: p.next, Cluster: a.Cluster, Kind: string(a.Plan), Origin: a.Origin, Message: a.Message,
			Start: a.Time, Running: true, Resumed: p.resumed[key], Steps: []TimelineStep{}}
		delete(p.resumed, key)
		list = append(list, cur)
		if len(list) > timelinesPerCluster {
			list = append([]*PlanTimeline(nil), list[len(list)-timelinesPerCluster:]...)
		}
		p.by[key] = list
	case cluster.ObsStepDone:
		if cur == nil {
			return
		}
		start := a.Time.Add(-a.Duration)
		cur.Steps = append(cur.Steps, TimelineStep{Step: string(a.Step), Server: a.Server, Message: a.Message,
			Start: start, End: a.Time, Offset: start.Sub(cur.Start), Duration: a.Duration, Error: a.Error})
	case cluster.ObsRolledBack:
		if cur != nil {
			cur.RolledBack = true
		}
	case cluster.ObsPlanDone:
		if cur == nil {
			return
		}
		cur.Running, cur.End, cur.Duration = false, a.Time, a.Duration
		cur.Error, cur.Promoted = a.Error, a.Promoted
		cur.RolledBack = cur.RolledBack || a.RolledBack
	default:
		return
	}
	p.version++
}

// list returns copies of a cluster's timelines, newest first.
func (p *planTimelines) list(clusterName string) []PlanTimeline {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.by[strings.ToLower(clusterName)]
	out := make([]PlanTimeline, 0, len(l))
	for i := len(l) - 1; i >= 0; i-- {
		t := *l[i]
		t.Steps = append([]TimelineStep(nil), t.Steps...)
		if t.Running {
			t.Duration = time.Since(t.Start)
		}
		out = append(out, t)
	}
	return out
}

func (p *planTimelines) changes() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.version
}

// forget drops the timelines of clusters that no longer run.
func (p *planTimelines) forget(live func(string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.by {
		if !live(k) {
			delete(p.by, k)
		}
	}
}

// handlePlans answers GET /api/clusters/{c}/plans: the cluster's last plans with their
// steps, newest first.
func (s *Server) handlePlans(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	s.plans.forget(func(k string) bool { _, ok := s.opt.Fleet.Get(k); return ok })
	writeJSON(w, http.StatusOK, s.plans.list(rc.member.Name))
}
