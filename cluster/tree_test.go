package cluster

import (
	"strings"
	"testing"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Replication trees, decided on snapshots: db1 -> db2 (relay) -> {db3, db4}, db1 -> db5.

// under builds a healthy replica of src at a position.
func under(a string, id uint32, src, p string, opts ...obsOpt) Observation {
	base := []obsOpt{healthyReplicaOf(src), pos(p), ioPos(p), logSlaveUpdates(true)}
	return obs(a, id, append(base, opts...)...)
}

func tree(relayPos, leafPos, directPos string) []Observation {
	return []Observation{
		obs("db1", 1, pos("0-1-100")),
		under("db2", 2, "db1", relayPos),
		under("db3", 3, "db2", leafPos),
		under("db4", 4, "db2", leafPos),
		under("db5", 5, "db1", directPos),
	}
}

// masterDies returns the rounds of a tree whose master stops answering: its direct
// replicas lose their IO thread, the relay's replicas keep theirs.
func masterDies(up []Observation, rounds int) [][]Observation {
	out := [][]Observation{up}
	for n := 0; n < rounds; n++ {
		r := make([]Observation, len(up))
		copy(r, up)
		r[0] = obs("db1", 1, down)
		for i := 1; i < len(r); i++ {
			if !r[i].Reachable || r[i].Facts.Replications[0].Source != addr("db1") {
				continue
			}
			f := r[i].Facts
			f.Replications = append([]topology.Replication(nil), f.Replications...)
			f.Replications[0].IO, f.Replications[0].Lag = topology.ThreadConnecting, nil
			r[i].Facts = f
		}
		out = append(out, r)
	}
	return out
}

func stepList(p Plan) string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, string(s.Kind)+"@"+s.Server.String())
	}
	return strings.Join(out, ",")
}

func failoverOpt() PlanOptions {
	return PlanOptions{Elect: ElectOptions{CheckReplication: true, MaxLag: 30}, Automatic: true, Mode: "automatic"}
}

func TestTreeDepthAndRoles(t *testing.T) {
	s := discoverSeq(t, tree("0-1-100", "0-1-100", "0-1-100"))
	want := map[string]struct {
		depth int
		role  topology.Role
	}{"db1:3306": {0, topology.RoleMaster}, "db2:3306": {1, topology.RoleRelay}, "db3:3306": {2, topology.RoleReplica}, "db4:3306": {2, topology.RoleReplica}, "db5:3306": {1, topology.RoleReplica}}
	for _, srv := range s.Servers {
		w := want[srv.Addr.String()]
		if srv.Depth != w.depth || srv.Role != w.role {
			t.Errorf("%s: depth %d role %s, want %d %s", srv.Addr, srv.Depth, srv.Role, w.depth, w.role)
		}
	}
	if ps := Analyze(s, AnalyzeOptions{MaxLag: 30}); len(ps) != 0 {
		t.Fatalf("healthy tree has problems: %s", codes(ps))
	}
}

func TestTreeFailoverPromotesTheRelayAndKeepsItsReplicas(t *testing.T) {
	s := analysed(t, discoverSeq(t, masterDies(tree("0-1-100", "0-1-100", "0-1-100"), 3)...))
	if !hasProblem(s, topology.DeadMaster) {
		t.Fatalf("no DeadMaster: %s", codes(s.Problems))
	}
	p := DecideFailover(s, FailoverHistory{}, failoverOpt())
	if p.Refused != "" || p.NewMaster.String() != "db2:3306" {
		t.Fatalf("want the relay, got %s (%s) %+v", p.NewMaster, p.Refused, p.Election)
	}
	if !strings.Contains(p.Election.Reason, "keeps 2 replicas") {
		t.Errorf("reason %q", p.Election.Reason)
	}
	// Only the master's other direct replica moves; the relay's replicas stay under it.
	if got, want := stepList(p), "fence-old-master@db1:3306,wait-catch-up@db2:3306,promote@db2:3306,notify-routers@db2:3306,repoint-replica@db5:3306,record@:0"; got != want {
		t.Fatalf("steps\n%s\nwant\n%s", got, want)
	}
	for _, c := range p.Election.Candidates {
		if !c.Eligible {
			t.Errorf("%s not eligible: %v", c.Server, c.Reasons)
		}
	}

	// Flattened around a leaf: every server, the relay's other replica too, moves under it.
	flat := failoverOpt()
	flat.Flatten = true
	flat.Elect.Ignored = map[ipv6.HostPort]bool{addr("db2"): true}
	p = DecideFailover(s, FailoverHistory{}, flat)
	if got, want := stepList(p), "fence-old-master@db1:3306,wait-catch-up@db2:3306,wait-catch-up@db3:3306,promote@db3:3306,notify-routers@db3:3306,repoint-replica@db2:3306,repoint-replica@db4:3306,repoint-replica@db5:3306,record@:0"; got != want {
		t.Fatalf("flattened steps\n%s\nwant\n%s", got, want)
	}
}

