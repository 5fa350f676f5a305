package cluster

import (
	"strings"
	"testing"
	"time"

	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Hand-built observations: a tiny language for cluster shapes.

func addr(s string) ipv6.HostPort {
	hp, err := ipv6.ParseHostPort(s, 3306)
	if err != nil {
		panic(err)
	}
	return hp
}

type obsOpt func(*Observation)

func obs(a string, id uint32, opts ...obsOpt) Observation {
	o := Observation{Addr: addr(a), Reachable: true, Facts: topology.Server{ServerID: id, LogBin: true, CurrentPos: gtid.MustParse("0-1-10")}}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func replicaOf(src string, io, sql topology.ThreadState) obsOpt {
	return func(o *Observation) {
		var lag int64
		o.Facts.Replications = append(o.Facts.Replications, topology.Replication{Source: addr(src), IO: io, SQL: sql, Lag: &lag})
		o.Facts.ReadOnly = true
	}
}

func healthyReplicaOf(src string) obsOpt {
	return replicaOf(src, topology.ThreadYes, topology.ThreadYes)
}

func down(o *Observation) {
	o.Reachable = false
	o.Error = "dial tcp: connection refused"
	o.Facts = topology.Server{}
}
func authError(o *Observation) { o.Reachable = false; o.AuthError = true; o.Error = "Error 1045" }
func writable(o *Observation)  { o.Facts.ReadOnly = false }
func readOnly(o *Observation)  { o.Facts.ReadOnly = true }
func noBinlog(o *Observation)  { o.Facts.LogBin = false }
func lag(sec int64) obsOpt {
	return func(o *Observation) { o.Facts.Replications[0].Lag = &sec }
}
func pos(p string) obsOpt { return func(o *Observation) { o.Facts.CurrentPos = gtid.MustParse(p) } }
func sqlError(no int, msg string) obsOpt {
	return func(o *Observation) {
		r := &o.Facts.Replications[0]
		r.SQL, r.LastSQLErrno, r.LastSQLError, r.Lag = topology.ThreadNo, no, msg, nil
	}
}

var testOpt = DiscoverOptions{Cluster: "c1", MaxFail: 3, MaxLag: 30, CheckLag: true}

func discoverSeq(t *testing.T, rounds ...[]Observation) *topology.Snapshot {
	t.Helper()
	var snap *topology.Snapshot
	for i, r := range rounds {
		snap = Discover(r, snap, testOpt, uint64(i+1), time.Unix(int64(i), 0))
	}
	return snap
}

func healthy3() []Observation {
	return []Observation{
		obs("db1:3306", 1),
		obs("db2:3306", 2, healthyReplicaOf("db1:3306")),
		obs("db3:3306", 3, healthyReplicaOf("db1:3306")),
	}
}

func states(s *topology.Snapshot) string {
	var b []string
	for _, srv := range s.Servers {
		b = append(b, string(srv.State))
	}
	return strings.Join(b, ",")
}

func codes(ps []topology.Problem) string {
	var b []string
	for _, p := range ps {
		c := string(p.Code)
		if p.Server != "" {
			c += "@" + p.Server
		}
		b = append(b, c)
	}
	return strings.Join(b, ",")
}

func TestDiscoverAndAnalyze(t *testing.T) {
	masterDown := func() []Observation {
		o := healthy3()
		down(&o[0])
		for i := 1; i < 3; i++ {
			o[i].Facts.Replications[0].IO = topology.ThreadConnecting
			o[i].Facts.Replications[0].Lag = nil
		}
		return o
	}
	cases := []struct {
		name     string
		rounds   [][]Observation
		master   string
		kind     topology.Kind
		states   string
		problems string
		failable bool
	}{
		{
			name: "healthy master and two replicas", rounds: [][]Observation{healthy3()},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,Slave,Slave", problems: "", failable: true,
		},
		{
			name: "stopped SQL thread", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1"), sqlError(1062, "Duplicate entry")), obs("db3", 3, healthyReplicaOf("db1"))}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,SlaveErr,Slave", problems: "BrokenReplication@db2:3306", failable: true,
		},
		{
			name: "lagging replica", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1"), lag(31)), obs("db3", 3, healthyReplicaOf("db1"), lag(30))}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,SlaveLate,Slave", problems: "LaggingReplica@db2:3306", failable: true,
		},
		{
			name: "writable replica and read-only master", rounds: [][]Observation{{obs("db1", 1, readOnly), obs("db2", 2, healthyReplicaOf("db1"), writable), obs("db3", 3, healthyReplicaOf("db1"))}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,Slave,Slave", problems: "ReadOnlyMaster@db1:3306,WritableReplica@db2:3306", failable: true,
		},
		{
			name: "master missed one probe: suspect", rounds: [][]Observation{healthy3(), masterDown()},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Suspect,Slave,Slave", problems: "SuspectMaster@db1:3306", failable: true,
		},
		{
			name: "master missed max probes and replicas lost it: dead", rounds: [][]Observation{healthy3(), masterDown(), masterDown(), masterDown()},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Failed,Slave,Slave", problems: "DeadMaster@db1:3306", failable: true,
		},
		{
			name: "manager cannot reach the master but replicas can", rounds: [][]Observation{healthy3(), {func() Observation { o := obs("db1", 1); down(&o); return o }(), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3, healthyReplicaOf("db1"))}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Suspect,Slave,Slave", problems: "UnreachableMasterWithHealthyReplicas@db1:3306", failable: true,
		},
		{
			name: "replica killed goes suspect then failed", rounds: [][]Observation{healthy3(), {obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3, down)}, {obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3, down)}, {obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3, down)}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,Slave,Failed", problems: "ReplicaDown@db3:3306", failable: true,
		},
		{
			name: "no replica", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, readOnly)}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,StandAlone", problems: "NoReplica@db1:3306", failable: false,
		},
		{
			name: "fresh servers, all writable, nobody replicates", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2), obs("db3", 3)}},
			master: "", kind: topology.KindUnknown, states: "StandAlone,StandAlone,StandAlone", problems: "NoMaster", failable: false,
		},
		{
			name: "replicas stopped replicating after a master-slave setup", rounds: [][]Observation{healthy3(), {obs("db1", 1), obs("db2", 2, readOnly), obs("db3", 3, readOnly)}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,StandAlone,StandAlone", problems: "NoReplica@db1:3306", failable: false,
		},
		{
			name: "second writable master", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3, writable)}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,Slave,StandAlone", problems: "WritableStandalone@db3:3306", failable: true,
		},
		{
			name: "split brain: two trees", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3), obs("db4", 4, healthyReplicaOf("db3"))}},
			master: "", kind: topology.KindUnknown, states: "StandAlone,Slave,StandAlone,Slave", problems: "SplitBrain", failable: false,
		},
		{
			name: "ring of three", rounds: [][]Observation{{obs("db1", 1, healthyReplicaOf("db3")), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3, healthyReplicaOf("db2"))}},
			master: "", kind: topology.KindRing, states: "Relay,Relay,Relay", problems: "ReplicationCycle", failable: false,
		},
		{
			name: "two-node multi-master", rounds: [][]Observation{{obs("db1", 1, healthyReplicaOf("db2"), writable), obs("db2", 2, healthyReplicaOf("db1"))}},
			master: "db1:3306", kind: topology.KindMultiMaster, states: "Master,Slave", problems: "MultiMaster", failable: true,
		},
		{
			name: "relay", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3, healthyReplicaOf("db2"))}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,Relay,Slave", problems: "", failable: true,
		},
		{
			name: "errant GTID on a replica", rounds: [][]Observation{{obs("db1", 1, pos("0-1-10")), obs("db2", 2, healthyReplicaOf("db1"), pos("0-2-11")), obs("db3", 3, healthyReplicaOf("db1"), pos("0-1-11"))}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,Slave,Slave", problems: "ErrantGTID@db2:3306", failable: true,
		},
		{
			name: "all down", rounds: [][]Observation{healthy3(), {obs("db1", 1, down), obs("db2", 2, down), obs("db3", 3, down)}, {obs("db1", 1, down), obs("db2", 2, down), obs("db3", 3, down)}, {obs("db1", 1, down), obs("db2", 2, down), obs("db3", 3, down)}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Failed,Failed,Failed", problems: "ClusterDown,DeadMaster@db1:3306,ReplicaDown@db2:3306,ReplicaDown@db3:3306", failable: false,
		},
		{
			name: "auth error", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3, authError)}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,Slave,ErrorAuth", problems: "AuthFailure@db3:3306", failable: true,
		},
		{
			name: "replica without binlog", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1"), noBinlog)}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,Slave", problems: "ReplicaWithoutBinlog@db2:3306", failable: true,
		},
		{
			name: "replica of an unconfigured source", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1")), obs("db3", 3, healthyReplicaOf("other:3306"))}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,Slave,Slave", problems: "ReplicaOfUnknownSource@db3:3306", failable: true,
		},
		{
			name: "multi-source replica with one broken channel", rounds: [][]Observation{{obs("db1", 1), obs("db2", 2, healthyReplicaOf("db1"), func(o *Observation) {
				o.Facts.Replications = append(o.Facts.Replications, topology.Replication{Channel: "reporting", Source: addr("other:3306"), IO: topology.ThreadNo, SQL: topology.ThreadYes, LastIOErrno: 2003, LastIOError: "can't connect"})
			})}},
			master: "db1:3306", kind: topology.KindMasterSlave, states: "Master,SlaveErr", problems: "BrokenReplication@db2:3306", failable: true,
		},
		{
			name: "single server", rounds: [][]Observation{{obs("db1", 1)}},
			master: "db1:3306", kind: topology.KindActivePassive, states: "Master", problems: "", failable: true,
		},
		{
			name: "IPv6 hosts", rounds: [][]Observation{{obs("[::1]:3306", 1), obs("[::1]:3307", 2, healthyReplicaOf("[0::1]:3306")), obs("[::1]:3308", 3, healthyReplicaOf("[::1]:3306"))}},
			master: "[::1]:3306", kind: topology.KindMasterSlave, states: "Master,Slave,Slave", problems: "", failable: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := discoverSeq(t, c.rounds...)
			m := ""
			if ms, ok := snap.MasterServer(); ok {
				m = ms.Addr.String()
			}
			if m != c.master {
				t.Errorf("master = %q, want %q", m, c.master)
			}
			if snap.Kind != c.kind {
				t.Errorf("kind = %q, want %q", snap.Kind, c.kind)
			}
			if got := states(snap); got != c.states {
				t.Errorf("states = %s, want %s", got, c.states)
			}
			ps := Analyze(snap, AnalyzeOptions{ReadOnlyReplicas: true, MaxLag: testOpt.MaxLag})
			if got := codes(ps); got != c.problems {
				t.Errorf("problems = %s, want %s\n%+v", got, c.problems, ps)
			}
			if Failable(ps) != c.failable {
				t.Errorf("failable = %v, want %v", Failable(ps), c.failable)
			}
		})
	}
}

