package cluster

import (
	"testing"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// The heartbeat the monitor needs, derived from its own settings (force-slave-heartbeat).

func TestHeartbeatDerivedFromSettings(t *testing.T) {
	cases := []struct {
		name             string
		ticker           float64
		force            bool
		ceiling, timeout int
		period, silence  time.Duration
		enforced         bool
	}{
		{"0.2 s ticker", 0.2, true, 3, 3, 200 * time.Millisecond, 600 * time.Millisecond, true},
		{"default ticker: the silence is capped by the timeout key", 2, true, 3, 3, 2 * time.Second, 3 * time.Second, true},
		{"ceiling force-slave-heartbeat-time", 10, true, 3, 60, 3 * time.Second, 20 * time.Second, true},
		{"floor 50 ms", 0.05, true, 3, 3, 50 * time.Millisecond, 150 * time.Millisecond, true},
		{"no timeout key: no cap", 2, true, 3, 0, 2 * time.Second, 6 * time.Second, true},
		{"left alone", 0.2, false, 3, 3, 3 * time.Second, 3 * time.Second, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := &config.Cluster{Name: "c1", Settings: config.Defaults()}
			s := &cl.Settings
			s.DBServersHosts = "db1:3306,db2:3306"
			s.MonitoringTicker = c.ticker
			s.ForceSlaveHeartbeat = c.force
			s.ForceSlaveHeartbeatTime = c.ceiling
			s.FailoverFalsePositiveHeartbeatTimeout = c.timeout
			mc, err := MonitorConfigFrom(cl)
			if err != nil {
				t.Fatal(err)
			}
			wantEnforced := time.Duration(0)
			if c.enforced {
				wantEnforced = c.period
			}
			if mc.HeartbeatPeriod != wantEnforced || mc.HeartbeatTimeout != c.silence || mc.Failover.Exec.HeartbeatPeriod != c.period {
				t.Fatalf("enforced %v silence %v repoint period %v; want %v %v %v",
					mc.HeartbeatPeriod, mc.HeartbeatTimeout, mc.Failover.Exec.HeartbeatPeriod, wantEnforced, c.silence, c.period)
			}
		})
	}
}

func TestSlowHeartbeatReportedAndCorrected(t *testing.T) {
	period := func(p float64) obsOpt { return func(o *Observation) { o.Facts.Replications[0].HeartbeatPeriod = p } }
	s := discoverSeq(t, []Observation{
		obs("db1", 1, pos("0-1-10")),
		obs("db2", 2, healthyReplicaOf("db1"), period(30)),                                 // MariaDB's default
		obs("db3", 3, healthyReplicaOf("db1"), period(0.2)),                                // already right
		obs("db4", 4, replicaOf("db1", topology.ThreadNo, topology.ThreadYes), period(30)), // not replicating: left alone
	})
	opt := AnalyzeOptions{MaxLag: 30, HeartbeatPeriod: 200 * time.Millisecond}
	s.Problems = Analyze(s, opt)
	var slow []string
	for _, p := range s.Problems {
		if p.Code == topology.SlowHeartbeat {
			slow = append(slow, p.Server)
		}
	}
	if len(slow) != 1 || slow[0] != "db2:3306" {
		t.Fatalf("SlowHeartbeat on %v, want db2 only: %s", slow, codes(s.Problems))
	}
	recs := Recoveries(s, RecoveryOptions{})
	found := false
	for _, r := range recs {
		found = found || (r.Kind == RecoverHeartbeat && r.Server.String() == "db2:3306")
	}
	if !found {
		t.Fatalf("no heartbeat correction: %+v", recs)
	}
	if recs := Recoveries(s, RecoveryOptions{Paused: true}); len(recs) != 0 {
		t.Fatalf("corrections while a plan runs: %+v", recs)
	}
	// force-slave-heartbeat = false: nothing reported.
	s.Problems = Analyze(s, AnalyzeOptions{MaxLag: 30})
	if hasProblem(s, topology.SlowHeartbeat) {
		t.Fatalf("SlowHeartbeat without enforcement: %s", codes(s.Problems))
	}
}

func TestReturningFormerMasterIsFencedOnce(t *testing.T) {
	// db1 was replaced by db2; it answers again, writable and not replicating.
	s := discoverSeq(t, []Observation{
		obs("db1", 1, pos("0-1-100"), writable),
		obs("db2", 2, pos("0-1-100"), writable),
		obs("db3", 3, healthyReplicaOf("db2"), pos("0-1-100")),
	})
	s.Problems = Analyze(s, AnalyzeOptions{MaxLag: 30, FormerMasters: map[ipv6.HostPort]gtid.List{addr("db1"): gtid.MustParse("0-1-100")}})
	kindFor := func(o RecoveryOptions) RecoveryKind {
		for _, r := range Recoveries(s, o) {
			if r.Server.String() == "db1:3306" {
				return r.Kind
			}
		}
		return RecoverNone
	}
	if k := kindFor(RecoveryOptions{AutoRejoin: true}); k != RecoverFence {
		t.Fatalf("returning former master: %q, want fence first (%s)", k, codes(s.Problems))
	}
	fenced := RecoveryOptions{AutoRejoin: true, Fenced: map[ipv6.HostPort]bool{addr("db1"): true}}
	if k := kindFor(fenced); k != RecoverRejoin {
		t.Fatalf("fenced former master: %q, want rejoin", k)
	}
}