func TestTreeFailoverMostAdvancedWinsAtAnyDepth(t *testing.T) {
	// The relay received more than the direct replica: its leaves rank with it.
	s := analysed(t, discoverSeq(t, masterDies(tree("0-1-105", "0-1-103", "0-1-100"), 3)...))
	e := Elect(s, ElectOptions{Mode: ElectFailover, CheckReplication: true, MaxLag: 30})
	if w, _ := e.WinnerAddr(s); w.String() != "db2:3306" {
		t.Fatalf("winner %s, want the relay: %+v", w, e)
	}
	for _, c := range e.Candidates {
		switch c.Server.String() {
		case "db3:3306":
			if c.Behind != 0 || len(c.Upstream) != 1 || c.Upstream[0].String() != "db2:3306" || c.Depth != 2 {
				t.Errorf("leaf ranked %+v: want the relay's position through its upstream", c)
			}
		case "db5:3306":
			if c.Behind != 5 {
				t.Errorf("direct replica behind %d, want 5", c.Behind)
			}
		}
	}

	// The relay may not be promoted (ignored): a leaf under it wins, catching up through
	// it first; the relay then goes under the leaf with its other replica.
	o := failoverOpt()
	o.Elect.Ignored = map[ipv6.HostPort]bool{addr("db2"): true}
	p := DecideFailover(s, FailoverHistory{}, o)
	if p.NewMaster.String() != "db3:3306" {
		t.Fatalf("winner %s (%s), want the leaf db3", p.NewMaster, p.Refused)
	}
	want := "fence-old-master@db1:3306,wait-catch-up@db2:3306,wait-catch-up@db3:3306,promote@db3:3306,notify-routers@db3:3306,repoint-replica@db2:3306,repoint-replica@db5:3306,record@:0"
	if got := stepList(p); got != want {
		t.Fatalf("steps\n%s\nwant\n%s", got, want)
	}
	if up := p.Steps[2].Upstream; len(up) != 1 || up[0].String() != "db2:3306" {
		t.Fatalf("candidate's catch-up step has upstream %v", up)
	}
}