func TestDownServerKeepsLastKnownFacts(t *testing.T) {
	first := healthy3()
	first[0].Facts.CurrentPos = gtid.MustParse("0-1-42")
	second := healthy3()
	down(&second[0])
	snap := discoverSeq(t, first, second)
	m, _ := snap.MasterServer()
	if m.Reachable || m.CurrentPos.String() != "0-1-42" || m.FailCount != 1 || m.PrevState != topology.StateMaster {
		t.Fatalf("down master lost its facts: %+v", m)
	}
	if m.ID == "" || !strings.HasPrefix(m.ID, "db") {
		t.Fatalf("server id = %q", m.ID)
	}
}

func TestFailCountResetsOnRecovery(t *testing.T) {
	o1, o2 := healthy3(), healthy3()
	down(&o1[2])
	snap := discoverSeq(t, healthy3(), o1, o2)
	if snap.Servers[2].FailCount != 0 || snap.Servers[2].State != topology.StateSlave || snap.Servers[2].PrevState != topology.StateSuspect {
		t.Fatalf("recovered replica: %+v", snap.Servers[2])
	}
}

func TestMaintenanceState(t *testing.T) {
	opt := testOpt
	opt.Maintenance = map[ipv6.HostPort]bool{addr("db2"): true}
	snap := Discover(healthy3(), nil, opt, 1, time.Unix(0, 0))
	if states(snap) != "Master,Maintenance,Slave" {
		t.Fatalf("states = %s", states(snap))
	}
}

