package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/orchestrator/slapos"
)

// TestOrchestratorPerCluster: the fleet's factory builds each cluster's orchestrator once,
// with its monitor; the services find it by cluster; a settings reload builds a new one and
// the old one is forgotten when its monitor stops; a bad configuration refuses the cluster
// with the key in the error; an unimplemented prov-orchestrator leaves the cluster monitored
// without an orchestrator.
func TestOrchestratorPerCluster(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	orchs := newOrchestrators(log)
	fleet := cluster.NewFleet(t.Context(), monitorFactory(nil, log, orchs, nil), log)
	t.Cleanup(fleet.StopAll)
	svc := services{fleet: fleet, orchs: orchs}

	settings := func(orch string) config.Settings {
		s := config.Defaults()
		s.MonitoringDatadir = t.TempDir()
		s.ProvOrchestrator = orch
		s.DBServersHosts = "127.0.0.1:1,[::1]:2"
		s.DBServersConnectTimeout = 1
		return s
	}
	if err := fleet.Start(config.Cluster{Name: "c1", Settings: settings("onpremise")}); err != nil {
		t.Fatal(err)
	}
	m1, _ := fleet.Get("c1")
	o1, err := orchs.of(m1)
	if err != nil || o1.Name() != "onpremise" {
		t.Fatalf("orchestrator of c1: %v, %v", o1, err)
	}
	// The address may be written in another form; onpremise cannot start anything.
	ctx := context.Background()
	if err := svc.StartDatabase(ctx, "C1", ipv6.HostPort{Host: "0:0:0:0:0:0:0:1", Port: 2}); !errors.Is(err, orchestrator.ErrNotSupported) {
		t.Fatalf("start on premise: %v", err)
	}
	if err := svc.StartDatabase(ctx, "c1", ipv6.HostPort{Host: "::1", Port: 3}); !errors.Is(err, orchestrator.ErrUnknownNode) {
		t.Fatalf("start of an unknown server: %v", err)
	}
	if _, ok := svc.SlapOSCluster("c1"); ok {
		t.Fatal("an onpremise cluster served to the SlapOS agents")
	}
	if !svc.provisioned(log)(m1) {
		t.Fatal("onpremise not provisioned")
	}

	// Reload with the slapos orchestrator: a new instance, the old one forgotten.
	if err := fleet.Reload(config.Cluster{Name: "c1", Settings: settings("slapos")}); err != nil {
		t.Fatal(err)
	}
	m2, _ := fleet.Get("c1")
	o2, err := orchs.of(m2)
	if err != nil || o2 == o1 || o2.Name() != "slapos" {
		t.Fatalf("after reload: %v, %v", o2, err)
	}
	if _, err := orchs.of(m1); err == nil {
		t.Fatal("the old monitor's orchestrator is still kept")
	}
	if sc, ok := svc.SlapOSCluster("c1"); !ok || sc.Orchestrator != o2 || sc.Config.Settings.ProvOrchestrator != "slapos" {
		t.Fatalf("SlapOS source: %+v %v", sc, ok)
	}
	if err := svc.StartDatabase(ctx, "c1", ipv6.HostPort{Host: "[::1]", Port: 2}); err != nil {
		t.Fatalf("slapos start: %v", err)
	}
	if n, _ := o2.(*slapos.Orchestrator).Node(ipv6.HostPort{Host: "::1", Port: 2}); !n.Has(slapos.CookieWaitStart) {
		t.Fatal("start did not publish cookie_waitstart")
	}

	// A configuration the orchestrator refuses: the reload fails naming the key, the
	// running monitor and its orchestrator stay.
	bad := settings("slapos")
	bad.SlapOSDBPartitions = "/a,/b,/c"
	err = fleet.Reload(config.Cluster{Name: "c1", Settings: bad})
	if err == nil || !strings.Contains(err.Error(), "cluster c1: prov-orchestrator slapos: slapos-db-partitions: ") {
		t.Fatalf("reload with a bad configuration: %v", err)
	}
	if m, _ := fleet.Get("c1"); m != m2 {
		t.Fatal("a failed reload replaced the monitor")
	}
	if o, err := orchs.of(m2); o != o2 || err != nil {
		t.Fatalf("a failed reload changed the orchestrator: %v %v", o, err)
	}

	// kube is accepted by the configuration but not implemented: monitored, no orchestrator.
	if err := fleet.Start(config.Cluster{Name: "c2", Settings: settings("kube")}); err != nil {
		t.Fatal(err)
	}
	m3, _ := fleet.Get("c2")
	if err := svc.StopDatabase(ctx, "c2", ipv6.HostPort{Host: "127.0.0.1", Port: 1}); !errors.Is(err, orchestrator.ErrUnknownOrchestrator) {
		t.Fatalf("stop without an orchestrator: %v", err)
	}
	if !svc.provisioned(log)(m3) {
		t.Fatal("a cluster without an orchestrator counts as not provisioned")
	}
	fleet.StopAll()
	orchs.mu.RLock()
	defer orchs.mu.RUnlock()
	if len(orchs.byMonitor) != 0 || len(orchs.latest) != 0 {
		t.Fatalf("orchestrators kept after every monitor stopped: %v %v", orchs.byMonitor, orchs.latest)
	}
}
