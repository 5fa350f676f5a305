package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"replication-manager-pro/cluster"
	"replication-manager-pro/topology"
)

// metrics is a Prometheus collector reading the fleet's snapshots at scrape time (nothing
// runs between scrapes), plus counters and a histogram fed by the typed observations of the
// clusters' action path: plans, refusals and step durations, whoever asked.
type metrics struct {
	s   *Server
	reg *prometheus.Registry

	state, up, lag, latency, failCount             *prometheus.Desc
	failable, down, allUp, problems, failoverCount *prometheus.Desc

	plans    *prometheus.CounterVec
	steps    *prometheus.HistogramVec
	refusals *prometheus.CounterVec
}

// States exported by replication_manager_server_state, one series per state.
var metricStates = []topology.State{
	topology.StateMaster, topology.StateSlave, topology.StateSlaveErr, topology.StateSlaveLate,
	topology.StateRelay, topology.StateRelayErr, topology.StateRelayLate, topology.StateSuspect,
	topology.StateFailed, topology.StateStandAlone, topology.StateMaintenance, topology.StateErrorAuth,
}

func newMetrics(s *Server) *metrics {
	srv := []string{"cluster", "server"}
	m := &metrics{
		s:         s,
		reg:       prometheus.NewRegistry(),
		state:     prometheus.NewDesc("replication_manager_server_state", "1 for the server's current monitoring state, 0 for the others.", []string{"cluster", "server", "state"}, nil),
		up:        prometheus.NewDesc("replication_manager_server_up", "1 when the last probe of the server succeeded.", srv, nil),
		lag:       prometheus.NewDesc("replication_manager_server_replication_lag_seconds", "Seconds_Behind_Master of the server's replication channel (absent when NULL).", srv, nil),
		latency:   prometheus.NewDesc("replication_manager_server_probe_latency_seconds", "Duration of the server's last probe.", srv, nil),
		failCount: prometheus.NewDesc("replication_manager_server_fail_count", "Consecutive failed probes.", srv, nil),
		failable:  prometheus.NewDesc("replication_manager_cluster_failable", "1 when no problem blocks a failover.", []string{"cluster"}, nil),
		down:      prometheus.NewDesc("replication_manager_cluster_down", "1 when every server is down.", []string{"cluster"}, nil),
		allUp:     prometheus.NewDesc("replication_manager_cluster_all_db_up", "1 when every server is up.", []string{"cluster"}, nil),
		problems:  prometheus.NewDesc("replication_manager_cluster_problems", "Problems of the last analysis by code and severity.", []string{"cluster", "code", "severity"}, nil),
		failoverCount: prometheus.NewDesc("replication_manager_cluster_failover_counter",
			"Failovers counted against failover-limit (reset by reset-failover-control).", []string{"cluster"}, nil),
		plans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replication_manager_plans_total",
			Help: "Plans executed (failover, switchover, rejoin, repoint, bootstrap, cleanup) by result (ok, error), since the daemon started.",
		}, []string{"cluster", "kind", "result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replication_manager_plans_refused_total",
			Help: "Actions refused (preconditions, another action running), by kind, since the daemon started.",
		}, []string{"cluster", "kind"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "replication_manager_plan_step_duration_seconds",
			Help:    "Duration of each plan step.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"cluster", "kind", "step"}),
	}
	m.reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.opt.Fleet.Observe(m.observe)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Describe sends the descriptors of the snapshot metrics and of the event-fed vectors.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.state, m.up, m.lag, m.latency, m.failCount, m.failable, m.down, m.allUp, m.problems, m.failoverCount} {
		ch <- d
	}
	m.plans.Describe(ch)
	m.steps.Describe(ch)
	m.refusals.Describe(ch)
	ch <- leadershipChanges
	ch <- leading
	ch <- heartbeatLag
}