// A replica pointed at a name other than the configured one is still matched through the
// source's server_id.
func TestSourceMatchedByServerID(t *testing.T) {
	o := healthy3()
	o[1].Facts.Replications[0].Source = addr("db1.example.org:3306")
	o[1].Facts.Replications[0].SourceServerID = 1
	snap := discoverSeq(t, o)
	if states(snap) != "Master,Slave,Slave" {
		t.Fatalf("states = %s", states(snap))
	}
	if ps := Analyze(snap, AnalyzeOptions{}); len(ps) != 0 {
		t.Fatalf("problems: %v", codes(ps))
	}
}

// A master probed a moment before its replica applied the master's newest transaction must
// not make that replica look errant.
func TestErrantIgnoresMastersOwnTransactionsSeenFirstOnReplica(t *testing.T) {
	o := []Observation{obs("db1", 1, pos("0-1-10")), obs("db2", 2, healthyReplicaOf("db1"), pos("0-1-11"))}
	ps := Analyze(discoverSeq(t, o), AnalyzeOptions{})
	if len(ps) != 0 {
		t.Fatalf("problems: %v", codes(ps))
	}
}

func TestRecoveries(t *testing.T) {
	o := []Observation{obs("db1", 1, readOnly), obs("db2", 2, healthyReplicaOf("db1"), writable), obs("db3", 3, healthyReplicaOf("db1"), writable)}
	snap := discoverSeq(t, o)
	snap.Problems = Analyze(snap, AnalyzeOptions{ReadOnlyReplicas: true})
	acts := Recoveries(snap, RecoveryOptions{ReadOnlyReplicas: true, IgnoredReadOnly: map[ipv6.HostPort]bool{addr("db3"): true}})
	var got []string
	for _, a := range acts {
		got = append(got, string(a.Kind)+"@"+a.Server.String())
	}
	if strings.Join(got, ",") != "set-writable@db1:3306,set-read-only@db2:3306" {
		t.Fatalf("recoveries = %v", got)
	}
	if acts := Recoveries(snap, RecoveryOptions{ReadOnlyReplicas: true, Paused: true}); len(acts) != 0 {
		t.Fatalf("paused recoveries = %v", acts)
	}
	if acts := Recoveries(snap, RecoveryOptions{ReadOnlyReplicas: false}); len(acts) != 1 || acts[0].Kind != RecoverSetWritable {
		t.Fatalf("without failover-readonly-state: %v", acts)
	}
}

