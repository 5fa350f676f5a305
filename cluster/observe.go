package cluster

import (
	"time"

	"replication-manager-pro/eventlog"
)

// ObsKind names a typed observation of the action path.
type ObsKind string

const (
	ObsPlanStarted ObsKind = "plan-started"
	ObsStepDone    ObsKind = "step-done"
	ObsPlanDone    ObsKind = "plan-done"
	ObsRefused     ObsKind = "plan-refused"
	ObsRolledBack  ObsKind = "plan-rolled-back"
	ObsResumed     ObsKind = "plan-resumed" // a restarted manager found an unfinished plan
	ObsDataLoss    ObsKind = "data-loss"    // a failover's new master lacks transactions the old one had
)

// ActionEvent is what the executor and the action path report: the event log and the
// Prometheus metrics are fed from these fields, never from message text.
type ActionEvent struct {
	Kind       ObsKind
	Cluster    string
	Plan       PlanKind
	Origin     string
	Step       StepKind // ObsStepDone
	Server     string
	Message    string
	Duration   time.Duration
	Error      string
	Code       RefusalCode // ObsRefused
	Promoted   bool        // ObsPlanDone: the new master took writes
	RolledBack bool        // ObsPlanDone
	Time       time.Time
}

// eventFor turns an observation into the event-log entry people read: plans under their
// kind ("failover"), steps under "<kind>-step".
func eventFor(a ActionEvent) eventlog.Event {
	e := eventlog.Event{Cluster: a.Cluster, Kind: string(a.Plan), Server: a.Server, Message: a.Message, Error: a.Error, Duration: a.Duration}
	switch a.Kind {
	case ObsStepDone:
		e.Kind = string(a.Plan) + "-step"
	case ObsRefused:
		e.Error = string(a.Code)
		if a.Error != "" {
			e.Error = a.Error
		}
	case ObsPlanStarted, ObsResumed, ObsRolledBack:
		e.Duration = 0
	case ObsDataLoss:
		e.Error = "DataLoss"
		if a.Error != "" {
			e.Error += ": " + a.Error
		}
	}
	if e.Kind == "" {
		e.Kind = string(a.Kind) // an observation outside any plan (a diverged former master)
	}
	return e
}
