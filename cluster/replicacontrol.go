package cluster

import (
	"context"
	"fmt"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// An operator's hand on one replica's replication (the original's stop-slave, start-slave
// and skip-replication-event): plans of one step, through the one action path, so that
// they never run beside a failover or a switchover and are recorded like them.
const (
	PlanStopReplica  PlanKind = "stop-replica"
	PlanStartReplica PlanKind = "start-replica"
	PlanSkipEvent    PlanKind = "skip-replication-event"

	StepStopReplication  StepKind = "stop-replication"  // STOP SLAVE of the replica's channel
	StepStartReplication StepKind = "start-replication" // START SLAVE of the replica's channel
	StepSkipEvent        StepKind = "skip-event"        // the SQL thread skips the event group it stopped on, then runs again
)

// DecideReplicaControl decides one of the three on the replica at target. A skip needs an
// SQL thread stopped on an error: skipping a transaction a healthy replica was about to
// apply would lose it silently, so force is needed for that. Pure.
func DecideReplicaControl(s *topology.Snapshot, kind PlanKind, target ipv6.HostPort, force bool) Plan {
	p := Plan{Kind: kind, Cluster: s.Cluster, OldMaster: target}
	srv, ok := s.Find(target)
	switch {
	case !ok:
		return refusal(p, RefuseUnknownServer, "%s is not a server of the cluster", target)
	case !srv.Reachable:
		return refusal(p, RefuseUnknownServer, "%s does not answer", target)
	case !srv.IsReplica():
		return refusal(p, RefuseNothingToDo, "%s replicates from nobody", target)
	}
	r, _ := srv.PrimaryReplication()
	st := Step{Server: target}
	if r.Channel != "" {
		st.Channels = []string{r.Channel}
	}
	switch kind {
	case PlanStopReplica:
		if r.IO == topology.ThreadNo && r.SQL == topology.ThreadNo {
			return refusal(p, RefuseNothingToDo, "replication of %s is stopped already", target)
		}
		st.Kind, st.Detail = StepStopReplication, "stop replicating from "+r.Source.String()
	case PlanStartReplica:
		if r.Healthy() {
			return refusal(p, RefuseNothingToDo, "replication of %s runs already", target)
		}
		st.Kind, st.Detail = StepStartReplication, "replicate from "+r.Source.String()+" again"
	case PlanSkipEvent:
		switch {
		case r.SQL == topology.ThreadYes:
			return refusal(p, RefuseNothingToDo, "the SQL thread of %s runs: there is no stopped event to skip", target)
		case r.LastSQLError == "" && !force:
			return refusal(p, RefuseNothingToDo, "the SQL thread of %s stopped without an error: skipping would drop a healthy transaction (force=true to skip it anyway)", target)
		}
		st.Kind, st.Detail = StepSkipEvent, fmt.Sprintf("skip the event group the SQL thread stopped on (error %d: %s), then run again", r.LastSQLErrno, r.LastSQLError)
	default:
		return refusal(p, RefuseUnsupportedKind, "unknown action %q", kind)
	}
	p.Steps = []Step{st}
	return p
}

func isReplicaControlStep(k StepKind) bool {
	return k == StepStopReplication || k == StepStartReplication || k == StepSkipEvent
}

// replicaControlStep runs a step of DecideReplicaControl's plans. Each looks first, so
// that a step run again (a resumed plan) does nothing twice: above all, a second skip would
// drop a transaction nobody chose.
func (x *Executor) replicaControlStep(ctx context.Context, st Step) (skipped string, err error) {
	s, err := x.server(st.Server)
	if err != nil {
		return "", err
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	channel := ""
	if len(st.Channels) > 0 {
		channel = st.Channels[0]
	}
	status, err := s.Probe(ctx)
	if err != nil {
		return "", errAbort{err}
	}
	r, ok := status.Replication(channel)
	if !ok {
		return "", errAbort{fmt.Errorf("%s has no replication connection %q", st.Server, channel)}
	}
	running := func(t string) bool { return t == "Yes" || t == "Connecting" }
	switch st.Kind {
	case StepStopReplication:
		if !running(string(r.SlaveIORunning)) && !running(string(r.SlaveSQLRunning)) {
			return "stopped already", nil
		}
		return "", s.StopReplica(ctx, channel)
	case StepStartReplication:
		if running(string(r.SlaveIORunning)) && running(string(r.SlaveSQLRunning)) {
			return "running already", nil
		}
		return "", s.StartReplica(ctx, channel)
	case StepSkipEvent:
		if running(string(r.SlaveSQLRunning)) {
			return "the SQL thread runs: nothing left to skip", nil
		}
		return "", s.SkipReplicationEvent(ctx, channel)
	}
	return "", fmt.Errorf("unknown step %q", st.Kind)
}