// Every analysis code has its row in the recovery table (nil: report only), so a new code
// cannot be forgotten; and no row names a code the analysis does not know.
func TestRecoveryTableCoversEveryCode(t *testing.T) {
	known := map[topology.Code]bool{}
	for _, c := range topology.Codes {
		known[c] = true
		if _, ok := recoveryTable[c]; !ok {
			t.Errorf("code %s has no row in recoveryTable", c)
		}
	}
	for c := range recoveryTable {
		if !known[c] {
			t.Errorf("recoveryTable row %s is not in topology.Codes", c)
		}
	}
}

// A dead master gives one failover recovery in automatic mode and none otherwise; a
// replica left on a failed former master is repointed only with autorejoin.
func TestRecoveryTableActions(t *testing.T) {
	snap := &topology.Snapshot{Kind: topology.KindMasterSlave, Master: 0, Servers: []topology.Server{
		{Addr: addr("db1"), State: topology.StateFailed},
		{Addr: addr("db2"), Reachable: true, State: topology.StateSlave, Replications: []topology.Replication{{Source: addr("db9"), IO: topology.ThreadYes, SQL: topology.ThreadYes}}},
	}}
	snap.Servers = append(snap.Servers, topology.Server{Addr: addr("db9"), State: topology.StateFailed})
	snap.Problems = []topology.Problem{
		{Code: topology.DeadMaster, Server: "db1:3306"}, {Code: topology.DeadMaster, Server: "db1:3306"},
		{Code: topology.ReplicaNotFollowingMaster, Server: "db2:3306"},
	}
	got := func(o RecoveryOptions) string {
		var out []string
		for _, r := range Recoveries(snap, o) {
			srv := ""
			if r.Server.Host != "" {
				srv = r.Server.String()
			}
			out = append(out, string(r.Kind)+"@"+srv)
		}
		return strings.Join(out, ",")
	}
	if g := got(RecoveryOptions{AutoFailover: true}); g != "failover@" {
		t.Fatalf("automatic: %q, want one failover", g)
	}
	if g := got(RecoveryOptions{}); g != "" {
		t.Fatalf("manual: %q, want nothing", g)
	}
	if g := got(RecoveryOptions{AutoRejoin: true}); g != "repoint@db2:3306" {
		t.Fatalf("autorejoin: %q", g)
	}
}