func TestTreeDeadMasterNeverSeenHasNoErrantTransactions(t *testing.T) {
	// The manager starts after the master died: the dead master's own transactions
	// (server_id 5511) are on every server and must not be called errant.
	withSource := func(o *Observation) { o.Facts.Replications[0].SourceServerID = 5511 }
	viaRelay := func(o *Observation) { o.Facts.Replications[0].SourceServerID = 2 }
	connecting := func(o *Observation) { o.Facts.Replications[0].IO = topology.ThreadConnecting }
	round := []Observation{
		obs("db1", 0, down),
		under("db2", 2, "db1", "0-5511-1", withSource, connecting),
		under("db3", 3, "db2", "0-5511-1", viaRelay),
		under("db5", 5, "db1", "0-5511-1", withSource, connecting),
	}
	s := analysed(t, discoverSeq(t, round, round, round))
	for _, p := range s.Problems {
		if p.Code == topology.ErrantGTID {
			t.Errorf("errant reported: %s %s", p.Server, p.Message)
		}
	}
	p := DecideFailover(s, FailoverHistory{}, failoverOpt())
	if p.Refused != "" {
		t.Fatalf("refused: %s; %+v", p.Refused, p.Election)
	}
	for _, c := range p.Election.Candidates {
		if strings.Contains(strings.Join(c.Reasons, ";"), "errant") {
			t.Errorf("%s called errant: %v", c.Server, c.Reasons)
		}
	}
	// A real errant transaction (another server_id) is still seen.
	round[3] = under("db5", 5, "db1", "0-5511-1", withSource, connecting, pos("0-5511-1,1-5-3"))
	s = analysed(t, discoverSeq(t, round, round, round))
	if p := DecideFailover(s, FailoverHistory{}, failoverOpt()); !strings.Contains(reasonsOf(p.Election, "db5:3306"), "errant GTID 1-5-3") {
		t.Fatalf("errant transaction not seen: %q", reasonsOf(p.Election, "db5:3306"))
	}
}

func TestTreeSwitchoverToALeaf(t *testing.T) {
	s := analysed(t, discoverSeq(t, tree("0-1-100", "0-1-100", "0-1-100")))
	target := addr("db3")
	o := PlanOptions{Elect: ElectOptions{CheckReplication: true, MaxLag: 30, Target: &target}}
	p := DecideSwitchover(s, o)
	want := "check-long-writes@db1:3306,freeze-old-master@db1:3306,wait-catch-up@db3:3306,promote@db3:3306,notify-routers@db3:3306,demote-old-master@db1:3306,repoint-replica@db2:3306,repoint-replica@db5:3306,record@:0"
	if got := stepList(p); got != want {
		t.Fatalf("steps (%s)\n%s\nwant\n%s", p.Refused, got, want)
	}
	// Without a target the relay wins: it keeps its replicas.
	o.Elect.Target = nil
	if p := DecideSwitchover(s, o); p.NewMaster.String() != "db2:3306" {
		t.Fatalf("switchover picked %s, want the relay", p.NewMaster)
	}
	// A leaf whose relay does not apply cannot receive the old master's last writes.
	broken := tree("0-1-100", "0-1-100", "0-1-100")
	broken[1] = under("db2", 2, "db1", "0-1-100", sqlError(1062, "duplicate"))
	s = analysed(t, discoverSeq(t, broken))
	o.Elect.Target = &target
	if p := DecideSwitchover(s, o); p.Refused == "" || !strings.Contains(reasonsOf(p.Election, "db3:3306"), "cannot pass transactions down") {
		t.Fatalf("switchover under a broken relay: %s %q", p.Refused, reasonsOf(p.Election, "db3:3306"))
	}
}

// relayDies returns the rounds of a tree whose relay db2 stops answering; its replicas'
// IO threads reconnect in vain.
func relayDies(up []Observation, rounds int) [][]Observation {
	out := [][]Observation{up}
	for n := 0; n < rounds; n++ {
		r := make([]Observation, len(up))
		copy(r, up)
		r[1] = obs("db2", 2, down)
		for i := 2; i < len(r); i++ {
			if r[i].Facts.Replications[0].Source != addr("db2") {
				continue
			}
			f := r[i].Facts
			f.Replications = append([]topology.Replication(nil), f.Replications...)
			f.Replications[0].IO, f.Replications[0].Lag = topology.ThreadConnecting, nil
			r[i].Facts = f
		}
		out = append(out, r)
	}
	return out
}