var (
	leadershipChanges = prometheus.NewDesc("replication_manager_leadership_changes_total",
		"Cluster leaderships this manager took or lost since it started (several managers on etcd).", nil, nil)
	heartbeatLag = prometheus.NewDesc("replication_manager_server_heartbeat_lag_seconds",
		"Replica lag measured by the heartbeat the manager writes on the master (monitoring-write-heartbeat).", []string{"cluster", "server"}, nil)
	leading = prometheus.NewDesc("replication_manager_cluster_leading",
		"1 when this manager leads the cluster (always 1 for a lone manager).", []string{"cluster"}, nil)
)

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect reads each member's latest snapshot and the events recorded since the last scrape.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	if m.s.opt.HA != nil {
		ch <- prometheus.MustNewConstMetric(leadershipChanges, prometheus.CounterValue, float64(m.s.opt.HA.Changes()))
	}
	for _, mem := range m.s.opt.Fleet.Members() {
		name := mem.Name
		ch <- prometheus.MustNewConstMetric(leading, prometheus.GaugeValue, b2f(mem.Monitor.Leading()), name)
		ch <- prometheus.MustNewConstMetric(m.failoverCount, prometheus.GaugeValue, float64(mem.Monitor.History().Count), name)
		for _, kind := range []string{"failover", "switchover"} {
			m.plans.WithLabelValues(name, kind, "ok") // a zero series from the start
		}
		snap := mem.Monitor.Snapshot()
		if snap == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(m.failable, prometheus.GaugeValue, b2f(snap.IsFailable), name)
		ch <- prometheus.MustNewConstMetric(m.down, prometheus.GaugeValue, b2f(snap.IsDown), name)
		ch <- prometheus.MustNewConstMetric(m.allUp, prometheus.GaugeValue, b2f(snap.IsAllDBUp), name)
		counts := map[[2]string]int{}
		for _, p := range snap.Problems {
			counts[[2]string{string(p.Code), string(p.Severity)}]++
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(m.problems, prometheus.GaugeValue, float64(n), name, k[0], k[1])
		}
		for i := range snap.Servers {
			srv := &snap.Servers[i]
			addr := srv.Addr.String()
			for _, st := range metricStates {
				ch <- prometheus.MustNewConstMetric(m.state, prometheus.GaugeValue, b2f(srv.State == st), name, addr, string(st))
			}
			ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, b2f(srv.Reachable), name, addr)
			ch <- prometheus.MustNewConstMetric(m.latency, prometheus.GaugeValue, srv.ProbeLatency.Seconds(), name, addr)
			ch <- prometheus.MustNewConstMetric(m.failCount, prometheus.GaugeValue, float64(srv.FailCount), name, addr)
			if r, ok := srv.PrimaryReplication(); ok && r.Lag != nil {
				ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(*r.Lag), name, addr)
			}
			if hl, ok := mem.Monitor.HeartbeatLag(srv.Addr); ok && srv.IsReplica() {
				ch <- prometheus.MustNewConstMetric(heartbeatLag, prometheus.GaugeValue, hl.Lag.Seconds(), name, addr)
			}
		}
	}
	m.plans.Collect(ch)
	m.steps.Collect(ch)
	m.refusals.Collect(ch)
}

// forget deletes the series of a cluster that no longer runs (the snapshot metrics go
// with its member; the counters and the histogram would stay forever).
func (m *metrics) forget(cluster string) {
	l := prometheus.Labels{"cluster": cluster}
	m.plans.DeletePartialMatch(l)
	m.steps.DeletePartialMatch(l)
	m.refusals.DeletePartialMatch(l)
}

// observe feeds the counters and the histogram with the typed observations of the
// clusters' action path.
func (m *metrics) observe(a cluster.ActionEvent) {
	switch a.Kind {
	case cluster.ObsPlanDone:
		result := "ok"
		if a.Error != "" {
			result = "error"
		}
		m.plans.WithLabelValues(a.Cluster, string(a.Plan), result).Inc()
	case cluster.ObsStepDone:
		m.steps.WithLabelValues(a.Cluster, string(a.Plan), string(a.Step)).Observe(a.Duration.Seconds())
	case cluster.ObsRefused:
		m.refusals.WithLabelValues(a.Cluster, string(a.Plan)).Inc()
	}
}