// A stalled master keeps its replicas' IO threads "Yes" until slave_net_timeout. With the
// heartbeat check, silence from the source for longer than the timeout is agreement; moving
// heartbeats are proof of life.
func TestHeartbeatCheck(t *testing.T) {
	round := func(heartbeats uint64, masterUp bool) []Observation {
		o := healthy3()
		if !masterUp {
			down(&o[0])
		}
		for i := 1; i < 3; i++ {
			o[i].Facts.Replications[0].ReceivedHeartbeats = heartbeats
		}
		return o
	}
	opt := AnalyzeOptions{HeartbeatCheck: true, HeartbeatTimeout: 2 * time.Second}
	// One second per round; observations carry At, which dates source activity.
	run := func(rounds [][]Observation) *topology.Snapshot {
		var snap *topology.Snapshot
		for i, r := range rounds {
			for j := range r {
				r[j].At = time.Unix(int64(i), 0)
			}
			snap = Discover(r, snap, testOpt, uint64(i+1), time.Unix(int64(i), 0))
		}
		return snap
	}

	silent := run([][]Observation{round(5, true), round(5, false), round(5, false), round(5, false), round(5, false)})
	if ps := Analyze(silent, opt); codes(ps) != "DeadMaster@db1:3306" {
		t.Fatalf("silent source: %s", codes(ps))
	}
	if ps := Analyze(silent, AnalyzeOptions{}); codes(ps) != "UnreachableMasterWithHealthyReplicas@db1:3306" {
		t.Fatalf("without heartbeat check the IO thread vouches for the master: %s", codes(ps))
	}
	beating := run([][]Observation{round(5, true), round(6, false), round(7, false), round(8, false), round(9, false)})
	if ps := Analyze(beating, opt); codes(ps) != "UnreachableMasterWithHealthyReplicas@db1:3306" {
		t.Fatalf("heartbeats moving: %s", codes(ps))
	}
}

func TestNeverReachedServersAreUnknown(t *testing.T) {
	snap := discoverSeq(t, []Observation{obs("db1", 1, down), obs("db2", 2, down)})
	for _, s := range snap.Servers {
		if s.Role != topology.RoleUnknown || s.State != topology.StateSuspect {
			t.Fatalf("%s: role %s state %s", s.Addr, s.Role, s.State)
		}
	}
	ps := Analyze(snap, AnalyzeOptions{})
	if codes(ps) != "NoMaster" || !strings.Contains(ps[0].Message, "no server answers") {
		t.Fatalf("problems %+v", ps)
	}
}