func TestDeadRelayIsConfirmedByItsReplicasAndRecovered(t *testing.T) {
	// Replicas still connected: only the manager lost the relay.
	seeing := tree("0-1-100", "0-1-100", "0-1-100")
	rounds := [][]Observation{seeing}
	for n := 0; n < 3; n++ {
		r := append([]Observation(nil), seeing...)
		r[1] = obs("db2", 2, down)
		rounds = append(rounds, r)
	}
	s := analysed(t, discoverSeq(t, rounds...))
	if hasProblem(s, topology.DeadRelay) {
		t.Fatalf("relay called dead while its replicas receive from it: %s", codes(s.Problems))
	}
	if p := DecideRelay(s, addr("db2"), PlanOptions{Automatic: true}); p.Code != RefuseNotDead {
		t.Fatalf("automatic relay recovery not refused: %+v", p)
	}

	s = analysed(t, discoverSeq(t, relayDies(tree("0-1-100", "0-1-100", "0-1-100"), 3)...))
	if !problemOn(s, topology.DeadRelay, addr("db2")) {
		t.Fatalf("no DeadRelay: %s", codes(s.Problems))
	}
	recs := Recoveries(s, RecoveryOptions{AutoRejoin: true})
	if len(recs) != 1 || recs[0].Kind != RecoverRelay || recs[0].Server.String() != "db2:3306" {
		t.Fatalf("recoveries %+v", recs)
	}
	if recs := Recoveries(s, RecoveryOptions{AutoRejoin: false}); len(recs) != 0 {
		t.Fatalf("recoveries without autorejoin: %+v", recs)
	}
	p := DecideRelay(s, addr("db2"), PlanOptions{Automatic: true})
	if p.Refused != "" || p.NewMaster.String() != "db1:3306" || p.OldMaster.String() != "db2:3306" {
		t.Fatalf("plan %+v", p)
	}
	if got, want := stepList(p), "repoint-replica@db3:3306,repoint-replica@db4:3306"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if p := DecideRelay(s, addr("db5"), PlanOptions{}); p.Code != RefuseNothingToDo {
		t.Fatalf("a replica without replicas: %+v", p)
	}
	if p := DecideRelay(s, addr("db1"), PlanOptions{}); p.Code != RefuseUnsupportedKind {
		t.Fatalf("the master: %+v", p)
	}
}

func TestDeadRelayKeepDepthPicksASurvivingRelay(t *testing.T) {
	up := append(tree("0-1-100", "0-1-100", "0-1-100"),
		under("db6", 6, "db1", "0-1-99"), under("db7", 7, "db6", "0-1-99"),
		under("db8", 8, "db1", "0-1-100"), under("db9", 9, "db8", "0-1-100"))
	s := analysed(t, discoverSeq(t, relayDies(up, 3)...))
	p := DecideRelay(s, addr("db2"), PlanOptions{Automatic: true, KeepDepth: true})
	if p.NewMaster.String() != "db8:3306" {
		t.Fatalf("new source %s (%s), want the most advanced surviving relay db8", p.NewMaster, p.Refused)
	}
	if got, want := stepList(p), "wait-catch-up@db8:3306,repoint-replica@db3:3306,repoint-replica@db4:3306"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
}

func TestDeadRelayUnderADeadMasterIsTheFailoversJob(t *testing.T) {
	rounds := masterDies(tree("0-1-100", "0-1-100", "0-1-100"), 3)
	for _, r := range rounds[1:] {
		r[1] = obs("db2", 2, down)
		for i := 2; i <= 3; i++ {
			f := r[i].Facts
			f.Replications = append([]topology.Replication(nil), f.Replications...)
			f.Replications[0].IO = topology.ThreadConnecting
			r[i].Facts = f
		}
	}
	s := analysed(t, discoverSeq(t, rounds...))
	for _, r := range Recoveries(s, RecoveryOptions{AutoRejoin: true, AutoFailover: true}) {
		if r.Kind == RecoverRelay {
			t.Fatalf("relay recovery under a dead master: %+v", r)
		}
	}
	p := DecideFailover(s, FailoverHistory{}, failoverOpt())
	if p.Refused != "" {
		t.Fatalf("refused: %s", p.Refused)
	}
	// Whoever wins, the dead relay's replicas are not left behind.
	got := stepList(p)
	for _, srv := range []string{"db3:3306", "db4:3306", "db5:3306"} {
		if srv != p.NewMaster.String() && !strings.Contains(got, "repoint-replica@"+srv) {
			t.Errorf("%s not repointed: %s", srv, got)
		}
	}
}
