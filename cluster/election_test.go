package cluster

import (
	"strings"
	"testing"

	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

func ioPos(p string) obsOpt {
	return func(o *Observation) { o.Facts.Replications[0].IOPos = gtid.MustParse(p) }
}
func logSlaveUpdates(on bool) obsOpt { return func(o *Observation) { o.Facts.LogSlaveUpdates = on } }
func semiSync(o *Observation)        { o.Facts.SemiSyncReplica = true }

// replica builds a healthy, promotable replica of db1 at a position.
func replica(a string, id uint32, p string, opts ...obsOpt) Observation {
	base := []obsOpt{healthyReplicaOf("db1"), pos(p), ioPos(p), logSlaveUpdates(true)}
	return obs(a, id, append(base, opts...)...)
}

func deadMasterSnapshot(t *testing.T, replicas ...Observation) *topology.Snapshot {
	t.Helper()
	up := append([]Observation{obs("db1", 1, pos("0-1-100"))}, replicas...)
	downRound := func() []Observation {
		r := make([]Observation, len(up))
		copy(r, up)
		r[0] = obs("db1", 1, down)
		for i := 1; i < len(r); i++ {
			if !r[i].Reachable {
				continue
			}
			f := r[i].Facts
			f.Replications = append([]topology.Replication(nil), f.Replications...)
			f.Replications[0].IO = topology.ThreadConnecting
			f.Replications[0].Lag = nil
			r[i].Facts = f
		}
		return r
	}
	return discoverSeq(t, up, downRound(), downRound(), downRound())
}

func electionSummary(e Election, s *topology.Snapshot) string {
	w := "none"
	if a, ok := e.WinnerAddr(s); ok {
		w = a.String()
	}
	return w
}

func reasonsOf(e Election, server string) string {
	for _, c := range e.Candidates {
		if c.Server.String() == server {
			return strings.Join(c.Reasons, "; ")
		}
	}
	return "?"
}

func TestElectFailover(t *testing.T) {
	failover := ElectOptions{Mode: ElectFailover, CheckReplication: true, MaxLag: 30}
	cases := []struct {
		name     string
		replicas []Observation
		opt      func(*ElectOptions)
		winner   string
		excluded map[string]string // server -> substring of its reasons
	}{
		{
			name:     "most advanced by received position wins",
			replicas: []Observation{replica("db2", 2, "0-1-90", ioPos("0-1-99")), replica("db3", 3, "0-1-95", ioPos("0-1-96"))},
			winner:   "db2:3306",
		},
		{
			name:     "preferred breaks a tie",
			replicas: []Observation{replica("db2", 2, "0-1-99"), replica("db3", 3, "0-1-99")},
			opt:      func(o *ElectOptions) { o.Preferred = map[ipv6.HostPort]bool{addr("db3"): true} },
			winner:   "db3:3306",
		},
		{
			name:     "preferred but behind loses in a failover: no received transaction is thrown away",
			replicas: []Observation{replica("db2", 2, "0-1-99"), replica("db3", 3, "0-1-97")},
			opt:      func(o *ElectOptions) { o.Preferred = map[ipv6.HostPort]bool{addr("db3"): true} },
			winner:   "db2:3306",
		},
		{
			name:     "semi-sync replica wins a tie",
			replicas: []Observation{replica("db2", 2, "0-1-99"), replica("db3", 3, "0-1-99", semiSync)},
			winner:   "db3:3306",
		},
		{
			name:     "lagging replica is not elected",
			replicas: []Observation{replica("db2", 2, "0-1-99", lag(45)), replica("db3", 3, "0-1-80")},
			winner:   "db3:3306",
			excluded: map[string]string{"db2:3306": "lag 45 s exceeds failover-max-slave-delay 30 s"},
		},
		{
			name:     "lag check disabled with a negative limit",
			replicas: []Observation{replica("db2", 2, "0-1-99", lag(45)), replica("db3", 3, "0-1-80")},
			opt:      func(o *ElectOptions) { o.MaxLag = -1 },
			winner:   "db2:3306",
		},
		{
			name:     "errant GTID is not elected",
			replicas: []Observation{replica("db2", 2, "0-2-101", ioPos("0-1-100")), replica("db3", 3, "0-1-98")},
			winner:   "db3:3306",
			excluded: map[string]string{"db2:3306": "errant GTID 0-2-101"},
		},
		{
			name:     "ignored host is not elected",
			replicas: []Observation{replica("db2", 2, "0-1-99"), replica("db3", 3, "0-1-98")},
			opt:      func(o *ElectOptions) { o.Ignored = map[ipv6.HostPort]bool{addr("db2"): true} },
			winner:   "db3:3306",
			excluded: map[string]string{"db2:3306": "ignored"},
		},
		{
			name:     "stopped SQL thread cannot apply its relay log",
			replicas: []Observation{replica("db2", 2, "0-1-99", sqlError(1062, "dup")), replica("db3", 3, "0-1-98")},
			winner:   "db3:3306",
			excluded: map[string]string{"db2:3306": "SQL thread No"},
		},
		{
			name:     "no binary log, no log_slave_updates",
			replicas: []Observation{replica("db2", 2, "0-1-99", noBinlog), replica("db3", 3, "0-1-99", logSlaveUpdates(false)), replica("db4", 4, "0-1-90")},
			winner:   "db4:3306",
			excluded: map[string]string{"db2:3306": "binary log disabled", "db3:3306": "log_slave_updates=OFF"},
		},
		{
			name:     "unreachable replica",
			replicas: []Observation{replica("db2", 2, "0-1-99", down), replica("db3", 3, "0-1-90")},
			winner:   "db3:3306",
			excluded: map[string]string{"db2:3306": "unreachable"},
		},
		{
			name:     "nobody eligible",
			replicas: []Observation{replica("db2", 2, "0-1-99", lag(100)), replica("db3", 3, "0-1-90,1-3-5")},
			winner:   "none",
			excluded: map[string]string{"db2:3306": "lag", "db3:3306": "errant"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := deadMasterSnapshot(t, c.replicas...)
			opt := failover
			if c.opt != nil {
				c.opt(&opt)
			}
			e := Elect(snap, opt)
			if got := electionSummary(e, snap); got != c.winner {
				t.Fatalf("winner = %s, want %s (%s); candidates %+v", got, c.winner, e.Reason, e.Candidates)
			}
			for srv, want := range c.excluded {
				if r := reasonsOf(e, srv); !strings.Contains(r, want) {
					t.Errorf("%s reasons %q, want %q", srv, r, want)
				}
			}
			if e.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

func TestElectSwitchover(t *testing.T) {
	healthy := func(a string, id uint32, p string, opts ...obsOpt) Observation {
		return replica(a, id, p, opts...)
	}
	snapOf := func(rs ...Observation) *topology.Snapshot {
		return discoverSeq(t, append([]Observation{obs("db1", 1, pos("0-1-100"))}, rs...))
	}
	opt := ElectOptions{Mode: ElectSwitchover, CheckReplication: true, MaxLag: 30}

	s := snapOf(healthy("db2", 2, "0-1-99"), healthy("db3", 3, "0-1-100"))
	if e := Elect(s, opt); electionSummary(e, s) != "db3:3306" {
		t.Fatalf("most advanced: %s", electionSummary(e, s))
	}
	pref := opt
	pref.Preferred = map[ipv6.HostPort]bool{addr("db2"): true}
	if e := Elect(s, pref); electionSummary(e, s) != "db2:3306" || !strings.Contains(e.Reason, "preferred") {
		t.Fatalf("preferred wins a switchover: %s (%s)", electionSummary(e, s), e.Reason)
	}
	target := opt
	tg := addr("db2")
	target.Target = &tg
	if e := Elect(s, target); electionSummary(e, s) != "db2:3306" || reasonsOf(e, "db3:3306") != "not the requested target" {
		t.Fatalf("target: %s", electionSummary(e, s))
	}
	equal := opt
	equal.AtEqualGTID = true
	if e := Elect(s, equal); electionSummary(e, s) != "db3:3306" || !strings.Contains(reasonsOf(e, "db2:3306"), "switchover-at-equal-gtid") {
		t.Fatalf("at equal gtid: %s %q", electionSummary(e, s), reasonsOf(e, "db2:3306"))
	}
	broken := snapOf(healthy("db2", 2, "0-1-99", sqlError(1, "x")), healthy("db3", 3, "0-1-90"))
	if e := Elect(broken, target); e.Winner != -1 || !strings.Contains(e.Reason, "target db2:3306 cannot be promoted") {
		t.Fatalf("broken target: %+v", e)
	}
	relay := discoverSeq(t, []Observation{obs("db1", 1, pos("0-1-100")), healthy("db2", 2, "0-1-100"), obs("db3", 3, healthyReplicaOf("db2"), pos("0-1-100"), logSlaveUpdates(true))})
	// In a tree every server is a candidate; the relay keeps its replica in place.
	if e := Elect(relay, opt); electionSummary(e, relay) != "db2:3306" || reasonsOf(e, "db3:3306") != "" {
		t.Fatalf("relay topology: %+v", e)
	}
}
